/* Boundary modes: where a coordinate outside [0, n - 1] samples the input,
 * exactly as scipy's map_coordinate() (ni_interpolation.c) computes it,
 * integer truncations included.  Shared by the resampling kernels
 * (src/_kernels.pyx) and the label kernel (src/_labels.pyx).
 *
 * Mode codes are scipy's NI_ExtendMode values (medfast.ndimage.MODES).
 */
#ifndef MEDFAST_BOUNDARY_H
#define MEDFAST_BOUNDARY_H

#include <stddef.h>

enum {
    MF_NEAREST = 0, MF_WRAP = 1, MF_REFLECT = 2, MF_MIRROR = 3,
    MF_CONSTANT = 4, MF_GRID_WRAP = 5, MF_GRID_CONSTANT = 6
};

static inline double mf_map_coordinate(double x, ptrdiff_t n, int mode)
{
    ptrdiff_t sz, sz2;
    if (x < 0) {
        switch (mode) {
        case MF_MIRROR:
            if (n <= 1) return 0;
            sz2 = 2 * n - 2;
            x = sz2 * (ptrdiff_t)(-x / sz2) + x;
            return x <= 1 - n ? x + sz2 : -x;
        case MF_REFLECT:
            if (n <= 1) return 0;
            sz2 = 2 * n;
            if (x < -sz2)
                x = sz2 * (ptrdiff_t)(-x / sz2) + x;
            return x < -n ? x + sz2 : (x > -1e-15 ? 1e-15 : -x) - 1;
        case MF_WRAP:
            if (n <= 1) return 0;
            sz = n - 1;
            return x + sz * ((ptrdiff_t)(-x / sz) + 1);
        case MF_GRID_WRAP:
            if (n <= 1) return 0;
            return x + n * ((ptrdiff_t)((-1 - x) / n) + 1);
        case MF_NEAREST:
            return 0;
        case MF_CONSTANT:
            return -1;
        }
    } else if (x > n - 1) {
        switch (mode) {
        case MF_MIRROR:
            if (n <= 1) return 0;
            sz2 = 2 * n - 2;
            x -= sz2 * (ptrdiff_t)(x / sz2);
            return x >= n ? sz2 - x : x;
        case MF_REFLECT:
            if (n <= 1) return 0;
            sz2 = 2 * n;
            x -= sz2 * (ptrdiff_t)(x / sz2);
            return x >= n ? sz2 - x - 1 : x;
        case MF_WRAP:
            if (n <= 1) return 0;
            sz = n - 1;
            return x - sz * (ptrdiff_t)(x / sz);
        case MF_GRID_WRAP:
            if (n <= 1) return 0;
            return x - n * (ptrdiff_t)(x / n);
        case MF_NEAREST:
            return (double)(n - 1);
        case MF_CONSTANT:
            return -1;
        }
    }
    return x;
}

/* The mode that maps the taps of an interpolation: scipy mirrors those of
 * modes without an analytic extension. */
static inline int mf_spline_mode(int mode)
{
    return (mode == MF_CONSTANT || mode == MF_WRAP) ? MF_MIRROR : mode;
}

#endif

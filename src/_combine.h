/* Output voxels of an aligned row from grouped partial products.
 *
 * p holds, for each input sample x of the row, the four partial products
 * (v * wa) * wb of the four input rows feeding the output row (p[4x + g]).
 * Output voxel k sums, in scipy's order, p[q + g] * w0[k] and
 * p[q + 4 + g] * w1[k] for g = 0..3, with q = 4 * (st[k] - xlo).
 *
 * With SSE2 two voxels share one register pair: each lane performs exactly
 * the scalar sequence of operations (IEEE multiply and add per lane), so
 * the results are bit-identical to the scalar loop and to scipy.
 */
#ifndef MEDFAST_COMBINE_H
#define MEDFAST_COMBINE_H

#include <stddef.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static inline void mf_combine_run(const double *p, ptrdiff_t xlo,
                                  const ptrdiff_t *st, const double *w0,
                                  const double *w1, double *vals,
                                  ptrdiff_t ka, ptrdiff_t kb)
{
    ptrdiff_t k = ka;
#ifdef __SSE2__
    for (; k + 2 <= kb; k += 2) {
        const double *qa = p + 4 * (st[k] - xlo);
        const double *qb = p + 4 * (st[k + 1] - xlo);
        __m128d wa = _mm_loadu_pd(w0 + k);
        __m128d wb = _mm_loadu_pd(w1 + k);
        __m128d t = _mm_setzero_pd();
        int g;
        for (g = 0; g < 4; g++) {
            t = _mm_add_pd(t, _mm_mul_pd(_mm_set_pd(qb[g], qa[g]), wa));
            t = _mm_add_pd(t, _mm_mul_pd(_mm_set_pd(qb[g + 4], qa[g + 4]), wb));
        }
        _mm_storeu_pd(vals + k, t);
    }
#endif
    for (; k < kb; k++) {
        const double *q = p + 4 * (st[k] - xlo);
        double t = 0.0;
        int g;
        for (g = 0; g < 4; g++) {
            t = t + q[g] * w0[k];
            t = t + q[g + 4] * w1[k];
        }
        vals[k] = t;
    }
}

#endif

#ifndef MEDFAST_GENERAL_H
#define MEDFAST_GENERAL_H

/* General 3-D rows, split into flat loops the compiler can vectorise:
 * (1) per voxel, from its coordinate: the inside test, the byte offset of
 *     its first tap and its weights;  (2) the gather of the taps (typed,
 *     in Cython);  (3) the weighted sum.  Every voxel's arithmetic is
 *     scipy's, in scipy's order.
 */

/* Linear: wts holds six arrays of n weights: a0 | a1 | b0 | b1 | w0 | w1.
 * Returns the number of inside voxels. */
static inline ptrdiff_t mf_linear_setup3(
    const double *c0, const double *c1, const double *c2, ptrdiff_t n,
    double lim0, double lim1, double lim2,
    ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t s2,
    ptrdiff_t *off, unsigned char *ins, double *wts)
{
    ptrdiff_t k, count = 0;
    for (k = 0; k < n; k++) {
        double x0 = c0[k], x1 = c1[k], x2 = c2[k];
        if (x0 >= 0 && x0 < lim0 && x1 >= 0 && x1 < lim1 &&
                x2 >= 0 && x2 < lim2) {
            /* all eight taps inside: floor is a truncation here */
            ptrdiff_t i0 = (ptrdiff_t)x0, i1 = (ptrdiff_t)x1, i2 = (ptrdiff_t)x2;
            double a0 = 1.0 - (x0 - (double)i0);
            double b0 = 1.0 - (x1 - (double)i1);
            double w0 = 1.0 - (x2 - (double)i2);
            wts[k] = a0;
            wts[n + k] = 1.0 - a0;
            wts[2 * n + k] = b0;
            wts[3 * n + k] = 1.0 - b0;
            wts[4 * n + k] = w0;
            wts[5 * n + k] = 1.0 - w0;
            off[k] = i0 * s0 + i1 * s1 + i2 * s2;
            ins[k] = 1;
            count++;
        } else {
            wts[k] = wts[n + k] = wts[2 * n + k] = 0.0;
            wts[3 * n + k] = wts[4 * n + k] = wts[5 * n + k] = 0.0;
            off[k] = 0;
            ins[k] = 0;
        }
    }
    return count;
}

/* g holds eight arrays of n tap values, corners in C order (000, 001, 010,
 * ..., 111 for axes 0, 1, 2). */
static inline void mf_linear_combine3(const double *g, const double *wts,
                                      ptrdiff_t n, double *vals)
{
    const double *a0 = wts, *a1 = wts + n, *b0 = wts + 2 * n,
                 *b1 = wts + 3 * n, *w0 = wts + 4 * n, *w1 = wts + 5 * n;
    ptrdiff_t k;
    for (k = 0; k < n; k++) {
        double t = 0.0;
        t = t + ((g[k] * a0[k]) * b0[k]) * w0[k];
        t = t + ((g[n + k] * a0[k]) * b0[k]) * w1[k];
        t = t + ((g[2 * n + k] * a0[k]) * b1[k]) * w0[k];
        t = t + ((g[3 * n + k] * a0[k]) * b1[k]) * w1[k];
        t = t + ((g[4 * n + k] * a1[k]) * b0[k]) * w0[k];
        t = t + ((g[5 * n + k] * a1[k]) * b0[k]) * w1[k];
        t = t + ((g[6 * n + k] * a1[k]) * b1[k]) * w0[k];
        t = t + ((g[7 * n + k] * a1[k]) * b1[k]) * w1[k];
        vals[k] = t;
    }
}

/* Nearest: the byte offset of each inside voxel's tap (scipy rounds with
 * floor(x + 0.5); x + 0.5 > 0 here).  Returns the number inside. */
static inline ptrdiff_t mf_nearest_setup3(
    const double *c0, const double *c1, const double *c2, ptrdiff_t n,
    double lim0, double lim1, double lim2,
    ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t s2,
    ptrdiff_t *off, unsigned char *ins)
{
    ptrdiff_t k, count = 0;
    for (k = 0; k < n; k++) {
        double x0 = c0[k], x1 = c1[k], x2 = c2[k];
        if (x0 >= 0 && x0 <= lim0 && x1 >= 0 && x1 <= lim1 &&
                x2 >= 0 && x2 <= lim2) {
            off[k] = (ptrdiff_t)(x0 + 0.5) * s0 + (ptrdiff_t)(x1 + 0.5) * s1
                     + (ptrdiff_t)(x2 + 0.5) * s2;
            ins[k] = 1;
            count++;
        } else {
            off[k] = 0;
            ins[k] = 0;
        }
    }
    return count;
}

#endif

#ifndef MEDFAST_FILL_H
#define MEDFAST_FILL_H
/* out[k] = p + k * m for k < n: the last term of scipy's coordinate sum.
 * An int counter (rows are far shorter than 2**31) lets the compiler
 * vectorise the int -> double conversion. */
static inline void mf_fill_line(double p, double m, ptrdiff_t n, double *out)
{
    int k, nn = (int)n;
    for (k = 0; k < nn; k++)
        out[k] = p + (double)k * m;
}
#endif

#ifndef MEDFAST_STORE_H
#define MEDFAST_STORE_H
#include <math.h>
#include <stdint.h>
/* Contiguous integer stores with scipy's rounding: (t > 0 ? t + 0.5 :
 * t - 0.5) for signed outputs, written t + copysign(0.5, t) (the same value
 * after the truncating cast, zeros of either sign included) so that the
 * loop has no branch; (t > 0 ? t + 0.5 : 0) for unsigned; then clipping. */
#define MF_STORE_SIGNED(name, type, lo, hi)                                  \
static inline void name(const double *vals, void *out, ptrdiff_t n)         \
{                                                                            \
    type *o = (type *)out;                                                   \
    ptrdiff_t k;                                                             \
    for (k = 0; k < n; k++) {                                                \
        double t = vals[k];                                                  \
        t = t + copysign(0.5, t);                                            \
        t = t > hi ? hi : t;                                                 \
        t = t < lo ? lo : t;                                                 \
        o[k] = (type)t;                                                      \
    }                                                                        \
}
#define MF_STORE_UNSIGNED(name, type, hi)                                    \
static inline void name(const double *vals, void *out, ptrdiff_t n)         \
{                                                                            \
    type *o = (type *)out;                                                   \
    ptrdiff_t k;                                                             \
    for (k = 0; k < n; k++) {                                                \
        double t = vals[k];                                                  \
        t = (t > 0 ? t : 0.0) + 0.5;                                         \
        t = t > hi ? hi : t;                                                 \
        o[k] = (type)t;                                                      \
    }                                                                        \
}
MF_STORE_SIGNED(mf_store_i8, int8_t, -128.0, 127.0)
MF_STORE_SIGNED(mf_store_i16, int16_t, -32768.0, 32767.0)
MF_STORE_UNSIGNED(mf_store_u8, uint8_t, 255.0)
MF_STORE_UNSIGNED(mf_store_u16, uint16_t, 65535.0)
#endif

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

/* Output voxels of an aligned row from partial products.
 *
 * p holds, for each of the four input rows feeding the output row (g) and
 * each input sample x of the row, the partial product (v * wa) * wb, at
 * p[g * span + x - xlo].  Output voxel k sums, in scipy's order,
 * P_g[x] * w0[k] and P_g[x + 1] * w1[k] for g = 0..3, with x = st[k].
 *
 * With SSE2 two voxels share one register pair: each lane performs exactly
 * the scalar sequence of operations (IEEE multiply and add per lane), so
 * the results are bit-identical to the scalar loop and to scipy.
 */
#ifndef MEDFAST_COMBINE_H
#define MEDFAST_COMBINE_H

#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static inline void mf_combine_run(const double *p, ptrdiff_t span,
                                  ptrdiff_t xlo, const ptrdiff_t *st,
                                  const double *w0, const double *w1,
                                  double *vals, ptrdiff_t ka, ptrdiff_t kb)
{
    ptrdiff_t k = ka;
#ifdef __SSE2__
    for (; k + 2 <= kb; k += 2) {
        const double *qa = p + (st[k] - xlo);
        const double *qb = p + (st[k + 1] - xlo);
        __m128d wa = _mm_loadu_pd(w0 + k);
        __m128d wb = _mm_loadu_pd(w1 + k);
        __m128d t = _mm_setzero_pd();
        int g;
        for (g = 0; g < 4; g++) {
            /* the two taps of each voxel are adjacent: load them as pairs,
             * then transpose to (voxel a, voxel b) lanes */
            __m128d pa = _mm_loadu_pd(qa + g * span);
            __m128d pb = _mm_loadu_pd(qb + g * span);
            t = _mm_add_pd(t, _mm_mul_pd(_mm_unpacklo_pd(pa, pb), wa));
            t = _mm_add_pd(t, _mm_mul_pd(_mm_unpackhi_pd(pa, pb), wb));
        }
        _mm_storeu_pd(vals + k, t);
    }
#endif
    for (; k < kb; k++) {
        const double *q = p + (st[k] - xlo);
        double t = 0.0;
        int g;
        for (g = 0; g < 4; g++) {
            t = t + q[g * span] * w0[k];
            t = t + q[g * span + 1] * w1[k];
        }
        vals[k] = t;
    }
}

/* Spline orders 2-5 along an aligned row, voxels ka .. kb - 1.
 *
 * p holds taps**2 planes of span partial products (v * wa) * wb, one per
 * input row g = a * taps + b feeding the output row (taps = order + 1); w
 * holds the last-axis weights of voxel k at w[c * nk + k].  Voxel k sums
 * p[g][st[k] - xlo + c] * w[c * nk + k] over g, then c (scipy's order).
 * With SSE2, eight voxels advance together in four register pairs (lanes
 * are voxels, each performing the scalar sequence), which hides the
 * latency of the running sums.  The body is specialised for each tap
 * count (a constant), so that the tap loop unrolls.
 */
#if defined(__GNUC__)
#define MF_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MF_ALWAYS_INLINE inline
#endif

static MF_ALWAYS_INLINE void mf_spline_combine_taps(
    const double *p, ptrdiff_t span, ptrdiff_t xlo, const ptrdiff_t *st,
    const double *w, ptrdiff_t nk, const int taps, double *vals,
    ptrdiff_t ka, ptrdiff_t kb)
{
    const int rows = taps * taps;
    ptrdiff_t k = ka;
    int g, c, j;
#ifdef __SSE2__
    for (; k + 8 <= kb; k += 8) {
        const double *q[8];
        __m128d t0 = _mm_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;
        for (j = 0; j < 8; j++)
            q[j] = p + (st[k + j] - xlo);
        for (g = 0; g < rows; g++) {
            const ptrdiff_t o = g * span;
            for (c = 0; c < taps; c++) {
                const double *wc = w + c * nk + k;
                t0 = _mm_add_pd(t0, _mm_mul_pd(_mm_set_pd(q[1][o + c], q[0][o + c]),
                                               _mm_loadu_pd(wc)));
                t1 = _mm_add_pd(t1, _mm_mul_pd(_mm_set_pd(q[3][o + c], q[2][o + c]),
                                               _mm_loadu_pd(wc + 2)));
                t2 = _mm_add_pd(t2, _mm_mul_pd(_mm_set_pd(q[5][o + c], q[4][o + c]),
                                               _mm_loadu_pd(wc + 4)));
                t3 = _mm_add_pd(t3, _mm_mul_pd(_mm_set_pd(q[7][o + c], q[6][o + c]),
                                               _mm_loadu_pd(wc + 6)));
            }
        }
        _mm_storeu_pd(vals + k, t0);
        _mm_storeu_pd(vals + k + 2, t1);
        _mm_storeu_pd(vals + k + 4, t2);
        _mm_storeu_pd(vals + k + 6, t3);
    }
#endif
    for (; k < kb; k++) {
        const double *q = p + (st[k] - xlo);
        double t = 0.0;
        for (g = 0; g < rows; g++)
            for (c = 0; c < taps; c++)
                t = t + q[g * span + c] * w[c * nk + k];
        vals[k] = t;
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define MF_AVX2 1
#include <immintrin.h>

/* The same with AVX2 (chosen at run time where the CPU has it): sixteen
 * voxels in four registers of four lanes; the voxels left over go to the
 * SSE2 body.  Multiplies and adds only (no FMA: every rounding kept).
 *
 * Where the four voxels of each register start their taps within 4 samples
 * of the first one (st[k + l] - st[k] in 0..3: upsampling, shifts, mild
 * downsampling), one unaligned load of p[st[k] + i .. + 3] and a lane
 * permutation replace the four scalar loads.  That load reads up to 3
 * doubles past a plane's products: the caller's buffer has room for them
 * (their values are never used). */
static inline __attribute__((always_inline, target("avx2"))) int mf_lane_offsets(
    const ptrdiff_t *st, __m256i *ix)
{
    /* vpermd indices taking lane l from double st[l] - st[0] (0..3) */
    int l, lo[8];
    for (l = 0; l < 4; l++) {
        ptrdiff_t d = st[l] - st[0];
        if (d < 0 || d > 3)
            return 0;
        lo[2 * l] = (int)(2 * d);
        lo[2 * l + 1] = (int)(2 * d + 1);
    }
    *ix = _mm256_setr_epi32(lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7]);
    return 1;
}

#define MF_PERMUTED(q, i, ix) _mm256_castsi256_pd(_mm256_permutevar8x32_epi32( \
    _mm256_castpd_si256(_mm256_loadu_pd((q) + (i))), (ix)))

static inline __attribute__((always_inline, target("avx2"))) void mf_spline_combine_avx2_taps(
    const double *p, ptrdiff_t span, ptrdiff_t xlo, const ptrdiff_t *st,
    const double *w, ptrdiff_t nk, const int taps, double *vals,
    ptrdiff_t ka, ptrdiff_t kb)
{
    const int rows = taps * taps;
    ptrdiff_t k = ka;
    int g, c, j;
    for (; k + 16 <= kb; k += 16) {
        __m256d t0 = _mm256_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;
        __m256i x0, x1, x2, x3;
        if (mf_lane_offsets(st + k, &x0) && mf_lane_offsets(st + k + 4, &x1)
                && mf_lane_offsets(st + k + 8, &x2) && mf_lane_offsets(st + k + 12, &x3)) {
            const double *q0 = p + (st[k] - xlo), *q1 = p + (st[k + 4] - xlo);
            const double *q2 = p + (st[k + 8] - xlo), *q3 = p + (st[k + 12] - xlo);
            for (g = 0; g < rows; g++) {
                const ptrdiff_t o = g * span;
                for (c = 0; c < taps; c++) {
                    const double *wc = w + c * nk + k;
                    const ptrdiff_t i = o + c;
                    t0 = _mm256_add_pd(t0, _mm256_mul_pd(MF_PERMUTED(q0, i, x0), _mm256_loadu_pd(wc)));
                    t1 = _mm256_add_pd(t1, _mm256_mul_pd(MF_PERMUTED(q1, i, x1), _mm256_loadu_pd(wc + 4)));
                    t2 = _mm256_add_pd(t2, _mm256_mul_pd(MF_PERMUTED(q2, i, x2), _mm256_loadu_pd(wc + 8)));
                    t3 = _mm256_add_pd(t3, _mm256_mul_pd(MF_PERMUTED(q3, i, x3), _mm256_loadu_pd(wc + 12)));
                }
            }
        } else {
            const double *q[16];
            for (j = 0; j < 16; j++)
                q[j] = p + (st[k + j] - xlo);
            for (g = 0; g < rows; g++) {
                const ptrdiff_t o = g * span;
                for (c = 0; c < taps; c++) {
                    const double *wc = w + c * nk + k;
                    const ptrdiff_t i = o + c;
                    t0 = _mm256_add_pd(t0, _mm256_mul_pd(
                        _mm256_set_pd(q[3][i], q[2][i], q[1][i], q[0][i]), _mm256_loadu_pd(wc)));
                    t1 = _mm256_add_pd(t1, _mm256_mul_pd(
                        _mm256_set_pd(q[7][i], q[6][i], q[5][i], q[4][i]), _mm256_loadu_pd(wc + 4)));
                    t2 = _mm256_add_pd(t2, _mm256_mul_pd(
                        _mm256_set_pd(q[11][i], q[10][i], q[9][i], q[8][i]), _mm256_loadu_pd(wc + 8)));
                    t3 = _mm256_add_pd(t3, _mm256_mul_pd(
                        _mm256_set_pd(q[15][i], q[14][i], q[13][i], q[12][i]), _mm256_loadu_pd(wc + 12)));
                }
            }
        }
        _mm256_storeu_pd(vals + k, t0);
        _mm256_storeu_pd(vals + k + 4, t1);
        _mm256_storeu_pd(vals + k + 8, t2);
        _mm256_storeu_pd(vals + k + 12, t3);
    }
    mf_spline_combine_taps(p, span, xlo, st, w, nk, taps, vals, k, kb);
}

static __attribute__((target("avx2"))) void mf_spline_combine_avx2(
    const double *p, ptrdiff_t span, ptrdiff_t xlo, const ptrdiff_t *st,
    const double *w, ptrdiff_t nk, int order, double *vals, ptrdiff_t ka,
    ptrdiff_t kb)
{
    switch (order) {
    case 2: mf_spline_combine_avx2_taps(p, span, xlo, st, w, nk, 3, vals, ka, kb); break;
    case 3: mf_spline_combine_avx2_taps(p, span, xlo, st, w, nk, 4, vals, ka, kb); break;
    case 4: mf_spline_combine_avx2_taps(p, span, xlo, st, w, nk, 5, vals, ka, kb); break;
    default: mf_spline_combine_avx2_taps(p, span, xlo, st, w, nk, 6, vals, ka, kb); break;
    }
}
#endif

static inline void mf_spline_combine(const double *p, ptrdiff_t span,
                                     ptrdiff_t xlo, const ptrdiff_t *st,
                                     const double *w, ptrdiff_t nk, int order,
                                     double *vals, ptrdiff_t ka, ptrdiff_t kb)
{
#ifdef MF_AVX2
    if (__builtin_cpu_supports("avx2")) {
        mf_spline_combine_avx2(p, span, xlo, st, w, nk, order, vals, ka, kb);
        return;
    }
#endif
    switch (order) {
    case 2: mf_spline_combine_taps(p, span, xlo, st, w, nk, 3, vals, ka, kb); break;
    case 3: mf_spline_combine_taps(p, span, xlo, st, w, nk, 4, vals, ka, kb); break;
    case 4: mf_spline_combine_taps(p, span, xlo, st, w, nk, 5, vals, ka, kb); break;
    default: mf_spline_combine_taps(p, span, xlo, st, w, nk, 6, vals, ka, kb); break;
    }
}

/* Spline orders 2-5 at arbitrary points of a 3-D float64 input (the
 * prefiltered coefficients), every tap inside: point j sums, over the taps
 * (a, b, c) in C order, ((v * wa) * wb) * wc, v the sample at byte offset
 * off[j] + a*s0 + b*s1 + c*s2 from base (scipy's order).  Weights: axis h,
 * tap c of point j at w[(h * taps + c) * n + j].  Eight (SSE2) or sixteen
 * (AVX2) points advance together, one per lane. */
static MF_ALWAYS_INLINE void mf_spline_points_taps(
    const char *base, const ptrdiff_t *off, ptrdiff_t s0, ptrdiff_t s1,
    ptrdiff_t s2, const double *w, ptrdiff_t n, const int taps,
    double *out, ptrdiff_t j0, ptrdiff_t m)
{
    ptrdiff_t j = j0;
    int a, b, c, l;
#ifdef __SSE2__
    for (; j + 8 <= m; j += 8) {
        __m128d t[4];
        for (l = 0; l < 4; l++)
            t[l] = _mm_setzero_pd();
        for (a = 0; a < taps; a++) {
            for (b = 0; b < taps; b++) {
                for (c = 0; c < taps; c++) {
                    const ptrdiff_t d = a * s0 + b * s1 + c * s2;
                    for (l = 0; l < 4; l++) {
                        const ptrdiff_t q = j + 2 * l;
                        __m128d v = _mm_set_pd(*(const double *)(base + off[q + 1] + d),
                                               *(const double *)(base + off[q] + d));
                        v = _mm_mul_pd(v, _mm_loadu_pd(w + a * n + q));
                        v = _mm_mul_pd(v, _mm_loadu_pd(w + (taps + b) * n + q));
                        v = _mm_mul_pd(v, _mm_loadu_pd(w + (2 * taps + c) * n + q));
                        t[l] = _mm_add_pd(t[l], v);
                    }
                }
            }
        }
        for (l = 0; l < 4; l++)
            _mm_storeu_pd(out + j + 2 * l, t[l]);
    }
#endif
    for (; j < m; j++) {
        double t = 0.0;
        for (a = 0; a < taps; a++)
            for (b = 0; b < taps; b++)
                for (c = 0; c < taps; c++) {
                    double v = *(const double *)(base + off[j] + a * s0 + b * s1 + c * s2);
                    v *= w[a * n + j];
                    v *= w[(taps + b) * n + j];
                    v *= w[(2 * taps + c) * n + j];
                    t += v;
                }
        out[j] = t;
    }
}

#ifdef MF_AVX2
static inline __attribute__((always_inline, target("avx2"))) void mf_spline_points_avx2_taps(
    const char *base, const ptrdiff_t *off, ptrdiff_t s0, ptrdiff_t s1,
    ptrdiff_t s2, const double *w, ptrdiff_t n, const int taps,
    double *out, ptrdiff_t m)
{
    ptrdiff_t j = 0;
    int a, b, c, l;
    for (; j + 16 <= m; j += 16) {
        __m256d t[4];
        for (l = 0; l < 4; l++)
            t[l] = _mm256_setzero_pd();
        for (a = 0; a < taps; a++) {
            for (b = 0; b < taps; b++) {
                for (c = 0; c < taps; c++) {
                    const ptrdiff_t d = a * s0 + b * s1 + c * s2;
                    for (l = 0; l < 4; l++) {
                        const ptrdiff_t q = j + 4 * l;
                        __m256d v = _mm256_set_pd(*(const double *)(base + off[q + 3] + d),
                                                  *(const double *)(base + off[q + 2] + d),
                                                  *(const double *)(base + off[q + 1] + d),
                                                  *(const double *)(base + off[q] + d));
                        v = _mm256_mul_pd(v, _mm256_loadu_pd(w + a * n + q));
                        v = _mm256_mul_pd(v, _mm256_loadu_pd(w + (taps + b) * n + q));
                        v = _mm256_mul_pd(v, _mm256_loadu_pd(w + (2 * taps + c) * n + q));
                        t[l] = _mm256_add_pd(t[l], v);
                    }
                }
            }
        }
        for (l = 0; l < 4; l++)
            _mm256_storeu_pd(out + j + 4 * l, t[l]);
    }
    mf_spline_points_taps(base, off, s0, s1, s2, w, n, taps, out, j, m);
}

static __attribute__((target("avx2"))) void mf_spline_points_avx2(
    const char *base, const ptrdiff_t *off, ptrdiff_t s0, ptrdiff_t s1,
    ptrdiff_t s2, const double *w, ptrdiff_t n, int order, double *out,
    ptrdiff_t m)
{
    switch (order) {
    case 2: mf_spline_points_avx2_taps(base, off, s0, s1, s2, w, n, 3, out, m); break;
    case 3: mf_spline_points_avx2_taps(base, off, s0, s1, s2, w, n, 4, out, m); break;
    case 4: mf_spline_points_avx2_taps(base, off, s0, s1, s2, w, n, 5, out, m); break;
    default: mf_spline_points_avx2_taps(base, off, s0, s1, s2, w, n, 6, out, m); break;
    }
}
#endif

/* B-spline weights of many points (scipy's get_spline_interpolation_weights
 * arithmetic, operation for operation): y[j] is point j's offset from its
 * middle tap (x - floor(x), or x - floor(x + 0.5) for even orders); weight
 * c goes to w[c * n + j].  Plain loops per order, which the compiler
 * vectorises (each lane the scalar sequence; divisions kept). */
static MF_ALWAYS_INLINE void mf_spline_weights_body(const double *restrict y,
                                                    ptrdiff_t m, int order,
                                                    double *restrict w, ptrdiff_t n)
{
    ptrdiff_t j;
    double *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
    double *w4 = w + 4 * n, *w5 = w + 5 * n;
    switch (order) {
    case 2:
        for (j = 0; j < m; j++) {
            double x = y[j], u = 0.5 - x;
            w1[j] = 0.75 - x * x;
            w0[j] = 0.5 * u * u;
            w2[j] = (1.0 - w0[j]) - w1[j];
        }
        break;
    case 3:
        for (j = 0; j < m; j++) {
            double x = y[j], z = 1.0 - x;
            double a = (x * x * (x - 2.0) * 3.0 + 4.0) / 6.0;
            double b = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
            double c = z * z * z / 6.0;
            w1[j] = a;
            w2[j] = b;
            w0[j] = c;
            w3[j] = ((1.0 - c) - a) - b;
        }
        break;
    case 4:
        for (j = 0; j < m; j++) {
            double x = y[j], z = 1.0 - x, t = x * x, u = 1.0 + x, v, c0, c1, c2, c3;
            c2 = t * (t * 0.25 - 0.625) + 115.0 / 192.0;
            c1 = u * (u * (u * (5.0 - u) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            c3 = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            v = 0.5 - x;
            t = v * v;
            c0 = t * t / 24.0;
            w0[j] = c0;
            w1[j] = c1;
            w2[j] = c2;
            w3[j] = c3;
            w4[j] = (((1.0 - c0) - c1) - c2) - c3;
        }
        break;
    default:
        for (j = 0; j < m; j++) {
            double x = y[j], u = x, z = 1.0 - x, t, c0, c1, c2, c3, c4;
            t = u * u;
            c2 = t * (t * (0.25 - u / 12.0) - 0.5) + 0.55;
            t = z * z;
            c3 = t * (t * (0.25 - z / 12.0) - 0.5) + 0.55;
            u += 1.0;
            c1 = u * (u * (u * (u * (u / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            z += 1.0;
            c4 = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            u = 1.0 - x;
            t = u * u;
            c0 = u * t * t / 120.0;
            w0[j] = c0;
            w1[j] = c1;
            w2[j] = c2;
            w3[j] = c3;
            w4[j] = c4;
            w5[j] = ((((1.0 - c0) - c1) - c2) - c3) - c4;
        }
        break;
    }
}

#ifdef MF_AVX2
static __attribute__((target("avx2"))) void mf_spline_weights_avx2(
    const double *y, ptrdiff_t m, int order, double *w, ptrdiff_t n)
{
    mf_spline_weights_body(y, m, order, w, n);
}
#endif

static inline void mf_spline_weights(const double *y, ptrdiff_t m, int order,
                                     double *w, ptrdiff_t n)
{
#ifdef MF_AVX2
    if (__builtin_cpu_supports("avx2")) {
        mf_spline_weights_avx2(y, m, order, w, n);
        return;
    }
#endif
    mf_spline_weights_body(y, m, order, w, n);
}

static inline void mf_spline_points(const char *base, const ptrdiff_t *off,
                                    ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t s2,
                                    const double *w, ptrdiff_t n, int order,
                                    double *out, ptrdiff_t m)
{
#ifdef MF_AVX2
    if (__builtin_cpu_supports("avx2")) {
        mf_spline_points_avx2(base, off, s0, s1, s2, w, n, order, out, m);
        return;
    }
#endif
    switch (order) {
    case 2: mf_spline_points_taps(base, off, s0, s1, s2, w, n, 3, out, 0, m); break;
    case 3: mf_spline_points_taps(base, off, s0, s1, s2, w, n, 4, out, 0, m); break;
    case 4: mf_spline_points_taps(base, off, s0, s1, s2, w, n, 5, out, 0, m); break;
    default: mf_spline_points_taps(base, off, s0, s1, s2, w, n, 6, out, 0, m); break;
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

/* Linear: wts holds six arrays of n weights: a0 | a1 | b0 | b1 | w0 | w1,
 * idx three arrays of n tap indices (int: input axes are < 2**31 samples).
 * Branch-free, so that it vectorises: outside points get index 0 and
 * weights from coordinate 0, and are recomputed later by the caller.
 * Returns the number of inside voxels. */
static inline ptrdiff_t mf_linear_setup3(
    const double *restrict c0, const double *restrict c1,
    const double *restrict c2, ptrdiff_t n,
    double lim0, double lim1, double lim2,
    int *restrict idx, unsigned char *restrict ins, double *restrict wts)
{
    ptrdiff_t k = 0, count = 0;
#ifdef __SSE2__
    /* two voxels per register: the same operations as the loop below */
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0);
    const __m128d l0 = _mm_set1_pd(lim0), l1 = _mm_set1_pd(lim1),
                  l2 = _mm_set1_pd(lim2);
    for (; k + 2 <= n; k += 2) {
        __m128d x0 = _mm_loadu_pd(c0 + k), x1 = _mm_loadu_pd(c1 + k),
                x2 = _mm_loadu_pd(c2 + k);
        __m128d in = _mm_and_pd(_mm_cmpge_pd(x0, zero), _mm_cmplt_pd(x0, l0));
        __m128i i0, i1, i2;
        __m128d a0, b0, w0;
        int mask;
        in = _mm_and_pd(in, _mm_and_pd(_mm_cmpge_pd(x1, zero), _mm_cmplt_pd(x1, l1)));
        in = _mm_and_pd(in, _mm_and_pd(_mm_cmpge_pd(x2, zero), _mm_cmplt_pd(x2, l2)));
        x0 = _mm_and_pd(x0, in);  /* outside (and NaN) -> +0.0 */
        x1 = _mm_and_pd(x1, in);
        x2 = _mm_and_pd(x2, in);
        i0 = _mm_cvttpd_epi32(x0);
        i1 = _mm_cvttpd_epi32(x1);
        i2 = _mm_cvttpd_epi32(x2);
        a0 = _mm_sub_pd(one, _mm_sub_pd(x0, _mm_cvtepi32_pd(i0)));
        b0 = _mm_sub_pd(one, _mm_sub_pd(x1, _mm_cvtepi32_pd(i1)));
        w0 = _mm_sub_pd(one, _mm_sub_pd(x2, _mm_cvtepi32_pd(i2)));
        _mm_storeu_pd(wts + k, a0);
        _mm_storeu_pd(wts + n + k, _mm_sub_pd(one, a0));
        _mm_storeu_pd(wts + 2 * n + k, b0);
        _mm_storeu_pd(wts + 3 * n + k, _mm_sub_pd(one, b0));
        _mm_storeu_pd(wts + 4 * n + k, w0);
        _mm_storeu_pd(wts + 5 * n + k, _mm_sub_pd(one, w0));
        _mm_storel_epi64((__m128i *)(void *)(idx + k), i0);
        _mm_storel_epi64((__m128i *)(void *)(idx + n + k), i1);
        _mm_storel_epi64((__m128i *)(void *)(idx + 2 * n + k), i2);
        mask = _mm_movemask_pd(in);
        ins[k] = (unsigned char)(mask & 1);
        ins[k + 1] = (unsigned char)(mask >> 1);
        count += (mask & 1) + (mask >> 1);
    }
#endif
    for (; k < n; k++) {
        double x0 = c0[k], x1 = c1[k], x2 = c2[k];
        int in = (x0 >= 0) & (x0 < lim0) & (x1 >= 0) & (x1 < lim1) &
                 (x2 >= 0) & (x2 < lim2);
        int i0, i1, i2;
        double a0, b0, w0;
        x0 = in ? x0 : 0.0;
        x1 = in ? x1 : 0.0;
        x2 = in ? x2 : 0.0;
        /* all eight taps inside: floor is a truncation here */
        i0 = (int)x0;
        i1 = (int)x1;
        i2 = (int)x2;
        a0 = 1.0 - (x0 - (double)i0);
        b0 = 1.0 - (x1 - (double)i1);
        w0 = 1.0 - (x2 - (double)i2);
        wts[k] = a0;
        wts[n + k] = 1.0 - a0;
        wts[2 * n + k] = b0;
        wts[3 * n + k] = 1.0 - b0;
        wts[4 * n + k] = w0;
        wts[5 * n + k] = 1.0 - w0;
        idx[k] = i0;
        idx[n + k] = i1;
        idx[2 * n + k] = i2;
        ins[k] = (unsigned char)in;
        count += in;
    }
    return count;
}

/* g holds eight arrays of n tap values, corners in C order (000, 001, 010,
 * ..., 111 for axes 0, 1, 2). */
static inline void mf_linear_combine3(const double *restrict g,
                                      const double *restrict wts,
                                      ptrdiff_t n, double *restrict vals)
{
    /* restrict: the arrays never overlap, which lets the loop vectorise */
    const double *restrict a0 = wts, *restrict a1 = wts + n,
                 *restrict b0 = wts + 2 * n, *restrict b1 = wts + 3 * n,
                 *restrict w0 = wts + 4 * n, *restrict w1 = wts + 5 * n;
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
/* out[k] = p + (k0 + k) * m for k < n: the last term of scipy's coordinate
 * sum, for the output voxels k0 .. k0 + n - 1 of a row.  Int counters (rows
 * are shorter than 2**31 voxels, which medfast.ndimage checks) let the
 * compiler vectorise the int -> double conversion. */
static inline void mf_fill_line(double p, double m, ptrdiff_t k0, ptrdiff_t n,
                                double *out)
{
    int k, start = (int)k0, nn = (int)n;
    for (k = 0; k < nn; k++)
        out[k] = p + (double)(start + k) * m;
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
MF_STORE_SIGNED(mf_store_i8_c, int8_t, -128.0, 127.0)
MF_STORE_SIGNED(mf_store_i16_c, int16_t, -32768.0, 32767.0)
MF_STORE_UNSIGNED(mf_store_u8_c, uint8_t, 255.0)
MF_STORE_UNSIGNED(mf_store_u16_c, uint16_t, 65535.0)

static inline void mf_store_i8(const double *vals, void *out, ptrdiff_t n)
{
    mf_store_i8_c(vals, out, n);
}

#ifdef __SSE2__
/* SSE2 versions of the 16- and 8-bit stores, four values at a time: the
 * same rounding and clipping, and NaN -> 0 (what the scalar cast gives on
 * x86; scipy's C cast of NaN is undefined). */
static inline __m128i mf_round4_epi32(const double *v, __m128d lo, __m128d hi,
                                      int is_signed)
{
    const __m128d sign = _mm_set1_pd(-0.0), half = _mm_set1_pd(0.5);
    __m128d x0 = _mm_loadu_pd(v), x1 = _mm_loadu_pd(v + 2);
    /* NaN -> 0 */
    x0 = _mm_and_pd(x0, _mm_cmpord_pd(x0, x0));
    x1 = _mm_and_pd(x1, _mm_cmpord_pd(x1, x1));
    if (is_signed) {        /* t + copysign(0.5, t) */
        x0 = _mm_add_pd(x0, _mm_or_pd(_mm_and_pd(x0, sign), half));
        x1 = _mm_add_pd(x1, _mm_or_pd(_mm_and_pd(x1, sign), half));
    } else {                /* (t > 0 ? t : 0) + 0.5 */
        x0 = _mm_add_pd(_mm_and_pd(x0, _mm_cmpgt_pd(x0, _mm_setzero_pd())), half);
        x1 = _mm_add_pd(_mm_and_pd(x1, _mm_cmpgt_pd(x1, _mm_setzero_pd())), half);
    }
    x0 = _mm_max_pd(_mm_min_pd(x0, hi), lo);
    x1 = _mm_max_pd(_mm_min_pd(x1, hi), lo);
    return _mm_unpacklo_epi64(_mm_cvttpd_epi32(x0), _mm_cvttpd_epi32(x1));
}

static inline void mf_store_i16(const double *vals, void *out, ptrdiff_t n)
{
    const __m128d lo = _mm_set1_pd(-32768.0), hi = _mm_set1_pd(32767.0);
    int16_t *o = (int16_t *)out;
    ptrdiff_t k = 0;
    for (; k + 4 <= n; k += 4) {
        __m128i i = mf_round4_epi32(vals + k, lo, hi, 1);
        _mm_storel_epi64((__m128i *)(o + k), _mm_packs_epi32(i, i));
    }
    mf_store_i16_c(vals + k, o + k, n - k);
}

static inline void mf_store_u16(const double *vals, void *out, ptrdiff_t n)
{
    const __m128d lo = _mm_set1_pd(0.0), hi = _mm_set1_pd(65535.0);
    const __m128i bias = _mm_set1_epi32(32768), flip = _mm_set1_epi16(-32768);
    uint16_t *o = (uint16_t *)out;
    ptrdiff_t k = 0;
    for (; k + 4 <= n; k += 4) {
        /* SSE2 has no unsigned pack: shift into int16 range and back */
        __m128i i = _mm_sub_epi32(mf_round4_epi32(vals + k, lo, hi, 0), bias);
        i = _mm_xor_si128(_mm_packs_epi32(i, i), flip);
        _mm_storel_epi64((__m128i *)(o + k), i);
    }
    mf_store_u16_c(vals + k, o + k, n - k);
}

static inline void mf_store_u8(const double *vals, void *out, ptrdiff_t n)
{
    const __m128d lo = _mm_set1_pd(0.0), hi = _mm_set1_pd(255.0);
    uint8_t *o = (uint8_t *)out;
    ptrdiff_t k = 0;
    for (; k + 4 <= n; k += 4) {
        __m128i i = mf_round4_epi32(vals + k, lo, hi, 0);
        i = _mm_packus_epi16(_mm_packs_epi32(i, i), i);
        *(int32_t *)(void *)(o + k) = _mm_cvtsi128_si32(i);
    }
    mf_store_u8_c(vals + k, o + k, n - k);
}
#else
static inline void mf_store_i16(const double *v, void *o, ptrdiff_t n) { mf_store_i16_c(v, o, n); }
static inline void mf_store_u16(const double *v, void *o, ptrdiff_t n) { mf_store_u16_c(v, o, n); }
static inline void mf_store_u8(const double *v, void *o, ptrdiff_t n) { mf_store_u8_c(v, o, n); }
#endif
#endif

#ifndef MEDFAST_PRODUCTS_H
#define MEDFAST_PRODUCTS_H
/* Partial products of four contiguous input rows (g = 0..3: r, r + s1,
 * r + s0, r + s0 + s1, each from sample xlo on): p[g * span + x] =
 * (v * wa) * wb for x < count (<= span), in scipy's order.  Planar, one
 * plain loop per input type, so that the compiler vectorises them without
 * shuffles. */
#define MF_PRODUCTS(name, type)                                              \
static inline void name(const char *row, ptrdiff_t s0, ptrdiff_t s1,         \
                        ptrdiff_t xlo, ptrdiff_t count, ptrdiff_t span,      \
                        double a0, double a1, double b0, double b1,          \
                        double *p)                                           \
{                                                                            \
    const type *r00 = (const type *)row + xlo;                               \
    const type *r01 = (const type *)(row + s1) + xlo;                        \
    const type *r10 = (const type *)(row + s0) + xlo;                        \
    const type *r11 = (const type *)(row + s0 + s1) + xlo;                   \
    double *restrict p00 = p, *restrict p01 = p + span;                      \
    double *restrict p10 = p + 2 * span, *restrict p11 = p + 3 * span;       \
    ptrdiff_t x;                                                             \
    for (x = 0; x < count; x++)                                              \
        p00[x] = ((double)r00[x] * a0) * b0;                                 \
    for (x = 0; x < count; x++)                                              \
        p01[x] = ((double)r01[x] * a0) * b1;                                 \
    for (x = 0; x < count; x++)                                              \
        p10[x] = ((double)r10[x] * a1) * b0;                                 \
    for (x = 0; x < count; x++)                                              \
        p11[x] = ((double)r11[x] * a1) * b1;                                 \
}
MF_PRODUCTS(mf_products_u8, uint8_t)
MF_PRODUCTS(mf_products_i8, int8_t)
MF_PRODUCTS(mf_products_u16, uint16_t)
MF_PRODUCTS(mf_products_i16, int16_t)
MF_PRODUCTS(mf_products_u32, uint32_t)
MF_PRODUCTS(mf_products_i32, int32_t)
MF_PRODUCTS(mf_products_f32, float)
MF_PRODUCTS(mf_products_f64, double)
#endif

# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled resampling kernels (spline orders 0-5, 2-D and 3-D inputs).

The kernels are deliberately flat: they receive raw pointers, byte strides
and already-validated parameters from :mod:`medfast.ndimage`, which owns all
policy (dtype choice, dispatch, validation).

Every arithmetic step mirrors ``scipy/ndimage/src/ni_interpolation.c`` so
that the results are bit-identical to scipy's:

* the input coordinate of output index ``o`` is accumulated as
  ``((offset + o0*m0) + o1*m1) + o2*m2`` (left to right, no FMA);
* linear weights are ``w0 = 1 - y`` and ``w1 = 1 - w0`` with
  ``y = c - floor(c)``; the weights of orders 2-5 are scipy's
  ``get_spline_interpolation_weights`` polynomials, the last one ``1``
  minus the others;
* the interpolated value is ``t = 0.0; t += ((v * wa) * wb) * wc`` over the
  taps in C order of the input axes (for orders 2-5 the input is the
  prefiltered coefficient array, see ``src/_splines.pyx``);
* out-of-range coordinates and taps are mapped exactly as scipy's
  ``map_coordinate`` does, per boundary mode;
* the value is stored with scipy's rounding and clipping for integer outputs.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport floor, isfinite, NAN
from libc.stdlib cimport malloc, free
from libc.stdint cimport (uint8_t, int8_t, uint16_t, int16_t, uint32_t,
                          int32_t)
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "_combine.h":
    void mf_products_u8(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_i8(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_u16(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_i16(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_u32(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_i32(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_f32(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_products_f64(const char* row, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t xlo, Py_ssize_t count, Py_ssize_t span,
                           double a0, double a1, double b0, double b1,
                           double* p) noexcept nogil
    void mf_combine_run(const double* p, Py_ssize_t span, Py_ssize_t xlo,
                        const Py_ssize_t* st, const double* w0,
                        const double* w1, double* vals, Py_ssize_t ka,
                        Py_ssize_t kb) noexcept nogil
    void mf_spline_weights(const double* y, Py_ssize_t m, int order, double* w,
                           Py_ssize_t n) noexcept nogil
    void mf_spline_points(const char* base, const Py_ssize_t* off, Py_ssize_t s0,
                          Py_ssize_t s1, Py_ssize_t s2, const double* w,
                          Py_ssize_t n, int order, double* out,
                          Py_ssize_t m) noexcept nogil
    void mf_spline_combine(const double* p, Py_ssize_t span, Py_ssize_t xlo,
                           const Py_ssize_t* st, const double* w, Py_ssize_t nk,
                           int order, double* vals, Py_ssize_t ka,
                           Py_ssize_t kb) noexcept nogil
    Py_ssize_t mf_linear_setup3(const double* c0, const double* c1,
                                const double* c2, Py_ssize_t n, double lim0,
                                double lim1, double lim2, int* idx,
                                uint8_t* ins, double* wts) noexcept nogil
    void mf_store_i8(const double* vals, void* out, Py_ssize_t n) noexcept nogil
    void mf_store_i16(const double* vals, void* out, Py_ssize_t n) noexcept nogil
    void mf_store_u8(const double* vals, void* out, Py_ssize_t n) noexcept nogil
    void mf_store_u16(const double* vals, void* out, Py_ssize_t n) noexcept nogil
    void mf_fill_line(double p, double m, Py_ssize_t k0, Py_ssize_t n,
                      double* out) noexcept nogil
    void mf_linear_combine3(const double* g, const double* wts, Py_ssize_t n,
                            double* vals) noexcept nogil
    Py_ssize_t mf_nearest_setup3(const double* c0, const double* c1,
                                 const double* c2, Py_ssize_t n, double lim0,
                                 double lim1, double lim2, Py_ssize_t s0,
                                 Py_ssize_t s1, Py_ssize_t s2, Py_ssize_t* off,
                                 uint8_t* ins) noexcept nogil

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MEDFAST_HAVE_OPENMP 1
    #else
    #define MEDFAST_HAVE_OPENMP 0
    #endif
    """
    int MEDFAST_HAVE_OPENMP

#: True when this module was compiled with OpenMP (multithreaded loops).
HAVE_OPENMP = bool(MEDFAST_HAVE_OPENMP)

# Boundary modes: the same codes as scipy's NI_ExtendMode.
DEF NEAREST = 0
DEF WRAP = 1
DEF REFLECT = 2
DEF MIRROR = 3
DEF CONSTANT = 4
DEF GRID_WRAP = 5
DEF GRID_CONSTANT = 6

# Output type codes (see medfast/_dtypes.py).
DEF OUT_BOOL = 0
DEF OUT_U8 = 1
DEF OUT_I8 = 2
DEF OUT_U16 = 3
DEF OUT_I16 = 4
DEF OUT_U32 = 5
DEF OUT_I32 = 6
DEF OUT_F32 = 7
DEF OUT_F64 = 8

# Output rows longer than this are processed in segments of this length:
# the per-thread row buffers (about 30 doubles per row element) stay small
# whatever the output's shape (a 1-D output is one row).
DEF SEGMENT = 4096

# Coordinates beyond this magnitude are clamped before the boundary mapping:
# scipy converts coordinates (or their quotient by the period) to integers,
# which is undefined behaviour in C beyond 2**63 (~9.22e18).  Up to the
# limit every cast is defined and the clamp changes nothing.
DEF COORD_LIMIT = 9e18

ctypedef fused in_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    float
    double


# --------------------------------------------------------------------------
# Boundary handling, exactly as scipy's map_coordinate()
# --------------------------------------------------------------------------
cdef extern from "_boundary.h":
    double _map_coordinate "mf_map_coordinate" (double x, Py_ssize_t n,
                                                 int mode) noexcept nogil
    int _spline_mode "mf_spline_mode" (int mode) noexcept nogil


cdef inline double _first_tap(double x, int order) noexcept nogil:
    # scipy: the taps of coordinate x start at floor(x) - order / 2 (odd
    # orders) or floor(x + 0.5) - order / 2 (even orders); as a double, so
    # that NaN and huge values fail the callers' range tests.
    if order & 1:
        return floor(x) - (order // 2)
    return floor(x + 0.5) - (order // 2)


cdef inline void _spline_weights(double x, int order, double* w) noexcept nogil:
    """The order + 1 B-spline weights of the taps of x (order 1-5), with
    scipy's get_spline_interpolation_weights arithmetic."""
    if order & 1:
        _spline_poly(x - floor(x), order, w)
    else:
        _spline_poly(x - floor(x + 0.5), order, w)


cdef inline void _spline_poly(double x, int order, double* w) noexcept nogil:
    """_spline_weights from x's offset from its middle tap (x - floor(x),
    or x - floor(x + 0.5) for even orders)."""
    cdef double y, z, t
    cdef int i
    y = x
    z = 1.0 - x
    if order == 1:
        w[0] = 1.0 - x
    elif order == 2:
        w[1] = 0.75 - x * x
        y = 0.5 - x
        w[0] = 0.5 * y * y
    elif order == 3:
        w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0
        w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0
        w[0] = z * z * z / 6.0
    elif order == 4:
        t = x * x
        w[2] = t * (t * 0.25 - 0.625) + 115.0 / 192.0
        y = 1.0 + x
        w[1] = y * (y * (y * (5.0 - y) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0
        w[3] = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0
        y = 0.5 - x
        t = y * y
        w[0] = t * t / 24.0
    else:
        t = y * y
        w[2] = t * (t * (0.25 - y / 12.0) - 0.5) + 0.55
        t = z * z
        w[3] = t * (t * (0.25 - z / 12.0) - 0.5) + 0.55
        y += 1.0
        w[1] = y * (y * (y * (y * (y / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425
        z += 1.0
        w[4] = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425
        y = 1.0 - x
        t = y * y
        w[0] = y * t * t / 120.0
    # the weights add up to 1: the last one is what the others leave
    w[order] = 1.0
    for i in range(order):
        w[order] -= w[i]


cdef double _sample_edge(const in_t* data, int rank, const Py_ssize_t* shape,
                         const Py_ssize_t* strides, const double* coords,
                         int order, int mode, double cval) noexcept nogil:
    """One output value at an arbitrary coordinate, every case handled.

    This is scipy's general per-point code path; the fast paths below only
    cover points whose taps all lie inside the input.
    """
    cdef Py_ssize_t offs[3][6]
    cdef bint is_cval[3][6]
    cdef double w[3][6]
    cdef Py_ssize_t start, idx, n
    cdef double cc, t, coeff
    cdef int h, ll, a, b, c, smode = _spline_mode(mode)
    cdef const char* base = <const char*>data
    for h in range(rank):
        cc = coords[h]
        n = shape[h]
        if not isfinite(cc):
            return cval
        if cc > COORD_LIMIT:
            cc = COORD_LIMIT
        elif cc < -COORD_LIMIT:
            cc = -COORD_LIMIT
        if mode != GRID_CONSTANT and mode != NEAREST:
            cc = _map_coordinate(cc, n, mode)
        if not (cc > -1.0 or mode == GRID_CONSTANT or mode == NEAREST):
            return cval
        start = <Py_ssize_t>_first_tap(cc, order)
        if order > 0:
            _spline_weights(cc, order, w[h])
        for ll in range(order + 1):
            idx = start + ll
            is_cval[h][ll] = False
            if mode == GRID_CONSTANT:
                is_cval[h][ll] = idx < 0 or idx >= n
            elif start < 0 or start + order >= n:
                idx = <Py_ssize_t>_map_coordinate(<double>idx, n, smode)
            offs[h][ll] = idx * strides[h]
    for h in range(rank, 3):
        offs[h][0] = 0
        offs[h][1] = 0
        is_cval[h][0] = False
        is_cval[h][1] = False
    t = 0.0
    for a in range(order + 1):
        for b in range(order + 1):
            if rank == 2:
                if is_cval[0][a] or is_cval[1][b]:
                    coeff = cval
                else:
                    coeff = (<const in_t*>(base + offs[0][a] + offs[1][b]))[0]
                if order > 0:
                    coeff *= w[0][a]
                    coeff *= w[1][b]
                t += coeff
                continue
            for c in range(order + 1):
                if is_cval[0][a] or is_cval[1][b] or is_cval[2][c]:
                    coeff = cval
                else:
                    coeff = (<const in_t*>(base + offs[0][a] + offs[1][b]
                                           + offs[2][c]))[0]
                if order > 0:
                    coeff *= w[0][a]
                    coeff *= w[1][b]
                    coeff *= w[2][c]
                t += coeff
    return t


cdef inline double _edge(const in_t* data, int rank, const Py_ssize_t* shape,
                         const Py_ssize_t* strides, double x0, double x1,
                         double x2, int order, int mode,
                         double cval) noexcept nogil:
    # A thread-local coordinate triple for _sample_edge (x2 unused in 2-D).
    cdef double cc[3]
    cc[0] = x0
    cc[1] = x1
    cc[2] = x2
    return _sample_edge(data, rank, shape, strides, cc, order, mode, cval)


# --------------------------------------------------------------------------
# Storing a row of results with scipy's conversion rules
# --------------------------------------------------------------------------
cdef inline double _round_unsigned(double t, double hi) noexcept nogil:
    # scipy: t > 0 ? t + 0.5 : 0, clipped at the type's maximum
    t = t + 0.5 if t > 0 else 0
    return hi if t > hi else t


cdef inline double _round_signed(double t, double lo, double hi) noexcept nogil:
    # scipy: t > 0 ? t + 0.5 : t - 0.5, clipped to the type's range
    t = t + 0.5 if t > 0 else t - 0.5
    t = hi if t > hi else t
    return lo if t < lo else t


cdef void _store_row(const double* vals, char* out, Py_ssize_t stride,
                     Py_ssize_t n, int code) noexcept nogil:
    """Convert a row of values to the output type as scipy does (the
    truncating C cast after rounding); contiguous 8/16-bit and float32 rows
    take vectorised loops."""
    cdef Py_ssize_t k
    if code == OUT_F32:
        if stride == sizeof(float):
            for k in range(n):
                (<float*>out)[k] = <float>vals[k]
            return
        for k in range(n):
            (<float*>(out + k * stride))[0] = <float>vals[k]
    elif code == OUT_F64:
        for k in range(n):
            (<double*>(out + k * stride))[0] = vals[k]
    elif code == OUT_BOOL:
        # scipy stores booleans with a plain C cast to npy_bool
        for k in range(n):
            (<uint8_t*>(out + k * stride))[0] = <uint8_t>vals[k]
    elif code == OUT_U8:
        if stride == sizeof(uint8_t):
            mf_store_u8(vals, out, n)
            return
        for k in range(n):
            (<uint8_t*>(out + k * stride))[0] = <uint8_t>_round_unsigned(vals[k], 255.0)
    elif code == OUT_U16:
        if stride == sizeof(uint16_t):
            mf_store_u16(vals, out, n)
            return
        for k in range(n):
            (<uint16_t*>(out + k * stride))[0] = <uint16_t>_round_unsigned(vals[k], 65535.0)
    elif code == OUT_U32:
        for k in range(n):
            (<uint32_t*>(out + k * stride))[0] = <uint32_t>_round_unsigned(vals[k], 4294967295.0)
    elif code == OUT_I8:
        if stride == sizeof(int8_t):
            mf_store_i8(vals, out, n)
            return
        for k in range(n):
            (<int8_t*>(out + k * stride))[0] = <int8_t>_round_signed(vals[k], -128.0, 127.0)
    elif code == OUT_I16:
        if stride == sizeof(int16_t):
            mf_store_i16(vals, out, n)
            return
        for k in range(n):
            (<int16_t*>(out + k * stride))[0] = <int16_t>_round_signed(vals[k], -32768.0, 32767.0)
    elif code == OUT_I32:
        for k in range(n):
            (<int32_t*>(out + k * stride))[0] = <int32_t>_round_signed(vals[k], -2147483648.0, 2147483647.0)


# --------------------------------------------------------------------------
# Row kernels: one output row (the last output axis) from coordinate buffers
# --------------------------------------------------------------------------
cdef void _row_linear3(const in_t* data, const Py_ssize_t* shape,
                       const Py_ssize_t* strides, const double* c0,
                       const double* c1, const double* c2, double* vals,
                       Py_ssize_t nk, int mode, double cval,
                       double* scratch) noexcept nogil:
    # scratch: weights (6 nk) | indices (3 nk ints) | flags (nk) | taps (8 nk)
    cdef double* wts = scratch
    cdef int* idx = <int*>(scratch + 6 * nk)
    cdef uint8_t* ins = <uint8_t*>(scratch + 8 * nk)
    cdef double* g = scratch + 9 * nk
    cdef Py_ssize_t s0 = strides[0], s1 = strides[1], s2 = strides[2]
    cdef Py_ssize_t k
    cdef const char* base = <const char*>data
    cdef const char* p
    cdef Py_ssize_t count = mf_linear_setup3(
        c0, c1, c2, nk, shape[0] - 1, shape[1] - 1, shape[2] - 1, idx, ins, wts)
    if shape[0] > 1 and shape[1] > 1 and shape[2] > 1:
        # Outside points have offset 0, whose eight taps are valid samples
        # too: one branch-free loop (their values are replaced below).
        for k in range(nk):
            p = base + idx[k] * s0 + idx[nk + k] * s1 + idx[2 * nk + k] * s2
            g[k] = <double>(<const in_t*>p)[0]
            g[nk + k] = <double>(<const in_t*>(p + s2))[0]
            g[2 * nk + k] = <double>(<const in_t*>(p + s1))[0]
            g[3 * nk + k] = <double>(<const in_t*>(p + s1 + s2))[0]
            p = p + s0
            g[4 * nk + k] = <double>(<const in_t*>p)[0]
            g[5 * nk + k] = <double>(<const in_t*>(p + s2))[0]
            g[6 * nk + k] = <double>(<const in_t*>(p + s1))[0]
            g[7 * nk + k] = <double>(<const in_t*>(p + s1 + s2))[0]
    else:
        # A 1-sample axis: no point is inside; keep every read in bounds.
        for k in range(8 * nk):
            g[k] = 0.0
    mf_linear_combine3(g, wts, nk, vals)
    if count < nk:
        for k in range(nk):
            if not ins[k]:
                vals[k] = _edge(data, 3, shape, strides, c0[k], c1[k], c2[k], 1,
                                 mode, cval)


cdef void _row_nearest3(const in_t* data, const Py_ssize_t* shape,
                        const Py_ssize_t* strides, const double* c0,
                        const double* c1, const double* c2, double* vals,
                        Py_ssize_t nk, int mode, double cval,
                        double* scratch) noexcept nogil:
    cdef Py_ssize_t* off = <Py_ssize_t*>scratch
    cdef uint8_t* ins = <uint8_t*>(scratch + nk)
    cdef Py_ssize_t k
    cdef double t
    cdef const char* base = <const char*>data
    cdef Py_ssize_t count = mf_nearest_setup3(
        c0, c1, c2, nk, shape[0] - 1, shape[1] - 1, shape[2] - 1,
        strides[0], strides[1], strides[2], off, ins)
    for k in range(nk):
        t = 0.0
        t += <double>(<const in_t*>(base + off[k]))[0]
        vals[k] = t
    if count < nk:
        for k in range(nk):
            if not ins[k]:
                vals[k] = _edge(data, 3, shape, strides, c0[k], c1[k], c2[k], 0,
                                 mode, cval)


cdef void _row_linear2(const in_t* data, const Py_ssize_t* shape,
                       const Py_ssize_t* strides, const double* c0,
                       const double* c1, double* vals,
                       Py_ssize_t nk, int mode, double cval) noexcept nogil:
    cdef Py_ssize_t k, i0, i1
    cdef Py_ssize_t s0 = strides[0], s1 = strides[1]
    cdef double lim0 = shape[0] - 1, lim1 = shape[1] - 1
    cdef double x0, x1, a0, a1, b0, b1, t
    cdef const char* base = <const char*>data
    cdef const char* p
    for k in range(nk):
        x0 = c0[k]
        x1 = c1[k]
        if x0 >= 0 and x0 < lim0 and x1 >= 0 and x1 < lim1:
            i0 = <Py_ssize_t>x0
            i1 = <Py_ssize_t>x1
            a0 = 1.0 - (x0 - <double>i0)
            a1 = 1.0 - a0
            b0 = 1.0 - (x1 - <double>i1)
            b1 = 1.0 - b0
            p = base + i0 * s0 + i1 * s1
            t = 0.0
            t += (<double>(<const in_t*>p)[0] * a0) * b0
            t += (<double>(<const in_t*>(p + s1))[0] * a0) * b1
            t += (<double>(<const in_t*>(p + s0))[0] * a1) * b0
            t += (<double>(<const in_t*>(p + s0 + s1))[0] * a1) * b1
            vals[k] = t
        else:
            vals[k] = _edge(data, 2, shape, strides, x0, x1, 0.0, 1, mode, cval)


cdef void _row_nearest2(const in_t* data, const Py_ssize_t* shape,
                        const Py_ssize_t* strides, const double* c0,
                        const double* c1, double* vals,
                        Py_ssize_t nk, int mode, double cval) noexcept nogil:
    cdef Py_ssize_t k, i0, i1
    cdef double lim0 = shape[0] - 1, lim1 = shape[1] - 1
    cdef double x0, x1, t
    cdef const char* base = <const char*>data
    for k in range(nk):
        x0 = c0[k]
        x1 = c1[k]
        if x0 >= 0 and x0 <= lim0 and x1 >= 0 and x1 <= lim1:
            i0 = <Py_ssize_t>(x0 + 0.5)
            i1 = <Py_ssize_t>(x1 + 0.5)
            t = 0.0
            t += <double>(<const in_t*>(base + i0 * strides[0]
                                        + i1 * strides[1]))[0]
            vals[k] = t
        else:
            vals[k] = _edge(data, 2, shape, strides, x0, x1, 0.0, 0, mode, cval)


cdef inline double _spline_sum(const in_t* data, Py_ssize_t off, int rank,
                               const Py_ssize_t* strides, double (*w)[6],
                               int order) noexcept nogil:
    """The spline value from the taps starting off bytes into data, all
    inside the input: t += ((v * wa) * wb) * wc in C order of the taps, as
    scipy."""
    cdef int a, b, c
    cdef double t = 0.0, coeff
    cdef const char* p = (<const char*>data) + off
    cdef const char* pa
    cdef const char* pb
    for a in range(order + 1):
        pa = p + a * strides[0]
        for b in range(order + 1):
            pb = pa + b * strides[1]
            if rank == 2:
                coeff = (<const in_t*>pb)[0]
                coeff *= w[0][a]
                coeff *= w[1][b]
                t += coeff
                continue
            for c in range(order + 1):
                coeff = (<const in_t*>(pb + c * strides[2]))[0]
                coeff *= w[0][a]
                coeff *= w[1][b]
                coeff *= w[2][c]
                t += coeff
    return t


cdef void _row_points(const double* data, const Py_ssize_t* shape,
                      const Py_ssize_t* strides, const double* c0,
                      const double* c1, const double* c2, double* vals,
                      Py_ssize_t nk, int order, int mode, double cval,
                      double* scratch) noexcept nogil:
    """_row_spline for a 3-D float64 input (prefiltered coefficients): the
    voxels whose taps all lie inside are listed (first-tap offset, offsets
    from the middle taps), their weights computed together
    (mf_spline_weights) and their sums several at a time
    (mf_spline_points); the others take _sample_edge.  scratch:
    (6 + 3 * (order + 1)) * nk doubles."""
    cdef int taps = order + 1, h
    cdef Py_ssize_t* off = <Py_ssize_t*>scratch
    cdef Py_ssize_t* idx = <Py_ssize_t*>(scratch + nk)
    cdef double* w = scratch + 2 * nk
    cdef double* res = scratch + (2 + 3 * taps) * nk
    cdef double* y = scratch + (3 + 3 * taps) * nk
    cdef const double* cs[3]
    cdef double fl[3]
    cdef double s, x
    cdef Py_ssize_t k, j, m = 0, o
    cs[0] = c0
    cs[1] = c1
    cs[2] = c2
    for k in range(nk):
        o = 0
        for h in range(3):
            # Taps inside need x >= 0.5: there the truncation is the floor
            # (a call on baseline x86-64; no rounding instruction).
            x = cs[h][k]
            if not (x >= 0 and x < <double>shape[h]):
                break
            fl[h] = <double>(<Py_ssize_t>(x if order & 1 else x + 0.5))
            s = fl[h] - (order // 2)
            if not (s >= 0 and s + order <= shape[h] - 1):
                break
            o += (<Py_ssize_t>s) * strides[h]
        else:
            for h in range(3):
                y[h * nk + m] = cs[h][k] - fl[h]
            off[m] = o
            idx[m] = k
            m += 1
    for h in range(3):
        mf_spline_weights(y + h * nk, m, order, w + h * taps * nk, nk)
    mf_spline_points(<const char*>data, off, strides[0], strides[1], strides[2], w,
                     nk, order, res, m)
    j = 0
    for k in range(nk):
        if j < m and idx[j] == k:
            vals[k] = res[j]
            j += 1
        else:
            vals[k] = _edge(data, 3, shape, strides, c0[k], c1[k], c2[k], order,
                            mode, cval)


cdef void _row_spline(const in_t* data, int rank, const Py_ssize_t* shape,
                      const Py_ssize_t* strides, const double* c0,
                      const double* c1, const double* c2, double* vals,
                      Py_ssize_t nk, int order, int mode,
                      double cval, double* scratch) noexcept nogil:
    """Orders 2-5 at arbitrary coordinates (2-D or 3-D): voxels whose taps
    all lie inside the input are summed directly, the others take
    _sample_edge."""
    if in_t is double:
        if rank == 3:
            _row_points(data, shape, strides, c0, c1, c2, vals, nk, order, mode,
                        cval, scratch)
            return
    cdef double w[3][6]
    cdef const double* cs[3]
    cdef Py_ssize_t k, off
    cdef double s
    cdef int h
    cdef bint inside
    cs[0] = c0
    cs[1] = c1
    cs[2] = c2
    for k in range(nk):
        off = 0
        inside = True
        for h in range(rank):
            s = _first_tap(cs[h][k], order)
            if not (s >= 0 and s + order <= shape[h] - 1):
                inside = False
                break
            off += (<Py_ssize_t>s) * strides[h]
            _spline_weights(cs[h][k], order, w[h])
        if inside:
            vals[k] = _spline_sum(data, off, rank, strides, w, order)
        else:
            vals[k] = _edge(data, rank, shape, strides, c0[k], c1[k],
                            c2[k] if rank == 3 else 0.0, order, mode, cval)


cdef inline void _interp_row(const in_t* data, int rank, const Py_ssize_t* shape,
                             const Py_ssize_t* strides, const double* c0,
                             const double* c1, const double* c2, double* vals,
                             Py_ssize_t nk, int order, int mode,
                             double cval, double* scratch) noexcept nogil:
    if order > 1:
        _row_spline(data, rank, shape, strides, c0, c1, c2, vals, nk, order,
                    mode, cval, scratch)
    elif rank == 3:
        if order == 1:
            _row_linear3(data, shape, strides, c0, c1, c2, vals, nk, mode, cval,
                         scratch)
        else:
            _row_nearest3(data, shape, strides, c0, c1, c2, vals, nk, mode, cval,
                          scratch)
    else:
        if order == 1:
            _row_linear2(data, shape, strides, c0, c1, vals, nk, mode, cval)
        else:
            _row_nearest2(data, shape, strides, c0, c1, vals, nk, mode, cval)


# --------------------------------------------------------------------------
# Aligned rows: output rows that run along the input's last axis
# --------------------------------------------------------------------------
# When input coordinates 0 and 1 are constant along an output row (the last
# output axis maps onto the last input axis only: scalings, flips, in-plane
# rotations), the two outer weights are constant too.  The partial products
# (v * wa) * wb of the four input rows feeding the output row are then formed
# once per input sample and reused by every output voxel: the same
# operations in the same order as scipy, far fewer of them.

cdef void _aligned_linear(const in_t* data, Py_ssize_t row_off,
                          Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2,
                          double a0, double a1, double b0, double b1,
                          Py_ssize_t nk, const Py_ssize_t* st2,
                          const double* w2, const uint8_t* in2,
                          Py_ssize_t xlo, Py_ssize_t span, Py_ssize_t count,
                          Py_ssize_t upper, double* vals,
                          double* pbuf) noexcept nogil:
    """vals[k] for every k with in2[k] (all taps inside); others untouched.

    st2/w2/in2: per-voxel start index, weight pair and inside flag along
    the last axis (count of them set); [xlo, xlo + span) covers every
    st2[k] and st2[k] + 1.  upper >= 0: the last of those samples is not in
    the row; its place is taken by sample ``upper`` (see _axis_table).
    pbuf: scratch of 4 * span doubles, or NULL to gather directly.
    """
    cdef const char* row = (<const char*>data) + row_off
    cdef Py_ssize_t k, x, st, st1
    cdef Py_ssize_t nprod = span - 1 if upper >= 0 else span
    cdef double t
    if pbuf != NULL:
        # pbuf[g * span + x] = the partial product of input row g at sample
        # xlo + x (planar: plain vectorised loops, no shuffles).
        if s2 == sizeof(in_t):
            # contiguous rows: a plain C loop the compiler vectorises
            if in_t is uint8_t:
                mf_products_u8(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is int8_t:
                mf_products_i8(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is uint16_t:
                mf_products_u16(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is int16_t:
                mf_products_i16(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is uint32_t:
                mf_products_u32(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is int32_t:
                mf_products_i32(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            elif in_t is float:
                mf_products_f32(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
            else:
                mf_products_f64(row, s0, s1, xlo, nprod, span, a0, a1, b0, b1, pbuf)
        else:
            for x in range(nprod):
                st = (xlo + x) * s2
                pbuf[x] = (<double>(<const in_t*>(row + st))[0] * a0) * b0
                pbuf[span + x] = (<double>(<const in_t*>(row + s1 + st))[0] * a0) * b1
                pbuf[2 * span + x] = (<double>(<const in_t*>(row + s0 + st))[0] * a1) * b0
                pbuf[3 * span + x] = (<double>(<const in_t*>(row + s0 + s1 + st))[0] * a1) * b1
        if upper >= 0:
            st = upper * s2
            x = span - 1
            pbuf[x] = (<double>(<const in_t*>(row + st))[0] * a0) * b0
            pbuf[span + x] = (<double>(<const in_t*>(row + s1 + st))[0] * a0) * b1
            pbuf[2 * span + x] = (<double>(<const in_t*>(row + s0 + st))[0] * a1) * b0
            pbuf[3 * span + x] = (<double>(<const in_t*>(row + s0 + s1 + st))[0] * a1) * b1
        if count == nk:  # the usual case: one run, no scan
            mf_combine_run(pbuf, span, xlo, st2, w2, w2 + nk, vals, 0, nk)
            return
        k = 0
        while k < nk:
            if not in2[k]:
                k += 1
                continue
            x = k
            while x < nk and in2[x]:
                x += 1
            mf_combine_run(pbuf, span, xlo, st2, w2, w2 + nk, vals, k, x)
            k = x
        return
    for k in range(nk):
        if in2[k]:
            st = st2[k] * s2
            st1 = st + s2
            if upper >= 0 and st2[k] == xlo + span - 2:
                st1 = upper * s2
            t = 0.0
            t += ((<double>(<const in_t*>(row + st))[0] * a0) * b0) * w2[k]
            t += ((<double>(<const in_t*>(row + st1))[0] * a0) * b0) * w2[nk + k]
            t += ((<double>(<const in_t*>(row + s1 + st))[0] * a0) * b1) * w2[k]
            t += ((<double>(<const in_t*>(row + s1 + st1))[0] * a0) * b1) * w2[nk + k]
            t += ((<double>(<const in_t*>(row + s0 + st))[0] * a1) * b0) * w2[k]
            t += ((<double>(<const in_t*>(row + s0 + st1))[0] * a1) * b0) * w2[nk + k]
            t += ((<double>(<const in_t*>(row + s0 + s1 + st))[0] * a1) * b1) * w2[k]
            t += ((<double>(<const in_t*>(row + s0 + s1 + st1))[0] * a1) * b1) * w2[nk + k]
            vals[k] = t


cdef void _products(const in_t* data, Py_ssize_t row_off, Py_ssize_t s2,
                    Py_ssize_t xlo, Py_ssize_t span, double wa, double wb,
                    double* p) noexcept nogil:
    # p[x] = (v * wa) * wb for the input samples xlo .. xlo + span - 1 of a row
    cdef const char* row = (<const char*>data) + row_off
    cdef const in_t* line = <const in_t*>row
    cdef Py_ssize_t x
    if s2 == sizeof(in_t):  # contiguous: a loop the compiler vectorises
        for x in range(span):
            p[x] = (<double>line[xlo + x] * wa) * wb
    else:
        for x in range(span):
            p[x] = (<double>(<const in_t*>(row + (xlo + x) * s2))[0] * wa) * wb


cdef void _aligned_spline(const in_t* data, Py_ssize_t row_off,
                          const Py_ssize_t* strides, const double* wa,
                          const double* wb, int order, Py_ssize_t nk,
                          const Py_ssize_t* st2, const double* w2,
                          const uint8_t* in2, Py_ssize_t xlo, Py_ssize_t span,
                          Py_ssize_t count, double* vals,
                          double* pbuf) noexcept nogil:
    """Orders 2-5 along an aligned row: vals[k] for every k with in2[k].

    The (order + 1)**2 input rows starting at row_off have the constant
    outer weights wa[a], wb[b]; st2/w2/in2 are the last axis' first tap,
    weights (w2[c * nk + k]) and inside flags.  pbuf: scratch for the
    partial products of every input row over [xlo, xlo + span), or NULL
    to sum each voxel's taps directly.
    """
    cdef Py_ssize_t s0 = strides[0], s1 = strides[1], s2 = strides[2]
    cdef Py_ssize_t k, x, g
    cdef int a, b, c, taps = order + 1
    cdef double t, coeff
    cdef const char* p
    if pbuf != NULL:
        for a in range(taps):
            for b in range(taps):
                g = a * taps + b
                _products(data, row_off + a * s0 + b * s1, s2, xlo, span,
                          wa[a], wb[b], pbuf + g * span)
        k = 0
        while k < nk:
            if not in2[k]:
                k += 1
                continue
            x = k
            while x < nk and in2[x]:
                x += 1
            mf_spline_combine(pbuf, span, xlo, st2, w2, nk, order, vals, k, x)
            k = x
        return
    for k in range(nk):
        if not in2[k]:
            continue
        t = 0.0
        for a in range(taps):
            for b in range(taps):
                p = (<const char*>data) + row_off + a * s0 + b * s1 + st2[k] * s2
                for c in range(taps):
                    coeff = (<const in_t*>(p + c * s2))[0]
                    coeff *= wa[a]
                    coeff *= wb[b]
                    coeff *= w2[c * nk + k]
                    t += coeff
        vals[k] = t


cdef void _aligned_nearest(const in_t* data, Py_ssize_t row_off, Py_ssize_t s2,
                           Py_ssize_t nk, const Py_ssize_t* st2,
                           const uint8_t* in2, double* vals) noexcept nogil:
    """Order 0 along an aligned row: vals[k] for every k with in2[k]."""
    cdef const char* row = (<const char*>data) + row_off
    cdef const in_t* line = <const in_t*>row
    cdef Py_ssize_t k, ka
    cdef double t
    k = 0
    while k < nk:
        if not in2[k]:
            k += 1
            continue
        ka = k
        while k < nk and in2[k]:
            k += 1
        if s2 == sizeof(in_t):  # contiguous row: a plain indexed gather
            for ka in range(ka, k):
                t = 0.0
                t += <double>line[st2[ka]]
                vals[ka] = t
        else:
            for ka in range(ka, k):
                t = 0.0
                t += <double>(<const in_t*>(row + st2[ka] * s2))[0]
                vals[ka] = t


cdef inline bint _inside(double x, double lim, int order) noexcept nogil:
    # All taps of coordinate x inside [0, lim]: no boundary mapping needed.
    cdef double s
    if order == 1:
        return x >= 0 and x < lim
    if order == 0:
        return x >= 0 and x <= lim
    s = _first_tap(x, order)
    return s >= 0 and s + order <= lim


cdef inline bint _row_is_cval(double x0, double x1, const Py_ssize_t* shape,
                              int mode) noexcept nogil:
    # In 'constant' mode scipy returns cval as soon as one coordinate lies
    # outside [0, n - 1]; on a row where input coordinates 0 and 1 are
    # constant, that decides the whole row.
    return mode == CONSTANT and not (x0 >= 0 and x0 <= shape[0] - 1
                                     and x1 >= 0 and x1 <= shape[1] - 1)


cdef Py_ssize_t _axis_table(const double* x, Py_ssize_t n, double lim, int order,
                            Py_ssize_t* st, double* w, uint8_t* ins,
                            Py_ssize_t* xlo, Py_ssize_t* count, int mode,
                            Py_ssize_t* up) noexcept nogil:
    """First tap, weights (w[c * n + k], c = 0 .. max(order, 1)) and
    inside flag of each coordinate x[k].

    With ``up`` (order 1; NULL elsewhere), coordinates exactly on the last
    sample (x == lim: zooms map the last output onto it) are inside too:
    their second tap (weight 0) is the sample scipy's boundary mapping
    gives index lim + 1, up[k] samples from the first (1 for the others);
    it counts as sample lim + 1 in the span.  Not in 'grid-constant' mode,
    whose tap there is cval.

    Returns the span of input samples the inside points touch (0 if none);
    its first index goes to xlo[0], the number of inside points to count[0].
    """
    cdef Py_ssize_t k, s, lo = 0, hi = -1, c = 0
    cdef Py_ssize_t size = <Py_ssize_t>lim + 1, upper = 1
    cdef double wk[6]
    cdef int q
    cdef bint first = True
    cdef bint exact = up != NULL and order == 1 and size > 1 and mode != GRID_CONSTANT
    if exact:
        upper = <Py_ssize_t>_map_coordinate(<double>size, size,
                                            _spline_mode(mode)) - (size - 1)
    for k in range(n):
        ins[k] = _inside(x[k], lim, order)
        if up != NULL:
            up[k] = 1
            if exact and not ins[k] and x[k] == lim:
                ins[k] = True
                up[k] = upper
        if not ins[k]:
            continue
        if order > 1:
            s = <Py_ssize_t>_first_tap(x[k], order)
            _spline_weights(x[k], order, wk)
            for q in range(order + 1):
                w[q * n + k] = wk[q]
        elif order == 1:
            s = <Py_ssize_t>x[k]
            w[k] = 1.0 - (x[k] - <double>s)
            w[n + k] = 1.0 - w[k]
        else:
            s = <Py_ssize_t>(x[k] + 0.5)
        st[k] = s
        c += 1
        if first or s < lo:
            lo = s
        if first or s + order > hi:
            hi = s + order
        first = False
    xlo[0] = lo
    count[0] = c
    return hi - lo + 1 if not first else 0


cdef inline double* _use_products(double* pbuf, Py_ssize_t span,
                                  Py_ssize_t nk) noexcept nogil:
    # Partial products pay off unless the row skips most input samples.
    if span > 0 and span <= 2 * nk + 16:
        return pbuf
    return NULL


cdef inline int _weights_per_tap_table(int order) noexcept nogil:
    # Weight arrays per axis table: order + 1 taps (two for orders 0 and 1,
    # the linear layout).
    return order + 1 if order > 1 else 2


cdef void _aligned_spline_at(const in_t* data, double p0, double p1,
                             const Py_ssize_t* strides, int order,
                             Py_ssize_t nk, const Py_ssize_t* st2,
                             const double* w2, const uint8_t* in2,
                             Py_ssize_t xlo, Py_ssize_t span, Py_ssize_t count,
                             double* vals, double* pbuf) noexcept nogil:
    """_aligned_spline for the row at input coordinates (p0, p1), both with
    all their taps inside."""
    cdef double wa[6]
    cdef double wb[6]
    _spline_weights(p0, order, wa)
    _spline_weights(p1, order, wb)
    _aligned_spline(data, (<Py_ssize_t>_first_tap(p0, order)) * strides[0]
                    + (<Py_ssize_t>_first_tap(p1, order)) * strides[1],
                    strides, wa, wb, order, nk, st2, w2, in2, xlo, span, count,
                    vals, pbuf)


cdef void _aligned_spline_tables(const in_t* data, Py_ssize_t row_off,
                                 const Py_ssize_t* strides, const double* wa,
                                 Py_ssize_t na, const double* wb, Py_ssize_t nb,
                                 int order, Py_ssize_t nk, const Py_ssize_t* st2,
                                 const double* w2, const uint8_t* in2,
                                 Py_ssize_t xlo, Py_ssize_t span,
                                 Py_ssize_t count, double* vals,
                                 double* pbuf) noexcept nogil:
    """_aligned_spline with the outer weights read from axis tables
    (weight c at wa[c * na], wb[c * nb])."""
    cdef double a[6]
    cdef double b[6]
    cdef int c
    for c in range(order + 1):
        a[c] = wa[c * na]
        b[c] = wb[c * nb]
    _aligned_spline(data, row_off, strides, a, b, order, nk, st2, w2, in2, xlo,
                    span, count, vals, pbuf)


# --------------------------------------------------------------------------
# Drivers: parallel loops over output rows
# --------------------------------------------------------------------------
cdef inline Py_ssize_t _chunk(Py_ssize_t nseg) noexcept nogil:
    # Rows handed out 32 at a time; segments of long rows (4096 voxels
    # each) one at a time, so that a single long row still runs in parallel.
    return 32 if nseg == 1 else 1


cdef inline int _useful_threads(int nthreads, Py_ssize_t nunits,
                                Py_ssize_t chunk) noexcept nogil:
    # Threads beyond the number of chunks would get no work, but each would
    # still cost its row buffers and an OpenMP worker.
    cdef Py_ssize_t nchunks = (nunits + chunk - 1) // chunk
    return <int>nchunks if nchunks < nthreads else nthreads


cdef int _affine_driver(const in_t* data, int rank, const Py_ssize_t* shape,
                        const Py_ssize_t* strides, const double* matrix,
                        const double* offset, double npad, char* out,
                        const Py_ssize_t* oshape, const Py_ssize_t* ostrides,
                        int out_code, int order, int mode, double cval,
                        int nthreads, double* buffers,
                        Py_ssize_t per_thread) noexcept nogil:
    """Affine source: coordinate h of output (o0, o1, k) is
    (((offset[h] + o0*m[h,0]) + o1*m[h,1]) + k*m[h,2]) + npad, as scipy
    sums it (npad: the padding of a prefiltered input, see medfast.ndimage).

    The work units are segments [k0, k0 + nk) of the output rows."""
    cdef Py_ssize_t n1 = oshape[1], nseg = (oshape[2] + SEGMENT - 1) // SEGMENT
    cdef Py_ssize_t nunits = oshape[0] * oshape[1] * nseg
    cdef Py_ssize_t u, r, k0, nk, o0, o1, k, xlo, span, count
    cdef int h, nw = _weights_per_tap_table(order)
    cdef double p, p0, p1, p2
    cdef double* cache
    cdef double* buf
    cdef double* cbuf
    cdef double* wbuf
    cdef Py_ssize_t* stbuf
    cdef uint8_t* inbuf
    # Rows along the input's last axis (see _aligned_linear).
    cdef bint aligned = (rank == 3 and matrix[2] == 0.0 and matrix[5] == 0.0)
    for u in prange(nunits, nogil=True, num_threads=nthreads, schedule='dynamic',
                    chunksize=_chunk(nseg)):
        buf = buffers + threadid() * per_thread
        cache = buf + per_thread - 5  # this thread's [p2, k0, xlo, span, count]
        r = u // nseg
        k0 = (u - r * nseg) * SEGMENT
        nk = oshape[2] - k0
        if nk > SEGMENT:
            nk = SEGMENT
        o0 = r // n1
        o1 = r - o0 * n1
        p0 = offset[0]
        p0 = p0 + <double>o0 * matrix[0]
        p0 = p0 + <double>o1 * matrix[1]
        p1 = offset[1]
        p1 = p1 + <double>o0 * matrix[3]
        p1 = p1 + <double>o1 * matrix[4]
        p0 = p0 + npad
        p1 = p1 + npad
        if (aligned and nk > 0 and _inside(p0, shape[0] - 1, order)
                and _inside(p1, shape[1] - 1, order)):
            wbuf = buf + 4 * nk
            stbuf = <Py_ssize_t*>(buf + (4 + nw) * nk)
            inbuf = <uint8_t*>(buf + (5 + nw) * nk)
            p2 = offset[2]
            p2 = p2 + <double>o0 * matrix[6]
            p2 = p2 + <double>o1 * matrix[7]
            if cache[0] == p2 and cache[1] == <double>k0:
                # same last-axis coordinates as this thread's previous row
                # segment (e.g. in-plane rotations): reuse its tables
                xlo = <Py_ssize_t>cache[2]
                span = <Py_ssize_t>cache[3]
                count = <Py_ssize_t>cache[4]
            else:
                mf_fill_line(p2, matrix[8], k0, nk, buf + 3 * nk)
                if npad != 0:
                    for k in range(nk):
                        buf[3 * nk + k] = buf[3 * nk + k] + npad
                span = _axis_table(buf + 3 * nk, nk, shape[2] - 1, order, stbuf,
                                   wbuf, inbuf, &xlo, &count, mode, NULL)
                cache[0] = p2
                cache[1] = <double>k0
                cache[2] = <double>xlo
                cache[3] = <double>span
                cache[4] = <double>count
            if order == 1:
                _aligned_linear(data, (<Py_ssize_t>p0) * strides[0]
                                + (<Py_ssize_t>p1) * strides[1],
                                strides[0], strides[1], strides[2],
                                1.0 - (p0 - <double>(<Py_ssize_t>p0)),
                                1.0 - (1.0 - (p0 - <double>(<Py_ssize_t>p0))),
                                1.0 - (p1 - <double>(<Py_ssize_t>p1)),
                                1.0 - (1.0 - (p1 - <double>(<Py_ssize_t>p1))),
                                nk, stbuf, wbuf, inbuf, xlo, span, count, -1, buf,
                                _use_products(buf + 8 * nk, span, nk))
            elif order > 1:
                _aligned_spline_at(data, p0, p1, strides, order, nk, stbuf,
                                   wbuf, inbuf, xlo, span, count, buf,
                                   _use_products(buf + (6 + nw) * nk, span, nk))
            else:
                _aligned_nearest(data, (<Py_ssize_t>(p0 + 0.5)) * strides[0]
                                 + (<Py_ssize_t>(p1 + 0.5)) * strides[1],
                                 strides[2], nk, stbuf, inbuf, buf)
            if count < nk:
                for k in range(nk):
                    if not inbuf[k]:
                        buf[k] = _edge(data, 3, shape, strides, p0, p1,
                                        buf[3 * nk + k], order, mode, cval)
        elif aligned and _row_is_cval(p0, p1, shape, mode):
            for k in range(nk):
                buf[k] = cval
        else:
            cache[0] = NAN  # the coordinate buffers are about to change
            for h in range(rank):
                cbuf = buf + (h + 1) * nk
                p = offset[h]
                p = p + <double>o0 * matrix[h * 3]
                p = p + <double>o1 * matrix[h * 3 + 1]
                mf_fill_line(p, matrix[h * 3 + 2], k0, nk, cbuf)
                if npad != 0:
                    for k in range(nk):
                        cbuf[k] = cbuf[k] + npad
            _interp_row(data, rank, shape, strides, buf + nk, buf + 2 * nk,
                        buf + 3 * nk, buf, nk, order, mode, cval, buf + 4 * nk)
        _store_row(buf, out + o0 * ostrides[0] + o1 * ostrides[1]
                   + k0 * ostrides[2], ostrides[2], nk, out_code)
    return 0


cdef int _coords_driver(const in_t* data, int rank, const Py_ssize_t* shape,
                        const Py_ssize_t* strides, char** cptr,
                        const Py_ssize_t* cstrides, double npad, char* out,
                        const Py_ssize_t* oshape, const Py_ssize_t* ostrides,
                        int out_code, int order, int mode, double cval,
                        int nthreads, double* buffers,
                        Py_ssize_t per_thread) noexcept nogil:
    """Coordinate source: coordinate h of output (o0, o1, k) is read from a
    strided float64 array (cptr[h], cstrides[3*h : 3*h+3]), plus npad.

    The work units are segments [k0, k0 + nk) of the output rows."""
    cdef Py_ssize_t n1 = oshape[1], nseg = (oshape[2] + SEGMENT - 1) // SEGMENT
    cdef Py_ssize_t nunits = oshape[0] * oshape[1] * nseg
    cdef Py_ssize_t u, r, k0, nk, o0, o1, k, cs
    cdef int h
    cdef double* buf
    cdef double* cbuf
    cdef const char* src
    for u in prange(nunits, nogil=True, num_threads=nthreads, schedule='dynamic',
                    chunksize=_chunk(nseg)):
        buf = buffers + threadid() * per_thread
        r = u // nseg
        k0 = (u - r * nseg) * SEGMENT
        nk = oshape[2] - k0
        if nk > SEGMENT:
            nk = SEGMENT
        o0 = r // n1
        o1 = r - o0 * n1
        for h in range(rank):
            cbuf = buf + (h + 1) * nk
            cs = cstrides[3 * h + 2]
            src = (cptr[h] + o0 * cstrides[3 * h] + o1 * cstrides[3 * h + 1]
                   + k0 * cs)
            for k in range(nk):
                cbuf[k] = (<const double*>(src + k * cs))[0] + npad
        _interp_row(data, rank, shape, strides, buf + nk, buf + 2 * nk,
                    buf + 3 * nk, buf, nk, order, mode, cval, buf + 4 * nk)
        _store_row(buf, out + o0 * ostrides[0] + o1 * ostrides[1]
                   + k0 * ostrides[2], ostrides[2], nk, out_code)
    return 0


cdef int _separable_driver(const in_t* data, const Py_ssize_t* shape,
                           const Py_ssize_t* strides, const double* ctab,
                           const Py_ssize_t* start, const double* wtab,
                           const uint8_t* inside, const Py_ssize_t* up, char* out,
                           const Py_ssize_t* oshape, const Py_ssize_t* ostrides,
                           int out_code, int order, int mode, double cval,
                           Py_ssize_t xlo, Py_ssize_t span, Py_ssize_t count2,
                           Py_ssize_t upper, int nthreads,
                           double* buffers, Py_ssize_t per_thread) noexcept nogil:
    """Axis-aligned (diagonal) transforms of 3-D inputs.

    Input coordinate h depends on output index h only, so floors, weights
    and the inside test come once from per-axis tables (ctab, start, wtab,
    inside; each laid out as [axis 0 | axis 1 | axis 2], the weights of
    axis h as nw arrays of its length) and every row is an aligned row.
    ``up`` (order 1): the distance of each outer coordinate's second tap
    from its first, and ``upper`` the sample standing in for the last
    axis' sample xlo + span - 1 (see _axis_table; -1: none).
    """
    cdef Py_ssize_t n0 = oshape[0], n1 = oshape[1], nk = oshape[2]
    cdef Py_ssize_t r, i, j, k
    cdef Py_ssize_t m = n0 + n1
    cdef int nw = _weights_per_tap_table(order)
    cdef double* vals
    for r in prange(n0 * n1, nogil=True, num_threads=nthreads, schedule='dynamic', chunksize=32):
        vals = buffers + threadid() * per_thread
        i = r // n1
        j = r - i * n1
        if inside[i] and inside[n0 + j]:
            if order == 1:
                _aligned_linear(data, start[i] * strides[0] + start[n0 + j] * strides[1],
                                up[i] * strides[0], up[n0 + j] * strides[1], strides[2],
                                wtab[i], wtab[n0 + i],
                                wtab[2 * n0 + j], wtab[2 * n0 + n1 + j],
                                nk, start + m, wtab + 2 * m, inside + m,
                                xlo, span, count2, upper, vals,
                                _use_products(vals + nk, span, nk))
            elif order > 1:
                _aligned_spline_tables(data, start[i] * strides[0] + start[n0 + j] * strides[1],
                                       strides, wtab + i, n0, wtab + nw * n0 + j, n1,
                                       order, nk, start + m, wtab + nw * m,
                                       inside + m, xlo, span, count2, vals,
                                       _use_products(vals + nk, span, nk))
            else:
                _aligned_nearest(data, start[i] * strides[0] + start[n0 + j] * strides[1],
                                 strides[2], nk, start + m, inside + m, vals)
            for k in range(nk if count2 < nk else 0):
                if not inside[m + k]:
                    vals[k] = _edge(data, 3, shape, strides, ctab[i], ctab[n0 + j],
                                     ctab[m + k], order, mode, cval)
        elif _row_is_cval(ctab[i], ctab[n0 + j], shape, mode):
            for k in range(nk):
                vals[k] = cval
        else:
            for k in range(nk):
                vals[k] = _edge(data, 3, shape, strides, ctab[i], ctab[n0 + j],
                                 ctab[m + k], order, mode, cval)
        _store_row(vals, out + i * ostrides[0] + j * ostrides[1], ostrides[2],
                   nk, out_code)
    return 0


# --------------------------------------------------------------------------
# One call of a driver, and the dispatch on the input type
# --------------------------------------------------------------------------
cdef enum:
    JOB_AFFINE = 0
    JOB_COORDS = 1
    JOB_SEPARABLE = 2

cdef struct Job:
    int kind
    int rank
    const Py_ssize_t* shape
    const Py_ssize_t* strides
    const double* matrix       # affine
    const double* offset
    double npad                # affine and coordinates
    char** cptr                # coordinates
    const Py_ssize_t* cstrides
    const double* ctab         # separable tables
    const Py_ssize_t* start
    const double* wtab
    const uint8_t* inside
    const Py_ssize_t* up
    Py_ssize_t xlo
    Py_ssize_t span
    Py_ssize_t count
    Py_ssize_t upper
    char* out
    const Py_ssize_t* oshape
    const Py_ssize_t* ostrides
    int out_code
    int order
    int mode
    double cval
    int nthreads
    double* buffers
    Py_ssize_t per_thread


cdef void _run(const in_t* d, const Job* j) noexcept nogil:
    if j.kind == JOB_AFFINE:
        _affine_driver(d, j.rank, j.shape, j.strides, j.matrix, j.offset, j.npad, j.out,
                       j.oshape, j.ostrides, j.out_code, j.order, j.mode, j.cval,
                       j.nthreads, j.buffers, j.per_thread)
    elif j.kind == JOB_COORDS:
        _coords_driver(d, j.rank, j.shape, j.strides, j.cptr, j.cstrides, j.npad, j.out,
                       j.oshape, j.ostrides, j.out_code, j.order, j.mode, j.cval,
                       j.nthreads, j.buffers, j.per_thread)
    else:
        _separable_driver(d, j.shape, j.strides, j.ctab, j.start, j.wtab,
                          j.inside, j.up, j.out, j.oshape, j.ostrides, j.out_code,
                          j.order, j.mode, j.cval, j.xlo, j.span, j.count,
                          j.upper, j.nthreads, j.buffers, j.per_thread)


cdef void _dispatch(int in_code, const void* d, const Job* j) noexcept nogil:
    # in_code: medfast/_dtypes.py INPUT_CODES (bool is read as uint8)
    if in_code == 0:
        _run(<const uint8_t*>d, j)
    elif in_code == 1:
        _run(<const int8_t*>d, j)
    elif in_code == 2:
        _run(<const uint16_t*>d, j)
    elif in_code == 3:
        _run(<const int16_t*>d, j)
    elif in_code == 4:
        _run(<const uint32_t*>d, j)
    elif in_code == 5:
        _run(<const int32_t*>d, j)
    elif in_code == 6:
        _run(<const float*>d, j)
    else:
        _run(<const double*>d, j)


# --------------------------------------------------------------------------
# Python entry points (called by medfast.ndimage only)
# --------------------------------------------------------------------------
cdef double* _thread_buffers(int nthreads, Py_ssize_t per_thread) except NULL:
    cdef size_t n = <size_t>nthreads * <size_t>max(per_thread, 1)
    cdef double* buf = <double*>malloc(n * sizeof(double))
    if buf == NULL:
        raise MemoryError(f"cannot allocate {n * 8} bytes of row buffers")
    return buf


cdef void _describe(cnp.ndarray a, Py_ssize_t* shape, Py_ssize_t* strides):
    cdef int h
    for h in range(a.ndim):
        shape[h] = a.shape[h]
        strides[h] = a.strides[h]


def affine(cnp.ndarray inp, int in_code, const double[:, ::1] matrix,
           const double[::1] offset, cnp.ndarray out, int out_code,
           int order, int mode, double cval, int nthreads, double npad=0.0):
    """Resample ``inp`` (2-D or 3-D) into ``out`` (3-D view) with an affine
    map.  ``matrix`` is (inp.ndim, 3); ``npad`` is added to every input
    coordinate last; arguments are trusted (see medfast.ndimage)."""
    cdef Py_ssize_t shape[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t oshape[3]
    cdef Py_ssize_t ostrides[3]
    cdef int rank = inp.ndim
    _describe(inp, shape, strides)
    _describe(out, oshape, ostrides)
    if oshape[0] * oshape[1] * oshape[2] == 0:
        return
    cdef Py_ssize_t nk = min(oshape[2], SEGMENT), nseg = (oshape[2] + SEGMENT - 1) // SEGMENT
    nthreads = _useful_threads(nthreads, oshape[0] * oshape[1] * nseg, _chunk(nseg))
    # row buffers: values, 3 coordinates, general-row scratch (17 nk; the
    # aligned rows use its start for nw weight arrays, starts and flags),
    # partial products (one per input row feeding an output row, of up to
    # 2 * nk + 16 samples), a 5-slot table cache, 4 doubles the spline
    # combine may read past the products (mf_spline_combine)
    cdef Py_ssize_t nw = _weights_per_tap_table(order)
    cdef Py_ssize_t prows = (order + 1) * (order + 1) if order > 1 else 4
    cdef Py_ssize_t per_thread = (max(21, 6 + nw) * nk + prows * (2 * nk + 16)
                                  + 5 + 4)
    cdef double* buffers = _thread_buffers(nthreads, per_thread)
    cdef int th
    for th in range(nthreads):
        buffers[(th + 1) * per_thread - 5] = NAN  # empty row-table cache
    cdef const void* d = cnp.PyArray_DATA(inp)
    cdef char* o = <char*>cnp.PyArray_DATA(out)
    cdef const double* m = &matrix[0, 0]
    cdef const double* off = &offset[0]
    cdef Job job
    job.kind = JOB_AFFINE
    job.rank = rank
    job.shape = shape
    job.strides = strides
    job.matrix = m
    job.offset = off
    job.npad = npad
    job.out = o
    job.oshape = oshape
    job.ostrides = ostrides
    job.out_code = out_code
    job.order = order
    job.mode = mode
    job.cval = cval
    job.nthreads = nthreads
    job.buffers = buffers
    job.per_thread = per_thread
    with nogil:
        _dispatch(in_code, d, &job)
    free(buffers)


def coordinates(cnp.ndarray inp, int in_code, list coords, cnp.ndarray out,
                int out_code, int order, int mode, double cval, int nthreads,
                double npad=0.0):
    """Resample ``inp`` (2-D or 3-D) at the float64 coordinates
    ``coords[h]`` (each a 3-D view shaped like ``out``) plus ``npad``."""
    cdef Py_ssize_t shape[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t oshape[3]
    cdef Py_ssize_t ostrides[3]
    cdef char* cptr[3]
    cdef Py_ssize_t cstrides[9]
    cdef int rank = inp.ndim, h, q
    cdef cnp.ndarray c
    _describe(inp, shape, strides)
    _describe(out, oshape, ostrides)
    for h in range(rank):
        c = coords[h]
        cptr[h] = <char*>cnp.PyArray_DATA(c)
        for q in range(3):
            cstrides[3 * h + q] = c.strides[q]
    if oshape[0] * oshape[1] * oshape[2] == 0:
        return
    cdef Py_ssize_t nseg = (oshape[2] + SEGMENT - 1) // SEGMENT
    nthreads = _useful_threads(nthreads, oshape[0] * oshape[1] * nseg, _chunk(nseg))
    # values, 3 coordinates, scratch of the general row kernels (17 nk; 24
    # nk for the spline points, _row_points)
    cdef Py_ssize_t per_thread = 28 * min(oshape[2], SEGMENT)
    cdef double* buffers = _thread_buffers(nthreads, per_thread)
    cdef const void* d = cnp.PyArray_DATA(inp)
    cdef char* o = <char*>cnp.PyArray_DATA(out)
    cdef Job job
    job.kind = JOB_COORDS
    job.rank = rank
    job.shape = shape
    job.strides = strides
    job.cptr = cptr
    job.cstrides = cstrides
    job.npad = npad
    job.out = o
    job.oshape = oshape
    job.ostrides = ostrides
    job.out_code = out_code
    job.order = order
    job.mode = mode
    job.cval = cval
    job.nthreads = nthreads
    job.buffers = buffers
    job.per_thread = per_thread
    with nogil:
        _dispatch(in_code, d, &job)
    free(buffers)


def separable(cnp.ndarray inp, int in_code, list tables, cnp.ndarray out,
              int out_code, int order, int mode, double cval, int nthreads):
    """Resample a 3-D ``inp`` into a 3-D ``out`` where input coordinate h
    depends on output index h only: ``tables[h][o_h]`` (float64)."""
    cdef Py_ssize_t shape[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t oshape[3]
    cdef Py_ssize_t ostrides[3]
    _describe(inp, shape, strides)
    _describe(out, oshape, ostrides)
    cdef Py_ssize_t total = oshape[0] + oshape[1] + oshape[2]
    if oshape[0] * oshape[1] * oshape[2] == 0:
        return
    # Per-axis tables: coordinate, start index, weights, all-taps-inside.
    cdef double[::1] ctab = np.ascontiguousarray(np.concatenate(tables), dtype=np.float64)
    cdef Py_ssize_t[::1] start = np.zeros(total, dtype=np.intp)
    cdef Py_ssize_t nw = _weights_per_tap_table(order)
    cdef double[::1] wtab = np.zeros(nw * total, dtype=np.float64)
    cdef uint8_t[::1] inside = np.zeros(total, dtype=np.uint8)
    cdef Py_ssize_t[::1] up = np.ones(total, dtype=np.intp)
    cdef Py_ssize_t h, base = 0, xlo = 0, span = 0, count = 0
    for h in range(3):
        span = _axis_table(&ctab[base], oshape[h], shape[h] - 1, order,
                           &start[base], &wtab[nw * base], &inside[base], &xlo,
                           &count, mode, &up[base])
        base += oshape[h]
    cdef Py_ssize_t prows = (order + 1) * (order + 1) if order > 1 else 4
    # values, the partial products when used (_use_products) and 4 doubles
    # the spline combine may read past them
    cdef Py_ssize_t per_thread = oshape[2] + (prows * span + 4 if span <= 2 * oshape[2] + 16 else 0)
    nthreads = _useful_threads(nthreads, oshape[0] * oshape[1], 32)
    cdef double* buffers = _thread_buffers(nthreads, per_thread)
    cdef const void* d = cnp.PyArray_DATA(inp)
    cdef char* o = <char*>cnp.PyArray_DATA(out)
    cdef const double* ct = &ctab[0]
    cdef const Py_ssize_t* sp = &start[0]
    cdef const double* wt = &wtab[0]
    cdef const uint8_t* ins = &inside[0]
    # the last axis' exact-upper voxels read this sample in place of index
    # shape[2] (_axis_table)
    cdef Py_ssize_t upper = -1
    if order == 1 and span > 0 and xlo + span - 1 == shape[2]:
        upper = <Py_ssize_t>_map_coordinate(<double>shape[2], shape[2], _spline_mode(mode))
    cdef Job job
    job.kind = JOB_SEPARABLE
    job.up = &up[0]
    job.upper = upper
    job.rank = 3
    job.shape = shape
    job.strides = strides
    job.ctab = ct
    job.start = sp
    job.wtab = wt
    job.inside = ins
    job.xlo = xlo
    job.span = span
    job.count = count
    job.out = o
    job.oshape = oshape
    job.ostrides = ostrides
    job.out_code = out_code
    job.order = order
    job.mode = mode
    job.cval = cval
    job.nthreads = nthreads
    job.buffers = buffers
    job.per_thread = per_thread
    with nogil:
        _dispatch(in_code, d, &job)
    free(buffers)

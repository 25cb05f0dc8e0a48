# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, nonecheck=False
"""B-spline prefilter: scipy.ndimage.spline_filter1d's recursive filter.

Each line is filtered exactly as ``scipy/ndimage/src/ni_splines.c`` does
(gain, then per pole a causal and an anticausal first-order recursion, each
started by the boundary initialisation of the mode), in float64 with the
same operations in the same order, so the coefficients are scipy's bytes.

Lines are filtered in blocks of ``LANES`` neighbouring lines, interleaved
in a buffer (element i of lane l at ``c[i * LANES + l]``): every step of
the recursion is then one fixed-length loop over the lanes, which the
compiler unrolls and vectorises, and the lanes read neighbouring memory.
A block with fewer lines fills the others with zeros (filtered, never
stored).  Blocks run in parallel.  Long lines with few neighbours are
filtered one at a time.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport pow
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t
cimport numpy as cnp

cnp.import_array()

# Boundary initialisations (the mode -> kind mapping is in medfast.ndimage).
DEF KIND_MIRROR = 0
DEF KIND_WRAP = 1
DEF KIND_REFLECT = 2

# Lines filtered together (interleaved) by one thread.
DEF LANES = 64

ctypedef fused in_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    float
    double


cdef int _poles(int order, double* z) noexcept nogil:
    """The filter's poles for spline ``order`` (2-5); returns their count."""
    if order == 2:
        z[0] = -0.171572875253809902396622551580603843   # sqrt(8) - 3
        return 1
    if order == 3:
        z[0] = -0.267949192431122706472553658494127633   # sqrt(3) - 2
        return 1
    if order == 4:
        z[0] = -0.361341225900220177092212841325675255
        z[1] = -0.013725429297339121360331226939128204
        return 2
    z[0] = -0.430575347099973791851434783493520110
    z[1] = -0.043096288203264653822712376822550182
    return 2


cdef void _causal_mirror(double* c, Py_ssize_t n, Py_ssize_t b,
                         double z) noexcept nogil:
    cdef Py_ssize_t i, l
    cdef double zi = z, zn1 = pow(z, <double>(n - 1))
    for l in range(b):
        c[l] = c[l] + zn1 * c[(n - 1) * b + l]
    for i in range(1, n - 1):
        for l in range(b):
            c[l] += zi * (c[i * b + l] + zn1 * c[(n - 1 - i) * b + l])
        zi *= z
    for l in range(b):
        c[l] /= 1 - zn1 * zn1


cdef void _anticausal_mirror(double* c, Py_ssize_t n, Py_ssize_t b,
                             double z) noexcept nogil:
    cdef Py_ssize_t l
    cdef double* last = c + (n - 1) * b
    cdef double* before = c + (n - 2) * b
    for l in range(b):
        last[l] = (z * before[l] + last[l]) * z / (z * z - 1)


cdef void _causal_wrap(double* c, Py_ssize_t n, Py_ssize_t b,
                       double z) noexcept nogil:
    cdef Py_ssize_t i, l
    cdef double zi = z
    for i in range(1, n):
        for l in range(b):
            c[l] += zi * c[(n - i) * b + l]
        zi *= z
    for l in range(b):
        c[l] /= 1 - zi  # zi = z**n


cdef void _anticausal_wrap(double* c, Py_ssize_t n, Py_ssize_t b,
                           double z) noexcept nogil:
    cdef Py_ssize_t i, l
    cdef double zi = z
    cdef double* last = c + (n - 1) * b
    for i in range(n - 1):
        for l in range(b):
            last[l] += zi * c[i * b + l]
        zi *= z
    for l in range(b):
        last[l] *= z / (zi - 1)


cdef void _causal_reflect(double* c, Py_ssize_t n, Py_ssize_t b, double z,
                          double* first) noexcept nogil:
    # first: b doubles of scratch for the lines' original first elements
    cdef Py_ssize_t i, l
    cdef double zi = z, zn = pow(z, <double>n)
    for l in range(b):
        first[l] = c[l]
        c[l] = c[l] + zn * c[(n - 1) * b + l]
    for i in range(1, n):
        for l in range(b):
            c[l] += zi * (c[i * b + l] + zn * c[(n - 1 - i) * b + l])
        zi *= z
    for l in range(b):
        c[l] *= z / (1 - zn * zn)
        c[l] += first[l]


cdef void _anticausal_reflect(double* c, Py_ssize_t n, Py_ssize_t b,
                              double z) noexcept nogil:
    cdef Py_ssize_t l
    cdef double* last = c + (n - 1) * b
    for l in range(b):
        last[l] *= z / (z - 1)


cdef double _gain(const double* z, int npoles) noexcept nogil:
    cdef double gain = 1.0
    cdef int q
    for q in range(npoles):
        gain *= (1.0 - z[q]) * (1.0 - 1.0 / z[q])
    return gain


cdef void _load(const in_t* src, Py_ssize_t n, Py_ssize_t b, Py_ssize_t present,
                Py_ssize_t s1, Py_ssize_t s2, double gain, double* c) noexcept nogil:
    """Copy ``present`` lines (samples s1 bytes apart, lines s2 apart) into
    the b-lane block, times the filter's gain (scipy's first step); lanes
    beyond them are zeros."""
    cdef const char* line = <const char*>src
    cdef Py_ssize_t i, l
    for i in range(n):
        for l in range(present):
            c[i * b + l] = <double>(<const in_t*>(line + i * s1 + l * s2))[0] * gain
        for l in range(present, b):
            c[i * b + l] = 0.0


cdef void _filter_lines(double* c, Py_ssize_t n, Py_ssize_t b, const double* z,
                        int npoles, int kind, double* scratch, char* dst,
                        Py_ssize_t present, Py_ssize_t s1,
                        Py_ssize_t s2) noexcept nogil:
    """Filter b interleaved lines of n > 1 samples (the gain applied) and
    store the first ``present`` into the float64 lines at dst (b is LANES
    or 1, constants the compiler specialises the loops for).  The last
    backward recursion stores each sample as it is computed."""
    cdef Py_ssize_t i, l
    cdef int q
    cdef double zq
    for q in range(npoles):
        zq = z[q]
        if kind == KIND_MIRROR:
            _causal_mirror(c, n, b, zq)
        elif kind == KIND_WRAP:
            _causal_wrap(c, n, b, zq)
        else:
            _causal_reflect(c, n, b, zq, scratch)
        for i in range(1, n):
            for l in range(b):
                c[i * b + l] += zq * c[(i - 1) * b + l]
        if kind == KIND_MIRROR:
            _anticausal_mirror(c, n, b, zq)
        elif kind == KIND_WRAP:
            _anticausal_wrap(c, n, b, zq)
        else:
            _anticausal_reflect(c, n, b, zq)
        if q + 1 < npoles:
            for i in range(n - 2, -1, -1):
                for l in range(b):
                    c[i * b + l] = zq * (c[(i + 1) * b + l] - c[i * b + l])
            continue
        for l in range(present):
            (<double*>(dst + (n - 1) * s1 + l * s2))[0] = c[(n - 1) * b + l]
        for i in range(n - 2, -1, -1):
            for l in range(b):
                c[i * b + l] = zq * (c[(i + 1) * b + l] - c[i * b + l])
            for l in range(present):
                (<double*>(dst + i * s1 + l * s2))[0] = c[i * b + l]


cdef void _run(const in_t* src, const Py_ssize_t* sstr, char* dst,
               const Py_ssize_t* dstr, Py_ssize_t n0, Py_ssize_t n,
               Py_ssize_t n2, Py_ssize_t lanes, int order, int kind,
               int nthreads, double* buffers, Py_ssize_t per_thread) noexcept nogil:
    """Every line [p, :, q] of src (byte strides sstr), filtered into dst
    (float64, byte strides dstr), blocks of ``lanes`` lines in parallel."""
    cdef double z[2]
    cdef int npoles = _poles(order, z)
    cdef double gain = _gain(z, npoles)
    cdef Py_ssize_t nblocks = (n2 + lanes - 1) // lanes
    cdef Py_ssize_t u, p, q0, present
    cdef double* buf
    for u in prange(n0 * nblocks, nogil=True, num_threads=nthreads, schedule='dynamic'):
        buf = buffers + threadid() * per_thread
        p = u // nblocks
        q0 = (u - p * nblocks) * lanes
        present = n2 - q0  # lines present in this block
        if present > lanes:
            present = lanes
        if lanes == 1:
            _load(<const in_t*>((<const char*>src) + p * sstr[0] + q0 * sstr[2]),
                  n, 1, present, sstr[1], sstr[2], gain, buf)
            _filter_lines(buf, n, 1, z, npoles, kind, buf + n,
                          dst + p * dstr[0] + q0 * dstr[2], present, dstr[1], dstr[2])
        else:
            _load(<const in_t*>((<const char*>src) + p * sstr[0] + q0 * sstr[2]),
                  n, LANES, present, sstr[1], sstr[2], gain, buf)
            _filter_lines(buf, n, LANES, z, npoles, kind, buf + n * LANES,
                          dst + p * dstr[0] + q0 * dstr[2], present, dstr[1], dstr[2])


def filter_axis(cnp.ndarray src, int in_code, cnp.ndarray dst, int order, int kind,
                int nthreads):
    """Filter the 3-D array ``src`` along its axis 1 into the float64 array
    ``dst`` of the same shape (which may be ``src`` itself).

    ``in_code``: src's type (medfast/_dtypes.py INPUT_CODES; bool read as
    uint8); ``order`` 2-5; ``kind`` the boundary initialisation (0 mirror,
    1 wrap, 2 reflect).  Every line ``src[p, :, q]`` is filtered; lines of
    one sample are copied, as in scipy."""
    cdef Py_ssize_t n0 = src.shape[0], n = src.shape[1], n2 = src.shape[2]
    cdef Py_ssize_t sstr[3]
    cdef Py_ssize_t dstr[3]
    cdef int h
    for h in range(3):
        sstr[h] = src.strides[h]
        dstr[h] = dst.strides[h]
    if n0 * n * n2 == 0:
        return
    if n == 1:
        dst[...] = src
        return
    # Blocks of LANES lines, or single lines where a block would be mostly
    # padding or its buffer large (long lines with few neighbours).
    cdef Py_ssize_t lanes = LANES
    if 2 * n2 < LANES or n * LANES > (1 << 22):
        lanes = 1
    cdef Py_ssize_t nunits = n0 * ((n2 + lanes - 1) // lanes)
    if nthreads > nunits:
        nthreads = <int>nunits
    # per thread: the interleaved block and the reflect init's scratch
    cdef Py_ssize_t per_thread = n * lanes + lanes
    cdef double* buffers = <double*>malloc(nthreads * per_thread * sizeof(double))
    if buffers == NULL:
        raise MemoryError(
            f"cannot allocate {nthreads * per_thread * 8} bytes of line buffers")
    cdef const void* s = cnp.PyArray_DATA(src)
    cdef char* d = <char*>cnp.PyArray_DATA(dst)
    with nogil:
        if in_code == 0:
            _run(<const uint8_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 1:
            _run(<const int8_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 2:
            _run(<const uint16_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 3:
            _run(<const int16_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 4:
            _run(<const uint32_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 5:
            _run(<const int32_t*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        elif in_code == 6:
            _run(<const float*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
        else:
            _run(<const double*>s, sstr, d, dstr, n0, n, n2, lanes, order, kind, nthreads, buffers, per_thread)
    free(buffers)

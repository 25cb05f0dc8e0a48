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
cimport numpy as cnp

cnp.import_array()

# Boundary initialisations (the mode -> kind mapping is in medfast.ndimage).
DEF KIND_MIRROR = 0
DEF KIND_WRAP = 1
DEF KIND_REFLECT = 2

# Lines filtered together (interleaved) by one thread.
DEF LANES = 64


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


cdef void _filter_lines(double* c, Py_ssize_t n, Py_ssize_t b, int order,
                        int kind, double* scratch) noexcept nogil:
    """Filter b interleaved lines of n > 1 samples in place (b is LANES or
    1, constants the compiler specialises the loops for)."""
    cdef double z[2]
    cdef int npoles = _poles(order, z), q
    cdef double gain = 1.0
    cdef Py_ssize_t i, l
    for q in range(npoles):
        gain *= (1.0 - z[q]) * (1.0 - 1.0 / z[q])
    for i in range(n * b):
        c[i] *= gain
    for q in range(npoles):
        if kind == KIND_MIRROR:
            _causal_mirror(c, n, b, z[q])
        elif kind == KIND_WRAP:
            _causal_wrap(c, n, b, z[q])
        else:
            _causal_reflect(c, n, b, z[q], scratch)
        for i in range(1, n):
            for l in range(b):
                c[i * b + l] += z[q] * c[(i - 1) * b + l]
        if kind == KIND_MIRROR:
            _anticausal_mirror(c, n, b, z[q])
        elif kind == KIND_WRAP:
            _anticausal_wrap(c, n, b, z[q])
        else:
            _anticausal_reflect(c, n, b, z[q])
        for i in range(n - 2, -1, -1):
            for l in range(b):
                c[i * b + l] = z[q] * (c[(i + 1) * b + l] - c[i * b + l])


def filter_axis(cnp.ndarray work, int order, int kind, int nthreads):
    """Filter the float64 3-D array ``work`` in place along its axis 1.

    ``order`` 2-5, ``kind`` the boundary initialisation (0 mirror, 1 wrap,
    2 reflect); every line ``work[p, :, q]`` is filtered (lines of one
    sample are left as they are, as in scipy)."""
    cdef Py_ssize_t n0 = work.shape[0], n = work.shape[1], n2 = work.shape[2]
    cdef Py_ssize_t s0 = work.strides[0], s1 = work.strides[1], s2 = work.strides[2]
    if n <= 1 or n0 * n2 == 0:
        return
    # Blocks of LANES lines, or single lines where a block would be mostly
    # padding or its buffer large (long lines with few neighbours).
    cdef Py_ssize_t lanes = LANES
    if 2 * n2 < LANES or n * LANES > (1 << 22):
        lanes = 1
    cdef Py_ssize_t nblocks = (n2 + lanes - 1) // lanes
    cdef Py_ssize_t nunits = n0 * nblocks
    if nthreads > nunits:
        nthreads = <int>nunits
    # per thread: the interleaved block and the reflect init's scratch
    cdef Py_ssize_t per_thread = n * lanes + lanes
    cdef double* buffers = <double*>malloc(nthreads * per_thread * sizeof(double))
    if buffers == NULL:
        raise MemoryError(
            f"cannot allocate {nthreads * per_thread * 8} bytes of line buffers")
    cdef char* base = <char*>cnp.PyArray_DATA(work)
    cdef Py_ssize_t u, p, q0, b, i, l
    cdef double* buf
    cdef char* line
    with nogil:
        for u in prange(nunits, num_threads=nthreads, schedule='dynamic'):
            buf = buffers + threadid() * per_thread
            p = u // nblocks
            q0 = (u - p * nblocks) * lanes
            b = n2 - q0  # lines present in this block
            if b > lanes:
                b = lanes
            line = base + p * s0 + q0 * s2
            for i in range(n):
                for l in range(b):
                    buf[i * lanes + l] = (<double*>(line + i * s1 + l * s2))[0]
                for l in range(b, lanes):
                    buf[i * lanes + l] = 0.0
            if lanes == 1:
                _filter_lines(buf, n, 1, order, kind, buf + n)
            else:
                _filter_lines(buf, n, LANES, order, kind, buf + n * LANES)
            for i in range(n):
                for l in range(b):
                    (<double*>(line + i * s1 + l * s2))[0] = buf[i * lanes + l]
    free(buffers)

# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled kernel of ``medfast.resample(..., order='label')``: one pass.

Each output voxel takes the label of highest one-hot linear weight among the
(at most 8) distinct labels of its 8 input corners, without one float volume
per label.  The answer is the one the per-label reference gives
(``medfast.resample._label_resample_reference``: each label's indicator
through the order-1 core into float32, then the running maximum):

* coordinates, floors and weights are scipy's order-1 ones (see
  ``src/_kernels.pyx``): ``((offset + o0*m0) + o1*m1) + k*m2``, ``w0 = 1 - y``,
  ``w1 = 1 - w0``, corner weight ``(wa * wb) * wc``;
* a label's weight is the sum of its corners' weights in scipy's corner
  order (the other corners add exact zeros there), rounded to float32
  before comparing, as the reference's float32 volume does;
* the highest weight wins, ties go to the smaller label, and a voxel whose
  best weight is 0 gets ``fill`` (cval).

Everything else (dtype policy, modes, fallbacks) is decided in
:mod:`medfast.resample`; arguments arrive trusted.
"""
from cython.parallel cimport prange
from libc.math cimport floor, isfinite
from libc.stdint cimport (uint8_t, int8_t, uint16_t, int16_t, uint32_t,
                          int32_t, uint64_t, int64_t)
cimport numpy as cnp

cnp.import_array()

# Boundary modes: scipy's NI_ExtendMode codes (ndimage.MODES), mapped as
# the order-1 core maps them (src/_boundary.h).
cdef extern from "_boundary.h":
    double mf_map_coordinate(double x, Py_ssize_t n, int mode) noexcept nogil
    int mf_spline_mode(int mode) noexcept nogil

cdef enum:
    NEAREST = 0
    GRID_CONSTANT = 6

ctypedef fused label_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    int64_t
    uint64_t


cdef inline bint _taps(double cc, Py_ssize_t n, Py_ssize_t stride, int mode,
                       Py_ssize_t* off, double* w, bint* ok) noexcept nogil:
    """The two taps of one axis as scipy's order-1 code finds them, in any
    mode: byte offsets, weights and whether each is a sample (False only
    for 'grid-constant' taps outside, whose value is 0 in the reference).
    Returns False when the whole voxel is cval."""
    cdef double fl
    cdef Py_ssize_t i0, i1
    cdef int smode
    if not isfinite(cc):
        return False  # medfast's core gives cval there too
    # the core's clamp (scipy is undefined beyond 2**63)
    if cc > 9e18:
        cc = 9e18
    elif cc < -9e18:
        cc = -9e18
    if mode != GRID_CONSTANT and mode != NEAREST:
        cc = mf_map_coordinate(cc, n, mode)
        if not cc > -1.0:  # 'constant' outside the input
            return False
    fl = floor(cc)
    i0 = <Py_ssize_t>fl
    i1 = i0 + 1
    w[0] = 1.0 - (cc - fl)
    w[1] = 1.0 - w[0]
    ok[0] = True
    ok[1] = True
    if mode == GRID_CONSTANT:
        ok[0] = i0 >= 0 and i0 < n
        ok[1] = i1 >= 0 and i1 < n
        off[0] = i0 * stride if ok[0] else 0
        off[1] = i1 * stride if ok[1] else 0
        return True
    if i0 < 0 or i1 >= n:
        smode = mf_spline_mode(mode)
        i0 = <Py_ssize_t>mf_map_coordinate(<double>i0, n, smode)
        i1 = <Py_ssize_t>mf_map_coordinate(<double>i1, n, smode)
    off[0] = i0 * stride
    off[1] = i1 * stride
    return True


cdef void _row(const label_t* data, const Py_ssize_t* shape,
               const Py_ssize_t* strides, const double* m, double p0,
               double p1, double p2, Py_ssize_t nk, int mode, label_t fill,
               char* out, Py_ssize_t ostride) noexcept nogil:
    """One output row: output index k samples the input at
    (p0 + k*m[2], p1 + k*m[5], p2 + k*m[8])."""
    cdef Py_ssize_t off[3][2]
    cdef double w[3][2]
    cdef bint ok[3][2]
    cdef label_t lab[8]    # distinct corner labels, in order of appearance
    cdef double wsum[8]    # their summed weights
    cdef const char* base = <const char*>data
    cdef double lim0 = shape[0] - 1, lim1 = shape[1] - 1, lim2 = shape[2] - 1
    cdef double c0, c1, c2, wab, wt
    cdef Py_ssize_t k, i, h
    cdef int a, b, c, j, n, best
    cdef bint uniform
    cdef float f, fbest
    cdef label_t v, result
    for k in range(nk):
        c0 = p0 + <double>k * m[2]
        c1 = p1 + <double>k * m[5]
        c2 = p2 + <double>k * m[8]
        if (c0 >= 0 and c0 < lim0 and c1 >= 0 and c1 < lim1
                and c2 >= 0 and c2 < lim2):
            # Every tap inside (the usual case): no boundary rule applies
            # and truncation is scipy's floor.
            i = <Py_ssize_t>c0
            w[0][0] = 1.0 - (c0 - <double>i)
            off[0][0] = i * strides[0]
            i = <Py_ssize_t>c1
            w[1][0] = 1.0 - (c1 - <double>i)
            off[1][0] = i * strides[1]
            i = <Py_ssize_t>c2
            w[2][0] = 1.0 - (c2 - <double>i)
            off[2][0] = i * strides[2]
            for h in range(3):
                w[h][1] = 1.0 - w[h][0]
                off[h][1] = off[h][0] + strides[h]
                ok[h][0] = True
                ok[h][1] = True
        elif not (_taps(c0, shape[0], strides[0], mode, off[0], w[0], ok[0])
                  and _taps(c1, shape[1], strides[1], mode, off[1], w[1], ok[1])
                  and _taps(c2, shape[2], strides[2], mode, off[2], w[2], ok[2])):
            (<label_t*>(out + k * ostride))[0] = fill
            continue
        # Eight samples of one label (the inside of a region): it wins, its
        # weight being about 1 (the zero-weight tap clamped in 'constant'
        # mode changes nothing).
        uniform = (ok[0][0] and ok[0][1] and ok[1][0] and ok[1][1]
                   and ok[2][0] and ok[2][1])
        if uniform:
            v = (<const label_t*>(base + off[0][0] + off[1][0] + off[2][0]))[0]
            for a in range(2):
                for b in range(2):
                    for c in range(2):
                        uniform = uniform and v == (<const label_t*>(
                            base + off[0][a] + off[1][b] + off[2][c]))[0]
            if uniform:
                (<label_t*>(out + k * ostride))[0] = v
                continue
        n = 0
        for a in range(2):
            for b in range(2):
                wab = w[0][a] * w[1][b]
                for c in range(2):
                    if not (ok[0][a] and ok[1][b] and ok[2][c]):
                        continue
                    v = (<const label_t*>(base + off[0][a] + off[1][b] + off[2][c]))[0]
                    wt = wab * w[2][c]
                    j = 0
                    while j < n and lab[j] != v:
                        j += 1
                    if j == n:
                        lab[n] = v
                        wsum[n] = wt
                        n += 1
                    else:
                        wsum[j] = wsum[j] + wt
        # float32 weights, as the reference compares them; the first winner
        # needs a weight above 0, later ones a higher weight or an equal one
        # and a smaller label.
        result = fill
        best = -1
        fbest = 0.0
        for j in range(n):
            f = <float>wsum[j]
            if f > fbest or (best >= 0 and f == fbest and lab[j] < lab[best]):
                best = j
                fbest = f
        if best >= 0:
            result = lab[best]
        (<label_t*>(out + k * ostride))[0] = result


cdef void _run(const label_t* data, const Py_ssize_t* shape,
               const Py_ssize_t* strides, const double* m, const double* offset,
               char* out, const Py_ssize_t* oshape, const Py_ssize_t* ostrides,
               int mode, const void* fill, int nthreads) noexcept nogil:
    # Parallel over output rows; coordinates summed as scipy does.
    cdef Py_ssize_t n1 = oshape[1], nrows = oshape[0] * oshape[1]
    cdef Py_ssize_t r, o0, o1
    cdef double p0, p1, p2
    cdef label_t fv = (<const label_t*>fill)[0]
    for r in prange(nrows, nogil=True, num_threads=nthreads, schedule='dynamic', chunksize=32):
        o0 = r // n1
        o1 = r - o0 * n1
        p0 = offset[0]
        p0 = p0 + <double>o0 * m[0]
        p0 = p0 + <double>o1 * m[1]
        p1 = offset[1]
        p1 = p1 + <double>o0 * m[3]
        p1 = p1 + <double>o1 * m[4]
        p2 = offset[2]
        p2 = p2 + <double>o0 * m[6]
        p2 = p2 + <double>o1 * m[7]
        _row(data, shape, strides, m, p0, p1, p2, oshape[2], mode, fv,
             out + o0 * ostrides[0] + o1 * ostrides[1], ostrides[2])


def labels(cnp.ndarray inp, int code, const double[:, ::1] matrix,
           const double[::1] offset, cnp.ndarray out, cnp.ndarray fill,
           int mode, int nthreads):
    """Resample the 3-D label map ``inp`` into the 3-D ``out`` (same dtype).

    Output index ``o`` samples the input at ``matrix @ o + offset``
    (``matrix`` (3, 3) C-contiguous).  ``code`` indexes the label types
    (uint8, int8, uint16, int16, uint32, int32, int64, uint64; bool read as
    uint8), ``fill`` is a 1-element array of that type holding cval, and
    ``mode`` any of scipy's mode codes (medfast.ndimage.MODES).  Arguments
    are trusted (see medfast.resample).
    """
    cdef Py_ssize_t shape[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t oshape[3]
    cdef Py_ssize_t ostrides[3]
    cdef int h
    for h in range(3):
        shape[h] = inp.shape[h]
        strides[h] = inp.strides[h]
        oshape[h] = out.shape[h]
        ostrides[h] = out.strides[h]
    cdef const void* d = cnp.PyArray_DATA(inp)
    cdef char* o = <char*>cnp.PyArray_DATA(out)
    cdef const void* fv = cnp.PyArray_DATA(fill)
    cdef const double* m = &matrix[0, 0]
    cdef const double* off = &offset[0]
    with nogil:
        if code == 0:
            _run(<const uint8_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 1:
            _run(<const int8_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 2:
            _run(<const uint16_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 3:
            _run(<const int16_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 4:
            _run(<const uint32_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 5:
            _run(<const int32_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        elif code == 6:
            _run(<const int64_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)
        else:
            _run(<const uint64_t*>d, shape, strides, m, off, o, oshape, ostrides, mode, fv, nthreads)

# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled kernel of ``medfast.load_rtstruct``: closed polygons -> masks.

Every polygon lies in one slice of the output grid; its vertices arrive in
that slice's pixel coordinates ``(x, y)`` (x along the contiguous axis).
A pixel belongs to the mask when its centre ``(i, j)`` lies inside by the
even-odd rule over *all* polygons of its slice: a hole drawn as a separate
contour, and an island inside it, come out right.

Scan lines: an edge from ``(x0, y0)`` to ``(x1, y1)`` crosses row ``j`` when
``(y0 > j) != (y1 > j)`` (half-open, so a vertex on the row counts once), at
``x0 + (j - y0) * (x1 - x0) / (y1 - y0)``.  With a row's crossings sorted,
pixel ``i`` is inside when an odd number of them are ``<= i``, that is
``ceil(x[2q]) <= i < ceil(x[2q + 1])``.

Slices are independent: one OpenMP task per slice, without the GIL.  The
geometry (world -> pixel coordinates, which slice, tolerances) is decided in
:mod:`medfast.dicom.rtstruct`; arguments arrive trusted.
"""
from cython.parallel cimport prange
from libc.math cimport ceil
from libc.stdlib cimport free, malloc, qsort
from libc.stdint cimport int64_t, uint8_t


cdef int _compare(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const double*>a)[0]
    cdef double y = (<const double*>b)[0]
    return (x > y) - (x < y)


cdef inline void _rows(double y0, double y1, Py_ssize_t ny,
                       Py_ssize_t* first, Py_ssize_t* last) noexcept nogil:
    """Rows ``first..last-1`` (clipped to the grid) an edge crosses."""
    cdef double lo = y0 if y0 < y1 else y1
    cdef double hi = y1 if y0 < y1 else y0
    cdef double a = ceil(lo)
    cdef double b = ceil(hi)
    if y0 == y1 or b <= 0 or a >= ny:
        first[0] = 0
        last[0] = 0
        return
    first[0] = <Py_ssize_t>(a if a > 0 else 0)
    last[0] = <Py_ssize_t>(b if b < ny else ny)


cdef int _fill_slice(const double* xy, const int64_t* starts, Py_ssize_t c0,
                     Py_ssize_t c1, uint8_t* plane, Py_ssize_t ny,
                     Py_ssize_t nx) noexcept nogil:
    """Fill one slice from contours ``c0..c1-1``; returns -1 when out of
    memory."""
    cdef Py_ssize_t c, p, q, n, j, first, last, i, i0, i1, total
    cdef double x0, y0, x1, y1, a, b
    cdef int64_t* count = <int64_t*>malloc((ny + 1) * sizeof(int64_t))
    cdef double* xs
    if count == NULL:
        return -1
    for j in range(ny + 1):
        count[j] = 0
    # Pass 1: crossings per row, then where each row's list starts.
    for c in range(c0, c1):
        for p in range(starts[c], starts[c + 1]):
            q = p + 1 if p + 1 < starts[c + 1] else starts[c]  # closed: last -> first
            _rows(xy[2 * p + 1], xy[2 * q + 1], ny, &first, &last)
            for j in range(first, last):
                count[j + 1] += 1
    for j in range(ny):
        count[j + 1] += count[j]
    total = count[ny]
    xs = <double*>malloc((total + 1) * sizeof(double))
    if xs == NULL:
        free(count)
        return -1
    # Pass 2: the crossings themselves (count[j] walks up to row j + 1's start).
    for c in range(c0, c1):
        for p in range(starts[c], starts[c + 1]):
            q = p + 1 if p + 1 < starts[c + 1] else starts[c]
            x0 = xy[2 * p]
            y0 = xy[2 * p + 1]
            x1 = xy[2 * q]
            y1 = xy[2 * q + 1]
            _rows(y0, y1, ny, &first, &last)
            for j in range(first, last):
                xs[count[j]] = x0 + (j - y0) * (x1 - x0) / (y1 - y0)
                count[j] += 1
    # count[j] is now row j + 1's start: row j is xs[start .. count[j]).
    p = 0
    for j in range(ny):
        n = count[j] - p
        if n > 1:
            qsort(&xs[p], n, sizeof(double), _compare)
            for q in range(0, n - 1, 2):
                a = ceil(xs[p + q])
                b = ceil(xs[p + q + 1])
                i0 = <Py_ssize_t>(a if a > 0 else 0) if a < nx else nx
                i1 = <Py_ssize_t>(b if b > 0 else 0) if b < nx else nx
                for i in range(i0, i1):
                    plane[j * nx + i] = 1
        p = count[j]
    free(xs)
    free(count)
    return 0


def fill_polygons(const double[:, ::1] xy, const int64_t[::1] starts,
                  const int64_t[::1] group_starts, const int64_t[::1] group_slice,
                  uint8_t[:, :, ::1] out, int nthreads):
    """Rasterise closed polygons into ``out`` (slices, rows, columns).

    Parameters
    ----------
    xy : (n_points, 2) float64
        Vertices ``(x, y)``: x indexes ``out``'s last axis, y its middle one.
    starts : (n_contours + 1,) int64
        Contour ``c`` is ``xy[starts[c]:starts[c + 1]]`` (closed implicitly).
    group_starts : (n_groups + 1,) int64
        Group ``g`` (the contours of one slice) is contours
        ``group_starts[g]:group_starts[g + 1]``.
    group_slice : (n_groups,) int64
        The slice of ``out`` each group fills (distinct, in range).
    out : (slices, rows, columns) uint8
        Pixels inside are set to 1; the others are left as they are.
    nthreads : int
    """
    cdef Py_ssize_t g, ngroups = group_slice.shape[0]
    cdef Py_ssize_t ny = out.shape[1], nx = out.shape[2]
    cdef int failed = 0
    if ngroups == 0 or ny == 0 or nx == 0 or xy.shape[0] == 0:
        return
    for g in prange(ngroups, nogil=True, num_threads=nthreads, schedule='dynamic'):
        failed += _fill_slice(&xy[0, 0], &starts[0], group_starts[g], group_starts[g + 1],
                              &out[group_slice[g], 0, 0], ny, nx) != 0
    if failed:
        raise MemoryError("rasterising contours: out of memory for a slice's crossings")

"""Numba resampling kernels: an operation-for-operation twin of src/_kernels.pyx.

This backend exposes the same two entry points as the compiled Cython module
(``affine`` and ``coordinates``; medfast.ndimage falls back to
``coordinates`` with broadcast tables since there is no ``separable`` here)
and gives bit-identical results, hence scipy's.  Every arithmetic step is
copied from the Cython kernels, in the same order:

* coordinate h of output (o0, o1, k) is ``((offset[h] + o0*m[h,0]) +
  o1*m[h,1]) + k*m[h,2]``, summed left to right in float64;
* linear weights are ``w0 = 1 - (x - floor)``, ``w1 = 1 - w0``, and the value
  is ``t = 0.0; t += ((v * wa) * wb) * wc`` over the corners in C order;
* points with a tap outside the input go through ``_edge3``/``_edge2``, a
  port of the Cython ``_sample_edge`` (scipy's ``map_coordinate`` logic,
  including its 1e-15 reflect detail, the integer truncations, the 9e18
  clamp and "non-finite coordinate -> cval");
* the row strategies are the Cython kernels': 3-D general rows in flat
  passes (setup, gather, combine), aligned rows (input coordinates 0 and 1
  constant along an output row) with per-row indices and weights, reused
  last-axis tables and partial products ``(v * wa) * wb``: fewer operations,
  the same ones;
* values are stored with scipy's rounding and clipping rules, and the C
  casts that are undefined (NaN or out-of-range to an integer) as x86
  executes them.

The kernels are compiled with ``fastmath=False`` (numba's default), so LLVM
neither reassociates nor contracts ``a * b + c`` into fused multiply-adds:
each rounding step is the one the C code performs (vectorised loops compute
the same operations lane by lane).

Compilation: little depends on both dtypes.  The row kernels (``_*_block``)
depend on the input dtype only and ``_store_block`` on the output dtype
only; the parallel drivers that glue them together are compiled per (input
dtype, output dtype) pair with one explicit signature in which every array
is numba's any-layout ('A') type, so C-, F-ordered, strided and
negative-stride arrays share one machine-code specialisation.  Everything
is cached on disk (``cache=True``): a later process loads, not compiles.
"""
import threading

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# Boundary modes: scipy's NI_ExtendMode codes (see medfast.ndimage.MODES).
NEAREST = 0
WRAP = 1
REFLECT = 2
MIRROR = 3
CONSTANT = 4
GRID_WRAP = 5
GRID_CONSTANT = 6

# Output type codes (see medfast/_dtypes.py).
OUT_BOOL = 0
OUT_U8 = 1
OUT_I8 = 2
OUT_U16 = 3
OUT_I16 = 4
OUT_U32 = 5
OUT_I32 = 6
OUT_F32 = 7
OUT_F64 = 8

# Coordinates beyond this magnitude are clamped before the boundary mapping,
# as in the Cython kernels: scipy's mapping converts coordinates (or their
# quotient by the period) to integers, undefined in C beyond 2**63; up to the
# limit every conversion is defined and the clamp changes nothing.
COORD_LIMIT = 9e18


# --------------------------------------------------------------------------
# Boundary handling, exactly as scipy's map_coordinate()
# --------------------------------------------------------------------------
@njit(cache=True)
def _map_coordinate(x, n, mode):
    # The integer products (sz2 * int(...)) are formed in int64 and only then
    # converted to float64, as C does with its Py_ssize_t arithmetic.
    if x < 0:
        if mode == MIRROR:
            if n <= 1:
                x = 0.0
            else:
                sz2 = 2 * n - 2
                x = sz2 * int(-x / sz2) + x
                x = x + sz2 if x <= 1 - n else -x
        elif mode == REFLECT:
            if n <= 1:
                x = 0.0
            else:
                sz2 = 2 * n
                if x < -sz2:
                    x = sz2 * int(-x / sz2) + x
                if x < -n:
                    x = x + sz2
                else:
                    x = (1e-15 if x > -1e-15 else -x) - 1
        elif mode == WRAP:
            if n <= 1:
                x = 0.0
            else:
                sz = n - 1
                x += sz * (int(-x / sz) + 1)
        elif mode == GRID_WRAP:
            if n <= 1:
                x = 0.0
            else:
                x += n * (int((-1 - x) / n) + 1)
        elif mode == NEAREST:
            x = 0.0
        elif mode == CONSTANT:
            x = -1.0
    elif x > n - 1:
        if mode == MIRROR:
            if n <= 1:
                x = 0.0
            else:
                sz2 = 2 * n - 2
                x -= sz2 * int(x / sz2)
                if x >= n:
                    x = sz2 - x
        elif mode == REFLECT:
            if n <= 1:
                x = 0.0
            else:
                sz2 = 2 * n
                x -= sz2 * int(x / sz2)
                if x >= n:
                    x = sz2 - x - 1
        elif mode == WRAP:
            if n <= 1:
                x = 0.0
            else:
                sz = n - 1
                x -= sz * int(x / sz)
        elif mode == GRID_WRAP:
            if n <= 1:
                x = 0.0
            else:
                x -= n * int(x / n)
        elif mode == NEAREST:
            x = float(n - 1)
        elif mode == CONSTANT:
            x = -1.0
    return x


@njit(cache=True)
def _axis_taps(cc, n, order, mode):
    """One axis of ``_sample_edge``: the taps of coordinate ``cc``.

    Returns ``(ok, i0, i1, out0, out1, w0, w1)``: ``ok`` False means the
    point is ``cval``; ``i0``/``i1`` are the (mapped) tap indices, ``out0``/
    ``out1`` whether a tap reads ``cval`` (grid-constant), ``w0``/``w1`` the
    linear weights.  A tuple instead of the C arrays: no allocation.
    """
    if not np.isfinite(cc):
        return False, 0, 0, False, False, 0.0, 0.0
    if cc > COORD_LIMIT:
        cc = COORD_LIMIT
    elif cc < -COORD_LIMIT:
        cc = -COORD_LIMIT
    if mode != GRID_CONSTANT and mode != NEAREST:
        cc = _map_coordinate(cc, n, mode)
    if not (cc > -1.0 or mode == GRID_CONSTANT or mode == NEAREST):
        return False, 0, 0, False, False, 0.0, 0.0
    w0 = 0.0
    w1 = 0.0
    if order == 1:
        start = int(np.floor(cc))
        y = cc - np.floor(cc)
        w0 = 1.0 - y
        w1 = 1.0
        w1 -= w0
    else:
        start = int(np.floor(cc + 0.5))
    # scipy maps the taps of modes without an analytic extension by mirroring.
    smode = MIRROR if (mode == CONSTANT or mode == WRAP) else mode
    i0 = start
    i1 = start + 1  # used only when order == 1
    out0 = False
    out1 = False
    if mode == GRID_CONSTANT:
        out0 = i0 < 0 or i0 >= n
        out1 = i1 < 0 or i1 >= n
    elif start < 0 or start + order >= n:
        i0 = int(_map_coordinate(float(i0), n, smode))
        if order == 1:
            i1 = int(_map_coordinate(float(i1), n, smode))
    return True, i0, i1, out0, out1, w0, w1


@njit(cache=True)
def _edge3(inp, x0, x1, x2, order, mode, cval):
    """One value of a 3-D input at an arbitrary point, every case handled
    (the Cython ``_sample_edge`` with rank 3)."""
    ok, i00, i01, q00, q01, w00, w01 = _axis_taps(x0, inp.shape[0], order, mode)
    if not ok:
        return cval
    ok, i10, i11, q10, q11, w10, w11 = _axis_taps(x1, inp.shape[1], order, mode)
    if not ok:
        return cval
    ok, i20, i21, q20, q21, w20, w21 = _axis_taps(x2, inp.shape[2], order, mode)
    if not ok:
        return cval
    t = 0.0
    for a in range(order + 1):
        ia, qa, wa = (i00, q00, w00) if a == 0 else (i01, q01, w01)
        for b in range(order + 1):
            ib, qb, wb = (i10, q10, w10) if b == 0 else (i11, q11, w11)
            for c in range(order + 1):
                ic, qc, wc = (i20, q20, w20) if c == 0 else (i21, q21, w21)
                if qa or qb or qc:
                    coeff = cval
                else:
                    coeff = float(inp[ia, ib, ic])
                if order == 1:
                    coeff *= wa
                    coeff *= wb
                    coeff *= wc
                t += coeff
    return t


@njit(cache=True)
def _edge2(inp, x0, x1, order, mode, cval):
    """As ``_edge3`` for a 2-D input."""
    ok, i00, i01, q00, q01, w00, w01 = _axis_taps(x0, inp.shape[0], order, mode)
    if not ok:
        return cval
    ok, i10, i11, q10, q11, w10, w11 = _axis_taps(x1, inp.shape[1], order, mode)
    if not ok:
        return cval
    t = 0.0
    for a in range(order + 1):
        ia, qa, wa = (i00, q00, w00) if a == 0 else (i01, q01, w01)
        for b in range(order + 1):
            ib, qb, wb = (i10, q10, w10) if b == 0 else (i11, q11, w11)
            if qa or qb:
                coeff = cval
            else:
                coeff = float(inp[ia, ib])
            if order == 1:
                coeff *= wa
                coeff *= wb
            t += coeff
    return t


# --------------------------------------------------------------------------
# 2-D inputs: one output value, the interior fast path else the edge path
# --------------------------------------------------------------------------
# Inlined at numba-IR level (inline="always"): as calls they would cost
# several times their work.
@njit(cache=True, inline="always")
def _linear2(inp, x0, x1, lim0, lim1, order, mode, cval):
    if x0 >= 0.0 and x0 < lim0 and x1 >= 0.0 and x1 < lim1:
        # All four taps inside: floor is a truncation, indices are in range.
        i0 = int(x0)
        i1 = int(x1)
        a0 = 1.0 - (x0 - float(i0))
        a1 = 1.0 - a0
        b0 = 1.0 - (x1 - float(i1))
        b1 = 1.0 - b0
        t = 0.0
        t += (float(inp[i0, i1]) * a0) * b0
        t += (float(inp[i0, i1 + 1]) * a0) * b1
        t += (float(inp[i0 + 1, i1]) * a1) * b0
        t += (float(inp[i0 + 1, i1 + 1]) * a1) * b1
        return t
    return _edge2(inp, x0, x1, order, mode, cval)


@njit(cache=True, inline="always")
def _nearest2(inp, x0, x1, lim0, lim1, order, mode, cval):
    if x0 >= 0.0 and x0 <= lim0 and x1 >= 0.0 and x1 <= lim1:
        # scipy rounds with floor(c + 0.5); c + 0.5 > 0 here.
        t = 0.0
        t += float(inp[int(x0 + 0.5), int(x1 + 0.5)])
        return t
    return _edge2(inp, x0, x1, order, mode, cval)


# --------------------------------------------------------------------------
# 3-D inputs, general rows: flat passes (setup, gather, combine)
# --------------------------------------------------------------------------
# As in the Cython kernels, a row is split into loops LLVM can vectorise:
# each voxel's inside test, indices and weights (branch-free), the gather of
# the taps, then the weighted sums.  Outside voxels gather sample (0, 0, 0)
# and are then recomputed by the edge path.
@njit(cache=True)
def _general_row3(inp, xs, vals, flags, idx, wts, taps, order, mode, cval):
    """``vals[k]`` at the coordinates ``xs[:, k]`` of a 3-D input."""
    nk = vals.size
    lim0 = float(inp.shape[0] - 1)
    lim1 = float(inp.shape[1] - 1)
    lim2 = float(inp.shape[2] - 1)
    count = 0
    if order == 1:
        for k in range(nk):
            x0 = xs[0, k]
            x1 = xs[1, k]
            x2 = xs[2, k]
            inside = ((x0 >= 0.0) & (x0 < lim0) & (x1 >= 0.0) & (x1 < lim1)
                      & (x2 >= 0.0) & (x2 < lim2))
            # all eight taps inside: floor is a truncation
            i0 = int(x0) if inside else 0
            i1 = int(x1) if inside else 0
            i2 = int(x2) if inside else 0
            a0 = 1.0 - (x0 - float(i0))
            b0 = 1.0 - (x1 - float(i1))
            w0 = 1.0 - (x2 - float(i2))
            wts[0, k] = a0
            wts[1, k] = 1.0 - a0
            wts[2, k] = b0
            wts[3, k] = 1.0 - b0
            wts[4, k] = w0
            wts[5, k] = 1.0 - w0
            idx[0, k] = i0
            idx[1, k] = i1
            idx[2, k] = i2
            idx[3, k] = 1 if inside else 0  # tap step: outside stays at 0
            flags[k] = inside
            count += 1 if inside else 0
        for k in range(nk):
            i0 = idx[0, k]
            i1 = idx[1, k]
            i2 = idx[2, k]
            d = idx[3, k]
            taps[0, k] = float(inp[i0, i1, i2])
            taps[1, k] = float(inp[i0, i1, i2 + d])
            taps[2, k] = float(inp[i0, i1 + d, i2])
            taps[3, k] = float(inp[i0, i1 + d, i2 + d])
            taps[4, k] = float(inp[i0 + d, i1, i2])
            taps[5, k] = float(inp[i0 + d, i1, i2 + d])
            taps[6, k] = float(inp[i0 + d, i1 + d, i2])
            taps[7, k] = float(inp[i0 + d, i1 + d, i2 + d])
        for k in range(nk):
            a0 = wts[0, k]
            a1 = wts[1, k]
            b0 = wts[2, k]
            b1 = wts[3, k]
            w0 = wts[4, k]
            w1 = wts[5, k]
            t = 0.0
            t += ((taps[0, k] * a0) * b0) * w0
            t += ((taps[1, k] * a0) * b0) * w1
            t += ((taps[2, k] * a0) * b1) * w0
            t += ((taps[3, k] * a0) * b1) * w1
            t += ((taps[4, k] * a1) * b0) * w0
            t += ((taps[5, k] * a1) * b0) * w1
            t += ((taps[6, k] * a1) * b1) * w0
            t += ((taps[7, k] * a1) * b1) * w1
            vals[k] = t
    else:
        for k in range(nk):
            x0 = xs[0, k]
            x1 = xs[1, k]
            x2 = xs[2, k]
            inside = ((x0 >= 0.0) & (x0 <= lim0) & (x1 >= 0.0) & (x1 <= lim1)
                      & (x2 >= 0.0) & (x2 <= lim2))
            # scipy rounds with floor(x + 0.5); x + 0.5 > 0 inside
            idx[0, k] = int(x0 + 0.5) if inside else 0
            idx[1, k] = int(x1 + 0.5) if inside else 0
            idx[2, k] = int(x2 + 0.5) if inside else 0
            flags[k] = inside
            count += 1 if inside else 0
        for k in range(nk):
            t = 0.0
            t += float(inp[idx[0, k], idx[1, k], idx[2, k]])
            vals[k] = t
    if count < nk:
        for k in range(nk):
            if not flags[k]:
                vals[k] = _edge3(inp, xs[0, k], xs[1, k], xs[2, k], order, mode,
                                 cval)


# --------------------------------------------------------------------------
# 3-D inputs, aligned rows: output rows along the input's last axis
# --------------------------------------------------------------------------
# When input coordinates 0 and 1 are constant along an output row (scalings,
# flips, in-plane rotations, zoom, shift), so are their indices and weights;
# the last-axis tables (start, weights, inside flag) are reused by every row
# with the same last-axis coordinates, and the partial products
# (v * wa) * wb of the four input rows are formed once per input sample and
# reused by every output voxel.  Same operations, same order, fewer of them.
@njit(cache=True, inline="always")
def _inside(x, lim, order):
    # All taps of coordinate x inside [0, lim]: no boundary mapping needed.
    if order == 1:
        return x >= 0.0 and x < lim
    return x >= 0.0 and x <= lim


@njit(cache=True)
def _axis_table(x, lim, order, st, w0, w1, ins):
    """Start index, weights and inside flag of each coordinate ``x[k]``.

    Returns ``(xlo, span, count)``: the inside points read input samples
    ``[xlo, xlo + span)`` (span 0 if none); ``count`` points are inside.
    """
    lo = 0
    hi = -1
    count = 0
    for k in range(x.size):
        xk = x[k]
        ins[k] = _inside(xk, lim, order)
        if not ins[k]:
            continue
        if order == 1:
            s = int(xk)
            w0[k] = 1.0 - (xk - float(s))
            w1[k] = 1.0 - w0[k]
        else:
            s = int(xk + 0.5)
        st[k] = s
        if count == 0 or s < lo:
            lo = s
        if count == 0 or s + order > hi:
            hi = s + order
        count += 1
    return lo, (hi - lo + 1 if count > 0 else 0), count


@njit(cache=True)
def _aligned_row3(inp, p0, p1, x2, st, w0, w1, ins, xlo, span, count, vals,
                  pbuf, order, mode, cval):
    """``vals[k]`` along an aligned row of a 3-D input: constant coordinates
    ``p0``, ``p1`` (all their taps inside), last-axis coordinates ``x2``
    and their tables (see ``_axis_table``)."""
    nk = vals.size
    if order == 1:
        i0 = int(p0)
        i1 = int(p1)
        a0 = 1.0 - (p0 - float(i0))
        a1 = 1.0 - a0
        b0 = 1.0 - (p1 - float(i1))
        b1 = 1.0 - b0
        if 0 < span and 4 * span <= pbuf.size:
            # Four partial products per input sample; a voxel reads the
            # groups of samples st and st + 1, in scipy's corner order.
            for x in range(span):
                i2 = xlo + x
                pbuf[4 * x] = (float(inp[i0, i1, i2]) * a0) * b0
                pbuf[4 * x + 1] = (float(inp[i0, i1 + 1, i2]) * a0) * b1
                pbuf[4 * x + 2] = (float(inp[i0 + 1, i1, i2]) * a1) * b0
                pbuf[4 * x + 3] = (float(inp[i0 + 1, i1 + 1, i2]) * a1) * b1
            for k in range(nk):
                if ins[k]:
                    q = 4 * (st[k] - xlo)
                    wa = w0[k]
                    wb = w1[k]
                    t = 0.0
                    t += pbuf[q] * wa
                    t += pbuf[q + 4] * wb
                    t += pbuf[q + 1] * wa
                    t += pbuf[q + 5] * wb
                    t += pbuf[q + 2] * wa
                    t += pbuf[q + 6] * wb
                    t += pbuf[q + 3] * wa
                    t += pbuf[q + 7] * wb
                    vals[k] = t
        else:
            # The row skips most input samples (span > 2 nk + 16, the
            # Cython kernels' threshold): gather directly.
            for k in range(nk):
                if ins[k]:
                    i2 = st[k]
                    wa = w0[k]
                    wb = w1[k]
                    t = 0.0
                    t += ((float(inp[i0, i1, i2]) * a0) * b0) * wa
                    t += ((float(inp[i0, i1, i2 + 1]) * a0) * b0) * wb
                    t += ((float(inp[i0, i1 + 1, i2]) * a0) * b1) * wa
                    t += ((float(inp[i0, i1 + 1, i2 + 1]) * a0) * b1) * wb
                    t += ((float(inp[i0 + 1, i1, i2]) * a1) * b0) * wa
                    t += ((float(inp[i0 + 1, i1, i2 + 1]) * a1) * b0) * wb
                    t += ((float(inp[i0 + 1, i1 + 1, i2]) * a1) * b1) * wa
                    t += ((float(inp[i0 + 1, i1 + 1, i2 + 1]) * a1) * b1) * wb
                    vals[k] = t
    else:
        i0 = int(p0 + 0.5)
        i1 = int(p1 + 0.5)
        for k in range(nk):
            if ins[k]:
                t = 0.0
                t += float(inp[i0, i1, st[k]])
                vals[k] = t
    if count < nk:
        for k in range(nk):
            if not ins[k]:
                vals[k] = _edge3(inp, p0, p1, x2[k], order, mode, cval)


# --------------------------------------------------------------------------
# Row kernels: a block of output rows into float64 values (input dtype only)
# --------------------------------------------------------------------------
# Output row r is (o0, o1) = divmod(r, n1); block row j is output row
# rlo + j.  ``table`` carries the aligned rows' last-axis tables from block
# to block: (key, xlo, span, count), key NaN while the tables hold nothing.
NO_TABLE = (np.nan, 0, 0, 0)

# Output rows per block: amortises the calls, keeps the block in cache.
BLOCK = 16


@njit(cache=True)
def _scratch3(nk):
    """A chunk's buffers for 3-D inputs: block values; general rows'
    coordinates, flags, indices, weights and taps; aligned rows' last-axis
    coordinates, tables (starts, weight pairs, flags) and partial products."""
    return (np.empty((BLOCK, nk)),
            np.empty((3, nk)), np.empty(nk, np.bool_), np.empty((4, nk), np.intp),
            np.empty((6, nk)), np.empty((8, nk)),
            np.empty(nk), np.empty(nk, np.intp), np.empty(nk), np.empty(nk),
            np.empty(nk, np.bool_), np.empty(4 * (2 * nk + 16)))


@njit(cache=True)
def _affine3_block(inp, matrix, offset, n1, rlo, nrows, scratch, order, mode,
                   cval, table):
    vals, xs, flags, idx, wts, taps, x2, st, w0, w1, ins, pbuf = scratch
    nk = vals.shape[1]
    lim0 = float(inp.shape[0] - 1)
    lim1 = float(inp.shape[1] - 1)
    lim2 = float(inp.shape[2] - 1)
    m0 = matrix[0, 2]
    m1 = matrix[1, 2]
    m2 = matrix[2, 2]
    aligned = m0 == 0.0 and m1 == 0.0  # x0, x1 constant along output rows
    key, xlo, span, count = table
    for j in range(nrows):
        o0 = (rlo + j) // n1
        o1 = (rlo + j) - o0 * n1
        p0 = offset[0]
        p0 = p0 + float(o0) * matrix[0, 0]
        p0 = p0 + float(o1) * matrix[0, 1]
        p1 = offset[1]
        p1 = p1 + float(o0) * matrix[1, 0]
        p1 = p1 + float(o1) * matrix[1, 1]
        p2 = offset[2]
        p2 = p2 + float(o0) * matrix[2, 0]
        p2 = p2 + float(o1) * matrix[2, 1]
        if aligned and _inside(p0, lim0, order) and _inside(p1, lim1, order):
            # p0 + k*0.0 == p0: the per-voxel coordinates are unchanged.
            if p2 != key:  # the tables depend on p2 only
                for k in range(nk):
                    x2[k] = p2 + float(k) * m2
                xlo, span, count = _axis_table(x2, lim2, order, st, w0, w1, ins)
                key = p2
            _aligned_row3(inp, p0, p1, x2, st, w0, w1, ins, xlo, span, count,
                          vals[j], pbuf, order, mode, cval)
        else:
            for k in range(nk):
                xs[0, k] = p0 + float(k) * m0
                xs[1, k] = p1 + float(k) * m1
                xs[2, k] = p2 + float(k) * m2
            _general_row3(inp, xs, vals[j], flags, idx, wts, taps, order, mode,
                          cval)
    return key, xlo, span, count


@njit(cache=True)
def _coords3_block(inp, c0, c1, c2, n1, rlo, nrows, scratch, order, mode,
                   cval, table):
    vals, xs, flags, idx, wts, taps, x2, st, w0, w1, ins, pbuf = scratch
    nk = vals.shape[1]
    lim0 = float(inp.shape[0] - 1)
    lim1 = float(inp.shape[1] - 1)
    lim2 = float(inp.shape[2] - 1)
    # Broadcast coordinate tables (zoom, shift, diagonal matrices): x0 and x1
    # constant along rows, and the same x2 row for every row.
    aligned = c0.strides[2] == 0 and c1.strides[2] == 0
    same_x2 = c2.strides[0] == 0 and c2.strides[1] == 0
    key, xlo, span, count = table
    for j in range(nrows):
        o0 = (rlo + j) // n1
        o1 = (rlo + j) - o0 * n1
        p0 = c0[o0, o1, 0]
        p1 = c1[o0, o1, 0]
        if aligned and _inside(p0, lim0, order) and _inside(p1, lim1, order):
            if not (same_x2 and key == 0.0):  # key 0.0: tables filled
                for k in range(nk):
                    x2[k] = c2[o0, o1, k]
                xlo, span, count = _axis_table(x2, lim2, order, st, w0, w1, ins)
                key = 0.0
            _aligned_row3(inp, p0, p1, x2, st, w0, w1, ins, xlo, span, count,
                          vals[j], pbuf, order, mode, cval)
        else:
            for k in range(nk):
                xs[0, k] = c0[o0, o1, k]
                xs[1, k] = c1[o0, o1, k]
                xs[2, k] = c2[o0, o1, k]
            _general_row3(inp, xs, vals[j], flags, idx, wts, taps, order, mode,
                          cval)
    return key, xlo, span, count


@njit(cache=True)
def _affine2_block(inp, matrix, offset, n1, rlo, nrows, vals, order, mode, cval):
    nk = vals.shape[1]
    lim0 = float(inp.shape[0] - 1)
    lim1 = float(inp.shape[1] - 1)
    m0 = matrix[0, 2]
    m1 = matrix[1, 2]
    for j in range(nrows):
        o0 = (rlo + j) // n1
        o1 = (rlo + j) - o0 * n1
        p0 = offset[0]
        p0 = p0 + float(o0) * matrix[0, 0]
        p0 = p0 + float(o1) * matrix[0, 1]
        p1 = offset[1]
        p1 = p1 + float(o0) * matrix[1, 0]
        p1 = p1 + float(o1) * matrix[1, 1]
        for k in range(nk):
            x0 = p0 + float(k) * m0
            x1 = p1 + float(k) * m1
            if order == 1:
                vals[j, k] = _linear2(inp, x0, x1, lim0, lim1, order, mode, cval)
            else:
                vals[j, k] = _nearest2(inp, x0, x1, lim0, lim1, order, mode, cval)


@njit(cache=True)
def _coords2_block(inp, c0, c1, n1, rlo, nrows, vals, order, mode, cval):
    nk = vals.shape[1]
    lim0 = float(inp.shape[0] - 1)
    lim1 = float(inp.shape[1] - 1)
    for j in range(nrows):
        o0 = (rlo + j) // n1
        o1 = (rlo + j) - o0 * n1
        for k in range(nk):
            x0 = c0[o0, o1, k]
            x1 = c1[o0, o1, k]
            if order == 1:
                vals[j, k] = _linear2(inp, x0, x1, lim0, lim1, order, mode, cval)
            else:
                vals[j, k] = _nearest2(inp, x0, x1, lim0, lim1, order, mode, cval)


# --------------------------------------------------------------------------
# Storing a block of rows with scipy's conversion rules (output dtype only)
# --------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _cvtt_i32(t):
    # What the C cast to a 32-bit (or narrower) integer compiles to on x86
    # (cvttsd2si): truncation, and 0x80000000 for NaN or out-of-range values,
    # where C leaves the result undefined.  Only reached for bool outputs and
    # NaN in signed outputs; everything else is already in range.
    if t > -2147483649.0 and t < 2147483648.0:
        return int(t)
    return -2147483648


def _store_values(v, row, out_code):
    """``row[k] = v[k]`` with scipy's conversion to ``row``'s dtype (the rule
    is picked at compile time, see ``_store_values_impl``)."""


@overload(_store_values)
def _store_values_impl(v, row, out_code):
    # One loop per output dtype is compiled, not the nine of out_code.
    dtype = row.dtype
    if isinstance(dtype, types.Float):
        def store(v, row, out_code):
            for k in range(v.size):
                row[k] = v[k]
    elif dtype == types.uint8:  # bool outputs arrive viewed as uint8
        def store(v, row, out_code):
            if out_code == OUT_BOOL:
                # scipy stores booleans with a plain C cast: the low byte.
                for k in range(v.size):
                    row[k] = _cvtt_i32(v[k]) & 0xFF
            else:
                for k in range(v.size):
                    t = v[k] + 0.5 if v[k] > 0 else 0.0
                    row[k] = 255.0 if t > 255.0 else t
    elif not dtype.signed:
        hi = float(np.iinfo(str(dtype)).max)

        def store(v, row, out_code):
            for k in range(v.size):
                t = v[k] + 0.5 if v[k] > 0 else 0.0
                row[k] = hi if t > hi else t
    else:
        lo = float(np.iinfo(str(dtype)).min)
        hi = float(np.iinfo(str(dtype)).max)

        def store(v, row, out_code):
            for k in range(v.size):
                t = v[k] + 0.5 if v[k] > 0 else v[k] - 0.5
                t = hi if t > hi else t
                t = lo if t < lo else t
                row[k] = _cvtt_i32(t)
    return store


@njit(cache=True)
def _store_block(vals, out, n1, rlo, nrows, out_code):
    for j in range(nrows):
        o0 = (rlo + j) // n1
        o1 = (rlo + j) - o0 * n1
        _store_values(vals[j], out[o0, o1], out_code)


# --------------------------------------------------------------------------
# Parallel drivers (compiled per dtype pair by _compiled)
# --------------------------------------------------------------------------
# The output rows are split into ``nchunks`` equal contiguous chunks, one
# per thread as with OpenMP's static schedule; each chunk owns its scratch
# and walks its rows in blocks.  Every voxel is computed the same way
# whatever the chunking, so the result does not depend on the thread count.
def _affine3(inp, matrix, offset, out, out_code, order, mode, cval, nchunks):
    n1 = out.shape[1]
    nrows = out.shape[0] * n1
    for chunk in prange(nchunks):
        scratch = _scratch3(out.shape[2])
        table = NO_TABLE
        end = (chunk + 1) * nrows // nchunks
        for r in range(chunk * nrows // nchunks, end, BLOCK):
            n = min(BLOCK, end - r)
            table = _affine3_block(inp, matrix, offset, n1, r, n, scratch, order,
                                   mode, cval, table)
            _store_block(scratch[0], out, n1, r, n, out_code)


def _coords3(inp, c0, c1, c2, out, out_code, order, mode, cval, nchunks):
    n1 = out.shape[1]
    nrows = out.shape[0] * n1
    for chunk in prange(nchunks):
        scratch = _scratch3(out.shape[2])
        table = NO_TABLE
        end = (chunk + 1) * nrows // nchunks
        for r in range(chunk * nrows // nchunks, end, BLOCK):
            n = min(BLOCK, end - r)
            table = _coords3_block(inp, c0, c1, c2, n1, r, n, scratch, order,
                                   mode, cval, table)
            _store_block(scratch[0], out, n1, r, n, out_code)


def _affine2(inp, matrix, offset, out, out_code, order, mode, cval, nchunks):
    n1 = out.shape[1]
    nrows = out.shape[0] * n1
    for chunk in prange(nchunks):
        vals = np.empty((BLOCK, out.shape[2]))
        end = (chunk + 1) * nrows // nchunks
        for r in range(chunk * nrows // nchunks, end, BLOCK):
            n = min(BLOCK, end - r)
            _affine2_block(inp, matrix, offset, n1, r, n, vals, order, mode, cval)
            _store_block(vals, out, n1, r, n, out_code)


def _coords2(inp, c0, c1, out, out_code, order, mode, cval, nchunks):
    n1 = out.shape[1]
    nrows = out.shape[0] * n1
    for chunk in prange(nchunks):
        vals = np.empty((BLOCK, out.shape[2]))
        end = (chunk + 1) * nrows // nchunks
        for r in range(chunk * nrows // nchunks, end, BLOCK):
            n = min(BLOCK, end - r)
            _coords2_block(inp, c0, c1, n1, r, n, vals, order, mode, cval)
            _store_block(vals, out, n1, r, n, out_code)


# --------------------------------------------------------------------------
# Specialisation and threading
# --------------------------------------------------------------------------
_compiled_kernels = {}
_compile_lock = threading.Lock()


def _array_type(dtype, ndim, readonly):
    return types.Array(numba.from_dtype(dtype), ndim, "A", readonly=readonly)


def _compiled(driver, inp, out, n_tables):
    """The driver compiled for ``inp``'s and ``out``'s dtypes.

    The signature types every array as any-layout ('A'); numba converts C/F
    arrays to it when calling (an explicit signature allows no other
    specialisation), so layouts do not multiply the compilations.  Inputs
    are typed read-only so that read-only arrays match too.
    ``n_tables`` float64 arrays (matrix/offset or coordinate arrays) follow
    the input.
    """
    key = (driver.__name__, inp.dtype, out.dtype)
    kernel = _compiled_kernels.get(key)
    if kernel is None:
        with _compile_lock:
            kernel = _compiled_kernels.get(key)
            if kernel is None:
                if driver is _affine3 or driver is _affine2:
                    tables = (_array_type(np.float64, 2, True),
                              _array_type(np.float64, 1, True))
                else:
                    tables = (_array_type(np.float64, 3, True),) * n_tables
                sig = types.void(_array_type(inp.dtype, inp.ndim, True), *tables,
                                 _array_type(out.dtype, 3, False),
                                 types.intp, types.intp, types.intp, types.float64,
                                 types.intp)
                kernel = njit(sig, parallel=True, cache=True, nogil=True)(driver)
                _compiled_kernels[key] = kernel
    return kernel


def _aligned(array):
    # numba's signature is for aligned arrays; unaligned ones (rare: views
    # into byte buffers) are copied.
    return array if array.flags.aligned else array.copy()


def _launch(kernel, nthreads, inp, tables, out, out_code, order, mode, cval):
    target = out if out.flags.aligned else np.empty(out.shape, out.dtype)
    nthreads = max(1, min(int(nthreads), numba.config.NUMBA_NUM_THREADS))
    nchunks = min(nthreads, out.shape[0] * out.shape[1])
    previous = numba.get_num_threads()
    numba.set_num_threads(nthreads)
    try:
        kernel(_aligned(inp), *[_aligned(t) for t in tables], target,
               int(out_code), int(order), int(mode), float(cval), nchunks)
    finally:
        numba.set_num_threads(previous)
    if target is not out:
        out[...] = target


# --------------------------------------------------------------------------
# Entry points (called by medfast.ndimage only; same as the Cython module's)
# --------------------------------------------------------------------------
def affine(inp, in_code, matrix, offset, out, out_code, order, mode, cval,
           nthreads):
    """Resample ``inp`` into ``out`` with an affine map.

    Output voxel ``(o0, o1, k)`` takes the input value at coordinate
    ``((offset[h] + o0*matrix[h, 0]) + o1*matrix[h, 1]) + k*matrix[h, 2]``
    along each input axis h.  Arguments are trusted (validated by
    :mod:`medfast.ndimage`).

    Parameters
    ----------
    inp : numpy.ndarray
        2-D or 3-D input of a kernel dtype (bool viewed as uint8), any
        strides.
    in_code : int
        Input type code; unused (numba specialises on the dtype).
    matrix : numpy.ndarray
        float64, shape ``(inp.ndim, 3)``.
    offset : numpy.ndarray
        float64, shape ``(inp.ndim,)``.
    out : numpy.ndarray
        3-D output view (bool viewed as uint8), any strides; written in
        place.
    out_code : int
        Output type code (medfast._dtypes.OUTPUT_CODES): selects scipy's
        conversion rule.
    order : int
        0 (nearest) or 1 (linear).
    mode : int
        Boundary mode, scipy's NI_ExtendMode code.
    cval : float
        Value outside the input for the constant modes.
    nthreads : int
        Threads to use (capped at ``numba.config.NUMBA_NUM_THREADS``); the
        result does not depend on it.
    """
    if out.size == 0:
        return
    driver = _affine3 if inp.ndim == 3 else _affine2
    kernel = _compiled(driver, inp, out, 2)
    _launch(kernel, nthreads, inp, (matrix, offset), out, out_code, order, mode,
            cval)


def coordinates(inp, in_code, coords, out, out_code, order, mode, cval,
                nthreads):
    """Resample ``inp`` at given coordinates into ``out``.

    Output voxel ``(i, j, k)`` takes the input value at coordinate
    ``coords[h][i, j, k]`` along each input axis h.  Arguments are trusted
    (validated by :mod:`medfast.ndimage`).

    Parameters
    ----------
    inp : numpy.ndarray
        2-D or 3-D input of a kernel dtype (bool viewed as uint8), any
        strides.
    in_code : int
        Input type code; unused (numba specialises on the dtype).
    coords : list of numpy.ndarray
        ``inp.ndim`` float64 arrays shaped like ``out``, any strides
        (broadcast views with zero strides included).
    out : numpy.ndarray
        3-D output view (bool viewed as uint8), any strides; written in
        place.
    out_code : int
        Output type code (medfast._dtypes.OUTPUT_CODES).
    order : int
        0 (nearest) or 1 (linear).
    mode : int
        Boundary mode, scipy's NI_ExtendMode code.
    cval : float
        Value outside the input for the constant modes; also the value at
        NaN or infinite coordinates.
    nthreads : int
        Threads to use (capped at ``numba.config.NUMBA_NUM_THREADS``); the
        result does not depend on it.
    """
    if out.size == 0:
        return
    driver = _coords3 if inp.ndim == 3 else _coords2
    kernel = _compiled(driver, inp, out, inp.ndim)
    _launch(kernel, nthreads, inp, tuple(coords), out, out_code, order, mode,
            cval)

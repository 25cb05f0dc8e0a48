"""Resampling of dask arrays, chunk by chunk: :func:`affine_transform`
and :func:`resample` for volumes larger than memory (e.g. from zarr).

Each output chunk reads only the input region that its transformed
bounding box touches (plus the interpolation margin) and runs medfast's
native core on it; the result has the bytes of the in-memory call.  Dask is
imported on first use: ``pip install "medfast[dask]"``.

How the bytes stay the same: the core computes the input coordinate of
output voxel ``o`` as ``((offset + o0*m0) + o1*m1) + o2*m2``.  Each chunk
evaluates that same expression on its *global* output indices, subtracts
the integer start of its input region (exact: the difference of a
coordinate and a smaller non-negative integer is representable) and
samples the region with :func:`medfast.ndimage.map_coordinates`, whose
interpolation is the affine kernel's.  A region leaving the input along an
axis is cut at the input's edge, so ``constant``, ``grid-constant`` and
``nearest`` see the true edge; for the mirroring and wrapping modes a
chunk whose samples fall outside the input reads the whole extent of the
input along that axis (those modes take values from the far side).
"""
import itertools
import operator

import numpy as np

from . import ndimage
from .orientation import check_affine

__all__ = ["affine_transform", "resample"]

# Input voxels read beyond the bounding box of a chunk's coordinates: the
# linear interpolation's second sample, and a voxel more so that no
# coordinate lies at the region's cut edge whatever its rounding.
_MARGIN = 2
_FAR_SIDE_MODES = ("reflect", "grid-mirror", "mirror", "wrap", "grid-wrap")


def _dask_array():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("medfast.dask needs dask: pip install \"medfast[dask]\"") from None
    return da


def _linear_and_offset(matrix, offset, ndim):
    """(ndim, ndim) matrix and offset from the forms
    :func:`medfast.ndimage.affine_transform` accepts."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise ValueError("matrix must be finite")
    if matrix.ndim == 1:
        matrix = np.diag(matrix)  # the same coordinates as a diagonal matrix
    if matrix.ndim == 2 and matrix.shape in ((ndim, ndim + 1), (ndim + 1, ndim + 1)):
        if matrix.shape[0] == ndim + 1 and not np.all(matrix[ndim] == [0] * ndim + [1]):
            raise ValueError(f"matrix: the bottom row of a homogeneous matrix must be "
                             f"{[0] * ndim + [1]}, got {matrix[ndim].tolist()}")
        offset = matrix[:ndim, ndim]
        matrix = matrix[:ndim, :ndim]
    if matrix.shape != (ndim, ndim):
        raise ValueError(f"matrix must be ({ndim}, {ndim}), ({ndim}, {ndim + 1}), "
                         f"({ndim + 1}, {ndim + 1}) or 1-D for a {ndim}-D input, "
                         f"got shape {matrix.shape}")
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (ndim,)).copy()
    if not np.isfinite(offset).all():
        raise ValueError("offset must be finite")
    return matrix, offset


def _coordinates(matrix, offset, starts, stops, region_starts):
    """Input coordinates of the output voxels ``starts <= o < stops``, as
    the core computes them (same operations, same order), then shifted to
    a region starting at `region_starts` (exact: see the module's notes)."""
    ndim = len(starts)
    shape = tuple(b - a for a, b in zip(starts, stops))
    axes = [np.arange(a, b, dtype=np.float64) for a, b in zip(starts, stops)]
    coords = np.empty((ndim,) + shape)
    for d in range(ndim):
        partial = offset[d] + axes[0] * matrix[d, 0]  # the sum over all but the last axis
        for k in range(1, ndim - 1):
            partial = partial[..., None] + axes[k] * matrix[d, k]
        np.add(partial[..., None], axes[-1] * matrix[d, ndim - 1], out=coords[d])
        coords[d] -= region_starts[d]
    return coords


def _input_region(matrix, offset, starts, stops, in_shape, mode):
    """Slices of the input that the output voxels ``starts <= o < stops``
    need (see the module's notes)."""
    corners = np.array(list(itertools.product(*[(a, b - 1) for a, b in zip(starts, stops)])),
                       dtype=np.float64)
    points = corners @ matrix.T + offset
    low = np.floor(points.min(axis=0)) - _MARGIN
    high = np.floor(points.max(axis=0)) + 1 + _MARGIN
    region = []
    for lo, hi, n in zip(low, high, in_shape):
        if mode in _FAR_SIDE_MODES and (lo < 0 or hi > n):
            region.append(slice(0, n))
            continue
        start = int(min(max(lo, 0), n - 1))
        region.append(slice(start, int(max(min(hi, n), start + 1))))
    return tuple(region)


# Output voxels sampled per map_coordinates call: bounds the coordinate
# arrays (24 bytes per voxel) to 1.5 MiB per chunk being computed.
_SLAB_VOXELS = 1 << 16


def _overlapping_chunks(bounds, region):
    """Per axis, the indices of the input chunks that a region overlaps and,
    for each, the part of it inside the region (chunk-local slices)."""
    out = []
    for b, r in zip(bounds, region):
        first = int(np.searchsorted(b, r.start, side="right")) - 1
        last = int(np.searchsorted(b, r.stop, side="left"))
        out.append([(i, slice(max(r.start, int(b[i])) - int(b[i]),
                              min(r.stop, int(b[i + 1])) - int(b[i])))
                    for i in range(first, last)])
    return out


def _nested(name, per_axis, prefix=()):
    """The keys of the chunks a region reads, as nested lists (np.block's
    layout); `per_axis` as :func:`_overlapping_chunks` gives it."""
    if len(prefix) == len(per_axis):
        return (name,) + prefix
    return [_nested(name, per_axis, prefix + (i,)) for i, _ in per_axis[len(prefix)]]


def _cut(nested, cuts, prefix=()):
    """`nested` chunks (as :func:`_nested` lays them out) each cut to the
    region: ``cuts[d][n]`` is the part of the n-th chunk along axis d."""
    if isinstance(nested, list):
        return [_cut(item, cuts, prefix + (n,)) for n, item in enumerate(nested)]
    return nested[tuple(cuts[d][n] for d, n in enumerate(prefix))]


def _sample_block(chunks, cuts, matrix, offset, starts, stops, region_starts, order, mode, cval,
                  threads):
    """One output chunk: its input region assembled from the `pieces` of
    the input `chunks` (cut by `cuts`), sampled at the chunk's coordinates shifted to the
    region, a slab of output rows at a time."""
    region = _cut(chunks, cuts)
    while isinstance(region, list) and len(region) == 1:  # one chunk: read in place
        region = region[0]
    if isinstance(region, list):
        region = np.block(region)
    shape = tuple(b - a for a, b in zip(starts, stops))
    out = np.empty(shape, dtype=region.dtype)
    rows = max(1, _SLAB_VOXELS // max(1, int(np.prod(shape[1:]))))
    for row in range(0, shape[0], rows):
        last = min(row + rows, shape[0])
        coords = _coordinates(matrix, offset, (starts[0] + row,) + starts[1:],
                              (starts[0] + last,) + stops[1:], region_starts)
        ndimage.map_coordinates(region, coords, out[row:last], order=order, mode=mode,
                                cval=cval, threads=threads)
    return out


def _check_order(order):
    try:
        order = operator.index(order)
    except TypeError:
        raise TypeError(f"order must be 0 or 1, got {order!r}") from None
    if order in (2, 3, 4, 5):
        raise NotImplementedError(
            f"order={order} on dask arrays: spline orders need a prefilter over the whole "
            "input, which chunks cannot reproduce byte for byte; use order 0 or 1, or "
            "medfast.ndimage.affine_transform on an array in memory")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    return order


def affine_transform(image, matrix, offset=0.0, output_shape=None, output_chunks=None,
                     order=1, mode="constant", cval=0.0, *, threads=1):
    """:func:`medfast.ndimage.affine_transform` on a dask array, lazily, chunk by chunk.

    Parameters
    ----------
    image : dask.array.Array or array_like
        2-D or 3-D input (a numpy array is wrapped, one chunk).
    matrix : array_like
        As for :func:`medfast.ndimage.affine_transform`: ``(n, n)``,
        homogeneous ``(n + 1, n + 1)`` or ``(n, n + 1)``, or 1-D (diagonal).
        Output index ``o`` samples the input at ``matrix @ o + offset``.
    offset : float or sequence, optional
    output_shape : tuple of int, optional
        Default: the input's shape.
    output_chunks : tuple of int or tuple of tuples, optional
        Chunks of the result (default: the input's chunk sizes).
    order : {0, 1}, optional
        Nearest or linear (default 1, as ``dask_image.ndinterp``).
    mode : str, optional
        Any of :data:`medfast.ndimage.MODES` (default 'constant').
    cval : float, optional
    threads : int, optional
        Threads of the core per chunk (default 1: dask runs chunks in
        parallel).

    Returns
    -------
    dask.array.Array
        Lazy; computed, it has the bytes of
        ``medfast.ndimage.affine_transform(np.asarray(image), matrix, offset,
        output_shape, order=order, mode=mode, cval=cval)``.  Each output
        chunk depends only on the input chunks its region overlaps.

    Raises
    ------
    NotImplementedError
        For orders 2-5 (their spline prefilter spans the whole input).
    ValueError, TypeError
        For bad arguments (named).

    Examples
    --------
    >>> import dask.array as da, numpy as np               # doctest: +SKIP
    >>> vol = da.from_zarr("big.zarr")                      # doctest: +SKIP
    >>> out = affine_transform(vol, np.diag([0.5, 0.5, 0.5]), output_chunks=(128,) * 3)  # doctest: +SKIP
    >>> out.to_zarr("half_voxels.zarr")                     # doctest: +SKIP
    """
    da = _dask_array()
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    image = image if isinstance(image, da.Array) else da.from_array(np.asarray(image))
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be 2-D or 3-D, got {image.ndim}-D")
    order = _check_order(order)
    if mode not in ndimage.MODES:
        raise ValueError(f"mode {mode!r} is not supported; use one of "
                         + ", ".join(ndimage.MODES))
    matrix, offset = _linear_and_offset(matrix, offset, image.ndim)
    output_shape = tuple(image.shape if output_shape is None
                         else (operator.index(n) for n in output_shape))
    if len(output_shape) != image.ndim or min(output_shape) < 1:
        raise ValueError(f"output_shape must be {image.ndim} positive integers, "
                         f"got {output_shape}")
    if output_chunks is None:
        output_chunks = tuple(max(c) for c in image.chunks)
    chunks = da.core.normalize_chunks(output_chunks, output_shape, dtype=image.dtype)
    out_bounds = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]
    in_bounds = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in image.chunks]
    name = "medfast-affine-" + tokenize(image, matrix, offset, output_shape, chunks, order,
                                         mode, cval, threads)
    graph = {}
    for index in itertools.product(*[range(len(c)) for c in chunks]):
        starts = tuple(int(out_bounds[d][i]) for d, i in enumerate(index))
        stops = tuple(int(out_bounds[d][i + 1]) for d, i in enumerate(index))
        region = _input_region(matrix, offset, starts, stops, image.shape, mode)
        per_axis = _overlapping_chunks(in_bounds, region)
        cuts = [[cut for _, cut in axis] for axis in per_axis]
        graph[(name,) + index] = (_sample_block, _nested(image.name, per_axis), cuts, matrix,
                                  offset, starts, stops,
                                  tuple(r.start for r in region), order, mode, float(cval),
                                  threads)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=[image])
    return da.Array(layers, name, chunks, dtype=image.dtype)


def resample(array, affine, *, like_shape=None, like_affine=None, spacing=None,
             transform=None, order="linear", mode="constant", cval=0.0,
             output_chunks=None, threads=1):
    """:func:`medfast.resample` for a 3-D dask array with its affine.

    Parameters
    ----------
    array : dask.array.Array
        3-D voxel data (e.g. ``dask.array.from_zarr``).
    affine : array_like (4, 4)
        Its voxel -> RAS+ affine.
    like_shape, like_affine : optional
        An explicit output grid (each defaults to the input's own), e.g. a
        reference image's ``spatial_shape`` and ``affine``.
    spacing : float or 3 floats, optional
        New voxel size over the same field of view (as :func:`medfast.resample`).
    transform : array_like (4, 4), optional
        World transform from output to input points (as :func:`medfast.resample`).
    order : {'linear', 'nearest', 1, 0}, optional
    mode, cval : optional
        As for :func:`affine_transform`.
    output_chunks : optional
        Chunks of the result (default: the input's chunk sizes).
    threads : int, optional
        Threads of the core per chunk.

    Returns
    -------
    array : dask.array.Array
        Lazy; computed, the bytes of ``medfast.resample(Image(np.asarray(array),
        affine), ...).array`` with the same grid arguments.
    affine : ndarray (4, 4)
        The output grid's affine.

    Raises
    ------
    NotImplementedError
        For ``order='label'`` (use :func:`medfast.resample` in memory).
    ValueError
        For conflicting or bad grid arguments (as :func:`medfast.resample`).
    """
    from .resample import output_grid

    if order == "label":
        raise NotImplementedError("order='label' on dask arrays is not implemented; "
                                  "use medfast.resample on an array in memory")
    order = {"linear": 1, "nearest": 0}.get(order, order)
    da = _dask_array()
    array = array if isinstance(array, da.Array) else da.from_array(np.asarray(array))
    if array.ndim != 3:
        raise ValueError(f"array must be 3-D, got {array.ndim}-D")
    affine = check_affine(affine, "affine")
    out_shape, out_affine, voxel = output_grid(array.shape, affine, shape=like_shape,
                                               affine=like_affine, spacing=spacing,
                                               transform=transform)
    out = affine_transform(array, voxel[:3, :3], voxel[:3, 3], out_shape,
                           output_chunks=output_chunks, order=order, mode=mode, cval=cval,
                           threads=threads)
    return out, out_affine

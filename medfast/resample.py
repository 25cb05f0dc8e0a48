"""Resampling images in world space: one image onto another grid.

A grid is a spatial shape plus a voxel -> RAS+ affine.  Resampling ``img``
onto a grid (shape ``S``, affine ``A_out``) is a pull: each output voxel
``o`` takes the input value at the input voxel index

    ``V @ [o, 1]``  with  ``V = inv(img.affine) @ W @ A_out``

where ``W`` is an optional world-space transform (identity by default).
``V``'s 3x3 part and offset go to :func:`medfast.ndimage.affine_transform`
(one call per volume, multithreaded over voxels), so the answers are
scipy's - and nibabel's, whose ``resample_from_to`` computes ``V`` the same
way and calls ``scipy.ndimage.affine_transform``.

Conventions
-----------
* ``transform=W`` maps points of the **output** space into the **input**
  space (RAS+ mm), as ITK's resampling transforms do ("fixed to moving").
  A transform estimated the other way round (moving -> fixed) is passed as
  ``invert_transform(W)``.
* ``spacing=`` keeps orientation and the field of view: the new affine's
  columns are the old ones rescaled to the new voxel size, the new shape is
  ``floor(n * old / new + 0.5)`` (at least 1) and the centre of the grid,
  voxel index ``(n - 1) / 2``, stays at the same world point.  (nibabel's
  ``rescale_affine`` keeps the world point of the integer voxel
  ``(n - 1) // 2`` instead; the two agree when ``n - 1`` is even for both
  grids.)
"""
import operator

import numpy as np

from . import ndimage
from ._memory import check_allocation
from ._threads import resolve_threads, run_kernel
from .image import Image
from .orientation import check_affine

__all__ = ["resample", "resample_to", "invert_transform"]

_ORDERS = {"nearest": 0, "linear": 1, "quadratic": 2, "cubic": 3, "label": "label",
           0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5}
_ORDER_CHOICES = "'nearest', 'linear', 'quadratic', 'cubic', 'label' or 0-5"

# A voxel matrix entry this close to an integer is treated as that integer
# when looking for flips/permutations and axis-aligned grids: inv(A) @ B
# leaves rounding noise (~1e-16) where the exact answer is 0 or +-1.  At
# 1e-9 the sample points move by less than 1e-9 * shape voxels.
_SNAP = 1e-9


# --------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------
def _check_image(img, name):
    """``img`` as a medfast.Image: nibabel images (anything with ``dataobj``
    and ``affine``) through Image.from_nibabel, SimpleITK images through
    Image.from_sitk."""
    if isinstance(img, Image):
        return img
    if hasattr(img, "dataobj") and hasattr(img, "affine"):
        return Image.from_nibabel(img)
    if type(img).__module__.split(".")[0] == "SimpleITK":
        return Image.from_sitk(img)
    raise TypeError(f"{name} must be a medfast.Image, a nibabel image or a SimpleITK "
                    f"image, got {type(img).__name__} (for a numpy array, build "
                    "medfast.Image(array, affine))")


def _check_order(order):
    if isinstance(order, (bool, np.bool_)):
        raise TypeError(f"order must be {_ORDER_CHOICES}, got {order!r}")
    key = order
    if not isinstance(order, str):
        try:
            key = operator.index(order)
        except TypeError:
            raise TypeError(f"order must be {_ORDER_CHOICES}, got {order!r}") from None
    if key not in _ORDERS:
        raise ValueError(f"order must be {_ORDER_CHOICES}, got {order!r}")
    return _ORDERS[key]


def _check_spacing(spacing):
    try:
        spacing = np.asarray(spacing, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"spacing must be a number or 3 numbers (mm), got {spacing!r}") from None
    if spacing.ndim == 0:
        spacing = np.full(3, float(spacing))
    if spacing.shape != (3,):
        raise ValueError(f"spacing must be a number or 3 numbers (mm), got shape {spacing.shape}")
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise ValueError(f"spacing must be finite and positive, got {spacing}")
    return spacing


def _check_grid_shape(shape):
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be 3 integers, got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive integers (the spatial shape), got {shape}")
    return shape


def _check_dtype(dtype, default):
    if dtype is None:
        return default.newbyteorder("=")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numpy dtype, got {dtype!r}") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype must be a real numeric dtype, got {dtype}")
    return dtype


def invert_transform(transform):
    """The inverse of a 4x4 world-space transform.

    Use it to pass a transform that maps input (moving) points to output
    (fixed) points: ``resample(img, transform=invert_transform(W))``.

    Parameters
    ----------
    transform : array_like, shape (4, 4)
        An invertible affine transform of RAS+ points (mm).

    Returns
    -------
    ndarray, shape (4, 4), float64

    Raises
    ------
    ValueError
        If `transform` is not a finite, invertible 4x4 affine.
    """
    return np.linalg.inv(check_affine(transform, "transform"))


# --------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------
def _spacing_grid(spatial_shape, in_affine, spacing):
    """Shape, affine and exact voxel matrix of the grid with voxel size
    `spacing` covering the input's field of view (centre kept, axes kept)."""
    old_shape = np.array(spatial_shape, dtype=np.float64)
    old_spacing = np.linalg.norm(in_affine[:3, :3], axis=0)  # as Image.spacing
    zoom = spacing / old_spacing  # input voxels per output voxel, per axis
    new_shape = np.maximum(1, np.floor(old_shape / zoom + 0.5)).astype(np.int64)
    voxel = np.eye(4)
    voxel[:3, :3] = np.diag(zoom)
    voxel[:3, 3] = (old_shape - 1) / 2 - zoom * (new_shape - 1) / 2
    return tuple(int(n) for n in new_shape), in_affine @ voxel, voxel


def output_grid(spatial_shape, in_affine, *, shape=None, affine=None, spacing=None,
                transform=None):
    """The output grid of :func:`resample` and its voxel matrix.

    Parameters
    ----------
    spatial_shape : tuple of 3 int
        The input's spatial shape.
    in_affine : ndarray (4, 4)
        The input's voxel -> RAS+ affine (checked).
    shape, affine, spacing, transform : optional
        As for :func:`resample` (a reference's grid is ``shape=like.spatial_shape,
        affine=like.affine``).

    Returns
    -------
    out_shape : tuple of 3 int
    out_affine : ndarray (4, 4)
    voxel : ndarray (4, 4)
        Output voxel index -> input voxel index (``inv(in_affine) @ W @
        out_affine`` in nibabel's arithmetic, or exact for ``spacing=``),
        with sub-``1e-9`` off-diagonal noise of an axis-aligned grid zeroed.

    Raises
    ------
    ValueError
        Bad or conflicting grid arguments, non-finite voxel matrix.
    """
    voxel = None  # exact voxel matrix when the grid is built from the input's
    if spacing is not None:
        if shape is not None or affine is not None:
            raise ValueError("spacing= chooses the shape and affine itself; do not combine "
                             "it with shape= or affine=")
        out_shape, out_affine, voxel = _spacing_grid(spatial_shape, in_affine,
                                                     _check_spacing(spacing))
    else:
        out_shape = spatial_shape if shape is None else _check_grid_shape(shape)
        out_affine = in_affine if affine is None else check_affine(affine, "affine")
    if transform is not None:
        transform = check_affine(transform, "transform")
        voxel = None
    if voxel is None:
        # nibabel.processing.resample_from_to's arithmetic, operation for
        # operation (inv(A_in).dot(A_out)), so the answers are identical.
        target = out_affine if transform is None else transform.dot(out_affine)
        voxel = np.linalg.inv(in_affine).dot(target)
    if not np.isfinite(voxel).all():
        raise ValueError(f"the voxel matrix is not finite (affines too large?):\n{voxel}")
    return tuple(int(n) for n in out_shape), out_affine, _snap_axis_aligned(voxel)


def _snap_axis_aligned(voxel):
    """Zero the off-diagonal rounding noise of an axis-aligned voxel matrix
    so the core takes its separable path (returns `voxel` unchanged when the
    off-diagonal terms are genuinely non-zero)."""
    linear = voxel[:3, :3]
    off = linear - np.diag(np.diag(linear))
    if np.count_nonzero(off) and np.abs(off).max() < _SNAP:
        voxel = voxel.copy()
        voxel[:3, :3] = np.diag(np.diag(linear))
    return voxel


def _as_view(array, voxel, out_shape):
    """`array` sliced onto the grid, if the voxel matrix only flips, permutes
    and crops axes (integer shifts, every sample inside the array); else None."""
    linear, offset = voxel[:3, :3], voxel[:3, 3]
    rounded, shift = np.rint(linear), np.rint(offset)
    if (np.abs(linear - rounded).max() >= _SNAP or np.abs(offset - shift).max() >= _SNAP
            or not (np.abs(rounded).sum(axis=0) == 1).all()
            or not (np.abs(rounded).sum(axis=1) == 1).all()):
        return None
    source = np.argmax(np.abs(rounded), axis=0)  # input axis read by output axis m
    slices = []
    for m, a in enumerate(source):
        sign, start = int(rounded[a, m]), int(shift[a])
        stop = start + sign * (out_shape[m] - 1)  # last input index read
        if not (0 <= min(start, stop) and max(start, stop) < array.shape[a]):
            return None  # samples outside the array: needs cval, not a view
        if sign > 0:
            slices.append(slice(start, stop + 1))
        else:
            slices.append(slice(start, stop - 1 if stop > 0 else None, -1))
    view = array.transpose(tuple(source) + tuple(range(3, array.ndim)))
    return view[tuple(slices)]


# --------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------
def _frames(array):
    """The 3-D volumes of `array`: itself, or each ``array[..., t]``."""
    if array.ndim == 3:
        return [array]
    return [array[..., t] for t in range(array.shape[3])]


def _allocate(out_shape, n_frames, dtype):
    """Output array; a 4-D one stores each frame contiguously (frame-major
    memory, seen through ``moveaxis``) so the core writes whole blocks."""
    if n_frames is None:
        check_allocation(out_shape, dtype, "resampled image")
        return np.empty(out_shape, dtype=dtype), lambda out: [out]
    check_allocation(out_shape + (n_frames,), dtype, "resampled image")
    store = np.empty((n_frames,) + out_shape, dtype=dtype)
    return np.moveaxis(store, 0, -1), lambda out: list(store)


def _antialias(array, linear):
    """Gaussian smoothing of `array` before downsampling by `linear`.

    The downsampling factor of input axis ``i`` is the length of row ``i``
    of the voxel matrix (input voxels per output voxel; the zoom itself for
    an axis-aligned grid) and ``sigma_i = max(0, (factor_i - 1) / 2)``, the
    formula of scikit-image's ``resize(anti_aliasing=True)``.
    """
    factors = np.linalg.norm(linear, axis=1)
    sigma = np.maximum(0.0, (factors - 1) / 2)
    if not sigma.any():
        return array
    try:
        from scipy.ndimage import gaussian_filter
    except ImportError:
        raise ImportError("antialias=True smooths with scipy.ndimage.gaussian_filter: "
                          "pip install scipy") from None
    work = np.float32 if array.dtype.itemsize <= 2 and array.dtype.kind != "f" else np.float64
    if array.dtype == np.float32:
        work = np.float32
    check_allocation(array.shape, work, "antialias (smoothed copy of the input)")
    sigma = tuple(sigma) + (0.0,) * (array.ndim - 3)  # never across frames
    # mode='nearest': the border is not darkened by zeros from outside.
    return gaussian_filter(array.astype(work, copy=False), sigma, mode="nearest")


# Label dtypes of the one-pass kernel (src/_labels.pyx) and their codes;
# bool is read as uint8, float labels holding whole numbers as int64.
_LABEL_CODES = {np.dtype(t): code for code, t in enumerate(
    (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.uint64))}


def _label_kernels():
    """The compiled one-pass label kernel module, or None if not built."""
    try:
        from . import _labels
    except ImportError:
        return None
    return _labels


def _integer_labels(src):
    """``src`` as labels the kernel reads: integers as they are (bool as
    uint8, byte-swapped data as one native copy), floats holding whole
    numbers as int64; other floats are refused."""
    if src.dtype == np.bool_:
        return src.view(np.uint8)
    if src.dtype.kind == "f":
        whole = np.isfinite(src) & (src == np.round(src))
        if not whole.all():
            bad = src[~whole].flat[0]
            raise ValueError(
                f"order='label' needs integer labels, but img holds non-integer "
                f"values ({src.dtype}, e.g. {bad!r}): an intensity image? use "
                "order='linear' or 'cubic'")
        if src.size and (src.min() < -2.0**63 or src.max() >= 2.0**63):
            raise ValueError("order='label': label values beyond the int64 range")
        return src.astype(np.int64)
    return src if src.dtype.isnative else src.astype(src.dtype.newbyteorder("="))


def _unused_label(labels):
    """A value of ``labels``' dtype that no voxel holds (marks cval), or
    None if the labels fill the whole range of their type."""
    info = np.iinfo(labels.dtype)
    if labels.size == 0:
        return labels.dtype.type(0)
    lo, hi = labels.min(), labels.max()
    if lo > info.min:
        return labels.dtype.type(int(lo) - 1)
    if hi < info.max:
        return labels.dtype.type(int(hi) + 1)
    return None


def _label_resample(src, linear, offset, out, mode, cval, threads):
    """One-hot linear interpolation of the 3-D label map `src` into `out`,
    in one pass over the output (no float volume per label): the time does
    not depend on the number of labels.

    Each output voxel takes, among the labels of its 8 input corners, the
    one of highest summed linear weight (float32, as the reference rounds
    it); ties go to the smaller label, voxels where every weight is 0 get
    `cval`.  Identical to :func:`_label_resample_reference` (every mode,
    any output dtype), which runs only when the compiled kernel is missing
    or for an 8-bit..64-bit map holding every value of its type.
    """
    labels = _integer_labels(src)
    kernels = _label_kernels()
    if kernels is None or labels.size == 0:
        _label_resample_reference(src, linear, offset, out, mode, cval, threads)
        return
    if labels.itemsize < 8 and labels.dtype != out.dtype:
        labels = labels.astype(np.int64)  # room for the cval marker below
    direct = out.dtype == labels.dtype and out.dtype.isnative
    target = out if direct else np.empty(out.shape, labels.dtype)
    fill = np.empty(1, dtype=labels.dtype)
    if direct:
        fill[...] = cval  # converted as the reference's ``out[...] = cval``
    else:
        # computed in the labels' dtype, cval voxels marked by an unused value
        marker = _unused_label(labels)
        if marker is None:
            _label_resample_reference(src, linear, offset, out, mode, cval, threads)
            return
        fill[...] = marker
    run_kernel(kernels.labels, labels, _LABEL_CODES[labels.dtype],
               np.ascontiguousarray(linear, dtype=np.float64),
               np.ascontiguousarray(offset, dtype=np.float64),
               target, fill, ndimage.MODES[mode], threads=resolve_threads(threads))
    if not direct:
        out[...] = target
        out[target == fill[0]] = cval


def _label_resample_reference(src, linear, offset, out, mode, cval, threads):
    """One-hot linear interpolation, one label at a time (the reference of
    :func:`_label_resample`): each label's indicator goes through the
    order-1 core into a float32 volume (one at a time, never one per
    label) and each output voxel keeps the label of highest weight; ties
    go to the smaller label, voxels where every weight is 0 get `cval`."""
    best = np.zeros(out.shape, dtype=np.float32)
    weight = np.empty(out.shape, dtype=np.float32)
    out[...] = cval
    for label in np.unique(src):
        ndimage.affine_transform(src == label, linear, offset, out.shape, weight,
                                 order=1, mode=mode, cval=0.0, threads=threads)
        wins = weight > best
        out[wins] = label
        np.maximum(best, weight, out=best)


def resample(img, *, like=None, spacing=None, shape=None, affine=None,
             transform=None, order="linear", mode="constant", cval=0.0,
             dtype=None, antialias=False, threads=None):
    """Resample an image onto another grid of world space.

    Choose the output grid (spatial shape and voxel -> RAS+ affine) with
    one of: ``like=`` (another image's grid), ``spacing=`` (a new voxel size
    over the same field of view), or ``shape=`` and/or ``affine=`` (an
    explicit grid; each defaults to the input's own).  With none of them the
    grid is the input's (useful with ``transform=``).

    Parameters
    ----------
    img : medfast.Image, nibabel image or SimpleITK image
        The image to resample, 3-D or 4-D (every frame of a 4-D image gets
        the same spatial transform; the number of frames is kept).  nibabel
        and SimpleITK images are converted with ``Image.from_nibabel`` /
        ``Image.from_sitk``; the result is a medfast.Image.
    like : medfast.Image, nibabel image or SimpleITK image, optional
        Reference image whose grid (``like.spatial_shape``, ``like.affine``)
        the output takes.  A 4-D reference is accepted for a 4-D `img` (only
        its spatial grid is used).
    spacing : float or sequence of 3 floats, optional
        New voxel size in mm, isotropic or per voxel axis.  Orientation is
        kept (affine columns rescaled), the new shape is
        ``floor(n * old_spacing / spacing + 0.5)`` (at least 1) and the
        centre of the grid stays at the same world point.
    shape : sequence of 3 ints, optional
        Spatial shape of an explicit output grid (default ``img.spatial_shape``).
    affine : array_like (4, 4), optional
        Voxel -> RAS+ affine of an explicit output grid (default ``img.affine``).
    transform : array_like (4, 4), optional
        World-space (RAS+ mm) affine transform mapping points of the
        **output** space to points of the **input** space (the ITK
        convention).  Pass ``invert_transform(W)`` for a transform going the
        other way.  Default: identity.
    order : {'linear', 'nearest', 'quadratic', 'cubic', 'label', 0-5}, optional
        'linear' (1) interpolation, 'nearest' (0) neighbour (for label maps),
        B-splines of order 2-5 ('cubic' is 3, scipy's default; prefiltered,
        scipy's bytes), or 'label': each label interpolated linearly as a
        one-hot channel, the label of highest weight wins (smooth
        boundaries; ties go to the smaller label).  'label' needs integer
        labels (a float array holding whole numbers is accepted).
    mode : str, optional
        Boundary mode of :func:`medfast.ndimage.affine_transform`
        (default 'constant': `cval` outside the input).
    cval : float, optional
        Value outside the input for the 'constant' modes.
    dtype : numpy dtype, optional
        Output dtype; default the input's (as scipy: linear interpolation of
        integer data is rounded back to integers).  E.g. ``np.float32``.
    antialias : bool, optional
        Smooth with a Gaussian before downsampling (interpolating orders 1-5):
        ``sigma = max(0, (factor - 1) / 2)`` per input axis, as in
        scikit-image, where ``factor`` is the number of input voxels per
        output voxel along that axis.
    threads : int, optional
        Threads for the core (default: every available core).

    Returns
    -------
    medfast.Image
        The resampled image, with the output grid's affine and `img`'s meta.
        When the grid is a flip/permutation/crop of the input grid (the voxel
        matrix is a signed permutation with integer shifts, all samples
        inside), the array is a **view** of ``img.array`` (no copy; exact
        values, which is what interpolation gives there too).  The frames of
        a 4-D result are each contiguous in memory (``moveaxis`` of a
        frame-major array).

    Raises
    ------
    TypeError
        `img`/`like` not an Image; non-numeric arguments; complex data.
    ValueError
        Conflicting grid arguments (``like=`` with ``spacing=``/``shape=``/
        ``affine=``; ``spacing=`` with ``shape=``/``affine=``); singular or
        non-finite `affine`/`transform`; a 4-D reference for a 3-D image;
        unknown `order` or `mode`; non-positive spacing or shape;
        ``antialias`` with a non-linear order.
    MemoryError
        If the output grid cannot fit in the available memory (checked
        before allocating; the message gives the size).

    Examples
    --------
    >>> import numpy as np, medfast
    >>> img = medfast.Image(np.zeros((10, 10, 10), np.float32), np.diag([2, 2, 2, 1]))
    >>> medfast.resample(img, spacing=1.0).shape
    (20, 20, 20)
    """
    img = _check_image(img, "img")
    order = _check_order(order)
    if mode not in ndimage.MODES:
        raise ValueError(f"mode {mode!r} is not supported; use one of {', '.join(ndimage.MODES)}")
    if like is not None and (spacing is not None or shape is not None or affine is not None):
        raise ValueError("like= gives the whole output grid; do not combine it with "
                         "spacing=, shape= or affine=")
    if antialias and order in (0, "label"):
        raise ValueError("antialias=True smooths intensities and needs an interpolating "
                         "order ('linear', 'cubic', 1-5); smoothing labels would invent "
                         "new ones")
    out_dtype = _check_dtype(dtype, img.dtype)
    if np.iscomplexobj(img.array):
        raise TypeError(f"img: complex data ({img.dtype}) is not supported; resample "
                        "the real and imaginary parts separately")

    if like is not None:
        like = _check_image(like, "like")
        if like.ndim > img.ndim:
            raise ValueError(f"like: a {like.ndim}-D reference for a {img.ndim}-D image; "
                             "pass a 3-D reference (only its spatial grid is used)")
        shape, affine = like.spatial_shape, like.affine
    out_shape, out_affine, voxel = output_grid(img.spatial_shape, img.affine, shape=shape,
                                               affine=affine, spacing=spacing,
                                               transform=transform)

    if out_dtype == img.dtype and order != "label" and not antialias:
        view = _as_view(img.array, voxel, out_shape)
        if view is not None:
            return img.replace(array=view, affine=out_affine)

    linear, offset = voxel[:3, :3], voxel[:3, 3]
    source = _antialias(img.array, linear) if antialias else img.array
    out, frames_of = _allocate(out_shape, img.shape[3] if img.is_4d else None, out_dtype)
    for src, dst in zip(_frames(source), frames_of(out)):
        if order == "label":
            _label_resample(src, linear, offset, dst, mode, cval, threads)
        else:
            ndimage.affine_transform(src, linear, offset, out_shape, dst, order=order,
                                     mode=mode, cval=cval, threads=threads)
    return img.replace(array=out, affine=out_affine)


def resample_to(img, reference, **kwargs):
    """Resample `img` onto the grid of `reference`.

    Same as ``resample(img, like=reference, **kwargs)``.

    Parameters
    ----------
    img : medfast.Image
        The image to resample.
    reference : medfast.Image
        The image whose spatial shape and affine the output takes.
    **kwargs
        Any other keyword of :func:`resample` (``order``, ``mode``, ``cval``,
        ``dtype``, ``transform``, ``antialias``, ``threads``).

    Returns
    -------
    medfast.Image
    """
    return resample(img, like=reference, **kwargs)

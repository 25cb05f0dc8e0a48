"""Axis codes, reorientation, and the LPS <-> RAS world conventions.

Pure functions over arrays, 4x4 affines and axis codes.  An affine maps a
voxel index ``(i, j, k)`` to RAS+ millimetres; its axis codes name, for each
voxel axis, the world direction it grows towards (``'RAS'``: i to the Right,
j Anterior, k Superior; ``'LPS'``, ``'PSR'``, ... 48 in all).

Reorienting only flips and permutes the first three axes, so the array
returned is always a view of the input (no copy) with a new affine; trailing
axes (time in a 4-D image) stay where they are.  The closest axes of an
oblique affine are chosen by :func:`nibabel.orientations.io_orientation`, so
every answer here equals nibabel's.
"""
import numpy as np

from ._nifti import pack_dim_info, unpack_dim_info

__all__ = ["aff2axcodes", "check_axcodes", "check_affine", "reorient_array",
           "reorient", "as_canonical", "LPS_TO_RAS", "lps_to_ras_affine",
           "ras_to_lps_affine", "lps_to_ras_points", "ras_to_lps_points",
           "lps_to_ras_transform", "ras_to_lps_transform"]

#: For each world axis, the code of its negative and of its positive
#: direction (nibabel's default labels).
AXIS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
_CODE_TO_AXIS = {code: (axis, sign) for axis, pair in enumerate(AXIS_LABELS)
                 for code, sign in zip(pair, (-1, 1))}


def _orientations():
    # Imported on first use: nibabel adds ~60 ms to `import medfast`, which
    # the command line and array-only users need not pay.
    from nibabel import orientations
    return orientations


# --------------------------------------------------------------------------
# Axis codes
# --------------------------------------------------------------------------
def check_axcodes(codes):
    """Validate and normalise axis codes.

    Parameters
    ----------
    codes : str or sequence of str
        Three codes, one per voxel axis, naming one direction of each world
        axis: ``'RAS'``, ``'lps'``, ``('P', 'S', 'R')``.  Case is ignored.

    Returns
    -------
    str
        The codes in upper case, e.g. ``'RAS'``.

    Raises
    ------
    TypeError
        If `codes` is not a string or a sequence of strings.
    ValueError
        If `codes` does not name each of the three world axes exactly once.
    """
    try:
        text = "".join(codes).upper()
    except TypeError:
        raise TypeError(
            f"codes must be a string such as 'RAS', got {codes!r}") from None
    axes = [_CODE_TO_AXIS.get(c, (None, 0))[0] for c in text]
    if len(text) != 3 or sorted(axes, key=str) != [0, 1, 2]:
        raise ValueError(
            f"codes must name each world axis once, one of L/R, one of P/A and "
            f"one of I/S (e.g. 'RAS', 'LPS', 'PSR'), got {codes!r}")
    return text


def check_affine(affine, name="affine"):
    """Validate a voxel -> world affine and return it as a new float64 array.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        The affine to check.
    name : str, optional
        The argument's name, used in error messages.

    Returns
    -------
    ndarray, shape (4, 4), float64
        A copy of `affine`, with its last row exactly ``[0, 0, 0, 1]``.

    Raises
    ------
    TypeError
        If `affine` is not numeric.
    ValueError
        If `affine` is not 4x4, holds NaN or infinity, has a last row other
        than ``[0, 0, 0, 1]`` (to 1e-9), or is singular (a voxel axis of zero
        length, or axes that are parallel to within rounding).
    """
    try:
        affine = np.array(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 4x4 array of numbers, got {affine!r}") from None
    if affine.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 matrix, got shape {affine.shape}")
    if not np.isfinite(affine).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf):\n{affine}")
    if not np.allclose(affine[3], [0, 0, 0, 1], rtol=0, atol=1e-9):
        raise ValueError(f"{name} must have [0, 0, 0, 1] as its last row, got {affine[3]}")
    affine[3] = [0, 0, 0, 1]
    # Singular as io_orientation sees it: on the unit-length voxel axes, a
    # singular value below rounding level means a direction is lost.
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    singular = np.linalg.svd(affine[:3, :3] / np.where(norms > 0, norms, 1),
                             compute_uv=False)
    if norms.min() == 0 or singular.min() <= singular.max() * 3 * np.finfo(float).eps:
        raise ValueError(
            f"{name} is singular (voxel sizes {norms}): a voxel axis has no "
            f"direction of its own in world space:\n{affine}")
    return affine


def _io_orientation(affine):
    """nibabel's ``(3, 2)`` orientation of `affine`: for each voxel axis, the
    closest world axis and the sign (+1 towards R/A/S, -1 towards L/P/I)."""
    ornt = _orientations().io_orientation(affine)
    if np.isnan(ornt).any():  # excluded by check_affine; never guess an axis
        raise ValueError(f"affine has no closest orientation:\n{affine}")
    return ornt.astype(np.intp)


def aff2axcodes(affine):
    """Axis codes of the world directions closest to each voxel axis.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Voxel index -> RAS+ world affine.

    Returns
    -------
    str
        Three codes, e.g. ``'RAS'``: the same letters as
        ``nibabel.aff2axcodes(affine)`` (which returns them as a tuple).
        For an oblique affine each voxel axis gets the closest world axis,
        chosen as :func:`nibabel.orientations.io_orientation` does.

    Raises
    ------
    ValueError
        If `affine` is not 4x4 or is singular.
    """
    ornt = _io_orientation(check_affine(affine))
    return "".join(AXIS_LABELS[axis][int(sign > 0)] for axis, sign in ornt)


# --------------------------------------------------------------------------
# Reorientation: a flip/permutation view and the matching affine
# --------------------------------------------------------------------------
def _transform(affine, codes):
    """For each new voxel axis ``m``: the old axis it reads and whether it
    runs backwards along it (``source[m]``, ``flipped[m]``)."""
    ornt = _io_orientation(affine)  # old axis -> (world axis, sign)
    old_axis_of_world = np.argsort(ornt[:, 0])
    source = np.empty(3, dtype=np.intp)
    flipped = np.empty(3, dtype=bool)
    for m, code in enumerate(codes):
        world_axis, sign = _CODE_TO_AXIS[code]
        source[m] = old_axis_of_world[world_axis]
        flipped[m] = ornt[source[m], 1] != sign
    return source, flipped


def reorient_array(array, affine, codes):
    """Flip and permute the first three axes of `array` to the orientation `codes`.

    Parameters
    ----------
    array : ndarray, at least 3-D
        Voxel data indexed ``(i, j, k, ...)``; axes after the third are kept
        in place.
    affine : array_like, shape (4, 4)
        Voxel index -> RAS+ world affine of `array`.
    codes : str
        Target axis codes, e.g. ``'RAS'`` or ``'LPS'`` (see :func:`check_axcodes`).

    Returns
    -------
    view : ndarray
        A view of `array` (it shares its memory; nothing is copied).
    new_affine : ndarray, shape (4, 4)
        The affine of `view`: every voxel keeps its world position,
        ``new_affine @ [n, 1] == affine @ [o, 1]`` where ``view[n]`` is
        ``array[o]``.

    Raises
    ------
    ValueError
        If `array` has fewer than 3 dimensions, `affine` is not 4x4 or is
        singular, or `codes` is not a valid orientation.
    """
    codes = check_axcodes(codes)
    affine = check_affine(affine)
    if array.ndim < 3:
        raise ValueError(f"array must have at least 3 dimensions, got {array.ndim}")
    source, flipped = _transform(affine, codes)
    # View: take old axis source[m] as new axis m, reversed where flipped.
    view = array.transpose(tuple(source) + tuple(range(3, array.ndim)))
    view = view[tuple(slice(None, None, -1) if f else slice(None) for f in flipped)]
    # index_map takes a new voxel index to the old one: old[source[m]] is
    # new[m], or (n - 1) - new[m] along a flipped axis of n voxels.
    index_map = np.zeros((4, 4))
    index_map[3, 3] = 1.0
    for m, (old, f) in enumerate(zip(source, flipped)):
        index_map[old, m] = -1.0 if f else 1.0
        index_map[old, 3] = array.shape[old] - 1 if f else 0.0
    return view, affine @ index_map


def reorient(img, codes):
    """Reorient an image to the axis codes `codes` by flipping and permuting axes.

    Parameters
    ----------
    img : medfast.Image
        The image (3-D or 4-D; a 4-D image keeps its last axis last).  Only
        ``img.array``, ``img.affine``, ``img.meta`` and ``img.replace`` are
        used, so this module needs no import of :mod:`medfast.image` (the
        layer above).
    codes : str
        Any of the 48 orientations, e.g. ``'RAS'``, ``'LPS'``, ``'PSR'``.

    Returns
    -------
    medfast.Image
        An image whose array is a view of ``img.array`` (no copy) and whose
        affine places every voxel at the same world position as before; its
        ``orientation`` is `codes`.  `img` itself when it is already in that
        orientation.  The data and affine equal nibabel's
        ``img.as_reoriented(ornt_transform(io_orientation(affine),
        axcodes2ornt(codes)))``, oblique images included.
        ``meta`` is passed through, except that NIfTI ``dim_info`` (the
        frequency, phase and slice axes, ``meta['nifti']['dim_info']`` as
        :func:`medfast.load` keeps it) is renumbered to the new axes, as
        nibabel's ``as_reoriented`` does.
    """
    codes = check_axcodes(codes)
    array, affine = reorient_array(img.array, img.affine, codes)
    if np.array_equal(affine, img.affine):
        return img  # already in that orientation (nibabel does the same)
    return img.replace(array=array, affine=affine,
                       meta=_reorient_dim_info(img.meta, img.affine, codes))


def _reorient_dim_info(meta, affine, codes):
    """`meta` with NIfTI ``dim_info`` renumbered for the axes of `codes`;
    `meta` itself when it holds none."""
    nifti = meta.get("nifti")
    dim_info = nifti.get("dim_info") if isinstance(nifti, dict) else None
    if not dim_info:
        return meta
    source, _ = _transform(affine, codes)  # new axis m is old axis source[m]
    new_axis = np.argsort(source)  # old axis -> new axis
    fields = [int(new_axis[field - 1]) + 1 if field else 0  # 0 stays unknown
              for field in unpack_dim_info(dim_info)]
    return {**meta, "nifti": {**nifti, "dim_info": pack_dim_info(*fields)}}


def as_canonical(img):
    """The image in the RAS orientation closest to its own (a view, no copy).

    Equal to ``nibabel.as_closest_canonical`` (data and affine), 4-D images
    included.  See :func:`reorient`.

    Parameters
    ----------
    img : medfast.Image

    Returns
    -------
    medfast.Image
    """
    return reorient(img, "RAS")


# --------------------------------------------------------------------------
# World conventions: LPS+ (DICOM, ITK, SimpleITK) <-> RAS+ (NIfTI, nibabel)
# --------------------------------------------------------------------------
#: The one place the convention change is written: x and y change sign.
#: It is its own inverse.  Affines convert as ``LPS_TO_RAS @ A``; a
#: world-space transform ``W`` (point to point) as ``LPS_TO_RAS @ W @ LPS_TO_RAS``.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS.flags.writeable = False


def lps_to_ras_affine(affine):
    """Convert a voxel -> LPS+ affine (DICOM, ITK) to voxel -> RAS+ (NIfTI).

    Parameters
    ----------
    affine : array_like, shape (4, 4)

    Returns
    -------
    ndarray, shape (4, 4)
        ``LPS_TO_RAS @ affine``.
    """
    return LPS_TO_RAS @ check_affine(affine)


def ras_to_lps_affine(affine):
    """Convert a voxel -> RAS+ affine (NIfTI) to voxel -> LPS+ (DICOM, ITK).

    Parameters
    ----------
    affine : array_like, shape (4, 4)

    Returns
    -------
    ndarray, shape (4, 4)
        ``LPS_TO_RAS @ affine`` (the flip is its own inverse).
    """
    return lps_to_ras_affine(affine)


def lps_to_ras_points(points):
    """Convert LPS+ world points (DICOM, ITK) to RAS+ (NIfTI).

    Parameters
    ----------
    points : array_like, shape (..., 3)
        One point per row: ``(x, y, z)`` in millimetres.

    Returns
    -------
    ndarray, shape (..., 3)
        The same points with x and y negated (float64).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3), got {points.shape}")
    return points * LPS_TO_RAS.diagonal()[:3]


def ras_to_lps_points(points):
    """Convert RAS+ world points (NIfTI) to LPS+ (DICOM, ITK).

    Parameters
    ----------
    points : array_like, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3)
        The same points with x and y negated (float64).
    """
    return lps_to_ras_points(points)


def lps_to_ras_transform(transform):
    """Convert a world-space transform of LPS+ points (ITK) to one of RAS+ points.

    Parameters
    ----------
    transform : array_like, shape (4, 4)
        An affine map of LPS+ points to LPS+ points (mm), e.g. an ITK
        ``AffineTransform`` as ``x -> M @ x + offset``.

    Returns
    -------
    ndarray, shape (4, 4)
        ``LPS_TO_RAS @ transform @ LPS_TO_RAS``: the same map, expressed on
        RAS+ points (convert the point in, apply, convert the result back).

    Raises
    ------
    ValueError
        If `transform` is not a finite, invertible 4x4 affine.
    """
    return LPS_TO_RAS @ check_affine(transform, "transform") @ LPS_TO_RAS


def ras_to_lps_transform(transform):
    """Convert a world-space transform of RAS+ points to one of LPS+ points (ITK).

    Parameters
    ----------
    transform : array_like, shape (4, 4)

    Returns
    -------
    ndarray, shape (4, 4)
        ``LPS_TO_RAS @ transform @ LPS_TO_RAS`` (the flip is its own inverse).
    """
    return lps_to_ras_transform(transform)

"""``Image``: voxel data plus the affine that places it in the patient.

An image is three things, checked once when it is made:

* ``array``: the voxels, a numpy array indexed ``(i, j, k)`` or
  ``(i, j, k, t)``, held as given (never copied);
* ``affine``: a 4x4 float64 matrix taking a voxel index to RAS+ millimetres
  (the NIfTI/nibabel convention; see :mod:`medfast.orientation` for LPS);
* ``meta``: a dict of header fields and acquisition metadata.

Images are immutable by convention: functions return new images (often
sharing the array, as :func:`medfast.reorient` does) rather than changing
one.  Conversions to and from nibabel share the data instead of copying it.
"""
import operator
from collections.abc import Mapping

import numpy as np

from .orientation import aff2axcodes, check_affine

__all__ = ["Image"]

# Largest dimension a NIfTI-1 header can store (a signed 16-bit integer).
_NIFTI1_MAX_DIM = 32767


def _check_array(array):
    array = np.asanyarray(array)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"array: dtype {array.dtype} is not a numeric type")
    if array.ndim not in (3, 4):
        raise ValueError(
            f"array must be 3-D (i, j, k) or 4-D (i, j, k, t), got {array.ndim}-D "
            f"with shape {array.shape}")
    return array


class Image:
    """A 3-D or 4-D image: voxel data and its voxel -> RAS+ world affine.

    Parameters
    ----------
    array : array_like
        Voxel data, indexed ``(i, j, k)`` or ``(i, j, k, t)``; any numeric
        dtype (bool, integer, floating, complex), any memory layout.  A numpy
        array (or memmap) is kept as is, not copied.
    affine : array_like, shape (4, 4)
        Maps a voxel index ``[i, j, k, 1]`` to RAS+ millimetres
        ``[x, y, z, 1]``.  Stored as a read-only float64 copy.
    meta : mapping, optional
        Header fields and acquisition metadata (stored as a new dict).

    Raises
    ------
    TypeError
        If `array` is not numeric, `affine` not numbers, or `meta` not a mapping.
    ValueError
        If `array` is not 3-D or 4-D, or `affine` is not a finite,
        invertible 4x4 affine (see :func:`medfast.orientation.check_affine`).

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 2.0, 3.0, 1.0]))
    >>> img.orientation, img.spacing
    ('RAS', array([2., 2., 3.]))
    """

    __slots__ = ("_array", "_affine", "_meta")

    def __init__(self, array, affine, meta=None):
        self._array = _check_array(array)
        affine = check_affine(affine)
        affine.flags.writeable = False  # shared freely between images
        self._affine = affine
        if meta is None:
            meta = {}
        if not isinstance(meta, Mapping):
            raise TypeError(f"meta must be a mapping (dict), got {type(meta).__name__}")
        self._meta = dict(meta)

    # ------------------------------------------------------------------
    # The three parts
    # ------------------------------------------------------------------
    @property
    def array(self):
        """ndarray: the voxel data, indexed ``(i, j, k[, t])``."""
        return self._array

    @property
    def affine(self):
        """ndarray, shape (4, 4): voxel index -> RAS+ mm (read-only float64)."""
        return self._affine

    @property
    def meta(self):
        """dict: header fields and acquisition metadata."""
        return self._meta

    def replace(self, *, array=None, affine=None, meta=None):
        """A new image with some parts replaced (the others are shared).

        Parameters
        ----------
        array, affine, meta : optional
            New parts; None keeps this image's.

        Returns
        -------
        Image
        """
        return Image(self._array if array is None else array,
                     self._affine if affine is None else affine,
                     self._meta if meta is None else meta)

    # ------------------------------------------------------------------
    # Derived geometry
    # ------------------------------------------------------------------
    @property
    def shape(self):
        """tuple of int: the array's shape."""
        return self._array.shape

    @property
    def spatial_shape(self):
        """tuple of int: the first three dimensions ``(ni, nj, nk)``."""
        return self._array.shape[:3]

    @property
    def ndim(self):
        """int: 3, or 4 for a series of volumes."""
        return self._array.ndim

    @property
    def is_4d(self):
        """bool: whether the image has a fourth (e.g. time) axis."""
        return self._array.ndim == 4

    @property
    def dtype(self):
        """numpy.dtype: the data type of the voxels."""
        return self._array.dtype

    @property
    def spacing(self):
        """ndarray, shape (3,): voxel size in mm along i, j, k.

        The lengths of the affine's first three columns (as nibabel's
        ``header.get_zooms()`` for the spatial axes).
        """
        return np.linalg.norm(self._affine[:3, :3], axis=0)

    @property
    def origin(self):
        """ndarray, shape (3,): RAS+ position in mm of voxel ``(0, 0, 0)``."""
        return self._affine[:3, 3].copy()

    @property
    def orientation(self):
        """str: axis codes of the closest world directions, e.g. ``'RAS'``.

        See :func:`medfast.aff2axcodes`.
        """
        return aff2axcodes(self._affine)

    def __repr__(self):
        def numbers(values):
            return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
        meta = f", meta={sorted(self._meta)}" if self._meta else ""
        return (f"Image(shape={self.shape}, dtype={self.dtype}, "
                f"orientation={self.orientation!r}, "
                f"spacing={numbers(self.spacing)}, origin={numbers(self.origin)}"
                f"{meta})")

    # ------------------------------------------------------------------
    # nibabel
    # ------------------------------------------------------------------
    @classmethod
    def from_nibabel(cls, img):
        """Wrap a nibabel image, sharing its data.

        Parameters
        ----------
        img : nibabel.spatialimages.SpatialImage
            E.g. a ``Nifti1Image`` (from ``nibabel.load`` or built in memory).

        Returns
        -------
        Image
            ``array`` is ``np.asanyarray(img.dataobj)``: the same array object
            for an in-memory image, a memory map for an uncompressed unscaled
            file (nothing read until used), and the decoded data otherwise.
            ``affine`` is ``img.affine``.  For NIfTI images ``meta`` keeps the
            header's ``qform_code`` and ``sform_code``.

        Raises
        ------
        TypeError
            If `img` is not a nibabel spatial image.
        ValueError
            If it has no affine, or is not 3-D/4-D.
        """
        if not (hasattr(img, "dataobj") and hasattr(img, "affine")):
            raise TypeError(
                f"img must be a nibabel image (e.g. Nifti1Image), got {type(img).__name__}")
        if img.affine is None:
            raise ValueError("img has no affine: its voxels have no place in world space")
        meta = {}
        header = getattr(img, "header", None)
        for key in ("qform_code", "sform_code"):
            try:
                meta[key] = operator.index(header[key])
            except (KeyError, TypeError, ValueError):
                pass  # not a NIfTI header
        return cls(np.asanyarray(img.dataobj), img.affine, meta)

    def to_nibabel(self):
        """A nibabel NIfTI image holding this image's array (not a copy).

        Returns
        -------
        nibabel.Nifti1Image or nibabel.Nifti2Image
            Its ``dataobj`` is ``self.array`` itself; sform and qform are set
            from ``self.affine`` with the codes in ``meta['sform_code']`` /
            ``meta['qform_code']``, 1 ('scanner') where absent.  NIfTI-2 when a
            dimension exceeds NIfTI-1's limit of 32767.

        Raises
        ------
        TypeError
            If the dtype cannot be stored in NIfTI (bool, float16): convert
            first, e.g. ``img.replace(array=img.array.astype(np.uint8))``.
        """
        import nibabel

        kind = (nibabel.Nifti2Image if max(self.shape) > _NIFTI1_MAX_DIM
                else nibabel.Nifti1Image)
        try:
            # An explicit dtype: nibabel refuses int64 data without one.
            out = kind(self._array, self._affine, dtype=self._array.dtype)
        except nibabel.spatialimages.HeaderDataError as error:
            raise TypeError(f"array: dtype {self.dtype} cannot be stored in "
                            f"NIfTI ({error}); convert it with astype first") from None
        # update_affine=False: keep the exact float64 affine in memory (the
        # header's copy is float32, as the NIfTI format stores it).
        out.set_sform(self._affine, code=int(self._meta.get("sform_code", 1)),
                      update_affine=False)
        out.set_qform(self._affine, code=int(self._meta.get("qform_code", 1)),
                      update_affine=False)
        return out

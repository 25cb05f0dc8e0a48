"""``Image``: voxel data plus the affine that places it in the patient.

An image is three things, checked once when it is made:

* ``array``: the voxels, a numpy array indexed ``(i, j, k)`` or
  ``(i, j, k, t)``, held as given (never copied);
* ``affine``: a 4x4 float64 matrix taking a voxel index to RAS+ millimetres
  (the NIfTI/nibabel convention; see :mod:`medfast.orientation` for LPS);
* ``meta``: a dict of header fields and acquisition metadata.

Images are immutable by convention: functions return new images (often
sharing the array, as :func:`medfast.reorient` does) rather than changing
one.  Conversions to and from nibabel share the data instead of copying it;
conversions to and from SimpleITK (LPS+, imported on first use) copy it once.
"""
import operator
from collections.abc import Mapping

import numpy as np

from ._nifti import NIFTI1_MAX_DIM
from .orientation import (aff2axcodes, check_affine, lps_to_ras_affine,
                          ras_to_lps_affine)

__all__ = ["Image"]

# Largest deviation of the direction cosines from orthonormal accepted by
# to_sitk: well above the rounding of a float32 NIfTI sform (~1e-7), far
# below any real shear.
_ORTHOGONAL_TOL = 1e-5


#: Colour voxels (NIfTI RGB24, datatype 128): one (R, G, B) byte triplet
#: per voxel, as nibabel reads them.
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def _check_array(array):
    array = np.asanyarray(array)
    if array.dtype.kind not in "biufc" and array.dtype != RGB24:
        raise TypeError(f"array: dtype {array.dtype} is not a numeric type (or RGB24)")
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

        kind = (nibabel.Nifti2Image if max(self.shape) > NIFTI1_MAX_DIM
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

    # ------------------------------------------------------------------
    # SimpleITK
    # ------------------------------------------------------------------
    @classmethod
    def from_sitk(cls, img):
        """Convert a SimpleITK image (LPS+, array ``(z, y, x)``) to an Image.

        Parameters
        ----------
        img : SimpleITK.Image
            A 2-D, 3-D or 4-D scalar image.  A 2-D image gets a third axis
            of length 1 (as :func:`medfast.load` does for 2-D files).

        Returns
        -------
        Image
            ``array`` is ``sitk.GetArrayFromImage(img).T`` (one copy, then a
            transposed view): indexed ``(i, j, k[, t])`` = SimpleITK's
            ``(x, y, z[, t])`` index, Fortran-contiguous.  ``affine`` is
            SimpleITK's voxel -> LPS+ geometry (``Direction`` times
            ``Spacing``, then ``Origin``) converted to RAS+.  ``meta`` holds
            ``'sitk_metadata'`` (the image's metadata dictionary, str -> str,
            when not empty) and, for a 4-D image, ``'sitk_time'`` (origin
            and spacing of the fourth axis); :meth:`to_sitk` writes them back.

        Raises
        ------
        ImportError
            If SimpleITK is not installed.
        TypeError
            If `img` is not a SimpleITK image.
        ValueError
            If `img` is a vector (multi-component) image, has another
            dimension, or (4-D) its direction mixes the fourth axis with
            space.
        """
        sitk = _simpleitk()
        if not isinstance(img, sitk.Image):
            raise TypeError(f"img must be a SimpleITK.Image, got {type(img).__name__}")
        ndim = img.GetDimension()
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(
                f"img is a vector image ({img.GetNumberOfComponentsPerPixel()} components "
                f"per voxel, {img.GetPixelIDTypeAsString()}); only scalar images convert: "
                f"select a component with sitk.VectorIndexSelectionCast, or stack them "
                f"with sitk.JoinSeries into a 4-D image")
        if ndim not in (2, 3, 4):
            raise ValueError(f"img is {ndim}-D; only 2-D, 3-D and 4-D images convert")
        direction = np.array(img.GetDirection(), dtype=np.float64).reshape(ndim, ndim)
        spacing = np.array(img.GetSpacing(), dtype=np.float64)
        origin = np.array(img.GetOrigin(), dtype=np.float64)
        if ndim == 4 and not (np.array_equal(direction[3], [0, 0, 0, 1])
                              and np.array_equal(direction[:3, 3], [0, 0, 0])):
            raise ValueError(f"img: the fourth axis of a 4-D image must be apart from "
                             f"space (direction row and column 4 equal to [0, 0, 0, 1]), "
                             f"got direction\n{direction}")
        # The array is (z, y, x[, ...]) in C order; .T is the (x, y, z) view.
        array = sitk.GetArrayFromImage(img).T
        lps = np.eye(4)
        n = min(ndim, 3)  # a 2-D image: z keeps the identity
        lps[:n, :n] = direction[:n, :n] * spacing[:n]
        lps[:n, 3] = origin[:n]
        if ndim == 2:
            array = array[:, :, np.newaxis]
        meta = {}
        keys = img.GetMetaDataKeys()
        if keys:
            meta["sitk_metadata"] = {key: img.GetMetaData(key) for key in keys}
        if ndim == 4:
            meta["sitk_time"] = (float(origin[3]), float(spacing[3]))
        return cls(array, lps_to_ras_affine(lps), meta)

    def to_sitk(self):
        """Convert to a SimpleITK image (LPS+, array ``(z, y, x)``).

        Returns
        -------
        SimpleITK.Image
            A 3-D (or 4-D) scalar image of the same dtype with ``Origin``,
            ``Spacing`` and ``Direction`` from ``self.affine`` converted to
            LPS+.  The data are copied once (SimpleITK owns its buffer), from
            ``np.ascontiguousarray(self.array.T)``: no extra copy for a
            Fortran-ordered array (as :func:`medfast.load` gives; a
            big-endian array is converted to native order on the way).  A 4-D
            image becomes a 4-D scalar image (not a vector image) whose
            fourth axis has origin and spacing ``meta['sitk_time']`` when
            present, else origin 0 and spacing the NIfTI TR
            (``meta['nifti']['pixdim'][4]``) when positive, else 1.
            ``meta['sitk_metadata']`` is written to its metadata dictionary.

        Raises
        ------
        ImportError
            If SimpleITK is not installed.
        TypeError
            If SimpleITK cannot hold the dtype (bool, float16): convert it
            first, e.g. ``img.replace(array=img.array.astype(np.uint8))``.
        ValueError
            If the affine has a shear (non-perpendicular voxel axes): a
            SimpleITK image holds only an orthonormal direction and a
            spacing (resample onto a grid without shear first, e.g.
            ``medfast.resample(img, like=reference)``; ``spacing=`` keeps
            the shear).
        """
        sitk = _simpleitk()
        lps = ras_to_lps_affine(self._affine)
        spacing = np.linalg.norm(lps[:3, :3], axis=0)
        direction = lps[:3, :3] / spacing
        error = np.abs(direction.T @ direction - np.eye(3)).max()
        if error > _ORTHOGONAL_TOL:
            raise ValueError(
                f"affine has a shear (its voxel axes are not perpendicular: direction "
                f"cosines deviate from orthonormal by {error:.3g}); SimpleITK's "
                f"Direction and Spacing cannot represent it:\n{self._affine}")
        try:
            # (native byte order: SimpleITK refuses big-endian arrays)
            data = np.ascontiguousarray(self._array.T, dtype=self.dtype.newbyteorder("="))
            out = sitk.GetImageFromArray(data, isVector=False)
        except (TypeError, RuntimeError) as error:
            raise TypeError(f"array: dtype {self.dtype} cannot be stored in SimpleITK "
                            f"({error}); convert it with astype first") from None
        if self.is_4d:
            t_origin, t_spacing = self._time_axis()
            direction4 = np.eye(4)
            direction4[:3, :3] = direction
            out.SetDirection(direction4.ravel().tolist())
            out.SetSpacing(spacing.tolist() + [t_spacing])
            out.SetOrigin(lps[:3, 3].tolist() + [t_origin])
        else:
            out.SetDirection(direction.ravel().tolist())
            out.SetSpacing(spacing.tolist())
            out.SetOrigin(lps[:3, 3].tolist())
        for key, value in (self._meta.get("sitk_metadata") or {}).items():
            out.SetMetaData(str(key), str(value))
        return out

    def _time_axis(self):
        """Origin and spacing of the fourth axis for SimpleITK."""
        if "sitk_time" in self._meta:
            origin, spacing = self._meta["sitk_time"]
            return float(origin), float(spacing)
        nifti = self._meta.get("nifti")
        try:
            tr = float(nifti["pixdim"][4])
        except (TypeError, KeyError, IndexError, ValueError):
            tr = 0.0
        return 0.0, (tr if np.isfinite(tr) and tr > 0 else 1.0)


def _simpleitk():
    try:
        import SimpleITK
    except ImportError:
        raise ImportError(
            "SimpleITK is needed for Image.from_sitk/to_sitk: "
            "pip install SimpleITK (or pip install \"medfast[compare]\")") from None
    return SimpleITK

"""NIfTI-1/2 headers from untrusted bytes: what they declare, checked.

nibabel parses the fields; this module refuses what cannot describe an image
before anything is allocated or mapped (a dim out of range, an unknown
datatype, a data offset inside the header or not a number), reads the
extensions itself (their bytes, never a parsed object that might fail), and
runs nibabel's own checks once, each problem a warning naming the file
(nibabel logs them, once per parse, on its ``nibabel.global`` logger).
"""
import math
import warnings
from typing import NamedTuple

import numpy as np

__all__ = ["HEAD_BYTES", "Layout", "layout", "parse", "best_affine", "scaling"]

#: Bytes that hold the fixed part of either header and the extension flag.
HEAD_BYTES = 548
# nibabel's problem levels: from 40 it raises, from 30 it logs (WARNING).
_ERROR_LEVEL = 40
_WARN_LEVEL = 30


class Layout(NamedTuple):
    """Where a NIfTI file's voxels are, as its fixed header declares.

    Attributes
    ----------
    klass : type
        ``nibabel.Nifti1Header`` or ``nibabel.Nifti2Header``.
    endianness : str
        ``'<'`` or ``'>'``.
    shape : tuple of int
        The data shape, every length positive.
    dtype : numpy.dtype
        The stored voxel type, in the file's byte order.
    offset : int
        Byte at which the voxels start.
    """
    klass: type
    endianness: str
    shape: tuple
    dtype: np.dtype
    offset: int

    @property
    def nbytes(self):
        """Bytes from the start of the file to the end of the voxels."""
        return self.offset + math.prod(self.shape) * self.dtype.itemsize


def _header_class(head, path):
    from nibabel import Nifti1Header, Nifti2Header

    if len(head) < Nifti1Header.sizeof_hdr:
        raise ValueError(f"{path}: not a NIfTI file ({len(head)} bytes; a NIfTI "
                         f"header alone is 348)")
    for klass in (Nifti1Header, Nifti2Header):
        for order, code in (("little", "<"), ("big", ">")):
            if int.from_bytes(bytes(head[:4]), order) == klass.sizeof_hdr:
                if len(head) < klass.sizeof_hdr:
                    raise ValueError(f"{path}: truncated NIfTI-2 header ({len(head)} "
                                     f"bytes of {klass.sizeof_hdr})")
                return klass, code
    size = min(int.from_bytes(bytes(head[:4]), order) for order in ("little", "big"))
    raise ValueError(f"{path}: not a NIfTI-1 or NIfTI-2 file (header size field "
                     f"{size}, expected 348 or 540)")


def _shape(header, path):
    ndim = int(header["dim"][0])
    if not 1 <= ndim <= 7:
        raise ValueError(f"{path}: invalid NIfTI header (dim[0] is {ndim}, the number "
                         f"of dimensions must be 1 to 7)")
    from nibabel.spatialimages import HeaderDataError

    try:
        shape = header.get_data_shape()  # with FreeSurfer's long-vector layouts
    except HeaderDataError as error:
        raise ValueError(f"{path}: invalid NIfTI header ({error})") from None
    for axis, length in enumerate(shape, 1):
        if length < 1:
            raise ValueError(f"{path}: invalid NIfTI header (dim[{axis}] is {length}; "
                             f"lengths must be positive)")
    return shape


def _dtype(header, path):
    from nibabel.spatialimages import HeaderDataError

    code = int(header["datatype"])
    try:
        dtype = header.get_data_dtype()
    except (KeyError, HeaderDataError):
        dtype = None
    if dtype is None or dtype.itemsize == 0:
        raise ValueError(f"{path}: invalid NIfTI header (unknown or unsupported "
                         f"datatype {code})")
    return dtype


def _offset(header, path):
    value = header["vox_offset"].item()
    if not math.isfinite(value):
        raise ValueError(f"{path}: invalid NIfTI header (vox_offset is {value})")
    first = header.single_vox_offset  # the fixed header and the extension flag
    if value < first:
        raise ValueError(f"{path}: invalid NIfTI header (vox_offset {value:g} lies inside "
                         f"the header; the data start at byte {first} at the earliest)")
    return int(value)


def layout(head, path):
    """What the fixed header at the start of `head` declares, checked.

    Parameters
    ----------
    head : bytes-like
        The first :data:`HEAD_BYTES` bytes of the file (fewer if it is
        shorter).
    path : str
        Named in errors.

    Returns
    -------
    Layout

    Raises
    ------
    ValueError
        If `head` is not a single-file NIfTI-1/2 header or declares no
        readable image: the message names `path` and the field.
    """
    klass, endianness = _header_class(head, path)
    header = klass(bytes(head[:klass.sizeof_hdr]), endianness, check=False)
    magic = header["magic"].item()
    if magic in (b"ni1", b"ni2"):
        raise ValueError(f"{path}: not a single-file NIfTI (magic {magic!r}); a "
                         f".hdr/.img pair is not supported")
    if magic != header.single_magic:
        raise ValueError(f"{path}: not a NIfTI file (magic {magic!r}, expected "
                         f"{header.single_magic!r})")
    return Layout(klass, endianness, _shape(header, path), _dtype(header, path),
                  _offset(header, path))


def _extensions(block, start, layout_, path):
    """[(code, bytes)] of the extensions in block[start:offset]."""
    out, end = [], layout_.offset
    if not block[start - 4]:
        return out  # the extension flag is not set
    pos, word = start, np.dtype(layout_.endianness + "i4")
    while end - pos >= 16:  # nibabel's rule: a shorter rest is padding
        size, code = (int(v) for v in np.frombuffer(block, word, 2, pos))
        if size < 8 or pos + size > end:
            raise ValueError(f"{path}: invalid NIfTI header extension at byte {pos} "
                             f"(size {size}; {end - pos} bytes left before the data)")
        if size % 16:
            warnings.warn(f"{path}: NIfTI header extension at byte {pos}: size {size} "
                          f"is not a multiple of 16")
        # Trailing NULs are padding (nibabel strips them too).
        out.append((code, bytes(block[pos + 8:pos + size]).rstrip(b"\0")))
        pos += size
    return out


def parse(layout_, block, path):
    """The whole header: nibabel's, checked once, and the extensions.

    Parameters
    ----------
    layout_ : Layout
        From :func:`layout`.
    block : bytes-like
        The file's first ``layout_.offset`` bytes.
    path : str
        Named in warnings and errors.

    Returns
    -------
    header : nibabel.Nifti1Header or nibabel.Nifti2Header
        With nibabel's fixes applied (as ``nibabel.load`` applies them:
        negative voxel sizes made positive, unknown form codes set to 0...).
    extensions : list of (int, bytes)

    Raises
    ------
    ValueError
        If an extension overruns the data offset.

    Warns
    -----
    UserWarning
        Once for each problem nibabel's checks report at warning level.
    """
    from nibabel.batteryrunners import BatteryRunner

    klass = layout_.klass
    header = klass(bytes(block[:klass.sizeof_hdr]), layout_.endianness, check=False)
    extensions = _extensions(block, klass.single_vox_offset, layout_, path)
    header, reports = BatteryRunner(klass._get_checks()).check_fix(header)
    for report in reports:
        if report.problem_level >= _ERROR_LEVEL:  # what layout() does not refuse
            raise ValueError(f"{path}: invalid NIfTI header ({report.problem_msg})")
        if report.problem_level >= _WARN_LEVEL:
            warnings.warn(f"{path}: {report.message}")
    return header, extensions


def best_affine(header, path):
    """nibabel's ``get_best_affine()``, refused unless finite.

    Raises
    ------
    ValueError
        If the chosen transform (sform, qform or voxel sizes) holds NaN or
        infinite values, or its quaternion is invalid; the message names it.
    """
    if header["sform_code"] > 0:
        source = "sform (srow_x/y/z)"
    elif header["qform_code"] > 0:
        source = "qform (quatern_b/c/d, qoffset_x/y/z, pixdim)"
    else:
        source = "pixdim"
    with np.errstate(all="ignore"):
        try:
            affine = header.get_best_affine()
        except ValueError as error:  # an impossible quaternion
            raise ValueError(f"{path}: invalid NIfTI header: the {source} gives no "
                             f"affine ({error})") from None
    if not np.isfinite(affine).all():
        raise ValueError(f"{path}: invalid NIfTI header: the {source} gives an affine "
                         f"with NaN or infinite values")
    return affine


def scaling(header, path):
    """(slope, inter) as nibabel reads them: (None, None) for no scaling.

    Raises
    ------
    ValueError
        If the slope is valid but the intercept is not finite.
    """
    from nibabel.spatialimages import HeaderDataError

    with np.errstate(all="ignore"):
        try:
            return header.get_slope_inter()
        except HeaderDataError as error:
            raise ValueError(f"{path}: invalid NIfTI header ({error})") from None


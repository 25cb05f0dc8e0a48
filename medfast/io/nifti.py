"""NIfTI (``.nii``, ``.nii.gz``) and MGH (``.mgh``, ``.mgz``) files <-> :class:`Image`.

nibabel does the header logic (parsing, qform/sform arithmetic, its
checks); medfast does the bytes: a ``.nii.gz`` is decompressed (ISA-L's igzip
when installed, member by member in two threads for the blocked files medfast
writes, see :mod:`medfast.io._gzip`) into a buffer that the returned array is
a view of, and written as header bytes + data bytes through blocked gzip, to
a temporary file that replaces the target only once complete.

Files are untrusted (:mod:`medfast.io._nifti_header`): the header is checked
before anything is allocated or mapped, and decompression stops at the bytes
it declares (plus 1 MiB to see what follows), so a gzip bomb costs what its
image costs; data after the image are ignored with a warning.

What ``meta`` holds after :func:`load` of a NIfTI file (plain Python values,
so the dict can be copied, compared, pickled or dumped to JSON but for the
``extensions`` bytes):

* ``meta['qform_code']``, ``meta['sform_code']``: as :meth:`Image.from_nibabel`;
* ``meta['nifti']``: the other header fields, see :data:`NIFTI_FIELDS`.

:func:`save` writes them back.  The header geometry (quaternion, qoffset,
qfac, srow, voxel sizes) is restored exactly when ``img.affine`` is still the
affine the file gave; when the affine changed (e.g. after resampling), sform
and qform are both set from ``img.affine`` with the codes in ``meta``.
"""
import io
import math
import os
import warnings

import numpy as np

from .._memory import check_allocation
from ..image import Image
from . import _gzip, _nifti_header
from ._atomic import atomic_write
from ._paths import existing_path

__all__ = ["load", "save", "NIFTI_FIELDS"]

#: Keys of ``meta['nifti']`` (all optional when saving):
#:
#: ``version`` (1 or 2), ``on_disk_dtype`` (numpy dtype name of the stored
#: voxels, e.g. ``'int16'`` when the array is scaled float), ``scl_slope`` /
#: ``scl_inter`` (floats, None when the file has no scaling), ``pixdim``
#: (8 floats: qfac, the voxel sizes, then **TR** at index 4 for 4-D images, in
#: the time unit of ``xyzt_units``), ``xyzt_units`` (NIfTI code: mm = 2,
#: seconds = 8, so 10 = mm + s), ``intent_code``, ``intent_params`` (3 floats),
#: ``intent_name``, ``descrip``, ``aux_file`` (str), ``dim_info``,
#: ``slice_code``, ``slice_start``, ``slice_end``, ``slice_duration``,
#: ``toffset``, ``cal_min``, ``cal_max``, the raw qform ``quatern`` (b, c, d),
#: ``qoffset`` (x, y, z) and the ``srow`` rows (3 x 4), and ``extensions``
#: (list of ``(code, bytes)``).
NIFTI_FIELDS = ("version", "on_disk_dtype", "scl_slope", "scl_inter", "pixdim",
                "xyzt_units", "intent_code", "intent_params", "intent_name",
                "descrip", "aux_file", "dim_info", "slice_code", "slice_start",
                "slice_end", "slice_duration", "toffset", "cal_min", "cal_max",
                "quatern", "qoffset", "srow", "extensions")
_NUMBER_FIELDS = ("xyzt_units", "intent_code", "dim_info", "slice_code", "slice_start",
                  "slice_end", "slice_duration", "toffset", "cal_min", "cal_max")
_TEXT_FIELDS = ("descrip", "aux_file", "intent_name")
_MGH_FIELDS = ("tr", "flip_angle", "te", "ti")

# Extension -> (format, gzip-compressed).  Longest first.
_FORMATS = ((".nii.gz", "nifti", True), (".nii", "nifti", False),
            (".mgz", "mgh", True), (".mgh", "mgh", False))
_SUPPORTED = ".nii, .nii.gz, .mgh and .mgz"
_DICOM_EXTS = (".dcm", ".dicom", ".ima")
_DICOM_HINT = "read DICOM with medfast.load or medfast.load_dicom"
# Largest dimension of a NIfTI-1 header (a signed 16-bit integer).
_NIFTI1_MAX_DIM = 32767


# --------------------------------------------------------------------------
# Formats and errors
# --------------------------------------------------------------------------
def _format(path):
    name = path.lower()
    for ext, fmt, gz in _FORMATS:
        if name.endswith(ext):
            return fmt, gz
    return None, None


def _extension(path):
    base = os.path.basename(path)
    return base[base.find("."):] if "." in base else "no extension"


def is_dicom_file(path):
    """True for a path named like DICOM (``.dcm``, ``.dcm.gz``, ``.ima``...)
    or a file with the DICOM Part 10 marker."""
    if path.lower().endswith(_DICOM_EXTS) or path.lower().endswith(
            tuple(e + ".gz" for e in _DICOM_EXTS)):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"  # the DICOM Part 10 preamble


def _unsupported(path, verb):
    if path.lower().endswith(_DICOM_EXTS) or (verb == "load" and is_dicom_file(path)):
        return ValueError(f"{path}: a DICOM file; {_DICOM_HINT}")
    return ValueError(f"{path}: unsupported format ({_extension(path)}); "
                      f"medfast.{verb} handles {_SUPPORTED}")


# --------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------
def load(path):
    """Read a NIfTI-1/2 or MGH image.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``, ``.nii.gz``, ``.mgh`` or ``.mgz`` file.  The content is
        trusted over the name for compression: a gzip stream named ``.nii``
        (or an uncompressed file named ``.nii.gz``) is read all the same.

    Returns
    -------
    Image
        ``array`` has nibabel's semantics, ``np.asanyarray(img.dataobj)``:
        when the header has no scaling (``scl_slope`` 0/NaN/1 and
        ``scl_inter`` 0/NaN) the voxels keep their on-disk dtype (int16
        stays int16); otherwise they are scaled, ``raw * slope + inter``,
        as float64.  For uncompressed files the array is a copy-on-write
        memory map (nothing is read until used); for ``.nii.gz`` it is a
        writeable view of the decompressed buffer (no copy).  The array is indexed
        ``(i, j, k[, t])``: a 2-D file gets a third axis of length 1, and
        trailing axes of length 1 beyond the fourth are dropped.  Colour
        files (NIfTI RGB24, datatype 128, as dcm2niix writes colour DICOM)
        give the structured dtype :data:`medfast.image.RGB24`, one
        ``(R, G, B)`` byte triplet per voxel.
        ``affine`` is nibabel's ``img.affine`` (the sform when its code is
        set, else the qform, else the voxel sizes).  ``meta`` holds the
        header fields (see the module docstring and :data:`NIFTI_FIELDS`)
        that :func:`save` writes back; for MGH files ``meta['mgh']`` holds
        ``tr``, ``flip_angle``, ``te`` and ``ti``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If `path` is a folder or a DICOM file (not supported yet), has an
        unsupported extension, or is corrupt or truncated, or its header
        declares no readable image (the message names the file and what is
        wrong).
    MemoryError
        If the image the header declares cannot fit in the memory available
        (refused before anything is allocated).
    TypeError
        If the voxel type cannot be held by an :class:`Image` (e.g. RGBA).

    Warns
    -----
    UserWarning
        For data after the image the header declares (ignored, as nibabel
        ignores them; of a gzip stream, no more than 1 MiB past the image is
        ever decompressed), and for each header problem nibabel reports
        (e.g. an unknown qform code, set to 0): one warning each, naming
        the file.

    Examples
    --------
    >>> import medfast
    >>> img = medfast.load("t1.nii.gz")                      # doctest: +SKIP
    >>> img.array.dtype, img.meta["nifti"]["pixdim"][4]      # doctest: +SKIP
    (dtype('int16'), 0.0)
    """
    path = existing_path(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; {_DICOM_HINT}")
    fmt, _ = _format(path)
    if fmt is None:
        raise _unsupported(path, "load")
    with open(path, "rb") as f:
        gz = _gzip.is_gzip(f.read(2))
        f.seek(0)
        if fmt == "mgh":
            return _load_mgh(f, path, gz)
        if gz:
            return _load_nii_gz(f, path)
        return _load_nii(f, path)  # memory-mapped


def _inflate(f, path, size, tail=_gzip.TAIL_BYTES):
    try:
        return _gzip.read(f, size, tail)
    except _gzip.CorruptGzipError as error:
        raise ValueError(f"{path}: {error}") from None


def _reserve(f, path, nbytes, shape, dtype):
    """Refuse, before allocating, a gzip file's image that its compressed
    size cannot hold or the memory available cannot fit."""
    size = os.fstat(f.fileno()).st_size
    if nbytes > size * _gzip.MAX_RATIO:
        raise ValueError(f"{path}: truncated: the header describes {nbytes} bytes "
                         f"(shape {shape}, {dtype}), more than {size} bytes of gzip "
                         f"data can hold")
    check_allocation(shape, dtype, what=path)


def _truncated(path, layout, holds):
    return ValueError(f"{path}: truncated: the header describes {layout.nbytes} bytes "
                      f"(shape {layout.shape}, {layout.dtype}), {holds}")


def _load_nii_gz(f, path):
    layout = _nifti_header.layout(_inflate(f, path, _nifti_header.HEAD_BYTES, 0).data, path)
    _reserve(f, path, layout.nbytes, layout.shape, layout.dtype)
    found = _inflate(f, path, layout.nbytes)
    if len(found.data) < layout.nbytes:
        rest = f"; then {found.garbage} bytes that are not gzip" if found.garbage else ""
        raise _truncated(path, layout, f"the gzip data hold {len(found.data)}{rest}")
    header, extensions = _nifti_header.parse(layout, found.data[:layout.offset], path)
    if found.extra is None:
        _warn_after(path, layout, f"more than {_gzip.TAIL_BYTES} bytes, not decompressed")
    elif found.extra:
        _warn_after(path, layout, f"{found.extra} bytes")
    if found.garbage:
        warnings.warn(f"{path}: {found.garbage} bytes after the end of the gzip data; "
                      f"ignored")
    # A view of the decompressed bytes: NIfTI voxels are in Fortran order.
    raw = np.ndarray(layout.shape, layout.dtype, buffer=found.data, offset=layout.offset,
                     order="F")
    return _nifti_image(raw, header, extensions, path)


def _load_nii(f, path):
    layout = _nifti_header.layout(f.read(_nifti_header.HEAD_BYTES), path)
    size = os.fstat(f.fileno()).st_size
    if size < layout.nbytes:
        raise _truncated(path, layout, f"the file holds {size}")
    f.seek(0)
    header, extensions = _nifti_header.parse(layout, f.read(layout.offset), path)
    if size > layout.nbytes:
        _warn_after(path, layout, f"{size - layout.nbytes} bytes")
    # What nibabel.load does: a copy-on-write memory map.
    raw = np.memmap(path, layout.dtype, "c", layout.offset, layout.shape, order="F")
    return _nifti_image(raw, header, extensions, path)


def _warn_after(path, layout, what):
    # nibabel reads what the header declares and ignores the rest, silently.
    warnings.warn(f"{path}: data after the {layout.nbytes} bytes the header declares "
                  f"({what}); ignored")


def _nifti_image(raw, header, extensions, path):
    slope, inter = _nifti_header.scaling(header, path)
    affine = _nifti_header.best_affine(header, path)
    if slope is not None or inter is not None:
        check_allocation(raw.shape, np.float64, what=path)
    return _as_image(_scaled(raw, slope, inter), affine,
                     _nifti_meta(header, slope, inter, extensions), path)


def _scaled(raw, slope, inter):
    """The data as ``np.asanyarray(nibabel_img.dataobj)`` gives it (same code)."""
    from nibabel.volumeutils import apply_read_scaling

    slope = np.asanyarray(1.0 if slope is None else slope)
    inter = np.asanyarray(0.0 if inter is None else inter)
    return apply_read_scaling(raw, slope, inter)  # `raw` itself when 1 and 0


def _as_image(array, affine, meta, path):
    # Image wants (i, j, k) or (i, j, k, t): give 2-D files a slice axis,
    # drop trailing singleton axes (NIfTI writers pad dim[] with ones).
    while array.ndim > 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    try:
        return Image(array, affine, meta)
    except (TypeError, ValueError) as error:
        # One line (Image prints a bad affine as a matrix).
        raise type(error)(f"{path}: {' '.join(str(error).split())}") from None


def _text(value):
    # surrogateescape: any bytes round-trip exactly; UTF-8 reads as text.
    return bytes(value).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _nifti_meta(header, slope, inter, extensions):
    from nibabel import Nifti2Header

    if (slope, inter) == (1.0, 0.0):
        slope = inter = None  # same meaning: no scaling
    nifti = {
        "version": 2 if isinstance(header, Nifti2Header) else 1,
        "on_disk_dtype": header.get_data_dtype().newbyteorder("=").name,
        "scl_slope": slope if slope is None else float(slope),
        "scl_inter": inter if inter is None else float(inter),
        "pixdim": [float(v) for v in header["pixdim"]],
        "intent_params": tuple(float(header[f"intent_p{i}"]) for i in (1, 2, 3)),
        "quatern": tuple(float(header[f"quatern_{c}"]) for c in "bcd"),
        "qoffset": tuple(float(header[f"qoffset_{c}"]) for c in "xyz"),
        "srow": [[float(v) for v in header[f"srow_{c}"]] for c in "xyz"],
        "extensions": extensions,
    }
    for key in _NUMBER_FIELDS:
        value = header[key].item()
        nifti[key] = value
    for key in _TEXT_FIELDS:
        nifti[key] = _text(header[key])
    return {"qform_code": int(header["qform_code"]),
            "sform_code": int(header["sform_code"]), "nifti": nifti}


def _load_mgh(f, path, gz):
    from nibabel.freesurfer import mghformat as mgh

    head = _inflate(f, path, mgh.DATA_OFFSET, 0).data if gz else f.read(mgh.DATA_OFFSET)
    if len(head) < mgh.header_dtype.itemsize:
        raise ValueError(f"{path}: not an MGH file ({len(head)} bytes; an MGH header "
                         f"alone is {mgh.header_dtype.itemsize})")
    fields = np.frombuffer(head, mgh.header_dtype, 1)[0]
    shape, code = tuple(int(n) for n in fields["dims"]), int(fields["type"])
    if min(shape) < 1:
        raise ValueError(f"{path}: invalid MGH header (dimensions {shape})")
    if code not in mgh.data_type_codes.value_set("code"):
        raise ValueError(f"{path}: invalid MGH header (unknown data type {code})")
    dtype = mgh.data_type_codes.numpy_dtype[code].newbyteorder(">")
    # The header, the voxels, then the footer that holds TR, flip angle, TE
    # and TI (FreeSurfer's tags may follow: nibabel does not read them).
    end = mgh.DATA_OFFSET + math.prod(shape) * dtype.itemsize
    size = end + mgh.footer_dtype.itemsize
    f.seek(0)
    if gz:
        _reserve(f, path, size, shape, dtype)
        buffer = _inflate(f, path, size, 0).data
        held = len(buffer)
    else:
        held = os.fstat(f.fileno()).st_size
    if held < end:
        raise ValueError(f"{path}: truncated: the header describes {end} bytes (shape "
                         f"{shape}, {dtype}), the data hold {held}")
    if not gz:
        check_allocation(shape, dtype, what=path)
        buffer = np.fromfile(f, np.uint8, size)
    return _mgh_from_buffer(buffer, path)


def _mgh_from_buffer(buffer, path):
    from nibabel.freesurfer.mghformat import MGHImage

    try:
        img = MGHImage.from_bytes(buffer.tobytes())
        array = np.asanyarray(img.dataobj)
    except Exception as error:  # nibabel raises many types for bad files
        raise ValueError(f"{path}: invalid MGH file ({error})") from None
    mgh = {key: float(img.header[key]) for key in _MGH_FIELDS}
    return _as_image(array, img.affine, {"mgh": mgh}, path)


# --------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------
def save(img, path):
    """Write an image as NIfTI (``.nii``, ``.nii.gz``) or MGH (``.mgh``, ``.mgz``).

    Parameters
    ----------
    img : Image
        The image.  Header fields come from ``img.meta`` (as :func:`load`
        fills it; all optional): ``qform_code``/``sform_code`` (default 1,
        'scanner'), ``meta['nifti']`` (:data:`NIFTI_FIELDS`) or
        ``meta['mgh']``.  An :data:`medfast.image.RGB24` array is written
        as NIfTI RGB24 (datatype 128, unscaled).
    path : str or os.PathLike
        The file to write; its extension picks the format.  ``.nii.gz`` and
        ``.mgz`` are a standard gzip stream (level 1, ISA-L igzip when
        installed, two threads from 32 MiB of data).

    Notes
    -----
    * **Scaling.**  When ``meta['nifti']`` has a slope/intercept other than
      1/0 (the array was scaled on load), the voxels are stored as
      ``(array - inter) / slope`` in ``on_disk_dtype`` with that slope and
      intercept, **only if** that reproduces the array exactly on reading;
      otherwise (the values changed, e.g. after resampling) the array is
      stored as it is, unscaled, so no precision is lost.
    * **Geometry.**  If ``img.affine`` is the affine the stored header
      fields give, those fields are written back unchanged; otherwise sform
      and qform are both set from ``img.affine`` (a qform cannot hold shears:
      nibabel drops them there; the sform keeps the exact float32 affine).
    * **Atomic.**  The data go to a temporary file in the same folder that
      replaces `path` once complete: an error or interruption part-way
      leaves `path` as it was and no temporary file.  (No fsync: a power
      cut may still lose the new file.)

    Raises
    ------
    TypeError
        If `img` is not an :class:`Image`, or its dtype cannot be stored in
        the format (NIfTI: bool, float16; MGH: only uint8, int16, int32 and
        float32).
    ValueError
        If the extension is not supported, or a text field of
        ``meta['nifti']`` is longer than the header holds.
    FileNotFoundError
        If the folder of `path` does not exist.
    """
    if not isinstance(img, Image):
        raise TypeError(f"img must be a medfast.Image, got {type(img).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    fmt, gz = _format(path)
    if fmt is None:
        raise _unsupported(path, "save")
    parts = _nifti_parts(img) if fmt == "nifti" else _mgh_parts(img)
    with atomic_write(path) as f:
        if not gz:
            for part in parts:
                f.write(part)
            return
        _gzip.write(f, parts)


def _as_parts(*buffers):
    return [memoryview(b).cast("B") if not isinstance(b, np.ndarray) else b
            for b in buffers]


def _data_bytes(array):
    """The voxels in Fortran order, native byte order: a list of flat uint8
    arrays (one view when the array is Fortran-contiguous, as loaded arrays
    are; else one small copy per 2-D slab, which is faster than a whole
    transposed copy and never doubles the memory)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="), order="F")
    if array.flags.f_contiguous:
        return [array.reshape(-1, order="F").view(np.uint8)]
    # Fortran order: the third index varies fastest after (i, j), then t.
    return [np.asfortranarray(array[(slice(None), slice(None)) + index[::-1]])
            .reshape(-1, order="F").view(np.uint8)
            for index in np.ndindex(array.shape[2:][::-1])]


def _unscale(array, nifti, float_type):
    """On-disk data and (slope, inter) for `array`, or (array, None, None)."""
    slope, inter = nifti.get("scl_slope"), nifti.get("scl_inter")
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else slope
    inter = 0.0 if inter is None or not np.isfinite(inter) else inter
    # The header stores them as float32 (NIfTI-1) or float64 (NIfTI-2).
    slope, inter = float(float_type(slope)), float(float_type(inter))
    disk = nifti.get("on_disk_dtype")
    if (slope, inter) == (1.0, 0.0) or disk is None:
        return array, None, None
    disk = np.dtype(disk)
    if array.dtype.kind not in "fiu" or disk.kind not in "fiu":
        return array, None, None
    with np.errstate(all="ignore"):
        raw = (array.astype(np.float64) - inter) / slope
        if disk.kind in "iu":
            raw = np.rint(raw)
            info = np.iinfo(disk)
            if raw.size and not (info.min <= raw.min() and raw.max() <= info.max):
                return array, None, None  # also catches NaN
        raw = raw.astype(disk)
        from nibabel.volumeutils import apply_read_scaling
        back = apply_read_scaling(raw, np.asanyarray(slope), np.asanyarray(inter))
    if back.dtype == array.dtype and np.array_equal(back, array):
        return raw, slope, inter
    return array, None, None


def _encode(key, text, size):
    data = str(text).encode("utf-8", "surrogateescape")
    if len(data) > size:
        raise ValueError(f"meta['nifti'][{key!r}] is {len(data)} bytes in UTF-8; a "
                         f"NIfTI header holds at most {size}")
    return data


def _stored_geometry(klass, shape, nifti, qcode, scode):
    """A header with the stored geometry fields, or None when they are absent."""
    if not all(key in nifti for key in ("quatern", "qoffset", "srow", "pixdim")):
        return None
    header = klass()
    header.set_data_shape(shape)
    for c, value in zip("bcd", nifti["quatern"]):
        header[f"quatern_{c}"] = value
    for c, value in zip("xyz", nifti["qoffset"]):
        header[f"qoffset_{c}"] = value
    for c, row in zip("xyz", nifti["srow"]):
        header[f"srow_{c}"] = row
    pixdim = header["pixdim"]
    pixdim[:4] = nifti["pixdim"][:4]
    header["pixdim"] = pixdim
    header["qform_code"], header["sform_code"] = qcode, scode
    return header


def _set_geometry(header, img, nifti):
    qcode = int(img.meta.get("qform_code", 1))
    scode = int(img.meta.get("sform_code", 1))
    stored = _stored_geometry(type(header), img.shape, nifti, qcode, scode)
    if stored is not None and np.array_equal(stored.get_best_affine(), img.affine):
        for key in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                    "qoffset_z", "srow_x", "srow_y", "srow_z", "qform_code",
                    "sform_code"):
            header[key] = stored[key]
        pixdim = header["pixdim"]
        pixdim[:4] = stored["pixdim"][:4]
        header["pixdim"] = pixdim
        return
    if qcode == 0 and scode == 0:
        # Codes 0/0 would place the data by voxel size alone: keep them only
        # if that is the image's affine, else say 'scanner' as to_nibabel does.
        fallback = type(header)()
        fallback.set_data_shape(img.shape)
        fallback.set_zooms(tuple(img.spacing) + (1.0,) * (img.ndim - 3))
        if not np.allclose(fallback.get_best_affine(), img.affine, rtol=0, atol=1e-6):
            qcode = scode = 1
    header.set_sform(img.affine, code=scode)
    header.set_qform(img.affine, code=qcode)


def _nifti_parts(img):
    import nibabel
    from nibabel.nifti1 import Nifti1Extension
    from nibabel.spatialimages import HeaderDataError

    nifti = img.meta.get("nifti") or {}
    if not isinstance(nifti, dict):
        raise TypeError(f"meta['nifti'] must be a dict, got {type(nifti).__name__}")
    klass = (nibabel.Nifti2Header
             if nifti.get("version") == 2 or max(img.shape) > _NIFTI1_MAX_DIM
             else nibabel.Nifti1Header)
    header = klass()
    data, slope, inter = _unscale(img.array, nifti, header["scl_slope"].dtype.type)
    try:
        header.set_data_dtype(data.dtype.newbyteorder("="))
    except HeaderDataError as error:
        raise TypeError(f"array: dtype {data.dtype} cannot be stored in NIfTI "
                        f"({error}); convert it with astype first") from None
    header.set_data_shape(data.shape)
    # No scaling: NaN/NaN, as nibabel writes it.
    header.set_slope_inter(slope, inter)
    _set_geometry(header, img, nifti)
    if "pixdim" in nifti:  # TR and the other non-spatial steps
        pixdim = header["pixdim"]
        pixdim[4:] = nifti["pixdim"][4:8]
        header["pixdim"] = pixdim
    for key in _NUMBER_FIELDS:
        if nifti.get(key) is not None:
            header[key] = nifti[key]
    if nifti.get("intent_params") is not None:
        for i, value in zip((1, 2, 3), nifti["intent_params"]):
            header[f"intent_p{i}"] = value
    for key in _TEXT_FIELDS:
        if nifti.get(key) is not None:
            header[key] = _encode(key, nifti[key], header[key].dtype.itemsize)
    for code, content in nifti.get("extensions") or ():
        header.extensions.append(Nifti1Extension(int(code), bytes(content)))
    header["vox_offset"] = 0  # nibabel sets the smallest offset past the extensions
    stream = io.BytesIO()
    header.write_to(stream)
    stream.write(b"\0" * (int(header.get_data_offset()) - stream.tell()))
    return _as_parts(stream.getbuffer(), *_data_bytes(data))


def _mgh_parts(img):
    from nibabel.freesurfer.mghformat import MGHError, MGHImage

    try:
        out = MGHImage(img.array, img.affine)
    except MGHError as error:
        raise TypeError(f"array: dtype {img.dtype} cannot be stored in MGH ({error}); "
                        f"convert it with astype first") from None
    for key, value in (img.meta.get("mgh") or {}).items():
        if key in _MGH_FIELDS:
            out.header[key] = value
    return _as_parts(out.to_bytes())

"""NIfTI-1/2 files (``.nii``, ``.nii.gz``) <-> :class:`Image`: the bytes.

nibabel does the header logic (parsing, qform/sform arithmetic, its
checks); medfast does the bytes: a ``.nii.gz`` is decompressed (ISA-L's igzip
when installed, member by member in two threads for the blocked files medfast
writes, see :mod:`medfast.io._gzip`) into a buffer that the returned array is
a view of; :func:`parts` gives header bytes + data bytes for
:func:`medfast.io.files.save` to write through blocked gzip, to a temporary
file that replaces the target only once complete.

Files are untrusted (:mod:`medfast.io._nifti_header`): the header is checked
before anything is allocated or mapped, and decompression stops at the bytes
it declares (plus 1 MiB to see what follows), so a gzip bomb costs what its
image costs; data after the image are ignored with a warning.

What ``meta`` holds after :func:`medfast.load` of a NIfTI file (plain Python
values, so the dict can be copied, compared, pickled or dumped to JSON but
for the ``extensions`` bytes):

* ``meta['qform_code']``, ``meta['sform_code']``: as :meth:`Image.from_nibabel`;
* ``meta['nifti']``: the other header fields, see :data:`NIFTI_FIELDS`.

:func:`medfast.save` writes them back.  The header geometry (quaternion,
qoffset, qfac, srow, voxel sizes) is restored exactly when ``img.affine`` is
still the affine the file gave; when the affine changed (e.g. after
resampling), sform and qform are both set from ``img.affine`` with the codes
in ``meta``.
"""
import io
import os
import warnings

import numpy as np

from .._memory import check_allocation
from .._nifti import NIFTI1_MAX_DIM, pack_dim_info
from . import _gzip, _nifti_header
from ._read import as_image, inflate, reserve

__all__ = ["read", "parts", "fields_from_meta", "NIFTI_FIELDS"]

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

def read(f, path, gz):
    """The image in the open NIfTI file `f` (gzip-compressed when `gz`).

    See :func:`medfast.io.files.load` for what it returns and raises; a
    ``.nii`` array is a copy-on-write memory map of `f`, a ``.nii.gz`` one a
    view of the decompressed buffer.
    """
    return _load_nii_gz(f, path) if gz else _load_nii(f, path)


def _truncated(path, layout, holds):
    return ValueError(f"{path}: truncated: the header describes {layout.nbytes} bytes "
                      f"(shape {layout.shape}, {layout.dtype}), {holds}")


def _load_nii_gz(f, path):
    layout = _nifti_header.layout(inflate(f, path, _nifti_header.HEAD_BYTES, 0).data, path)
    reserve(f, path, layout.nbytes, layout.shape, layout.dtype)
    found = inflate(f, path, layout.nbytes)
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
    raw = np.memmap(f, layout.dtype, "c", layout.offset, layout.shape, order="F")
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
    return as_image(_scaled(raw, slope, inter), affine,
                     _nifti_meta(header, slope, inter, extensions), path)


def _scaled(raw, slope, inter):
    """The data as ``np.asanyarray(nibabel_img.dataobj)`` gives it (same code)."""
    from nibabel.volumeutils import apply_read_scaling

    slope = np.asanyarray(1.0 if slope is None else slope)
    inter = np.asanyarray(0.0 if inter is None else inter)
    return apply_read_scaling(raw, slope, inter)  # `raw` itself when 1 and 0


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


def fields_from_meta(meta, ndim):
    """The NIfTI header fields dcm2niix sets, from an image's BIDS-style meta.

    Units are mm and s (``xyzt_units`` 10); a 4-D image's
    ``RepetitionTime`` becomes its 4th voxel size (``pixdim[4]``); the
    in-plane phase-encoding direction (``InPlanePhaseEncodingDirectionDICOM``,
    ``'ROW'`` or ``'COL'``) gives ``dim_info``, the slice axis being the 3rd.

    Parameters
    ----------
    meta : dict
        An image's ``meta``.
    ndim : int
        The image's number of axes.

    Returns
    -------
    dict
        ``meta['nifti']`` entries (see :data:`NIFTI_FIELDS`).
    """
    fields = {"xyzt_units": 10}
    tr = meta.get("RepetitionTime")
    if ndim == 4 and tr:
        fields["pixdim"] = [0.0, 0.0, 0.0, 0.0, float(tr), 0.0, 0.0, 0.0]
    direction = meta.get("InPlanePhaseEncodingDirectionDICOM")
    if direction in ("ROW", "COL"):
        phase, freq = (1, 2) if direction == "ROW" else (2, 1)
        fields["dim_info"] = pack_dim_info(freq, phase, 3)
    return fields


def parts(img):
    """The bytes of `img` as a NIfTI file: a list of buffers to write in turn
    (header, then the voxels in Fortran order; see :func:`medfast.save` for
    the rules on scaling and geometry).

    Raises
    ------
    TypeError
        If the dtype cannot be stored in NIfTI (bool, float16).
    ValueError
        If a text field of ``meta['nifti']`` is longer than the header holds.
    """
    import nibabel
    from nibabel.nifti1 import Nifti1Extension
    from nibabel.spatialimages import HeaderDataError

    nifti = img.meta.get("nifti") or {}
    if not isinstance(nifti, dict):
        raise TypeError(f"meta['nifti'] must be a dict, got {type(nifti).__name__}")
    klass = (nibabel.Nifti2Header
             if nifti.get("version") == 2 or max(img.shape) > NIFTI1_MAX_DIM
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

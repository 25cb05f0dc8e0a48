"""What a file or folder holds, from headers only: :func:`describe`.

NIfTI and MGH files: shape, on-disk dtype, voxel size, orientation codes,
affine, qform/sform codes and scaling, read by nibabel without loading the
voxels.  DICOM folders and files: the series table of
:func:`medfast.scan_dicom`, with the files skipped and why.
"""
import os

import numpy as np

from .io._paths import existing_path
from .io import files
from .orientation import aff2axcodes

__all__ = ["describe", "xform_name"]

# NIfTI's names of qform/sform codes (nibabel's xform codes).
_XFORM_NAMES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "talairach", 4: "mni", 5: "template"}


_FORMATS = {"Nifti1Image": "NIfTI-1", "Nifti2Image": "NIfTI-2", "Nifti1Pair": "NIfTI-1 pair",
            "MGHImage": "MGH"}


def _image_file(path):
    import nibabel

    img = nibabel.load(path)  # headers only: the voxels stay on disk
    header = img.header
    shape = [int(n) for n in img.shape]
    affine = np.asarray(img.affine, dtype=np.float64)
    spatial = [float(z) for z in header.get_zooms()[:3]]
    info = {"path": path, "format": _FORMATS.get(type(img).__name__, type(img).__name__),
            "shape": shape, "dtype": str(header.get_data_dtype().newbyteorder("=")),
            "spacing": spatial, "orientation": aff2axcodes(affine),
            "affine": affine.tolist()}
    if "qform_code" in header:
        # nibabel moves the file's scaling from the header to the data proxy
        slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
        scaled = (slope, inter) != (1.0, 0.0)
        info.update({
            "qform_code": int(header["qform_code"]), "sform_code": int(header["sform_code"]),
            "scl_slope": slope if scaled else None, "scl_inter": inter if scaled else None})
    if len(shape) > 3:
        info["frame_time"] = float(header.get_zooms()[3])
    return info


def _dicom(path, progress):
    from .dicom import scan_dicom

    found = scan_dicom(path, progress=progress)
    series = []
    for s in found:
        series.append({"name": s.name, "series_number": s.series_number,
                       "description": s.description, "protocol": s.protocol,
                       "modality": s.modality, "manufacturer": s.manufacturer,
                       "files": s.n_files, "shape": [int(n) for n in s.shape],
                       "spacing": [float(v) for v in s.spacing],
                       "orientation": s.orientation, "problems": [str(p) for p in s.problems]})
    return {"path": path, "format": "DICOM", "series": series,
            "skipped": [{"path": s.path, "reason": s.reason, "kind": s.kind}
                        for s in found.skipped]}


def describe(path, progress=None):
    """Describe an image file or a DICOM folder from its headers.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI (``.nii``, ``.nii.gz``) or MGH (``.mgh``, ``.mgz``) file, or
        a DICOM file or folder.
    progress : callable, optional
        For DICOM: called as ``progress('scan', files_read, files_found)``
        after each file.

    Returns
    -------
    dict
        JSON-ready.  Images: ``format``, ``shape``, ``dtype`` (on disk),
        ``spacing`` (mm, spatial axes), ``orientation`` (axis codes, e.g.
        ``'LPS'``), ``affine`` (voxel -> RAS+, 4x4) and, for NIfTI,
        ``qform_code``, ``sform_code``, ``scl_slope``/``scl_inter`` (None:
        no scaling); ``frame_time`` for 4-D.  DICOM: ``series`` (one dict
        per volume :func:`medfast.scan_dicom` finds) and ``skipped``
        (files not used, with the reason).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not an image nibabel or medfast can read.
    """
    path = existing_path(path)
    if os.path.isdir(path) or _is_dicom(path):
        return _dicom(path, progress)
    try:
        return _image_file(path)
    except Exception as exc:  # nibabel's many exception types, as one line naming the file
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not a readable NIfTI/MGH image ({text})") from None


def xform_name(code):
    """The name of a NIfTI qform/sform code (``1`` -> ``'scanner'``)."""
    return _XFORM_NAMES.get(code, "invalid")


def _is_dicom(path):
    with files.open_sniffed(path) as (_, head):
        return files.is_dicom(path, head)

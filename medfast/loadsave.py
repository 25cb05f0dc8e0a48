"""One entry point for every format: :func:`load`.

It sits above both readers, :mod:`medfast.io` (NIfTI, MGH) and
:mod:`medfast.dicom` (which writes through :mod:`medfast.io`), so neither
imports the other's caller.  A file is opened once: its first bytes decide
between DICOM and the image formats, and the open file goes on to the
reader (nibabel's ``load`` passes its sniff down the same way).
"""
import os

from .dicom import load_dicom
from .io import files
from .io._paths import existing_path

__all__ = ["load"]


def load(path, **dicom_options):
    """Read an image: NIfTI, MGH, or a DICOM file or folder.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``/``.nii.gz``/``.mgh``/``.mgz`` file (see
        :func:`medfast.io.files.load`), or a DICOM file or folder (see
        :func:`medfast.load_dicom`): a folder, a file named ``.dcm``,
        ``.dcm.gz``, ``.ima``..., or any file holding the DICOM Part 10
        marker.
    **dicom_options
        ``series=``, ``correct_tilt=`` for DICOM input.

    Returns
    -------
    Image

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        For unsupported or corrupt files, and DICOM folders holding several
        volumes without ``series=`` (the message lists them).
    TypeError
        For DICOM options given with a NIfTI or MGH file.
    """
    path = existing_path(path)
    if os.path.isdir(path):
        return load_dicom(path, **dicom_options)
    with files.open_sniffed(path) as (f, head):
        if not files.is_dicom(path, head):
            if dicom_options:
                raise TypeError(f"{sorted(dicom_options)}: options for DICOM input only")
            return files.read(f, head, path)
    return load_dicom(path, **dicom_options)

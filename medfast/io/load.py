"""One entry point for every format: :func:`load`."""
import os

from . import nifti
from ._paths import existing_path


def load(path, **dicom_options):
    """Read an image: NIfTI, MGH, or a DICOM file or folder.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``/``.nii.gz``/``.mgh``/``.mgz`` file (see
        :func:`medfast.io.nifti.load`), or a DICOM file or folder (see
        :func:`medfast.load_dicom`).
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
    """
    path = existing_path(path)
    if os.path.isdir(path) or nifti.is_dicom_file(path):
        from ..dicom import load_dicom
        return load_dicom(path, **dicom_options)
    if dicom_options:
        raise TypeError(f"{sorted(dicom_options)}: options for DICOM input only")
    return nifti.load(path)

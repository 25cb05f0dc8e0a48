"""Reading and writing image files: :func:`load` and :func:`save`.

NIfTI-1/2 (``.nii``, ``.nii.gz``, :mod:`medfast.io.nifti`) and FreeSurfer
MGH (``.mgh``, ``.mgz``, :mod:`medfast.io.mgh`), with fast, bounded gzip;
:mod:`medfast.io.files` picks the format.  ITK/ANTs affine transform files:
:func:`load_transform` (:mod:`medfast.io.transforms`).  DICOM is read by
:mod:`medfast.dicom`; :func:`medfast.load` reads every format.
"""
from .files import load, save
from .transforms import load_transform

__all__ = ["load", "save", "load_transform"]

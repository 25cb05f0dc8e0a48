"""Reading and writing images: :func:`load` and :func:`save`.

NIfTI-1/2 (``.nii``, ``.nii.gz``) and FreeSurfer MGH (``.mgh``, ``.mgz``),
with fast gzip (:mod:`medfast.io.nifti`); :func:`load` also reads DICOM
files and folders (:mod:`medfast.dicom`).
ITK/ANTs affine transform files: :func:`load_transform`
(:mod:`medfast.io.transforms`).
"""
from .load import load
from .nifti import save
from .transforms import load_transform

__all__ = ["load", "save", "load_transform"]

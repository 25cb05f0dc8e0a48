"""Reading and writing images: :func:`load` and :func:`save`.

NIfTI-1/2 (``.nii``, ``.nii.gz``) and FreeSurfer MGH (``.mgh``, ``.mgz``),
with fast gzip (:mod:`medfast.io.nifti`).  DICOM is not supported yet.
"""
from .nifti import load, save

__all__ = ["load", "save"]

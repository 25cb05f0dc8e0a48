"""Where the real DICOM validation sets are (importable by the tests)."""
import os
from pathlib import Path

import nibabel as nib
import numpy as np

DEFAULT_QA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom_qa"


def qa_root():
    """The dicom_qa folder (``MEDFAST_DICOM_QA`` overrides the default
    ``../shared/data/dicom_qa`` beside the project), or None if absent."""
    root = Path(os.environ.get("MEDFAST_DICOM_QA", DEFAULT_QA))
    return root if root.is_dir() else None


def canonical(array, affine):
    """(data, affine) brought to closest-canonical RAS by nibabel: how the
    tests compare volumes with dcm2niix's, whatever the axis order."""
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array), affine))
    return np.asanyarray(img.dataobj), img.affine

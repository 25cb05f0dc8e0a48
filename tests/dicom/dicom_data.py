"""Where the real DICOM validation sets are (importable by the tests)."""
import os
from pathlib import Path

DEFAULT_QA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom_qa"


def qa_root():
    """The dicom_qa folder (``MEDFAST_DICOM_QA`` overrides the default
    ``../shared/data/dicom_qa`` beside the project), or None if absent."""
    root = Path(os.environ.get("MEDFAST_DICOM_QA", DEFAULT_QA))
    return root if root.is_dir() else None

"""Shared fixtures for the DICOM tests: the real validation sets."""
import pytest

from dicom_data import DEFAULT_QA, qa_root


@pytest.fixture(scope="session")
def dicom_qa():
    root = qa_root()
    if root is None:
        pytest.skip("DICOM validation data not found: set MEDFAST_DICOM_QA to the "
                    f"dicom_qa folder (default {DEFAULT_QA})")
    return root

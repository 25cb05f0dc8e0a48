"""Real data: every volume dcm2niix wrote is found among medfast's volumes.

Acceptance (issues 4 and 10): after both are brought to closest-canonical
RAS, the same shape, identical values (exact for integers and colour, 1e-4
relative for floats) and affines within 0.05 mm, for all seven sets (79
volumes).  Volumes are matched by content, not by
file name.  References: the stored ``Ref/`` folders, and dcm2niix run live
(PyPI package ``dcm2niix``) on every ``In/`` folder.
"""
from pathlib import Path
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

import medfast

from dicom_data import canonical, qa_root

SETS = ["bits12", "enhanced", "nih", "siemens_orientation", "transfer_syntax", "fmap", "xa30"]
# What dcm2niix writes from each In/ folder: 79 volumes.
COUNTS = {"bits12": 3, "enhanced": 3, "nih": 8, "siemens_orientation": 21,
          "transfer_syntax": 9, "fmap": 14, "xa30": 21}
# The real DICOM kept in the repository (a subset of the sets above), run by
# every fresh clone: tests/data/README.md.
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "dicom_qa"
_cache = {}


def _ours(name, root=None):
    folder = (root or qa_root()) / name / "In"
    if folder not in _cache:
        images = medfast.load_dicom_all(folder)
        _cache[folder] = [(canonical(img.array, img.affine), img) for img in images]
    return _cache[folder]


def _channels(array):
    """RGB24 voxels as a trailing axis of 3 bytes."""
    if array.dtype.names:
        return np.stack([array[name] for name in array.dtype.names], axis=-1)
    return array


def _same_values(ours, ref):
    ours, ref = _channels(ours), _channels(ref)
    if ours.shape != ref.shape:
        return False
    if ours.dtype.kind == "f" or ref.dtype.kind == "f":
        scale = max(float(np.abs(ref).max()), 1e-30)
        return np.allclose(ours, ref, rtol=1e-4, atol=1e-4 * scale)
    return np.array_equal(ours.astype(np.int64), ref.astype(np.int64))


def _check_matches(name, ref_path, root=None):
    ref = nib.load(ref_path)
    ref_data, ref_affine = canonical(np.asanyarray(ref.dataobj), ref.affine)
    seen = []
    for (data, affine), img in _ours(name, root):
        if data.shape != ref_data.shape:
            seen.append(f"{img.meta['dicom_series']}: shape {data.shape}")
            continue
        if not _same_values(data, ref_data):
            seen.append(f"{img.meta['dicom_series']}: values differ")
            continue
        error = float(np.abs(affine - ref_affine).max())
        if error < 0.05:
            return
        seen.append(f"{img.meta['dicom_series']}: affine off by {error:.3g} mm")
    pytest.fail(f"{ref_path.name} ({ref_data.shape}) has no match among medfast's "
                f"volumes: {'; '.join(seen)}")


def _stored_refs():
    root = qa_root()
    if root is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason="DICOM validation data not found (set MEDFAST_DICOM_QA)"))]
    return [pytest.param(name, path, id=f"{name}/{path.name}")
            for name in SETS for path in sorted((root / name / "Ref").glob("*.nii"))
            if (root / name / "Ref").is_dir()]


@pytest.mark.parametrize("name, ref_path", _stored_refs())
def test_matches_stored_reference(name, ref_path):
    _check_matches(name, ref_path)


def _live_dcm2niix(folder, out):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    run = subprocess.run([exe, "-z", "n", "-b", "n", "-f", "%p_%s", "-o", str(out),
                          str(folder)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return sorted(out.glob("*.nii")), run.stdout


@pytest.mark.parametrize("name", SETS)
def test_matches_live_dcm2niix(name, dicom_qa, tmp_path):
    refs, log = _live_dcm2niix(dicom_qa / name / "In", tmp_path)
    assert len(refs) == COUNTS[name], log
    for ref_path in refs:
        _check_matches(name, ref_path)


@pytest.mark.parametrize("name", sorted(p.name for p in BUNDLED.iterdir() if p.is_dir()))
def test_bundled_real_data_matches_live_dcm2niix(name, tmp_path):
    refs, log = _live_dcm2niix(BUNDLED / name / "In", tmp_path)
    assert refs, log
    for ref_path in refs:
        _check_matches(name, ref_path, BUNDLED)
    assert len(_ours(name, BUNDLED)) == len(refs)


def test_every_volume_is_found(dicom_qa):
    # dcm2niix writes 79 volumes from these folders; medfast finds the same
    # number (no volume missed, none invented).
    counts = {name: len(_ours(name)) for name in SETS}
    assert counts == COUNTS


def test_scan_reports_series_without_pixels(dicom_qa):
    found = medfast.scan_dicom(dicom_qa / "nih" / "In")
    assert len(found) == 8
    # README/notes files are skipped with a reason, never fatal.
    assert found.skipped and all("not a DICOM file" in s.reason for s in found.skipped)
    ge = [s for s in found if s.manufacturer.startswith("GE")]
    assert all(s.shape == (64, 64, 15, 10) and s.is_4d and s.n_files == 150 for s in ge)
    assert len({s.name for s in found}) == 8  # names tell equal numbers apart

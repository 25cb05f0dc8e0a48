"""BIDS sidecar fields and diffusion tables, checked against dcm2niix.

Real data: every ``Ref/*.json`` of the QA sets (and the JSON of dcm2niix run
live on every ``In/`` folder) is matched to a medfast volume by content (as
test_dcm2niix_qa.py does: shape, values and affine after closest-canonical
reorientation; among equal images, the one with the same SeriesNumber), and
the core keys written by both must agree:

* numbers within 1e-4 (relative), strings and lists equal;
* ``AcquisitionTime`` as a time of day within 1 ms (medfast writes
  ``HH:MM:SS.ffffff``, dcm2niix leaves out the leading zero of the seconds);
* ``SliceTiming`` within 2.5 ms, slice by slice at the same position along
  the slice normal (dcm2niix may store the slices in the reverse order);
* ``PhaseEncodingDirection`` as a direction in the patient (dcm2niix
  reverses the rows, so its ``j-`` is medfast's ``j``).

Core keys dcm2niix writes and medfast does not are listed in
``NOT_MATCHED`` with the reason; any other missing key fails.

Synthetic data (pydicom, :mod:`dicom_synth`): diffusion b-values and
gradient directions on an oblique acquisition, compared with an independent
computation from the row/column directions (and with dcm2niix's bvec when it
is installed), slice timing from AcquisitionTime, enhanced files.
"""
import json
import math
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

import medfast
from medfast.dicom.load import to_image
from medfast.dicom.scan import volumes
from medfast.dicom.diffusion import diffusion_table, fsl_bvecs
from medfast.dicom.sidecar import IDENTIFYING_FIELDS, anonymize, bids_sidecar

from dicom_data import canonical, qa_root
from dicom_synth import oblique_orientation, write_enhanced, write_series

SETS = ["bits12", "enhanced", "nih", "siemens_orientation", "transfer_syntax"]
CORE = ["Modality", "Manufacturer", "ManufacturersModelName", "MagneticFieldStrength",
        "EchoTime", "RepetitionTime", "FlipAngle", "SliceThickness", "SpacingBetweenSlices",
        "SeriesNumber", "SeriesDescription", "ProtocolName", "ImageType", "SliceTiming",
        "PhaseEncodingDirection", "EchoNumber", "AcquisitionTime",
        "ImageOrientationPatientDICOM", "InPlanePhaseEncodingDirectionDICOM",
        "BandwidthPerPixelPhaseEncode", "PixelBandwidth", "ImagingFrequency",
        "MRAcquisitionType", "AcquisitionNumber", "EchoTrainLength", "PercentPhaseFOV",
        "PercentSampling", "InversionTime", "SequenceName", "SoftwareVersions",
        "PatientPosition", "BodyPart", "StationName", "PhaseEncodingAxis"]
# (set, reference file stem) -> {key: why medfast does not write it}
_PHILIPS_ECHO = ("Philips enhanced: every frame's private EchoNumbers (2005,140F) says 1; "
                 "dcm2niix numbers the magnitude and B0-map frame groups 1 and 2 itself")
NOT_MATCHED = {
    ("enhanced", "Philips_WIP_B0_NS_801_e1"): {"EchoNumber": _PHILIPS_ECHO},
    ("enhanced", "Philips_WIP_B0_NS_801_e2_fieldmaphz"): {"EchoNumber": _PHILIPS_ECHO},
    ("enhanced", "WIP_B0_NS_801_e1"): {"EchoNumber": _PHILIPS_ECHO},
    ("enhanced", "WIP_B0_NS_801_e2_fieldmaphz"): {"EchoNumber": _PHILIPS_ECHO},
}
_cache = {}


def _ours(name):
    """[(canonical data, canonical affine, image, sidecar)] of a QA set."""
    if name not in _cache:
        found, _ = volumes(str(qa_root() / name / "In"))
        out = []
        for volume in found:
            img = to_image(volume)
            data, affine = canonical(img.array, img.affine)
            out.append((data, affine, img, bids_sidecar(volume)))
        _cache[name] = out
    return _cache[name]


def _match(name, ref_nii, series_number):
    ref = nib.load(ref_nii)
    data, affine = canonical(np.asanyarray(ref.dataobj), ref.affine)
    scale = max(float(np.abs(data).max()), 1e-30)
    found = [(img, sidecar) for d, a, img, sidecar in _ours(name)
             if d.shape == data.shape and np.abs(a - affine).max() < 0.05
             and np.allclose(d, data, rtol=1e-4, atol=1e-4 * scale)]
    if not found:
        pytest.fail(f"{ref_nii.name}: no medfast volume has the same content")
    same = [f for f in found if f[1].get("SeriesNumber") == series_number]
    return ref, (same or found)[0]


def _seconds(clock):
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _world(code, affine):
    """A direction code ('j-') as a unit vector in world space."""
    v = np.asarray(affine, float)[:3, "ijk".index(code[0])] * (-1 if code.endswith("-") else 1)
    return v / np.linalg.norm(v)


def _slice_positions(affine, n, normal):
    return np.array([(affine[:3, 3] + k * affine[:3, 2]) @ normal for k in range(n)])


def _compare(key, ours, ref, img, ref_img):
    """None when the values agree, else a description of the difference."""
    if key == "AcquisitionTime":
        ok = abs(_seconds(ours) - _seconds(ref)) < 1e-3
    elif key == "SliceTiming":
        if len(ours) != len(ref):
            return f"{len(ours)} slice times, dcm2niix {len(ref)}"
        normal = np.cross(img.affine[:3, 0], img.affine[:3, 1])
        normal /= np.linalg.norm(normal)
        mine = _slice_positions(img.affine, len(ours), normal)
        theirs = _slice_positions(ref_img.affine, len(ref), normal)
        bad = []
        for k, position in enumerate(mine):
            kk = int(np.argmin(np.abs(theirs - position)))
            assert abs(theirs[kk] - position) < 0.1, "slice positions do not correspond"
            if abs(ours[k] - ref[kk]) > 0.0025 + 1e-9:
                bad.append((k, ours[k], ref[kk]))
        ok = not bad
        if bad:
            return f"slices differ (slice, medfast, dcm2niix): {bad[:4]}"
    elif key == "PhaseEncodingDirection":
        ok = _world(ours, img.affine) @ _world(ref, ref_img.affine) > 0.999
    elif key == "PhaseEncodingAxis":
        ok = abs(_world(ours, img.affine) @ _world(ref, ref_img.affine)) > 0.999
    elif isinstance(ref, list) and all(isinstance(v, (int, float)) for v in ref):
        ok = len(ours) == len(ref) and np.allclose(ours, ref, rtol=0, atol=1e-4)
    elif isinstance(ref, (int, float)) and not isinstance(ref, bool):
        ok = isinstance(ours, (int, float)) and math.isclose(ours, ref, rel_tol=1e-4)
    else:
        ok = ours == ref
    return None if ok else f"medfast {ours!r}, dcm2niix {ref!r}"


def _check_reference(name, json_path):
    ref = json.loads(json_path.read_text())
    nii = json_path.with_suffix(".nii")
    ref_img, (img, ours) = _match(name, nii, ref.get("SeriesNumber"))
    allowed = NOT_MATCHED.get((name, json_path.stem), {})
    problems = []
    for key in CORE:
        if key not in ref:
            continue
        if key not in ours:
            if key not in allowed:
                problems.append(f"{key}: not written (dcm2niix: {ref[key]!r})")
            continue
        expected = ref[key]
        if key == "ImageType" and ref.get("ConversionSoftwareVersion", "") < "v1.0.2022":
            # dcm2niix added MAGNITUDE to ImageType in later versions.
            mine = [v for v in ours[key] if v != "MAGNITUDE"]
            difference = _compare(key, mine, expected, img, ref_img)
        else:
            difference = _compare(key, ours[key], expected, img, ref_img)
        if difference:
            problems.append(f"{key}: {difference}")
    assert not problems, f"{name}/{json_path.name} vs {img.meta['dicom_series']}: " + \
        "; ".join(problems)


def _stored_references():
    root = qa_root()
    if root is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason="DICOM validation data not found (set MEDFAST_DICOM_QA)"))]
    params = []
    for name in SETS:
        for path in sorted((root / name / "Ref").glob("*.json")):
            marks = ()
            if not path.with_suffix(".nii").exists():
                # Canon DTI, Philips 301 and 1001: the QA data hold the
                # reference JSON only, not the DICOM files.
                marks = pytest.mark.skip(reason="no DICOM input for this reference")
            params.append(pytest.param(name, path, id=f"{name}/{path.name}", marks=marks))
    return params


@pytest.mark.parametrize("name, json_path", _stored_references())
def test_core_keys_match_stored_dcm2niix_json(name, json_path):
    _check_reference(name, json_path)


@pytest.fixture(scope="module")
def live_dcm2niix(tmp_path_factory, dicom_qa):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    out = tmp_path_factory.mktemp("dcm2niix")
    for name in SETS:
        (out / name).mkdir()
        run = subprocess.run([exe, "-z", "n", "-b", "y", "-f", "%p_%s", "-o",
                              str(out / name), str(dicom_qa / name / "In")],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.mark.parametrize("name", SETS)
def test_core_keys_match_live_dcm2niix_json(name, live_dcm2niix):
    refs = sorted((live_dcm2niix / name).glob("*.json"))
    assert refs
    for json_path in refs:
        _check_reference(name, json_path)


def test_sidecar_values_on_real_data(dicom_qa):
    # A few values read off the headers, so that a regression in the matching
    # above cannot hide a wrong sidecar.
    by_series = {img.meta["dicom_series"]: sidecar for _, _, img, sidecar in _ours("nih")}
    siemens = by_series["3"]
    assert siemens["PhaseEncodingDirection"] == "j"  # dcm2niix: "j-" (rows reversed)
    assert siemens["InPlanePhaseEncodingDirectionDICOM"] == "COL"
    assert siemens["Manufacturer"] == "Siemens" and siemens["EchoTime"] == 0.05
    assert len(siemens["SliceTiming"]) == 5
    ge = by_series["7"]
    assert ge["Manufacturer"] == "GE" and ge["PhaseEncodingDirection"] == "j"
    # Sequential S to I: the top slice (last in medfast's order) first.
    assert ge["SliceTiming"][-1] == 0 and np.all(np.diff(ge["SliceTiming"]) < 0)
    assert json.dumps(ge, allow_nan=False)


def test_identifying_fields_and_anonymize(tmp_path):
    write_series(tmp_path / "s", header={"Manufacturer": "SIEMENS"})
    (volume,), _ = volumes(str(tmp_path / "s"))
    sidecar = bids_sidecar(volume)
    assert sidecar["PatientName"] == "Doe^Jane" and sidecar["PatientID"] == "PID0001"
    assert sidecar["PatientBirthDate"] == "1970-01-01" and sidecar["PatientSex"] == "F"
    clean = anonymize(sidecar)
    assert not set(IDENTIFYING_FIELDS) & set(clean)
    assert clean["ProtocolName"] == "synthetic" and "PatientName" in sidecar


# --------------------------------------------------------------------------
# Slice timing on synthetic data
# --------------------------------------------------------------------------
def test_slice_timing_from_acquisition_time(tmp_path):
    times = [0.0, 1.0, 0.5, 1.5]  # interleaved, one per slice position
    write_series(tmp_path / "s", volumes=2, slices=4, slice_times=times,
                 header={"Manufacturer": "SIEMENS"})
    img = medfast.load_dicom(tmp_path / "s")
    assert img.meta["SliceTiming"] == pytest.approx(times, abs=1e-6)
    # Descending slice numbering: times still follow the slice positions.
    write_series(tmp_path / "d", volumes=1, slices=4, slice_times=times, descending=True)
    assert medfast.load_dicom(tmp_path / "d").meta["SliceTiming"] == pytest.approx(times)


def test_no_slice_timing_when_times_do_not_vary_or_exceed_tr(tmp_path):
    write_series(tmp_path / "same", slice_times=[0, 0, 0, 0])
    assert "SliceTiming" not in medfast.load_dicom(tmp_path / "same").meta
    write_series(tmp_path / "long", slice_times=[0, 1, 2, 3])  # TR is 2 s
    assert "SliceTiming" not in medfast.load_dicom(tmp_path / "long").meta


def test_slice_timing_matches_live_dcm2niix(tmp_path):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    times = [0.25, 1.0, 0.5, 0.0, 1.5]
    write_series(tmp_path / "s", volumes=2, slices=5, slice_times=times,
                 header={"Manufacturer": "SIEMENS"})
    run = subprocess.run([exe, "-z", "n", "-f", "out", "-o", str(tmp_path), str(tmp_path / "s")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    ref = json.loads((tmp_path / "out.json").read_text())
    img = medfast.load_dicom(tmp_path / "s")
    assert _compare("SliceTiming", img.meta["SliceTiming"], ref["SliceTiming"], img,
                    nib.load(tmp_path / "out.nii")) is None


def test_enhanced_frame_times_and_functional_groups(tmp_path):
    write_enhanced(tmp_path / "e.dcm", slices=4, volumes=2, frame_times=[0.0, 0.6, 0.2, 0.4])
    meta = medfast.load_dicom(tmp_path / "e.dcm").meta
    assert meta["SliceTiming"] == pytest.approx([0.0, 0.6, 0.2, 0.4], abs=1e-6)
    # Values found only in the functional groups.
    assert meta["RepetitionTime"] == 3 and meta["FlipAngle"] == 90
    assert meta["EchoTime"] == 0.08 and meta["SliceThickness"] == 3
    assert meta["InPlanePhaseEncodingDirectionDICOM"] == "COL"
    assert meta["PhaseEncodingAxis"] == "j"  # no polarity for this vendor
    assert meta["AcquisitionTime"] == "09:01:02.250000"
    assert meta["Manufacturer"] == "Canon"


# --------------------------------------------------------------------------
# Diffusion
# --------------------------------------------------------------------------
GRADIENTS = [(0, None), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1)),
             (1000, (0.6, 0.8, 0)), (500, (0, -0.6, 0.8)), (1000, None)]


def _expected_bvecs(row, col, gradients):
    """FSL bvecs of medfast's image, derived from the DICOM directions alone:
    medfast's voxel axes are the row direction, the column direction and
    row x column (slices in increasing position), all LPS; the affine's
    determinant is then positive, so FSL flips the first component."""
    row, col = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row, col)
    out = []
    for b, g in gradients:
        if not b or g is None:
            out.append([0.0, 0.0, 0.0])
            continue
        g = np.asarray(g, float) / np.linalg.norm(g)
        out.append([-(g @ row), g @ col, g @ normal])
    return np.array(out)


@pytest.mark.parametrize("descending", [False, True])
def test_bvecs_on_oblique_acquisition(tmp_path, descending):
    row, col = oblique_orientation()
    write_series(tmp_path / "dwi", row_dir=row, col_dir=col, slices=4,
                 volumes=len(GRADIENTS), diffusion=GRADIENTS, descending=descending,
                 header={"Manufacturer": "SIEMENS"})
    img = medfast.load_dicom(tmp_path / "dwi")
    assert np.linalg.det(img.affine[:3, :3]) > 0
    assert img.meta["bvals"] == [0, 1000, 1000, 1000, 1000, 500, 1000]
    bvecs = np.array(img.meta["bvecs"])
    assert bvecs.shape == (len(GRADIENTS), 3)
    np.testing.assert_allclose(bvecs, _expected_bvecs(row, col, GRADIENTS), atol=2e-6)
    # Unit vectors for b > 0 with a direction; zero for b = 0 and isotropic.
    norms = np.linalg.norm(bvecs, axis=1)
    np.testing.assert_allclose(norms, [0, 1, 1, 1, 1, 1, 0], atol=1e-5)


def test_bvecs_follow_the_image_axes():
    # FSL's rule on a mirrored grid: flipping the i axis makes the
    # determinant negative (no more x flip), so the bvecs do not change;
    # flipping j instead negates y and, with the determinant, x.
    rng = np.random.default_rng(4)
    affine = np.eye(4)
    affine[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0] * [1.5, 1.2, 3.0]
    if np.linalg.det(affine[:3, :3]) < 0:
        affine[:3, 2] *= -1
    g = rng.normal(size=(3, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    base = fsl_bvecs(g, affine)
    ras = g * [-1, -1, 1]
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(base, (ras @ axes) * [-1, 1, 1], atol=1e-12)
    flip_i, flip_j = affine.copy(), affine.copy()
    flip_i[:3, 0] *= -1
    flip_j[:3, 1] *= -1
    np.testing.assert_allclose(fsl_bvecs(g, flip_i), base, atol=1e-12)
    np.testing.assert_allclose(fsl_bvecs(g, flip_j), base * [-1, -1, 1], atol=1e-12)


def test_bvecs_match_live_dcm2niix_in_patient_space(tmp_path):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    row, col = oblique_orientation()
    write_series(tmp_path / "dwi", row_dir=row, col_dir=col, slices=4,
                 volumes=len(GRADIENTS), diffusion=GRADIENTS, header={"Manufacturer": "SIEMENS"})
    run = subprocess.run([exe, "-z", "n", "-f", "ref", "-o", str(tmp_path), str(tmp_path / "dwi")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    ref = nib.load(tmp_path / "ref.nii")
    ref_bvecs = np.loadtxt(tmp_path / "ref.bvec").T
    np.testing.assert_allclose(np.loadtxt(tmp_path / "ref.bval"),
                               medfast.load_dicom(tmp_path / "dwi").meta["bvals"])
    img = medfast.load_dicom(tmp_path / "dwi")

    def to_patient(bvecs, affine):
        v = np.array(bvecs, float)
        if np.linalg.det(affine[:3, :3]) > 0:
            v[:, 0] = -v[:, 0]
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        return v @ axes.T

    # dcm2niix writes nothing for b > 0 without a direction, medfast zeros:
    # compare the volumes where both have a direction.
    both = [t for t, (b, g) in enumerate(GRADIENTS) if b and g is not None]
    np.testing.assert_allclose(to_patient(img.meta["bvecs"], img.affine)[both],
                               to_patient(ref_bvecs, ref.affine)[both], atol=1e-5)


def test_enhanced_diffusion_sequence(tmp_path):
    row, col = oblique_orientation()
    gradients = [(0, None), (1000, (1, 0, 0)), (1000, (0, 0.6, 0.8)), (800, None)]
    write_enhanced(tmp_path / "e.dcm", row_dir=row, col_dir=col, slices=3,
                   volumes=len(gradients), diffusion=gradients)
    img = medfast.load_dicom(tmp_path / "e.dcm")
    assert img.shape == (5, 6, 3, 4)
    assert img.meta["bvals"] == [0, 1000, 1000, 800]
    np.testing.assert_allclose(img.meta["bvecs"], _expected_bvecs(row, col, gradients),
                               atol=2e-6)


def test_not_diffusion(tmp_path, dicom_qa):
    write_series(tmp_path / "plain", volumes=2)
    assert "bvals" not in medfast.load_dicom(tmp_path / "plain").meta
    write_series(tmp_path / "b0", volumes=2, diffusion=[(0, None), (0, None)])
    assert "bvals" not in medfast.load_dicom(tmp_path / "b0").meta
    assert all(diffusion_table(v) is None
               for v in volumes(str(dicom_qa / "siemens_orientation" / "In"))[0])

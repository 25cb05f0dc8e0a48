"""medfast.convert: DICOM folder -> NIfTI + JSON (+ bval/bvec), as dcm2niix.

Real data: every QA set is converted; every NIfTI must load with nibabel
and hold exactly what medfast.load_dicom_all gives, with its sidecar; file
names are compared with those dcm2niix writes.  Synthetic series (pydicom)
test the name patterns with hostile header values, collisions, the atomic
writes (a failing save part-way), paths outside the output folder and the
errors.
"""
import gzip
import importlib
import json
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

import medfast
from medfast.dicom.sidecar import IDENTIFYING_FIELDS
from medfast.io._atomic import atomic_write

from dicom_synth import oblique_orientation, write_series

convert_module = importlib.import_module("medfast.dicom.convert")

SETS = ["bits12", "enhanced", "nih", "siemens_orientation", "transfer_syntax"]


def _all_files(folder):
    return sorted(os.path.relpath(os.path.join(root, f), folder)
                  for root, _, files in os.walk(folder) for f in files)


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory, dicom_qa):
    out = tmp_path_factory.mktemp("converted")
    return {name: (out / name, medfast.convert(dicom_qa / name / "In", out / name))
            for name in SETS}


@pytest.mark.parametrize("name", SETS)
def test_qa_sets_convert_to_what_load_dicom_all_gives(name, converted, dicom_qa):
    folder, result = converted[name]
    images = medfast.load_dicom_all(dicom_qa / name / "In")
    assert not result.failed and len(result) == len(images) == len(result.outputs)
    # Only notes, PDFs and reports are left out; they make .ok False.
    assert all(s.kind == "skipped" and s.reason.startswith(("not a DICOM file", "not an image"))
               for s in result.skipped)
    assert result.ok == (not result.skipped)
    assert sorted(_all_files(folder)) == sorted(os.path.relpath(p, folder)
                                                for p in result.files)
    for out, img in zip(result.outputs, images):
        assert out.nifti.endswith(".nii.gz") and out.series == img.meta["dicom_series"]
        nii = nib.load(out.nifti)
        data = np.asanyarray(nii.dataobj)
        assert data.dtype == img.dtype and data.shape == img.shape
        np.testing.assert_array_equal(data, img.array)
        np.testing.assert_allclose(nii.affine, img.affine, atol=1e-4)
        assert nii.header["xyzt_units"] == 10
        if img.ndim == 4:
            assert nii.header["pixdim"][4] == pytest.approx(img.meta["RepetitionTime"])
        sidecar = json.loads(open(out.sidecar).read())
        assert sidecar["SeriesNumber"] == img.meta["SeriesNumber"]
        direction = sidecar.get("InPlanePhaseEncodingDirectionDICOM")
        if direction:  # (frequency, phase, slice) axes, 0-based
            expected = (1, 0, 2) if direction == "ROW" else (0, 1, 2)
            assert nii.header.get_dim_info() == expected
        assert sidecar["ConversionSoftware"] == "medfast"
        assert not set(IDENTIFYING_FIELDS) & set(sidecar)  # anonymised by default
        assert out.bval is None and out.bvec is None  # no diffusion series here


@pytest.mark.parametrize("name", ["bits12", "nih", "siemens_orientation", "transfer_syntax"])
def test_names_are_dcm2niix_names(name, converted, dicom_qa, tmp_path):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    run = subprocess.run([exe, "-z", "y", "-b", "y", "-f", "%p_%s", "-o", str(tmp_path),
                          str(dicom_qa / name / "In")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    folder, _ = converted[name]
    assert _all_files(folder) == _all_files(tmp_path)


def test_uncompressed_and_without_sidecar(dicom_qa, tmp_path):
    result = medfast.convert(dicom_qa / "bits12" / "In", tmp_path / "out", compress=False,
                             sidecar=False)
    assert _all_files(tmp_path / "out") == ["FMRI_AX_ASC_2.nii", "FMRI_AX_ASC_3.nii",
                                            "FMRI_AX_ASC_4.nii"]
    assert all(o.sidecar is None for o in result.outputs)
    img = medfast.load(result[0])
    np.testing.assert_array_equal(img.array, medfast.load_dicom(dicom_qa / "bits12" / "In",
                                                                series=2).array)


def test_identifying_fields_kept_on_request(tmp_path):
    write_series(tmp_path / "in")
    result = medfast.convert(tmp_path / "in", tmp_path / "out", anonymize=False)
    sidecar = json.loads(open(result.outputs[0].sidecar).read())
    assert sidecar["PatientName"] == "Doe^Jane" and sidecar["PatientID"] == "PID0001"


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------
def test_placeholders(tmp_path):
    header = {"ProtocolName": "prot", "SeriesDescription": "desc", "PatientName": "Doe^J",
              "PatientID": "ID7", "Manufacturer": "Philips Medical Systems",
              "StudyDate": "20240102", "StudyTime": "101112.6", "AccessionNumber": "ACC",
              "StudyID": "S1", "SequenceName": "seq", "ImageComments": "note"}
    files = write_series(tmp_path / "exam", series_number=5, header=header)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    pattern = "%p_%s_%d_%n_%i_%e_%f_%m_%v_%t_%g_%x_%z_%c_%3s_%j_%k"
    result = medfast.convert(tmp_path / "exam", tmp_path / "out", pattern=pattern)
    expected = "_".join(["prot", "5", "desc", "Doe^J", "ID7", "1", "exam", "Ph", "Philips",
                         "20240102101113", "ACC", "S1", "seq", "note", "005",
                         ds.SeriesInstanceUID, ds.StudyInstanceUID])
    assert os.path.basename(result[0]) == expected + ".nii.gz"


@pytest.mark.filterwarnings("ignore:The value length")
@pytest.mark.parametrize("value, name", [
    ("../../etc", "_._.._etc_3"),
    ("a/b\\c", "a_b_c_3"),
    ("ctl\x01\x1fx;y:z\"q*|?<>", "ctl_x_y_z_q_3"),
    ("x" * 300, "x" * 64 + "_3"),
    ("Réseau ß", "Reseau_3"),
    (".hidden", "_hidden_3"),
    ("a__b  c%d", "a_b_c%d_3"),
    ("", "synthetic_series_3"),  # no protocol name: the series description
])
def test_hostile_header_values_are_sanitised(tmp_path, value, name):
    # The expected names are those dcm2niix writes for the same headers.
    write_series(tmp_path / "in", series_number=3, header={"ProtocolName": value})
    result = medfast.convert(tmp_path / "in", tmp_path / "out", sidecar=False)
    assert _all_files(tmp_path / "out") == [name + ".nii.gz"]
    assert os.path.dirname(result[0]) == str(tmp_path / "out")
    assert _all_files(tmp_path) == sorted(
        [os.path.join("out", name + ".nii.gz")]
        + [os.path.join("in", f) for f in _all_files(tmp_path / "in")])


def test_hostile_values_in_folder_patterns_stay_inside(tmp_path):
    write_series(tmp_path / "in", series_number=3,
                 header={"PatientName": "../../..", "ProtocolName": "/etc/passwd"})
    result = medfast.convert(tmp_path / "in", tmp_path / "out", pattern="%n/%p_%s",
                             sidecar=False)
    assert _all_files(tmp_path / "out") == [os.path.join("_._.._..", "_etc_passwd_3.nii.gz")]
    assert os.path.commonpath([result[0], str(tmp_path / "out")]) == str(tmp_path / "out")


def test_empty_name_and_long_name(tmp_path):
    write_series(tmp_path / "in", header={"ProtocolName": "", "SeriesDescription": "//"})
    result = medfast.convert(tmp_path / "in", tmp_path / "out", pattern="%p", sidecar=False)
    assert os.path.basename(result[0]) == "unnamed_7.nii.gz"
    stem = convert_module.output_stem(
        medfast.dicom.scan.volumes(str(tmp_path / "in"))[0][0], "%p" + "y" * 400)
    assert len(stem[-1]) == 230


@pytest.mark.parametrize("pattern, message", [
    ("/abs/%p", "absolute"), ("../%p", "'..'"), ("a//%p", "empty"), ("%h", "unknown"),
    ("%p%", "end"), ("%3p", "zero padding"), ("", "empty")])
def test_bad_patterns(tmp_path, pattern, message):
    write_series(tmp_path / "in")
    with pytest.raises(ValueError, match=message):
        medfast.convert(tmp_path / "in", tmp_path / "out", pattern=pattern)
    assert not (tmp_path / "out").exists()


def test_collisions_get_letters_and_nothing_is_overwritten(tmp_path):
    # Two series with the same protocol and number (two sessions), and an
    # existing file of that name in the output folder (existing='suffix',
    # dcm2niix -w 2; the default 'skip' is tested in test_convert_safety).
    write_series(tmp_path / "in" / "a", prefix="a", seed=1)
    write_series(tmp_path / "in" / "b", prefix="b", seed=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "synthetic_7.json").write_text("keep me")
    result = medfast.convert(tmp_path / "in", tmp_path / "out", existing="suffix")
    names = sorted(os.path.basename(p) for p in result)
    assert names == ["synthetic_7a.nii.gz", "synthetic_7b.nii.gz"]
    assert (tmp_path / "out" / "synthetic_7.json").read_text() == "keep me"
    seeds = sorted(int(medfast.load(p).array[0, 0, 0]) for p in result)
    assert seeds == [1, 2]


def test_echo_placeholder_replaces_echo_suffix(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.1234567"  # one series, two echoes
    for echo in (1, 2):
        write_series(tmp_path / "in", prefix=f"e{echo}", seed=echo,
                     header={"EchoNumbers": str(echo), "EchoTime": str(10 * echo),
                             "SeriesInstanceUID": uid})
    names = sorted(os.path.basename(p) for p in medfast.convert(tmp_path / "in", tmp_path / "a"))
    assert names == ["synthetic_7_e1.nii.gz", "synthetic_7_e2.nii.gz"]
    names = sorted(os.path.basename(p) for p in medfast.convert(tmp_path / "in", tmp_path / "b",
                                                               pattern="%p_%s_echo%e"))
    assert names == ["synthetic_7_echo1.nii.gz", "synthetic_7_echo2.nii.gz"]
    sidecar = json.loads((tmp_path / "a" / "synthetic_7_e2.json").read_text())
    assert sidecar["EchoNumber"] == 2 and sidecar["EchoTime"] == 0.02


# --------------------------------------------------------------------------
# Diffusion
# --------------------------------------------------------------------------
def test_diffusion_files(tmp_path):
    row, col = oblique_orientation()
    gradients = [(0, None), (1000, (1, 0, 0)), (1000, (0, 0.6, 0.8)), (700, (0, 1, 0))]
    write_series(tmp_path / "in", row_dir=row, col_dir=col, volumes=4, diffusion=gradients)
    result = medfast.convert(tmp_path / "in", tmp_path / "out", compress=False)
    out = result.outputs[0]
    assert out.bval.endswith(".bval") and out.bvec.endswith(".bvec")
    img = medfast.load_dicom(tmp_path / "in")
    bvals = np.loadtxt(out.bval)
    bvecs = np.loadtxt(out.bvec)
    assert bvecs.shape == (3, 4)
    np.testing.assert_allclose(bvals, img.meta["bvals"])
    np.testing.assert_allclose(bvecs.T, img.meta["bvecs"], atol=1e-6)
    # The bvecs refer to the written image's axes: same affine.
    np.testing.assert_allclose(nib.load(out.nifti).affine, img.affine, atol=1e-4)


# --------------------------------------------------------------------------
# Atomic writes, failures, errors
# --------------------------------------------------------------------------
def _two_series(folder):
    write_series(folder / "a", series_number=1, header={"ProtocolName": "first"})
    write_series(folder / "b", series_number=2, header={"ProtocolName": "second"},
                 volumes=3, diffusion=[(0, None), (1000, (1, 0, 0)), (1000, (0, 1, 0))])


def test_failing_save_leaves_nothing_half_written(tmp_path, monkeypatch):
    _two_series(tmp_path / "in")
    real_save = convert_module.save

    def save(img, path):
        if "first" in os.path.basename(path):
            # Fail part-way through the atomic write of the first volume.
            with atomic_write(path) as f:
                f.write(b"partial data")
                raise OSError("disk full (simulated)")
        return real_save(img, path)

    monkeypatch.setattr(convert_module, "save", save)
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert not result.ok
    assert [str(f) for f in result.failed] == ["series 1: disk full (simulated)"]
    assert _all_files(tmp_path / "out") == ["second_2.bval", "second_2.bvec", "second_2.json",
                                            "second_2.nii.gz"]


def test_failing_sidecar_removes_the_volumes_nifti(tmp_path, monkeypatch):
    _two_series(tmp_path / "in")
    real_write = convert_module._write_text

    def write_text(path, text):
        if path.endswith(".bvec"):
            raise OSError("no space left (simulated)")
        return real_write(path, text)

    monkeypatch.setattr(convert_module, "_write_text", write_text)
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert [f.series for f in result.failed] == ["2"]
    assert _all_files(tmp_path / "out") == ["first_1.json", "first_1.nii.gz"]


def test_interrupt_removes_the_volumes_files(tmp_path, monkeypatch):
    _two_series(tmp_path / "in")
    real_write = convert_module._write_text

    def write_text(path, text):
        if path.endswith(".json") and "second" in path:
            raise KeyboardInterrupt
        return real_write(path, text)

    monkeypatch.setattr(convert_module, "_write_text", write_text)
    with pytest.raises(KeyboardInterrupt):
        medfast.convert(tmp_path / "in", tmp_path / "out")
    assert _all_files(tmp_path / "out") == ["first_1.json", "first_1.nii.gz"]


def _undecodable(path):
    """Gzip a file and cut the gzip stream short (a copy interrupted): the
    header reads, only decoding the pixel data tells."""
    packed = gzip.compress(path.read_bytes())
    path.unlink()
    (path.parent / (path.name + ".gz")).write_bytes(packed[:-30])


def test_undecodable_volume_is_reported_and_others_converted(tmp_path):
    _two_series(tmp_path / "in")
    for broken in (tmp_path / "in" / "a").iterdir():
        _undecodable(broken)
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result.failed) == 1 and result.failed[0].series == "1"
    assert ".dcm.gz: cannot read pixel data" in result.failed[0].reason
    assert [os.path.basename(p) for p in result] == ["second_2.nii.gz"]
    assert not any(f.startswith("first") for f in _all_files(tmp_path / "out"))


def test_nothing_converted_is_an_error_and_leaves_no_folder(tmp_path):
    write_series(tmp_path / "in")
    for broken in (tmp_path / "in").iterdir():
        _undecodable(broken)
    with pytest.raises(ValueError, match="no volume could be converted.*dcm.gz: cannot read pixel data"):
        medfast.convert(tmp_path / "in", tmp_path / "out" / "deeper")
    assert not (tmp_path / "out").exists()


def test_symlink_out_of_the_output_folder_is_refused(tmp_path):
    write_series(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "sub")
    with pytest.raises(ValueError, match="outside the output folder"):
        medfast.convert(tmp_path / "in", tmp_path / "out", pattern="sub/%p_%s")
    assert _all_files(tmp_path / "elsewhere") == []


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no DICOM volume found \(empty folder\)"):
        medfast.convert(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_without_dicom(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no DICOM volume found.*not a DICOM file"):
        medfast.convert(tmp_path / "in", tmp_path / "out")


def test_missing_input_and_output_that_is_a_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        medfast.convert(tmp_path / "nothing", tmp_path / "out")
    write_series(tmp_path / "in")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        medfast.convert(tmp_path / "in", tmp_path / "file")


def test_multi_echo_matches_live_dcm2niix(tmp_path):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    uid = "1.2.826.0.1.3680043.8.498.7654321"
    for echo in (1, 2, 3):
        write_series(tmp_path / "in", prefix=f"e{echo}", seed=echo,
                     header={"EchoNumbers": str(echo), "EchoTime": str(7 * echo),
                             "SeriesInstanceUID": uid, "Manufacturer": "SIEMENS"})
    (tmp_path / "ref").mkdir()
    run = subprocess.run([exe, "-z", "y", "-f", "%p_%s", "-o", str(tmp_path / "ref"),
                          str(tmp_path / "in")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    medfast.convert(tmp_path / "in", tmp_path / "out")
    assert _all_files(tmp_path / "out") == _all_files(tmp_path / "ref")
    for name in _all_files(tmp_path / "ref"):
        if name.endswith(".json"):
            ours = json.loads((tmp_path / "out" / name).read_text())
            ref = json.loads((tmp_path / "ref" / name).read_text())
            for key in ("EchoNumber", "EchoTime", "ImageType", "SeriesNumber", "ProtocolName"):
                assert ours[key] == ref[key], (name, key)

"""`medfast --version`, `info`, `resample` and `reorient`: results compared
with nibabel and with the library calls, exit statuses and one-line errors."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import medfast
from medfast import cli

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def nifti(tmp_path):
    """An oblique LPS int16 image with scaling and distinct q/sform codes."""
    affine = np.array([[-0.9, 0.1, 0.0, 90.0], [-0.1, -0.9, 0.0, 110.0],
                       [0.0, 0.0, 2.5, -40.0], [0, 0, 0, 1]])
    data = np.arange(9 * 8 * 6, dtype=np.float32).reshape(9, 8, 6) * 0.37 + 3
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=2)
    img.header.set_data_dtype(np.int16)  # stored scaled: nibabel picks slope and intercept
    path = tmp_path / "t1.nii.gz"
    nib.save(img, path)
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"medfast {medfast.__version__}"


def test_info_json_matches_nibabel_and_reports_a_missing_path(nifti, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medfast", "info", "--json", str(nifti), str(tmp_path / "no")],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert result.returncode == 1
    assert result.stderr == f"medfast info: error: {tmp_path / 'no'}: No such file or directory\n"
    [info] = json.loads(result.stdout)
    ref = nib.load(nifti)
    assert info["format"] == "NIfTI-1" and info["shape"] == list(ref.shape)
    assert info["dtype"] == "int16"
    assert np.array_equal(info["affine"], ref.affine)
    assert info["spacing"] == [float(z) for z in ref.header.get_zooms()]
    assert info["orientation"] == "".join(nib.aff2axcodes(ref.affine))
    assert (info["qform_code"], info["sform_code"]) == (1, 2)
    slope, inter = float(ref.dataobj.slope), float(ref.dataobj.inter)
    assert slope != 1 and (info["scl_slope"], info["scl_inter"]) == (slope, inter)


def test_info_dicom_folder_lists_series_and_skipped_files(tmp_path, capsys):
    sys.path.insert(0, os.path.join(_ROOT, "tests", "dicom"))
    from dicom_synth import write_series
    write_series(tmp_path / "exam", series_number=4)
    (tmp_path / "exam" / "readme.txt").write_text("hello")
    assert cli.main(["info", str(tmp_path / "exam")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 'exam'}: DICOM, 1 volume(s), 1 file(s) not used"
    assert lines[1].startswith("  series 4: ") and "5x6x4 voxels" in lines[1]
    assert lines[2].startswith(f"  skipped: {tmp_path / 'exam' / 'readme.txt'}: ")


def test_resample_cubic_is_scipys_order_3(nifti, tmp_path):
    img = medfast.load(nifti)
    out = tmp_path / "c.nii"
    assert cli.main(["resample", str(nifti), str(out), "--spacing", "0.8",
                     "--order", "cubic"]) == 0
    expected = medfast.resample(img, spacing=0.8, order=3)
    assert np.array_equal(np.asanyarray(nib.load(out).dataobj), expected.array)


def test_resample_spacing_like_and_explicit_grid(nifti, tmp_path, capsys):
    img = medfast.load(nifti)
    out = tmp_path / "r.nii.gz"
    assert cli.main(["resample", str(nifti), str(out), "--spacing", "0.7", "1", "1.3",
                     "--order", "nearest", "--threads", "1"]) == 0
    expected = medfast.resample(img, spacing=(0.7, 1, 1.3), order="nearest")
    written = nib.load(out)
    assert np.array_equal(np.asanyarray(written.dataobj), expected.array)
    assert np.allclose(written.affine, expected.affine)
    assert cli.main(["resample", str(nifti), str(out), "--like", str(out), "--canonical"]) == 0
    canonical = nib.as_closest_canonical(nib.load(out))
    assert "".join(nib.aff2axcodes(canonical.affine)) == "RAS"
    grid = np.diag([2.0, 2.0, 2.0, 1.0])
    np.savetxt(tmp_path / "grid.txt", grid)
    assert cli.main(["resample", str(nifti), str(out), "--shape", "4", "5", "3",
                     "--affine", str(tmp_path / "grid.txt")]) == 0
    expected = medfast.resample(img, shape=(4, 5, 3), affine=grid)
    assert np.array_equal(np.asanyarray(nib.load(out).dataobj), expected.array)
    assert "(4x5x3, RAS" in capsys.readouterr().out


def test_reorient_equals_nibabel(nifti, tmp_path):
    out = tmp_path / "psr.nii"
    assert cli.main(["reorient", str(nifti), str(out), "--to", "PSR", "-q"]) == 0
    ref = nib.load(nifti)
    transform = nib.orientations.ornt_transform(nib.io_orientation(ref.affine),
                                                nib.orientations.axcodes2ornt("PSR"))
    expected = ref.as_reoriented(transform)
    got = nib.load(out)
    assert np.array_equal(np.asanyarray(got.dataobj), np.asanyarray(expected.dataobj))
    assert np.allclose(got.affine, expected.affine)


@pytest.mark.parametrize("arguments, status, message", [
    (["resample", "IN", "OUT"], 2, "choose the output grid"),
    (["resample", "IN", "OUT", "--spacing", "1", "2"], 2, "--spacing takes 1 or 3 values"),
    (["reorient", "IN", "OUT", "--to", "RAX"], 2, "--to RAX: "),
    (["resample", "IN", "OUT", "--like", "nowhere.nii"], 2, "nowhere.nii: no such file"),
    (["resample", "IN", "OUT", "--spacing", "-1"], 1, "spacing must be finite and positive"),
])
def test_errors_are_one_line(nifti, tmp_path, capsys, arguments, status, message):
    arguments = [str(nifti) if a == "IN" else str(tmp_path / "o.nii") if a == "OUT" else a
                 for a in arguments]
    assert cli.main(arguments) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.nii").exists()


def test_debug_shows_the_traceback(nifti, tmp_path):
    with pytest.raises(ValueError, match="spacing must be finite"):
        cli.main(["resample", str(nifti), str(tmp_path / "o.nii"), "--spacing", "-1",
                  "--debug"])

"""The command line (the README's first Quick start command) and the phantom."""
import os
import subprocess
import sys

import numpy as np
import pytest

from medfast import _bench, cli
from medfast.phantom import shepp_logan


def test_bench_checks_answers_and_prints_speedup(capsys):
    """`medfast bench` resamples the phantom with both tools and compares."""
    status = _bench.bench(quick=True, threads=2, shape=(48, 40, 24))
    out = capsys.readouterr().out
    assert status == 0
    assert out.count("identical") == 2 and "DIFFERENT" not in out
    assert "x" in out.split("1 (linear)")[1].splitlines()[0]  # a speed-up column


def test_config_command(capsys):
    assert cli.main(["config"]) == 0
    assert "OpenMP" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "bench" in capsys.readouterr().out


def test_bad_threads_is_a_clear_error(capsys):
    assert cli.main(["bench", "--threads", "0"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "medfast", "config"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "compiled kernels" in result.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_phantom(dtype):
    volume = shepp_logan((32, 30, 20), dtype)
    assert volume.shape == (32, 30, 20) and volume.dtype == dtype
    assert volume.min() >= 0 and volume.max() > 0
    # the outer skull ellipsoid is brighter than the brain inside it
    assert volume[16, 15, 10] < volume.max()


def test_phantom_rejects_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        shepp_logan((10, 10))


# --------------------------------------------------------------------------
# medfast convert
# --------------------------------------------------------------------------
_DICOM_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dicom")


def _dicom_test_module(name):
    """A helper module of tests/dicom (not a package: its folder goes on
    sys.path, as pytest puts it there for its own tests)."""
    import importlib
    if _DICOM_TESTS not in sys.path:
        sys.path.insert(0, _DICOM_TESTS)
    return importlib.import_module(name)


def _qa_root():
    return _dicom_test_module("dicom_data").qa_root()


def _synthetic_series(folder, **options):
    return _dicom_test_module("dicom_synth").write_series(folder, **options)


def test_python_dash_m_convert_a_qa_set(tmp_path):
    root = _qa_root()
    if root is None:
        pytest.skip("DICOM validation data not found (set MEDFAST_DICOM_QA)")
    result = subprocess.run([sys.executable, "-m", "medfast", "convert",
                             str(root / "bits12" / "In"), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    names = ["FMRI_AX_ASC_2", "FMRI_AX_ASC_3", "FMRI_AX_ASC_4"]
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # one line per volume written
    for name, line in zip(names, lines):
        assert line.startswith(str(tmp_path / "out" / f"{name}.nii.gz")) and "64x64x35" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [n + ".nii.gz" for n in names] + [n + ".json" for n in names])


def test_python_dash_m_convert_empty_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "medfast", "convert", str(tmp_path / "empty"),
                             "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("medfast convert: error: ")
    assert "no DICOM volume found (empty folder)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_convert_options(tmp_path, capsys):
    _synthetic_series(tmp_path / "in", series_number=12)
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                       "-z", "n", "-b", "n", "-f", "run%3s"])
    assert status == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run012.nii"]
    assert capsys.readouterr().out.strip().endswith("(5x6x4, series 12)")


def test_convert_reports_a_file_cut_short_and_exits_1(tmp_path, capsys):
    """The series still converts without the file; one stderr line names
    the file and the reason, a last line counts what was left out."""
    _synthetic_series(tmp_path / "in" / "good", series_number=1)
    files = _synthetic_series(tmp_path / "in" / "bad", series_number=2)
    with open(files[0], "r+b") as f:
        f.truncate(f.seek(0, 2) - 20)  # pixel data cut short
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 1
    assert len(out.splitlines()) == 2 and "(5x6x4, series 1)" in out and "(5x6x3, series 2)" in out
    assert err.splitlines() == [
        f"medfast convert: skipped: {files[0]}: truncated: 40 of the 60 bytes of pixel data "
        "(the file is cut short)",
        "medfast convert: 2 volume(s) written; 1 file(s) skipped"]


def test_convert_failed_series_exits_1(tmp_path, capsys):
    import gzip
    _synthetic_series(tmp_path / "in" / "good", series_number=1)
    files = _synthetic_series(tmp_path / "in" / "bad", series_number=2)
    for path in files:  # gzipped, the stream cut short: only decoding tells
        with open(path, "rb") as f:
            packed = gzip.compress(f.read())
        with open(path + ".gz", "wb") as f:
            f.write(packed[:-30])
        os.remove(path)
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 1
    assert len(out.splitlines()) == 1 and "series 1" in out
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("medfast convert: error: series 2: ")
    assert files[-1] + ".gz: cannot read pixel data" in lines[0]
    assert lines[1] == "medfast convert: 1 volume(s) written; 1 series not converted"


def test_convert_duplicates_are_reported_and_exit_0(tmp_path, capsys):
    import shutil
    files = _synthetic_series(tmp_path / "in", volumes=2)
    shutil.copytree(tmp_path / "in", tmp_path / "backup")
    shutil.move(tmp_path / "backup", tmp_path / "in" / "backup")
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 0 and "(5x6x4x2, series 7)" in out
    lines = err.splitlines()
    assert lines[:-1] == [
        f"medfast convert: duplicate: {tmp_path / 'in' / 'backup' / os.path.basename(f)}: "
        f"duplicate of {f} (same SOPInstanceUID)" for f in files]
    assert lines[-1] == ("medfast convert: 1 volume(s) written; "
                         f"{len(files)} duplicate file(s) ignored")


def test_convert_dropped_files_and_problems(tmp_path, capsys):
    """A 4-D series that lost an image: the other files of its time point
    are listed as dropped; the volume written keeps its problem as a
    warning line."""
    files = _synthetic_series(tmp_path / "in", volumes=3, slices=3)
    os.remove(files[4])  # time point 2, slice 2
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 1 and "(5x6x3x2, series 7)" in out
    lines = err.splitlines()
    assert lines[0].startswith("medfast convert: warning: series 7: slice count differs")
    assert sorted(lines[1:3]) == [f"medfast convert: dropped: {f}: series 7: incomplete volume: "
                                  + lines[0].split("series 7: ", 1)[1]
                                  for f in (files[3], files[5])]
    assert lines[3] == "medfast convert: 1 volume(s) written; 2 file(s) dropped"


@pytest.mark.parametrize("arguments, message", [
    (["-f", "../%p"], "'..'"),
    (["-f", "%h"], "unknown placeholder"),
])
def test_convert_bad_pattern(tmp_path, capsys, arguments, message):
    _synthetic_series(tmp_path / "in")
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")] + arguments)
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_convert_missing_input_and_output_that_is_a_file(tmp_path, capsys):
    assert cli.main(["convert", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err
    _synthetic_series(tmp_path / "in")
    (tmp_path / "file").write_text("")
    assert cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_convert_requires_an_output_folder(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["convert", "somewhere"])
    assert exc.value.code == 2
    assert "-o" in capsys.readouterr().err

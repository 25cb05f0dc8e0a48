"""The command line (the README's first Quick start command) and the phantom."""
import subprocess
import sys

import numpy as np
import pytest

from medfast import cli
from medfast.phantom import shepp_logan


def test_bench_checks_answers_and_prints_speedup(capsys):
    """`medfast bench` resamples the phantom with both tools and compares."""
    status = cli.bench(quick=True, threads=2, shape=(48, 40, 24))
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
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--threads", "0"])
    assert exc.value.code == 2
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
def _qa_root():
    """tests/dicom/dicom_data.qa_root(), loaded by path (tests/dicom is not a
    package)."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dicom", "dicom_data.py")
    spec = importlib.util.spec_from_file_location("_medfast_dicom_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.qa_root()


def _synthetic_series(folder, **options):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dicom", "dicom_synth.py")
    spec = importlib.util.spec_from_file_location("_medfast_dicom_synth", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_series(folder, **options)


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
    assert result.returncode != 0
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


def test_convert_partial_failure_exits_non_zero(tmp_path, capsys):
    _synthetic_series(tmp_path / "in" / "good", series_number=1)
    files = _synthetic_series(tmp_path / "in" / "bad", series_number=2)
    with open(files[0], "r+b") as f:
        f.truncate(f.seek(0, 2) - 20)  # pixel data cut short
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 1
    assert len(out.splitlines()) == 1 and "series 1" in out
    assert err.count("\n") == 1 and err.startswith("medfast convert: error: series 2: ")


@pytest.mark.parametrize("arguments, message", [
    (["-f", "../%p"], "'..'"),
    (["-f", "%h"], "unknown placeholder"),
])
def test_convert_bad_pattern(tmp_path, capsys, arguments, message):
    _synthetic_series(tmp_path / "in")
    status = cli.main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")] + arguments)
    err = capsys.readouterr().err
    assert status == 1 and message in err and err.count("\n") == 1


def test_convert_requires_an_output_folder(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["convert", "somewhere"])
    assert exc.value.code == 2
    assert "-o" in capsys.readouterr().err

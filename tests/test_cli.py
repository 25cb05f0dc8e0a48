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

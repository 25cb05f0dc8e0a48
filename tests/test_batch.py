"""Batch conversion through the command line (real processes, exit
statuses and files): failure isolation, the report, resuming after a
killed run, two runs into one folder, and a real Dask LocalCluster giving
the local run's bytes."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from medfast import batch

_DICOM_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dicom")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_series(folder, **options):
    if _DICOM_TESTS not in sys.path:
        sys.path.insert(0, _DICOM_TESTS)
    from dicom_synth import write_series
    return write_series(folder, **options)


def _studies(root, n, bad=()):
    """n study folders of one small series each; the names in `bad` hold
    a file that is not DICOM only."""
    for i in range(n):
        name = f"sub{i:02d}"
        if name in bad:
            os.makedirs(root / name)
            (root / name / "notes.txt").write_text("not an image\n")
        else:
            _write_series(root / name, series_number=i + 1, slices=3)
    return sorted(str(p) for p in root.iterdir())


def _medfast(*args, env=None, **kwargs):
    environment = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "medfast", *args], capture_output=True,
                          text=True, timeout=120, env=environment, **kwargs)


def _digests(folder):
    """Relative path -> sha256 of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    return _studies(root, 5, bad={"sub03"})


@pytest.fixture(scope="module")
def local_run(studies, tmp_path_factory):
    """One local batch run of the five studies (one of them bad)."""
    out = tmp_path_factory.mktemp("local") / "out"
    report = out.parent / "report.json"
    result = _medfast("convert", *studies, "-o", str(out), "--workers", "2",
                      "--report", str(report))
    return result, out, json.loads(report.read_text())


def test_one_bad_input_does_not_stop_the_others(local_run, studies):
    result, out, report = local_run
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(out)) == ["sub00", "sub01", "sub02", "sub04"]
    assert len(result.stdout.splitlines()) == 4  # one line per volume written
    assert report["counts"] == {"done": 4, "skipped": 0, "partial": 0, "failed": 1}
    failed = [t for t in report["tasks"] if t["status"] == "failed"]
    assert [t["src"] for t in failed] == [studies[3]]
    assert "no DICOM volume found" in failed[0]["reason"]
    assert [t["src"] for t in report["tasks"]] == studies  # the order of the inputs
    assert f"failed   {studies[3]}: " in result.stderr  # the summary table names it


def test_rerun_skips_what_is_complete(local_run, studies):
    _, out, _ = local_run
    before = _digests(out)
    result = _medfast("convert", *studies[:3], "-o", str(out), "--workers", "2", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet, and nothing to report
    assert _digests(out) == before


def test_resume_after_a_killed_batch(tmp_path, local_run):
    """kill -9 of the whole batch (parent and workers) part-way; the next
    run completes the job: the same files as an uninterrupted run, no
    'a'/'b' copies, the finished inputs reported as skipped."""
    _, clean_out, _ = local_run
    sources = _studies(tmp_path / "in", 5, bad={"sub03"})
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, "-m", "medfast", "convert", *sources, "-o",
                                str(out), "--workers", "1"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while not (out / "sub00").is_dir() or not any(
            n.endswith(".nii.gz") for n in os.listdir(out / "sub00")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "sub04").exists()  # killed part-way
    report = tmp_path / "report.json"
    result = _medfast("convert", *sources, "-o", str(out), "--report", str(report))
    assert result.returncode == 1  # sub03 still has no DICOM
    assert _digests(out) == _digests(clean_out)
    statuses = {t["src"]: t["status"] for t in json.loads(report.read_text())["tasks"]}
    assert statuses[sources[0]] == "skipped" and statuses[sources[3]] == "failed"


def test_two_concurrent_batches_into_one_folder(tmp_path, local_run, studies):
    """Each volume is written by exactly one run; the other finds it
    complete; the folder ends as after one run."""
    _, clean_out, _ = local_run
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.Popen([sys.executable, "-m", "medfast", "convert", *studies, "-o",
                              str(out), "--workers", "1", "--report",
                              str(tmp_path / f"report{i}.json")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [1, 1]
    written = []
    for i in range(2):
        for task in json.loads((tmp_path / f"report{i}.json").read_text())["tasks"]:
            written += [v["nifti"] for v in task["volumes"]]
    assert sorted(written) == sorted(set(written)) and len(written) == 4
    assert _digests(out) == _digests(clean_out)


def test_usage_errors_exit_2(tmp_path, studies):
    result = _medfast("convert", str(tmp_path / "nowhere*"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "b" / "x").mkdir(parents=True)
    result = _medfast("convert", str(tmp_path / "a" / "x"), str(tmp_path / "b" / "x"), "-o",
                      str(tmp_path / "out"))
    assert result.returncode == 2 and "two inputs named 'x'" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_from_list_and_missing_inputs(tmp_path, studies):
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# two studies and a typo\n{studies[0]}\n\n{studies[1]}\n"
                       f"{tmp_path / 'typo'}\n")
    tasks_seen = []
    sources, missing = batch.expand_sources([], str(listing))
    assert sources == studies[:2] and missing == [str(tmp_path / "typo")]
    report = batch.run_batch(batch.make_tasks(sources, str(tmp_path / "out")), workers=1,
                             on_result=tasks_seen.append)
    assert [r.status for r in report] == ["done", "done"] and len(tasks_seen) == 2
    assert report.ok and report.counts["done"] == 2


# --------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as local_cluster:
        with distributed.Client(local_cluster) as client:
            yield client


def test_dask_cluster_gives_the_local_bytes_and_report(cluster, local_run, studies,
                                                       tmp_path):
    _, clean_out, clean_report = local_run
    out = tmp_path / "out"
    report = batch.run_batch(batch.make_tasks(studies, str(out)), client=cluster)
    assert _digests(out) == _digests(clean_out)

    def comparable(task):
        return {k: v for k, v in task.items() if k not in ("seconds", "dst", "written",
                                                           "volumes", "kept")}
    assert [comparable(t) for t in report.as_dict()["tasks"]] == [
        comparable(t) for t in clean_report["tasks"]]
    # the command line, with the scheduler from the environment: all there already
    result = _medfast("convert", *studies, "-o", str(out), "--report",
                      str(tmp_path / "report.json"),
                      env={"MEDFAST_DASK_SCHEDULER": cluster.scheduler.address})
    assert result.returncode == 1, result.stderr
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["where"] == cluster.scheduler.address
    assert again["counts"] == {"done": 0, "skipped": 4, "partial": 0, "failed": 1}


def test_a_missing_input_is_reported_and_the_others_run(tmp_path, studies, capsys):
    from medfast import cli

    missing = str(tmp_path / "sub99")
    status = cli.main(["convert", studies[0], missing, "-o", str(tmp_path / "out"),
                       "--workers", "1", "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert status == 1
    assert f"medfast convert: error: {missing}: no such file or folder" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(t["src"], t["status"]) for t in report["tasks"]] == [
        (studies[0], "done"), (missing, "failed")]


def _children(pid):
    """Process ids whose parent is `pid` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                out.append(int(entry))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_worker_killed_mid_batch_does_not_stop_it(tmp_path, studies):
    """SIGKILL of a worker process breaks the pool; the tasks it held run
    again in a new one and every input is converted."""
    sources = _studies(tmp_path / "in", 6)
    killed = []

    def kill_a_worker(result):
        if killed:
            return
        workers = [w for server in _children(os.getpid()) for w in _children(server)]
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    report = batch.run_batch(batch.make_tasks(sources, str(tmp_path / "out")), workers=2,
                             on_result=kill_a_worker)
    assert killed
    assert [r.status for r in report] == ["done"] * 6, [r.reason for r in report]

"""medfast.convert in unattended jobs: concurrent runs, kill -9, re-runs, privacy.

* Two processes convert one folder into one output folder at the same time;
  a barrier inside the conversion (after each volume's pixels are read)
  makes both runs reach every volume together, so that they always contend
  for the same names.  Nothing may be lost, no name written twice, and each
  run must report exactly the files it wrote.
* A child process is killed (SIGKILL) just before its n-th change to the
  output folder (file created, renamed, removed...), for every n of an
  uninterrupted run: the folder must then hold complete volumes (byte for
  byte those of an uninterrupted run) and nothing else than companions
  without their NIfTI and medfast's work files; running the conversion
  again must give exactly the folder of an uninterrupted run.
* Known identifying values written into the DICOM headers must appear in
  no byte of any written file (gzip streams decompressed) nor in any name,
  unless asked for.
"""
import builtins
import gzip
import importlib
import json
import multiprocessing
import os
import signal
import threading

import pytest

import medfast
from medfast.io._atomic import claim

from dicom_synth import write_series

FORK = multiprocessing.get_context("fork")
convert_module = importlib.import_module("medfast.dicom.convert")


def _state(folder):
    """relative path -> bytes of every file; relative path -> None for
    every folder."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                out[os.path.relpath(os.path.join(root, f), folder)] = fh.read()
    return out


def _exam(folder, n):
    """n single-volume series (the last one a diffusion series), named
    'p1_1', 'p2_2'..., and a second volume named like the first (another
    session of series 1: 'p1_1a')."""
    for i in range(1, n):
        write_series(folder / f"s{i}", series_number=i, seed=i, prefix=f"s{i}_",
                     header={"ProtocolName": f"p{i}"})
    write_series(folder / "dwi", series_number=n, volumes=3, prefix="dwi",
                 header={"ProtocolName": f"p{n}"},
                 diffusion=[(0, None), (1000, (1, 0, 0)), (1000, (0, 1, 0))])
    write_series(folder / "again", series_number=1, seed=99, prefix="again",
                 header={"ProtocolName": "p1"})


# --------------------------------------------------------------------------
# Concurrent runs
# --------------------------------------------------------------------------
def _run_in_step(src, dst, existing, barrier, queue):
    """Convert, meeting the other process at `barrier` after each volume's
    pixels are read; send back what was written and kept."""
    readable = convert_module._readable

    def in_step(volume, *options):
        out = readable(volume, *options)
        barrier.wait(timeout=20)
        return out

    try:
        convert_module._readable = in_step
        result = medfast.convert(src, dst, existing=existing)
        queue.put((result.files, [k.nifti for k in result.kept], len(result.failed)))
    except BaseException as exc:
        queue.put(repr(exc))


@pytest.mark.parametrize("existing", ["suffix", "skip"])
def test_two_runs_at_once_lose_nothing(tmp_path, existing):
    _exam(tmp_path / "in", 4)
    out = tmp_path / "out"
    out.mkdir()
    barrier, queue = FORK.Barrier(2), FORK.Queue()
    runs = [FORK.Process(target=_run_in_step, args=(tmp_path / "in", out, existing,
                                                    barrier, queue)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    reports = [queue.get(timeout=1) for _ in runs]
    assert [run.exitcode for run in runs] == [0, 0], reports
    assert all(isinstance(r, tuple) and r[2] == 0 for r in reports), reports
    (files_a, kept_a, _), (files_b, kept_b, _) = reports
    assert not set(files_a) & set(files_b)  # no file written by both
    on_disk = {str(out / name) for name in _state(out)}
    assert on_disk == set(files_a) | set(files_b)  # and nothing else (no work files)
    niftis = sorted(os.path.basename(p) for p in on_disk if p.endswith(".nii.gz"))
    if existing == "suffix":  # both runs' 5 volumes: 10
        assert niftis == ["p1_1.nii.gz", "p1_1a.nii.gz", "p1_1b.nii.gz", "p1_1c.nii.gz",
                          "p2_2.nii.gz", "p2_2a.nii.gz", "p3_3.nii.gz", "p3_3a.nii.gz",
                          "p4_4.nii.gz", "p4_4a.nii.gz"]
    else:  # each volume written by one run, kept by the other
        assert niftis == ["p1_1.nii.gz", "p1_1a.nii.gz", "p2_2.nii.gz", "p3_3.nii.gz",
                          "p4_4.nii.gz"]
        assert sorted(kept_a + kept_b) == sorted(str(out / n) for n in niftis)
    for nifti in niftis:  # each complete
        stem = nifti[:-len(".nii.gz")]
        assert medfast.load(out / nifti).shape[:3] == (5, 6, 4)
        assert json.loads((out / (stem + ".json")).read_text())["ProtocolName"] == stem[:2]
        assert (out / (stem + ".bval")).exists() == stem.startswith("p4")


def test_threads_in_one_process_never_write_one_name(tmp_path):
    _exam(tmp_path / "in", 2)
    results = [None, None]

    def run(i):
        results[i] = medfast.convert(tmp_path / "in", tmp_path / "out", existing="suffix")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = results[0].files + results[1].files
    assert len(written) == len(set(written)) == 16
    assert sorted(str(tmp_path / "out" / n) for n in _state(tmp_path / "out")) == sorted(written)


# --------------------------------------------------------------------------
# kill -9, and the next run
# --------------------------------------------------------------------------
_CHANGES = ("open", "replace", "rename", "unlink", "rmdir", "mkdir")


def _convert_and_die(src, dst, kill_at, queue):
    """Convert, killing this process just before its `kill_at`-th change
    to `dst`; send back the number of changes when not killed."""
    count = [0]
    dst = os.path.realpath(dst)

    def hooked(function, name):
        def change(path, *args, **kwargs):
            is_change = name != "open" or (
                args and (isinstance(args[0], int) and args[0] & (os.O_CREAT | os.O_WRONLY)
                          or isinstance(args[0], str) and args[0][:1] in "wxa"))
            if is_change and isinstance(path, (str, os.PathLike)) and os.path.abspath(
                    os.fspath(path)).startswith(dst + os.sep):
                count[0] += 1
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return function(path, *args, **kwargs)
        return change

    for name in _CHANGES:
        setattr(os, name, hooked(getattr(os, name), name))
    builtins.open = hooked(builtins.open, "open")
    medfast.convert(src, dst)
    queue.put(count[0])


def _fork_convert(src, dst, kill_at):
    queue = FORK.Queue()
    child = FORK.Process(target=_convert_and_die, args=(src, dst, kill_at, queue))
    child.start()
    child.join(timeout=60)
    return child.exitcode, (queue.get(timeout=5) if child.exitcode == 0 else None)


def test_kill_at_any_change_leaves_complete_volumes_and_a_rerun_completes(tmp_path):
    _exam(tmp_path / "in", 2)
    reference = tmp_path / "reference"
    code, changes = _fork_convert(tmp_path / "in", reference, kill_at=0)
    assert code == 0 and changes > 20
    expected = _state(reference)
    assert sorted(expected) == ["p1_1.json", "p1_1.nii.gz", "p1_1a.json", "p1_1a.nii.gz",
                                "p2_2.bval", "p2_2.bvec", "p2_2.json", "p2_2.nii.gz"]
    for kill_at in range(1, changes + 1):
        out = tmp_path / f"killed{kill_at}"
        out.mkdir()
        code, _ = _fork_convert(tmp_path / "in", out, kill_at)
        assert code == -signal.SIGKILL
        left = _state(out)
        for name, data in left.items():
            if name.startswith("."):  # medfast's work files only
                assert name.split(os.sep)[0].endswith((".medfast-lock", ".medfast-tmp")), name
            else:  # whole files of an uninterrupted run, nothing else
                assert data == expected.get(name, b"not expected"), (kill_at, name)
        for name in left:  # a NIfTI file present has its companions
            if name.endswith(".nii.gz"):
                stem = name[:-len(".nii.gz")]
                assert {n for n in expected if n.startswith(stem + ".")} <= set(left), name
        result = medfast.convert(tmp_path / "in", out)
        assert _state(out) == expected, kill_at
        niftis = {n for n in expected if n.endswith(".nii.gz")}
        assert {os.path.basename(k.nifti) for k in result.kept} == niftis & set(left)
        assert {os.path.basename(p) for p in result} == niftis - set(left), kill_at


def test_leftovers_of_a_live_run_are_kept_of_a_dead_one_removed(tmp_path):
    _exam(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    # A live writer (another open file description: as another process).
    live = claim(str(out / "other"))
    (open(os.path.join(live.workspace(), "other.nii.gz"), "wb")).close()
    # What a killed writer leaves: a lock file nobody holds and a work folder.
    (out / ".gone.medfast-lock").write_bytes(b"")
    (out / ".gone.medfast-tmp").mkdir()
    (out / ".gone.medfast-tmp" / "gone.json").write_text("{}")
    (out / ".p1_1.medfast-tmp").mkdir()  # ...and one for a name this run writes
    (out / ".p1_1.medfast-tmp" / "p1_1.nii.gz").write_bytes(b"half")
    medfast.convert(tmp_path / "in", out)
    hidden = sorted(n for n in _state(out) if n.startswith("."))
    assert hidden == [".other.medfast-lock", ".other.medfast-tmp",
                      os.path.join(".other.medfast-tmp", "other.nii.gz")]
    live.release()
    assert not any(n.startswith(".") for n in _state(out))


# --------------------------------------------------------------------------
# existing='skip' | 'overwrite' | 'suffix' (dcm2niix -w 0 | 1 | 2)
# --------------------------------------------------------------------------
def test_existing_outputs(tmp_path):
    _exam(tmp_path / "in", 2)
    out = tmp_path / "out"
    first = medfast.convert(tmp_path / "in", out)
    assert len(first) == 3 and not first.kept
    expected = _state(out)
    # Skip (default): complete outputs kept, pixels not even read.
    again = medfast.convert(tmp_path / "in", out)
    assert list(again) == [] and again.ok and _state(out) == expected
    assert sorted(k.nifti for k in again.kept) == sorted(first)
    # An incomplete output (as an older version or another tool left it) is
    # replaced: a NIfTI without its sidecar, a sidecar without its NIfTI.
    (out / "p1_1.json").unlink()
    (out / "p2_2.nii.gz").unlink()
    (out / "p2_2.bvec").write_text("stale")
    again = medfast.convert(tmp_path / "in", out)
    assert sorted(os.path.basename(p) for p in again) == ["p1_1.nii.gz", "p2_2.nii.gz"]
    assert _state(out) == expected
    # Overwrite: everything written again; companions the new volume has not
    # are removed with the old volume.
    (out / "p1_1.bval").write_text("not of this volume")
    again = medfast.convert(tmp_path / "in", out, existing="overwrite")
    assert len(again) == 3 and not again.kept and _state(out) == expected
    # Suffix: new copies, nothing existing touched.
    again = medfast.convert(tmp_path / "in", out, existing="suffix")
    assert sorted(os.path.basename(p) for p in again) == [
        "p1_1b.nii.gz", "p1_1c.nii.gz", "p2_2a.nii.gz"]
    assert {n: d for n, d in _state(out).items() if n in expected} == expected
    with pytest.raises(ValueError, match="existing must be one of 'skip', 'overwrite'"):
        medfast.convert(tmp_path / "in", out, existing="replace")


def test_cli_write_option(tmp_path, capsys):
    from medfast import cli
    write_series(tmp_path / "in")
    args = ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"medfast convert: kept: {tmp_path / 'out' / 'synthetic_7.nii.gz'}: "
                   "series 7: already converted",
                   "medfast convert: 0 volume(s) written; 1 volume(s) already converted"]
    assert cli.main(args + ["-w", "2"]) == 0
    assert cli.main(args + ["-w", "1"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == [
        "synthetic_7.json", "synthetic_7.nii.gz", "synthetic_7a.json", "synthetic_7a.nii.gz"]


# --------------------------------------------------------------------------
# Privacy
# --------------------------------------------------------------------------
PHI = {
    "PatientName": "Privacyname^Patricia^Quincy",
    "PatientID": "PHI-ID-4711",
    "PatientBirthDate": "19450317",
    "PatientAddress": "12 Hiddenway Lane, Springfield",
    "OtherPatientIDs": "OTHER-ID-0815",
    "ReferringPhysicianName": "Referrer^Roberta",
    "AccessionNumber": "ACC77123",
    "PatientTelephoneNumbers": "555-0199-321",
    "PatientMotherBirthName": "Maidenly^Margot",
}
# How a value could show up once written: as it is, the name's parts
# alone, the birth date in ISO form.
NEEDLES = {
    "PatientName": ["Privacyname", "Patricia", "Quincy"],
    "PatientID": ["PHI-ID-4711", "PHI_ID_4711"],
    "PatientBirthDate": ["19450317", "1945-03-17"],
    "PatientAddress": ["Hiddenway"],
    "OtherPatientIDs": ["OTHER-ID-0815"],
    "ReferringPhysicianName": ["Referrer", "Roberta"],
    "AccessionNumber": ["ACC77123"],
    "PatientTelephoneNumbers": ["555-0199"],
    "PatientMotherBirthName": ["Maidenly", "Margot"],
}
SITE = {"InstitutionName": "Sitename Hospital", "InstitutionAddress": "1 Sitestreet, Sitetown"}


def _found(folder):
    """field -> the files (by name) holding one of its needles: file names,
    raw bytes and decompressed bytes of every file."""
    hits = {}
    for name, data in _state(folder).items():
        blobs = [name.encode(), data or b""]
        if data and data[:2] == b"\x1f\x8b":
            blobs.append(gzip.decompress(data))
        for field, needles in NEEDLES.items():
            if any(n.lower().encode() in blob.lower() for n in needles for blob in blobs):
                hits.setdefault(field, set()).add(name)
    return hits


def _phi_exam(folder):
    write_series(folder, volumes=2, header=dict(PHI, **SITE),
                 diffusion=[(0, None), (1000, (0, 0.6, 0.8))])


def test_no_identifying_value_in_any_written_byte_by_default(tmp_path):
    _phi_exam(tmp_path / "in")
    medfast.convert(tmp_path / "in", tmp_path / "out")
    assert sorted(_state(tmp_path / "out")) == ["synthetic_7.bval", "synthetic_7.bvec",
                                                "synthetic_7.json", "synthetic_7.nii.gz"]
    assert _found(tmp_path / "out") == {}
    sidecar = json.loads((tmp_path / "out" / "synthetic_7.json").read_text())
    # Kept by design (the scanner's site, not the patient), as dcm2niix -ba y.
    assert sidecar["InstitutionAddress"] == SITE["InstitutionAddress"]
    assert not {"PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                "ReferringPhysicianName", "AccessionNumber", "SeriesInstanceUID",
                "StudyInstanceUID", "AcquisitionDateTime"} & set(sidecar)


def test_identifying_values_only_where_asked(tmp_path):
    _phi_exam(tmp_path / "in")
    medfast.convert(tmp_path / "in", tmp_path / "kept", anonymize=False)
    assert _found(tmp_path / "kept") == {field: {"synthetic_7.json"} for field in (
        "PatientName", "PatientID", "PatientBirthDate", "ReferringPhysicianName",
        "AccessionNumber")}
    sidecar = json.loads((tmp_path / "kept" / "synthetic_7.json").read_text())
    assert sidecar["PatientName"] == PHI["PatientName"]
    assert sidecar["PatientBirthDate"] == "1945-03-17"
    # In names only through %n / %i, the sidecar still anonymised.
    medfast.convert(tmp_path / "in", tmp_path / "named", pattern="%n_%i")
    assert _found(tmp_path / "named") == {
        field: {"Privacyname^Patricia^Quincy_PHI-ID-4711" + ext
                for ext in (".bval", ".bvec", ".json", ".nii.gz")}
        for field in ("PatientName", "PatientID")}

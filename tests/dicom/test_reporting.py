"""Nothing silent: every file not used and every image left out is reported.

* duplicates (the same SOPInstanceUID in several files: a backup copy, a
  ``.dcm`` beside its ``.dcm.gz``) are one image, reported once each as
  ``'duplicate'``; modified copies saved as a new series are not copies;
* symbolic links to folders and files are followed, each real folder and
  file read once (link loops end); dangling links and pipes are reported;
* a file cut short drops the time points of a 4-D series that lose an
  image (the complete ones are written), the lost file is ``'skipped'`` and
  the other files of those time points ``'dropped'``, each with the reason;
* pixel data found unreadable only when decoded (gzipped, compressed) are
  left out the same way by :func:`medfast.convert`.

Where dcm2niix has a rule (duplicates, 4-D), the result is checked against
live dcm2niix.
"""
import gzip
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import medfast
from medfast.dicom.scan import list_files, volumes
from dicom_data import canonical
from dicom_synth import write_series


def _dcm2niix(folder, out):
    """dcm2niix's volumes for `folder`: {name: canonical (array, affine)}."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    out.mkdir()
    run = subprocess.run([exe, "-z", "n", "-b", "n", "-f", "%s_%p", "-o", str(out),
                          str(folder)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return {p.name: canonical(np.asanyarray(nib.load(p).dataobj), nib.load(p).affine)
            for p in sorted(out.glob("*.nii"))}, run.stdout


def _ours(result):
    """{name: canonical (array, affine)} of a ConvertResult's volumes."""
    return {os.path.basename(p): canonical(np.asanyarray(nib.load(p).dataobj),
                                           nib.load(p).affine) for p in result}


def _assert_same(ours, theirs):
    assert ours[0].shape == theirs[0].shape
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1], atol=0.05)


def _by_kind(skipped):
    out = {}
    for s in skipped:
        out.setdefault(s.kind, {})[s.path] = s.reason
    return out


def _cut_pixels(path, keep=0.5):
    """Cut a file inside its pixel data (an interrupted copy)."""
    data = open(path, "rb").read()
    start = data.rindex(b"\xe0\x7f\x10\x00") + 12
    open(path, "wb").write(data[:start + int((len(data) - start) * keep)])


# --------------------------------------------------------------------------
# duplicates


def test_backup_sub_folder_is_one_series(tmp_path):
    """A 4-D series and a backup copy of it in a sub-folder: still 3 time
    points (not 6), each copy reported once as a duplicate of its original;
    dcm2niix (DUPLICATES REMOVED) writes the same volume."""
    files = write_series(tmp_path / "in", volumes=3, slices=4)
    shutil.copytree(tmp_path / "in", tmp_path / "backup")
    shutil.move(tmp_path / "backup", tmp_path / "in" / "backup")
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 4, 3)]
    kinds = _by_kind(found.skipped)
    assert set(kinds) == {"duplicate"}
    assert sorted(kinds["duplicate"]) == sorted(
        str(tmp_path / "in" / "backup" / os.path.basename(f)) for f in files)
    for copy, reason in kinds["duplicate"].items():
        assert reason == (f"duplicate of {tmp_path / 'in' / os.path.basename(copy)} "
                          "(same SOPInstanceUID)")
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert result.ok and len(result) == 1 and len(result.skipped) == len(files)
    theirs, log = _dcm2niix(tmp_path / "in", tmp_path / "ref")
    assert "DUPLICATES REMOVED" in log
    assert len(theirs) == 1
    _assert_same(next(iter(_ours(result).values())), next(iter(theirs.values())))


def test_dcm_beside_its_dcm_gz(tmp_path):
    files = write_series(tmp_path / "in", slices=5)
    for f in files:
        with open(f, "rb") as src:
            (tmp_path / "in" / (os.path.basename(f) + ".gz")).write_bytes(
                gzip.compress(src.read()))
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 5)] and found[0].n_files == 5
    kinds = _by_kind(found.skipped)
    # The first in path order is kept: 'x.dcm' sorts before 'x.dcm.gz'.
    assert sorted(kinds["duplicate"]) == sorted(f + ".gz" for f in files)
    img = medfast.load_dicom(tmp_path / "in")
    assert img.meta["dicom_files"] == files


def test_modified_copies_saved_as_a_new_series_are_not_duplicates(tmp_path):
    """Copies with the same SOPInstanceUIDs but a new series (a tool that
    edits and saves a series under a new SeriesInstanceUID and number):
    two series, nothing reported; dcm2niix also writes two."""
    import pydicom
    files = write_series(tmp_path / "in" / "original", slices=4, series_number=3)
    os.makedirs(tmp_path / "in" / "edited")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".9"
        ds.SeriesNumber = 1003
        ds.PixelData = (np.frombuffer(ds.PixelData, np.int16) + 7).astype(np.int16).tobytes()
        ds.save_as(tmp_path / "in" / "edited" / os.path.basename(f))
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.name for info in found] == ["3", "1003"] and found.skipped == []
    result = medfast.convert(tmp_path / "in", tmp_path / "out", pattern="%s_%p")
    assert result.ok and len(result) == 2
    theirs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref")
    assert len(theirs) == 2
    ours = _ours(result)
    for name, ref in theirs.items():
        _assert_same(ours[name[:-len(".nii")] + ".nii.gz"], ref)


def test_same_image_in_a_multi_frame_file_is_not_a_duplicate_of_its_frames(tmp_path):
    """Frames of one enhanced file share a SOPInstanceUID: never copies of
    each other."""
    from dicom_synth import write_enhanced
    write_enhanced(tmp_path / "in" / "enhanced.dcm", slices=4, volumes=2)
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 4, 2)] and found.skipped == []


# --------------------------------------------------------------------------
# symbolic links


needs_links = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt",
                                 reason="symbolic links need POSIX")


@needs_links
def test_linked_series_folder_is_read(tmp_path):
    files = write_series(tmp_path / "elsewhere" / "series", slices=3)
    os.makedirs(tmp_path / "in")
    os.symlink(tmp_path / "elsewhere" / "series", tmp_path / "in" / "linked")
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 3)] and found.skipped == []
    listed, problems = list_files(str(tmp_path / "in"))
    assert listed == [str(tmp_path / "in" / "linked" / os.path.basename(f)) for f in files]
    # The input itself a link to a folder.
    os.symlink(tmp_path / "in", tmp_path / "top")
    assert [info.shape for info in medfast.scan_dicom(tmp_path / "top")] == [(5, 6, 3)]


@needs_links
def test_same_folder_reached_twice_is_read_once(tmp_path):
    """A series folder and a link to it beside it: one 3-D volume, no
    duplicates (the files are the same files, read once)."""
    files = write_series(tmp_path / "in" / "series", slices=3)
    os.symlink("series", tmp_path / "in" / "series_again")
    os.symlink(tmp_path / "in" / "series" / os.path.basename(files[0]),
               tmp_path / "in" / "first.dcm")
    listed, problems = list_files(str(tmp_path / "in"))
    # A folder's files come before its sub-folders: the link reaches the
    # first file first.
    assert listed == [str(tmp_path / "in" / "first.dcm")] + files[1:] and problems == []
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 3)] and found.skipped == []


@needs_links
def test_link_to_a_single_file(tmp_path):
    files = write_series(tmp_path / "elsewhere", slices=3)
    os.makedirs(tmp_path / "in")
    for f in files:
        os.symlink(f, tmp_path / "in" / ("link_" + os.path.basename(f)))
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 3)] and found.skipped == []
    assert medfast.scan_dicom(tmp_path / "in" / ("link_" + os.path.basename(files[0])))[0] \
        .shape == (5, 6, 1)


@needs_links
def test_link_loops_end(tmp_path):
    write_series(tmp_path / "in" / "a" / "b", slices=3)
    os.symlink(tmp_path / "in", tmp_path / "in" / "a" / "b" / "up")   # b/up -> in
    os.symlink("..", tmp_path / "in" / "a" / "parent")               # a/parent -> in
    os.symlink("self.dcm", tmp_path / "in" / "self.dcm")              # a file loop
    listed, problems = list_files(str(tmp_path / "in"))
    assert len(listed) == 3
    assert [p.path for p in problems] == [str(tmp_path / "in" / "self.dcm")]
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 3)]
    assert [s.path for s in found.skipped] == [str(tmp_path / "in" / "self.dcm")]


@needs_links
def test_dangling_link_and_pipe_are_reported(tmp_path):
    write_series(tmp_path / "in", slices=3)
    os.symlink(tmp_path / "gone.dcm", tmp_path / "in" / "broken.dcm")
    os.mkfifo(tmp_path / "in" / "pipe.dcm")   # opening it would wait forever
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 3)]
    reasons = {os.path.basename(s.path): s.reason for s in found.skipped}
    assert reasons == {"broken.dcm": f"dangling symbolic link (to {tmp_path / 'gone.dcm'}: "
                                     "no such file)",
                       "pipe.dcm": "not a regular file or folder"}
    assert {s.kind for s in found.skipped} == {"skipped"}
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result) == 1 and not result.ok and len(result.skipped) == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads folders whatever their permissions")
def test_unreadable_folder_is_reported(tmp_path):
    write_series(tmp_path / "in" / "ok", slices=3)
    write_series(tmp_path / "in" / "locked", slices=3, series_number=8)
    os.chmod(tmp_path / "in" / "locked", 0)
    try:
        found = medfast.scan_dicom(tmp_path / "in")
        assert [info.name for info in found] == ["7"]
        assert [(s.path, s.kind) for s in found.skipped] == [
            (str(tmp_path / "in" / "locked"), "skipped")]
        assert found.skipped[0].reason.startswith("cannot read folder")
    finally:
        os.chmod(tmp_path / "in" / "locked", 0o755)


# --------------------------------------------------------------------------
# a 4-D series with one file cut short


def _volume_files(folder):
    """The files of each time point of the folder's only volume."""
    (volume,), _ = volumes(str(folder))
    return [[s.file.path for s in row] for row in volume.grid]


@pytest.mark.parametrize("where", ["pixels", "header"])
@pytest.mark.parametrize("temporal", [True, False], ids=["temporal", "instance-order"])
def test_4d_series_with_a_file_cut_short(tmp_path, where, temporal):
    """One file of time point 2 (of 5) cut short: time point 2 is dropped,
    the other 4 are written as they are; the cut file is skipped, the 3
    other files of time point 2 are dropped, each with the reason."""
    write_series(tmp_path / "in", volumes=5, slices=4)
    if not temporal:
        import pydicom
        for f in sorted((tmp_path / "in").iterdir()):
            ds = pydicom.dcmread(f)
            del ds.TemporalPositionIdentifier
            ds.save_as(f)
    shutil.copytree(tmp_path / "in", tmp_path / "intact")
    time_points = _volume_files(tmp_path / "in")
    cut = time_points[2][1]
    if where == "pixels":
        _cut_pixels(cut)
    else:
        data = open(cut, "rb").read()
        open(cut, "wb").write(data[:data.rindex(b"\xe0\x7f\x10\x00") - 31])
    found = medfast.scan_dicom(tmp_path / "in")
    assert [info.shape for info in found] == [(5, 6, 4, 4)]
    kinds = _by_kind(found.skipped)
    assert set(kinds["skipped"]) == {cut}
    assert "cut" in kinds["skipped"][cut]
    assert set(kinds["dropped"]) == set(time_points[2]) - {cut}
    assert all(r.startswith("series 7: incomplete volume") for r in kinds["dropped"].values())

    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result) == 1 and not result.ok and not result.failed
    assert {s.path for s in result.skipped} == set(time_points[2])
    ours = np.asanyarray(nib.load(result[0]).dataobj)
    intact = medfast.load_dicom(tmp_path / "intact")
    np.testing.assert_array_equal(ours, np.delete(intact.array, 2, axis=3))
    # dcm2niix writes the 5 time points of the intact series; ours are its
    # time points 0, 1, 3, 4 (and it writes nothing of the damaged one).
    theirs, _ = _dcm2niix(tmp_path / "intact", tmp_path / "ref")
    (ref_data, ref_affine), = theirs.values()
    data, affine = canonical(ours, nib.load(result[0]).affine)
    np.testing.assert_array_equal(data, np.delete(ref_data, 2, axis=3))
    np.testing.assert_allclose(affine, ref_affine, atol=0.05)


def test_real_ge_fmri_with_one_file_cut_short(tmp_path, dicom_qa):
    """The NIH GE fMRI series (150 files, 64x64x15x10), one file's pixel
    data cut short: 9 time points written, equal to the intact series'
    others; the cut file skipped, the 14 other files of its time point
    dropped; ``medfast convert`` says so and exits 1."""
    source = dicom_qa / "nih" / "In" / "20180918GE" / "mr_0004"
    work = tmp_path / "mr_0004"
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("*.txt"))
    for f in work.iterdir():
        os.chmod(f, 0o644)
    time_points = _volume_files(work)
    assert len(time_points) == 10 and all(len(row) == 15 for row in time_points)
    cut = sorted(f for row in time_points for f in row)[19]
    lost = next(t for t, row in enumerate(time_points) if cut in row)
    _cut_pixels(cut, keep=0.6)
    intact = medfast.load_dicom(source)

    result = medfast.convert(work, tmp_path / "out")
    assert len(result) == 1 and not result.ok and not result.failed
    kinds = _by_kind(result.skipped)
    assert list(kinds["skipped"]) == [cut] and "truncated" in kinds["skipped"][cut]
    assert sorted(kinds["dropped"]) == sorted(set(time_points[lost]) - {cut})
    written = np.asanyarray(nib.load(result[0]).dataobj)
    assert written.shape == (64, 64, 15, 9)
    np.testing.assert_array_equal(written, np.delete(intact.array, lost, axis=3))

    from medfast import cli
    run = subprocess.run(
        [sys.executable, "-m", "medfast", "convert", str(work), "-o", str(tmp_path / "cli")],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(cli.__file__))))
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines.count(f"medfast convert: skipped: {cut}: {kinds['skipped'][cut]}") == 1
    assert sum(line.startswith("medfast convert: dropped: ") for line in lines) == 14
    assert lines[-1] == ("medfast convert: 1 volume(s) written; 1 file(s) skipped; "
                         "14 file(s) dropped")
    assert len(run.stdout.splitlines()) == 1 and "64x64x15x9" in run.stdout


# --------------------------------------------------------------------------
# pixel data found unreadable only when decoded


def _gzip_cut(path):
    """Gzip a file, the gzip stream cut short: the header reads, the pixel
    data do not."""
    packed = gzip.compress(open(path, "rb").read())
    os.remove(path)
    with open(path + ".gz", "wb") as f:
        f.write(packed[:-30])
    return path + ".gz"


def test_3d_series_with_an_undecodable_file(tmp_path):
    """The file is left out as if its header were unreadable: a gap in the
    volume, reported as a problem; the file is skipped with the reason."""
    files = write_series(tmp_path / "in", slices=5)
    bad = _gzip_cut(files[2])
    assert medfast.scan_dicom(tmp_path / "in")[0].n_files == 5  # the header is fine
    with pytest.raises(ValueError, match="cannot read pixel data"):
        medfast.load_dicom(tmp_path / "in")  # loading one volume stays strict
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result) == 1 and not result.ok and not result.failed
    assert [(s.path, s.kind) for s in result.skipped] == [(bad, "skipped")]
    assert result.skipped[0].reason.startswith("cannot read pixel data")
    assert result.outputs[0].shape == (5, 6, 4)
    assert any("missing slices" in p for p in result.outputs[0].problems)
    written = np.asanyarray(nib.load(result[0]).dataobj)
    os.remove(bad)
    whole = medfast.load_dicom(tmp_path / "in")
    np.testing.assert_array_equal(written, whole.array)


def test_4d_series_with_an_undecodable_file(tmp_path):
    write_series(tmp_path / "in", volumes=4, slices=3)
    time_points = _volume_files(tmp_path / "in")
    intact = medfast.load_dicom(tmp_path / "in")
    bad = _gzip_cut(time_points[1][0])
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result) == 1 and not result.failed and not result.ok
    kinds = _by_kind(result.skipped)
    assert list(kinds["skipped"]) == [bad]
    assert sorted(kinds["dropped"]) == sorted(time_points[1][1:])
    written = np.asanyarray(nib.load(result[0]).dataobj)
    np.testing.assert_array_equal(written, np.delete(intact.array, 1, axis=3))


def test_every_file_undecodable_is_a_failed_series(tmp_path):
    write_series(tmp_path / "in" / "good", series_number=1)
    files = write_series(tmp_path / "in" / "bad", series_number=2, slices=3)
    for f in files:
        _gzip_cut(f)
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert len(result) == 1 and not result.ok and result.skipped == []
    (failure,) = result.failed
    assert failure.series == "2"
    assert failure.reason.startswith(files[-1] + ".gz: cannot read pixel data")
    assert failure.reason.endswith("(and 2 other file(s) of the series)")


def test_clean_folder_reports_nothing(tmp_path):
    write_series(tmp_path / "in", volumes=2)
    found = medfast.scan_dicom(tmp_path / "in")
    assert found.skipped == []
    result = medfast.convert(tmp_path / "in", tmp_path / "out")
    assert result.ok and result.skipped == [] and result.failed == []
    assert result.outputs[0].problems == ()

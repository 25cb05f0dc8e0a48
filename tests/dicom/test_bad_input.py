"""Bad DICOM input: every case gives a clear error or a skipped file with the
reason, never a traceback from deep inside, never partial output.

"Clear" means: a ``ValueError`` or ``FileNotFoundError`` (exactly, or
medfast's own ValueError kinds; never a pydicom or decoder exception), a message of a line or two that names the
file or folder and the problem, and no chained exception from inside.
"""
import gzip
import os
import shutil

import numpy as np
import pytest
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000Lossless, RLELossless, generate_uid)

import medfast
from synthetic import (expected_array, image_dataset, oblique, ramp, ras_affine, save,
                       stack_positions, write_series)

# pydicom warns about the invalid values these files hold on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _ours(exc):
    """ValueError, FileNotFoundError or a ValueError kind of medfast's."""
    return type(exc) in (ValueError, FileNotFoundError) or (
        isinstance(exc, ValueError) and type(exc).__module__.startswith("medfast."))


def _clear(excinfo, *needles):
    """The exception is ours, short, self-contained and says `needles`."""
    exc = excinfo.value
    assert _ours(exc), type(exc)
    text = str(exc)
    assert len(text.strip().splitlines()) <= 2, text
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), \
        "chained from an inner exception"
    for needle in needles:
        assert str(needle) in text, (needle, text)
    return text


def _good_series(folder, n=3, **kwargs):
    stack = ramp(n, dtype=np.int16, seed=1, **{k: kwargs.pop(k) for k in ("rows", "cols")
                                               if k in kwargs})
    positions = stack_positions(n)
    names = [f"s{k}.dcm" for k in range(n)]
    paths = write_series(folder, stack, positions, names=names, **kwargs)
    return stack, positions, paths


def _skipped(path):
    return {os.path.basename(s.path): s.reason for s in medfast.scan_dicom(path).skipped}


# --------------------------------------------------------------------------
# missing and empty


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    for call in (medfast.load_dicom, medfast.load_dicom_all, medfast.scan_dicom):
        with pytest.raises(FileNotFoundError) as exc:
            call(missing)
        _clear(exc, missing, "no such file or folder")


def test_missing_path_medfast_load(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        medfast.load(tmp_path / "nowhere.dcm")
    assert "nowhere.dcm" in str(exc.value)


def test_empty_folder(tmp_path):
    for call in (medfast.load_dicom, medfast.load_dicom_all, medfast.load):
        with pytest.raises(ValueError) as exc:
            call(tmp_path)
        _clear(exc, tmp_path, "no DICOM volume found", "empty folder")
    found = medfast.scan_dicom(tmp_path)
    assert list(found) == [] and found.skipped == []


def test_only_non_dicom_files(tmp_path):
    (tmp_path / "README.txt").write_text("notes about the exam\n")
    (tmp_path / "image.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.bin").write_bytes(os.urandom(2000))
    (tmp_path / "tiny.dcm").write_bytes(b"")
    with pytest.raises(ValueError) as exc:
        medfast.load_dicom(tmp_path)
    _clear(exc, tmp_path, "no DICOM volume found", "4 file(s)", "not a DICOM file")
    found = medfast.scan_dicom(tmp_path)
    assert list(found) == []
    reasons = _skipped(tmp_path)
    assert set(reasons) == {"README.txt", "image.dcm", "data.bin", "tiny.dcm"}
    assert all("not a DICOM file" in r for r in reasons.values())


def test_single_non_dicom_file(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is not DICOM")
    with pytest.raises(ValueError) as exc:
        medfast.load_dicom(path)
    _clear(exc, path, "not a DICOM file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    stack, _, paths = _good_series(tmp_path, n=4)
    os.chmod(paths[3], 0)
    try:
        img = medfast.load_dicom(tmp_path)
        np.testing.assert_array_equal(img.array, expected_array(stack[:3]))
        reasons = _skipped(tmp_path)
        assert "cannot read" in reasons["s3.dcm"]
        alone = tmp_path / "alone"
        alone.mkdir()
        shutil.move(paths[3], alone / "s3.dcm")
        with pytest.raises(ValueError) as exc:
            medfast.load_dicom(alone)
        _clear(exc, alone, "cannot read")
    finally:
        for p in (paths[3], tmp_path / "alone" / "s3.dcm"):
            if os.path.exists(p):
                os.chmod(p, 0o644)


# --------------------------------------------------------------------------
# files that are not DICOM among good ones


def test_not_dicom_among_series(tmp_path):
    stack, positions, _ = _good_series(tmp_path)
    (tmp_path / "fake.dcm").write_text("not DICOM at all, just text " * 20)
    (tmp_path / "fake.dcm.gz").write_bytes(b"not gzip either")
    (tmp_path / "real_gzip_not_dicom.dcm.gz").write_bytes(gzip.compress(b"hello" * 100))
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack))
    reasons = _skipped(tmp_path)
    assert set(reasons) == {"fake.dcm", "fake.dcm.gz", "real_gzip_not_dicom.dcm.gz"}
    assert "not a DICOM file" in reasons["fake.dcm"]
    assert "gzip" in reasons["fake.dcm.gz"]
    assert "not a DICOM file" in reasons["real_gzip_not_dicom.dcm.gz"]


def test_dicm_marker_with_garbage(tmp_path):
    """A preamble and 'DICM' followed by noise: skipped, with the reason."""
    _good_series(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "noise.dcm").write_bytes(bytes(128) + b"DICM" + rng.bytes(400))
    medfast.load_dicom(tmp_path)
    reasons = _skipped(tmp_path)
    assert set(reasons) == {"noise.dcm"} and reasons["noise.dcm"]


# --------------------------------------------------------------------------
# truncated files


def _pixel_data_offset(data, syntax):
    tag = b"\x7f\xe0\x00\x10" if syntax == ExplicitVRBigEndian else b"\xe0\x7f\x10\x00"
    return data.rindex(tag)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian, RLELossless],
                         ids=lambda s: s.name)
def test_truncated_header(tmp_path, syntax):
    """The first slice's file cut anywhere before its pixel data: either
    skipped with a reason (the other slices load) or a clear error naming it
    at load time; never anything else."""
    good = tmp_path / "good"
    stack, positions, paths = _good_series(good, syntax=syntax)
    data = open(paths[0], "rb").read()
    end = _pixel_data_offset(data, syntax)
    outcomes = set()
    for cut in list(range(0, end + 1, 11)) + [end - 1, end]:
        work = tmp_path / f"cut{cut}"
        shutil.copytree(good, work)
        (work / "s0.dcm").write_bytes(data[:cut])
        reasons = _skipped(work)
        if "s0.dcm" in reasons:
            assert reasons["s0.dcm"].strip(), cut
            img = medfast.load_dicom(work)
            np.testing.assert_array_equal(img.array, expected_array(stack[1:]))
            outcomes.add("skipped")
        else:
            with pytest.raises(ValueError) as exc:
                medfast.load_dicom(work)
            _clear(exc, work / "s0.dcm", "Pixel Data")
            outcomes.add("error")
        shutil.rmtree(work)
    assert "skipped" in outcomes


def test_truncated_header_middle_slice_reports_gap(tmp_path):
    stack, positions, paths = _good_series(tmp_path, n=5)
    data = open(paths[2], "rb").read()
    open(paths[2], "wb").write(data[:400])
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack[[0, 1, 3, 4]]))
    assert any("missing slices: 1" in p for p in img.meta["problems"])
    assert "s2.dcm" in _skipped(tmp_path)


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless,
            JPEG2000Lossless]


@pytest.mark.parametrize("gz", [False, True], ids=["dcm", "dcm.gz"])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_truncated_pixel_data(tmp_path, syntax, gz):
    """Pixel data cut short, the header fine.  Uncompressed and not gzipped:
    the file size tells, the scan skips the file ("truncated") and the
    series loads without it.  Otherwise only decoding tells: scan_dicom lists
    the file, loading raises a clear error naming it; no partial volume."""
    size = dict(rows=32, cols=32) if syntax == JPEG2000Lossless else {}
    _, _, paths = _good_series(tmp_path, syntax=syntax, **size)
    data = open(paths[1], "rb").read()
    end = _pixel_data_offset(data, syntax)
    cut = data[:end + (len(data) - end) // 2]
    target = tmp_path / ("s1.dcm.gz" if gz else "s1.dcm")
    os.remove(paths[1])
    target.write_bytes(gzip.compress(cut) if gz else cut)
    found = medfast.scan_dicom(tmp_path)
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian) \
            and not gz:
        assert len(found) == 1 and found[0].n_files == 2
        assert "truncated" in _skipped(tmp_path)["s1.dcm"]
        assert medfast.load_dicom(tmp_path).shape[2] == 2
        return
    assert len(found) == 1 and found[0].n_files == 3
    for call in (medfast.load_dicom, medfast.load_dicom_all):
        with pytest.raises(ValueError) as exc:
            call(tmp_path)
        text = _clear(exc, target)
        assert any(word in text for word in ("truncated", "less than expected",
                                             "cannot decode", "cannot read")), text


def test_missing_pixel_data(tmp_path):
    """A complete image header without Pixel Data: skipped with the reason,
    the series converts without it."""
    stack, positions, paths = _good_series(tmp_path)
    ds = image_dataset(ramp(1)[0], position=positions[2] + [0, 0, 2.0],
                       series_uid=str(__import__("pydicom").dcmread(paths[0]).SeriesInstanceUID),
                       instance_number=4)
    del ds.PixelData
    save(ds, tmp_path / "nopixels.dcm")
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack))
    assert "no Pixel Data element" in _skipped(tmp_path)["nopixels.dcm"]


# --------------------------------------------------------------------------
# slices that disagree


def test_one_slice_with_other_rows(tmp_path):
    """One file of a series has 7 rows instead of 6: it cannot be part of
    the volume; the series splits into two entries with distinct names."""
    stack, positions, paths = _good_series(tmp_path, n=4)
    import pydicom
    uid = str(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    odd = ramp(1, rows=7, start=5000)[0]
    save(image_dataset(odd, position=positions[3] + [0, 0, 2.0], series_uid=uid,
                       instance_number=5), tmp_path / "odd.dcm")
    found = medfast.scan_dicom(tmp_path)
    assert sorted(s.shape for s in found) == [(8, 6, 4), (8, 7, 1)]
    names = [s.name for s in found]
    assert len(set(names)) == 2
    with pytest.raises(ValueError) as exc:
        medfast.load_dicom(tmp_path)
    text = str(exc.value)
    assert type(exc.value) is ValueError and "2 volumes" in text
    assert all(name in text for name in names) and "8x6x4" in text and "8x7x1" in text
    main = next(s for s in found if s.shape == (8, 6, 4))
    img = medfast.load_dicom(tmp_path, series=main.name)
    np.testing.assert_array_equal(img.array, expected_array(stack))


def test_mixed_bits_allocated(tmp_path):
    """8- and 16-bit files in one series: one volume, every value exact."""
    uid = generate_uid()
    positions = stack_positions(3)
    stacks = [ramp(1, dtype=np.uint8, seed=3)[0], ramp(1, dtype=np.int16, seed=4)[0],
              ramp(1, dtype=np.uint8, seed=5)[0]]
    for k, s in enumerate(stacks):
        save(image_dataset(s, position=positions[k], series_uid=uid, instance_number=k + 1),
             tmp_path / f"{k}.dcm")
    img = medfast.load_dicom(tmp_path)
    expected = np.stack([s.astype(np.int64) for s in stacks])
    np.testing.assert_array_equal(img.array.astype(np.int64), expected_array(expected))


@pytest.mark.parametrize("what", ["orientation", "position", "spacing", "no_position"])
def test_bad_geometry_skipped(tmp_path, what):
    stack, positions, _ = _good_series(tmp_path)
    fields = dict(position=positions[2] + [0, 0, 2.0])
    if what == "orientation":
        fields["orientation"] = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # row == column
    elif what == "position":
        fields["position"] = (0.0, float("nan"), 1.0)
    elif what == "spacing":
        fields["pixel_spacing"] = (0.0, 1.0)
    else:
        fields["position"] = None
    import pydicom
    uid = str(pydicom.dcmread(next(tmp_path.glob("*.dcm"))).SeriesInstanceUID)
    save(image_dataset(ramp(1)[0], series_uid=uid, instance_number=9, **fields),
         tmp_path / "bad.dcm")
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack))
    reason = _skipped(tmp_path)["bad.dcm"]
    assert {"orientation": "ImageOrientationPatient", "position": "geometry",
            "spacing": "PixelSpacing", "no_position": "ImagePositionPatient"}[what] in reason


# --------------------------------------------------------------------------
# a single slice


@pytest.mark.parametrize("fields, step", [
    (dict(slice_thickness=3.5), 3.5),
    (dict(slice_thickness=3.5, SpacingBetweenSlices=4.0), 4.0),
    (dict(slice_thickness=None), 1.0),
])
def test_single_slice(tmp_path, fields, step):
    """One slice loads as a 1-slice volume; its third axis is the normal
    times SpacingBetweenSlices, else SliceThickness, else 1 mm."""
    orientation = oblique(10.0, 25.0, -40.0)
    stack = ramp(1, dtype=np.int16, seed=1)
    positions = stack_positions(1, orientation)
    write_series(tmp_path, stack, positions, orientation=orientation, pixel_spacing=(0.5, 0.6),
                 **fields)
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 1)
    np.testing.assert_array_equal(img.array, expected_array(stack))
    np.testing.assert_allclose(img.affine, ras_affine(orientation, (0.5, 0.6), positions, step),
                               atol=1e-9)
    assert "problems" not in img.meta
    info, = medfast.scan_dicom(tmp_path)
    assert info.shape == (8, 6, 1) and info.n_files == 1
    np.testing.assert_allclose(info.spacing, (0.6, 0.5, step))
    # A single file path works too.
    only = next(tmp_path.glob("*.dcm"))
    np.testing.assert_array_equal(medfast.load_dicom(only).array, img.array)


# --------------------------------------------------------------------------
# corrupt bytes anywhere: only clear outcomes


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless],
                         ids=lambda s: s.name)
def test_corrupt_bytes_never_crash(tmp_path, syntax):
    """Random bytes overwritten in the first file (header or pixels): the
    scan and the load end with a result, a skipped file or a clear
    ValueError; a pydicom/decoder exception never escapes."""
    good = tmp_path / "good"
    _good_series(good, syntax=syntax, slope=1, intercept=-1024)
    data = bytearray((good / "s0.dcm").read_bytes())
    rng = np.random.default_rng(42)
    work = tmp_path / "work"
    shutil.copytree(good, work)
    for _ in range(60):
        mutated = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            mutated[int(rng.integers(132, len(mutated)))] = int(rng.integers(0, 256))
        (work / "s0.dcm").write_bytes(bytes(mutated))
        medfast.scan_dicom(work)
        try:
            images = medfast.load_dicom_all(work)
        except ValueError as exc:
            assert _ours(exc), type(exc)
            assert len(str(exc).splitlines()) <= 8, str(exc)  # at most a short listing
        else:
            assert images and all(img.array.size for img in images)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless])
def test_absurd_frame_count_is_refused_before_any_work(tmp_path, syntax):
    """A header declaring 10^6 frames over a few bytes of pixel data: skipped
    with the reason at once (memory follows what the file holds, never what
    its header claims)."""
    import time
    import tracemalloc
    import pydicom
    ds = image_dataset(ramp(1)[0], position=(0.0, 0.0, 0.0), modality="MR")
    path = save(ds, tmp_path / "f.dcm", syntax=syntax)
    written = pydicom.dcmread(path)
    written.NumberOfFrames = 1_000_000
    written.save_as(path)
    tracemalloc.start()
    start = time.perf_counter()
    found = medfast.scan_dicom(tmp_path)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not found and len(found.skipped) == 1
    assert "1000000" in found.skipped[0].reason or "truncated" in found.skipped[0].reason
    assert peak < 20e6, peak  # no record per declared frame
    assert elapsed < 5

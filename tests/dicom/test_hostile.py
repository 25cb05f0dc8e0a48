"""The DICOM path under hostile input: a corpus of broken and malicious
files made here, and a fuzz target for the header -> geometry path.

Every input ends in one of: a ``Skipped`` entry with its reason, a volume
(with finite geometry), or a ``ValueError`` (``MemoryError`` for a volume
larger than the memory) whose one-line message names the file or folder;
never another exception, never a hang (each run is time-boxed), memory
bounded by what the file holds (gzip and deflate bombs: tracemalloc peak);
``medfast.convert`` writes nothing outside its output folder whatever the
header values its names are made of.

Already covered elsewhere (not repeated here): cut, changed, flipped and
noise bytes against pydicom (``test_header.py``); truncation, missing pixels,
basic bad geometry and an absurd classic frame count (``test_bad_input.py``);
output names and crash safety of the converter (``test_convert*.py``).

Fuzzing (:func:`test_fuzz_header_to_geometry`): hypothesis mutates small
valid series (2-4 classic files, or 2 enhanced files of 3 frames; byte
overwrites, absurd numbers written over values, insertions, deletions,
truncations) and runs ``scan_dicom`` and ``load_dicom_all`` on them, each
example time-boxed.  The suite runs 40 examples (a fraction of a second);
for a long run by hand raise ``MEDFAST_HYPOTHESIS_SCALE`` (examples times
the scale), e.g. ``MEDFAST_HYPOTHESIS_SCALE=100 python -m pytest
tests/dicom/test_hostile.py -k fuzz`` (4,000 examples, about 25 s).  The
corpus below holds what it and the review of the code found; 6,000
examples found nothing more.
"""
import contextlib
import functools
import gzip
import os
import signal
import tempfile
import tracemalloc
import zlib

import numpy as np
import pydicom
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         JPEG2000Lossless, RLELossless, generate_uid)

import medfast
from dicom_synth import write_enhanced
from strategies import examples
from synthetic import expected_array, image_dataset, ramp, save, stack_positions

# pydicom warns about the invalid values these files hold on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --------------------------------------------------------------------------
# what every outcome must be


class _TimeUp(KeyboardInterrupt):
    """Raised by :func:`time_box`: a KeyboardInterrupt, which medfast passes
    through where it turns other exceptions into reported reasons."""


@contextlib.contextmanager
def time_box(seconds):
    """Fail the test if the block runs longer than `seconds` (a hang ends
    here instead of stopping the suite)."""
    def alarm(signum, frame):
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TimeUp:
        pytest.fail(f"took more than {seconds} s", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _ours(exc, folder):
    """An error of ours: ValueError (or one of medfast's kinds, or the
    MemoryError of a volume too large), one line naming a file or the
    folder, not chained from an inner exception."""
    text = str(exc)
    assert type(exc) in (ValueError, MemoryError) \
        or type(exc).__module__.startswith("medfast."), type(exc)
    assert folder in text and len(text.splitlines()) == 1, text
    assert exc.__cause__ is None and (exc.__context__ is None
                                      or exc.__suppress_context__), "chained"
    return text


def outcome(folder, seconds=5.0, convert=True):
    """``scan_dicom``, ``load_dicom_all`` and ``convert`` of `folder`, checked.

    Returns (found, images or None, error message or None).  Asserts: the
    scan returns, every skipped file with a reason; loading gives images
    with finite, invertible affines or an error of ours (:func:`_ours`);
    converting (into ``folder + '_nifti'``) writes only there, or raises an
    error of ours, each failed volume with a reason naming its file; all
    within `seconds`.
    """
    folder = os.fspath(folder).rstrip(os.sep)
    with time_box(seconds):
        found = medfast.scan_dicom(folder)
        try:
            images, error = medfast.load_dicom_all(folder), None
        except (ValueError, MemoryError) as exc:
            images, error = None, _ours(exc, folder)
        if convert:
            out = folder + "_nifti"
            try:
                result = medfast.convert(folder, out)
            except ValueError as exc:
                _ours(exc, folder)
                assert not os.path.exists(out)
            else:
                root = os.path.realpath(out) + os.sep
                assert all(os.path.realpath(p).startswith(root) for p in result.files)
                assert all(folder in f.reason for f in result.failed), result.failed
    for s in found.skipped:
        assert s.reason.strip() and s.path.startswith(folder), s
    for img in images or ():
        assert img.array.size and np.isfinite(img.affine).all(), img.affine
        assert abs(np.linalg.det(img.affine[:3, :3])) > 0, img.affine
    return found, images, error


def reasons(found):
    return {os.path.basename(s.path): s.reason for s in found.skipped}


@contextlib.contextmanager
def peak_memory(limit):
    """Fail if Python and numpy allocate more than `limit` bytes at once."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak / 1e6:.0f} MB"


# --------------------------------------------------------------------------
# files


def put(ds, fields):
    """Set elements to raw values, whatever pydicom would check: `fields`
    maps a keyword or (group, element) to (VR, value)."""
    for key, (vr, value) in fields.items():
        tag = pydicom.tag.Tag(key) if isinstance(key, tuple) else \
            pydicom.datadict.tag_for_keyword(key)
        ds[tag] = DataElement(tag, vr, value)
    return ds


def classic_series(folder, hostile=None, n=3, syntax=ExplicitVRLittleEndian, gz=False, **kw):
    """`n` slices ``s0.dcm``...; slice 1 gets the `hostile` fields.  Returns
    the stored stack."""
    os.makedirs(folder, exist_ok=True)
    uid, positions = generate_uid(), stack_positions(n)
    stack = ramp(n, seed=1, **kw)
    for k in range(n):
        ds = image_dataset(stack[k], position=positions[k], series_uid=uid,
                           instance_number=k + 1, modality="MR")
        if k == 1 and hostile:
            put(ds, hostile)
        save(ds, os.path.join(folder, f"s{k}.dcm" + (".gz" if gz else "")), syntax, gz)
    return stack


def patch(path, **fields):
    """Rewrite a file with its header changed (compressed pixel data kept)."""
    ds = pydicom.dcmread(path)
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def gzip_file(path):
    """Gzip a file in place (``.gz`` appended); the new path."""
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    with open(path + ".gz", "wb") as f:
        f.write(gzip.compress(data))
    return path + ".gz"


# --------------------------------------------------------------------------
# absurd header fields of a classic slice


DS = "DS"
FIELDS = [
    # (id, fields of slice 1, a word of its skip reason, or None: taken as absent)
    ("spacing-zero", {"PixelSpacing": (DS, b"0\\0")}, "PixelSpacing"),
    ("spacing-negative", {"PixelSpacing": (DS, b"-1\\1")}, "PixelSpacing"),
    ("spacing-nan", {"PixelSpacing": (DS, b"nan\\1")}, "PixelSpacing"),
    ("spacing-1e308", {"PixelSpacing": (DS, b"1e308\\1e308")}, "PixelSpacing"),
    ("spacing-1e-9", {"PixelSpacing": (DS, b"1e-9\\1e-9")}, "PixelSpacing"),
    ("position-nan", {"ImagePositionPatient": (DS, b"nan\\0\\0")}, "ImagePositionPatient"),
    ("position-inf", {"ImagePositionPatient": (DS, b"0\\-inf\\0")}, "ImagePositionPatient"),
    ("position-1e308", {"ImagePositionPatient": (DS, b"1e308\\0\\0")}, "ImagePositionPatient"),
    ("orientation-nan", {"ImageOrientationPatient": (DS, b"nan\\0\\0\\0\\1\\0")},
     "ImageOrientationPatient"),
    ("orientation-inf", {"ImageOrientationPatient": (DS, b"1\\0\\0\\0\\inf\\0")},
     "ImageOrientationPatient"),
    ("orientation-skew", {"ImageOrientationPatient": (DS, b"1\\0\\0\\.7071\\.7071\\0")},
     "ImageOrientationPatient"),
    ("orientation-zero", {"ImageOrientationPatient": (DS, b"0\\0\\0\\0\\0\\0")},
     "ImageOrientationPatient"),
    ("rows-zero", {"Rows": ("US", 0)}, "Rows"),
    ("columns-zero", {"Columns": ("US", 0)}, "Columns"),
    ("huge-matrix", {"Rows": ("US", 65535), "Columns": ("US", 65535)}, "truncated"),
    ("bits-3", {"BitsAllocated": ("US", 3)}, "BitsAllocated 3"),
    ("bits-0", {"BitsAllocated": ("US", 0)}, None),
    ("bits-64", {"BitsAllocated": ("US", 64)}, "truncated"),
    ("bits-stored-40", {"BitsStored": ("US", 40)}, "BitsStored 40"),
    ("samples-4", {"SamplesPerPixel": ("US", 4)}, "truncated"),
    ("frames-zero", {"NumberOfFrames": ("IS", b"0")}, None),
    ("frames-negative", {"NumberOfFrames": ("IS", b"-5")}, "NumberOfFrames"),
    ("slope-zero", {"RescaleSlope": (DS, b"0")}, None),
    ("slope-nan", {"RescaleSlope": (DS, b"nan")}, "RescaleSlope"),
    ("slope-inf", {"RescaleSlope": (DS, b"-inf")}, "RescaleSlope"),
    ("intercept-nan", {"RescaleIntercept": (DS, b"NaN")}, "RescaleIntercept"),
]


@pytest.mark.parametrize("fields, reason", [c[1:] for c in FIELDS], ids=[c[0] for c in FIELDS])
def test_absurd_header_field(tmp_path, fields, reason):
    """The middle slice of three says something absurd: it is skipped with
    the reason (the other two load), or the field reads as absent."""
    stack = classic_series(tmp_path, fields)
    found, images, error = outcome(tmp_path)
    assert error is None and len(images) == 1
    if reason is None:
        assert not found.skipped
        np.testing.assert_array_equal(images[0].array, expected_array(stack))
    else:
        assert list(reasons(found)) == ["s1.dcm"] and reason in reasons(found)["s1.dcm"]
        np.testing.assert_array_equal(images[0].array, expected_array(stack[[0, 2]]))


@pytest.mark.parametrize("thickness, between, step", [
    (b"0", None, 1.0), (b"nan", None, 1.0), (b"1e308", None, 1.0), (b"1e-9", None, 1.0),
    (b"3", b"0", 3.0), (b"3", b"inf", 3.0), (b"3", b"-1e308", 3.0), (None, b"2.5", 2.5),
])
def test_absurd_slice_spacing_of_one_slice(tmp_path, thickness, between, step):
    """A single slice's third axis: SpacingBetweenSlices, else
    SliceThickness, else 1 mm; an absurd value counts as absent."""
    fields = {"SliceThickness": (DS, thickness)}
    if between is not None:
        fields["SpacingBetweenSlices"] = (DS, between)
    ds = image_dataset(ramp(1)[0], position=(0.0, 0.0, 0.0), modality="MR")
    save(put(ds, fields), tmp_path / "one.dcm")
    _, (img,), _ = outcome(tmp_path)
    assert np.linalg.norm(img.affine[:3, 2]) == pytest.approx(step)


def test_colour_planar_configuration_7(tmp_path):
    """Neither interleaved nor planar: skipped, not read as interleaved."""
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    ds = image_dataset(rgb[..., 0], position=(0.0, 0.0, 0.0))
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
    ds.PlanarConfiguration = 7
    ds.PixelData = rgb.tobytes()
    save(ds, tmp_path / "rgb.dcm")
    found, _, _ = outcome(tmp_path)
    assert not found and "PlanarConfiguration 7" in reasons(found)["rgb.dcm"]


# --------------------------------------------------------------------------
# compressed and gzipped files declaring more than they hold


@pytest.mark.parametrize("gz", [False, True], ids=["dcm", "dcm.gz"])
@pytest.mark.parametrize("fields, reason", [
    (dict(Rows=65535, Columns=65535), "cannot hold"),      # RLE: 64x its bytes at most
    (dict(NumberOfFrames=1_000_000), "NumberOfFrames"),    # gzipped: took 57 s and 1 GB
], ids=["huge-matrix", "1e6-frames"])
def test_rle_declaring_more_than_its_file_holds(tmp_path, gz, fields, reason):
    """Refused at the scan, gzipped or not: a gzipped file holds at most
    1032 times its size (deflate's limit)."""
    classic_series(tmp_path, syntax=RLELossless, rows=16, cols=16)
    path = patch(str(tmp_path / "s1.dcm"), **fields)
    if gz:
        path = gzip_file(path)
    found, images, error = outcome(tmp_path, seconds=2)
    assert reason in reasons(found)[os.path.basename(path)]
    assert error is None and images[0].shape == (16, 16, 2)


def _j2k_tiled(path, rows, cols, fields):
    """A JPEG 2000 file whose header declares a rows x cols image (its
    codestream holds 32x32 pixels: JPEG sets no bound on what it declares)."""
    ds = image_dataset(ramp(1, rows=32, cols=32, seed=0)[0], position=(0.0, 0.0, 0.0),
                       modality="MR", **fields)
    save(ds, path, JPEG2000Lossless)
    return patch(path, Rows=rows, Columns=cols)


def test_mosaic_of_more_tiles_than_its_file_holds(tmp_path):
    """A compressed 65280x65280 Siemens mosaic of 65025 one-tile slices: one
    record per slice would be made before any pixel is read."""
    path = _j2k_tiled(str(tmp_path / "mosaic.dcm"), 65280, 65280, dict(
        Manufacturer="SIEMENS", ImageType=["ORIGINAL", "PRIMARY", "M", "MOSAIC"]))
    ds = pydicom.dcmread(path)
    ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
    ds.add_new((0x0019, 0x100A), "US", 65025)
    ds.save_as(path)
    found, _, error = outcome(tmp_path, seconds=2)
    assert "mosaic of 65025 slices" in reasons(found)["mosaic.dcm"]
    assert "no DICOM volume found" in error


@pytest.mark.parametrize("count", [b"3600000000", b"1e300", b"7"])
def test_uih_grid_that_cannot_hold_its_slices(tmp_path, count):
    """A compressed 60000x60000 UIH grid declaring 3.6e9 one-pixel slices
    hung the scan; 1e300 slices; 7 slices in 2x2 pixels."""
    rows = 2 if count == b"7" else 60000
    path = _j2k_tiled(str(tmp_path / "grid.dcm"), rows, rows, dict(
        Manufacturer="UIH", ImageType=["ORIGINAL", "PRIMARY", "M", "VFRAME"]))
    ds = pydicom.dcmread(path)
    ds.add_new((0x0065, 0x0010), "LO", "Image Private Header")
    ds.add_new((0x0065, 0x1050), "DS", count)
    ds.save_as(path)
    found, _, _ = outcome(tmp_path, seconds=2)
    assert "UIH grid" in reasons(found)["grid.dcm"]


@pytest.mark.parametrize("tiles", [5, 0])
def test_mosaic_tiles_that_do_not_fit(tmp_path, tiles):
    """NumberOfImagesInMosaic 5 in 8x8 pixels (a 3x3 grid of tiles), or 0."""
    ds = image_dataset(ramp(1, rows=8, cols=8)[0], position=(0.0, 0.0, 0.0), modality="MR",
                       Manufacturer="SIEMENS", ImageType=["ORIGINAL", "PRIMARY", "MOSAIC"])
    ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
    ds.add_new((0x0019, 0x100A), "US", tiles)
    save(ds, tmp_path / "mosaic.dcm")
    found, _, _ = outcome(tmp_path)
    assert "mosaic" in reasons(found)["mosaic.dcm"]


# --------------------------------------------------------------------------
# enhanced files


def _enhanced(path, change=None, frames=None):
    """An enhanced file of 4 frames, then `change(ds)`, NumberOfFrames
    set to `frames`."""
    write_enhanced(path, rows=4, cols=3, slices=4)
    ds = pydicom.dcmread(path)
    if change is not None:
        change(ds)
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.save_as(path)
    return path


def _frame(index, sequence, item):
    """Replace one frame's functional group `sequence` by `item`."""
    def change(ds):
        ds.PerFrameFunctionalGroupsSequence[index][sequence] = \
            DataElement(pydicom.datadict.tag_for_keyword(sequence), "SQ", [put(Dataset(), item)])
    return change


def _drop_group(ds):
    del ds.PerFrameFunctionalGroupsSequence[3]


def _add_group(ds):
    ds.PerFrameFunctionalGroupsSequence.append(ds.PerFrameFunctionalGroupsSequence[0])


@pytest.mark.parametrize("change, frames, reason", [
    (None, 1_000_000, "(1000000 frame(s))"),
    (_drop_group, None, "4 frames but 3 per-frame functional groups"),
    (_drop_group, 1_000_000, "(1000000 frame(s))"),
    (_add_group, None, None),
    (_frame(1, "PlanePositionSequence", {"ImagePositionPatient": (DS, b"1e308\\0\\0")}), None,
     "ImagePositionPatient is more than"),
    (_frame(2, "PixelMeasuresSequence", {"PixelSpacing": (DS, b"nan\\nan")}), None,
     "PixelSpacing is not 2 finite numbers in frame 3"),
    (_frame(0, "PlaneOrientationSequence",
            {"ImageOrientationPatient": (DS, b"0\\0\\0\\0\\0\\0")}), None,
     "ImageOrientationPatient"),
    (_frame(3, "PixelValueTransformationSequence", {"RescaleSlope": (DS, b"inf")}), None,
     "RescaleSlope is inf in frame 4"),
    (_frame(1, "PixelValueTransformationSequence", {"RescaleIntercept": (DS, b"nan")}), None,
     "RescaleIntercept is nan in frame 2"),
], ids=["1e6-frames", "fewer-groups", "fewer-groups-1e6-frames", "more-groups",
        "position-1e308", "spacing-nan", "orientation-zero", "slope-inf", "intercept-nan"])
def test_enhanced_file(tmp_path, change, frames, reason):
    """Frames declared beyond what the file holds or beyond its per-frame
    groups, absurd per-frame values: the file skipped with the reason (the
    frame named), before a record per frame; extra groups are ignored."""
    _enhanced(str(tmp_path / "enh.dcm"), change, frames)
    with peak_memory(20e6):
        found, images, error = outcome(tmp_path, seconds=2)
    if reason is None:
        assert error is None and images[0].shape == (3, 4, 4)
    else:
        assert reason in reasons(found)["enh.dcm"] and "no DICOM volume found" in error


# --------------------------------------------------------------------------
# gzip and deflate bombs


@functools.lru_cache(maxsize=None)
def _zeros_member():
    """One gzip member of 16 MiB of zeros (16 KB)."""
    return gzip.compress(bytes(1 << 24), compresslevel=9)


def _zeros_members(n_gib):
    """gzip members of 16 MiB of zeros each, `n_gib` GiB in all (a valid
    multi-member gzip stream once appended to one): cheap to make."""
    return _zeros_member() * (64 * n_gib)


def _deflated_zeros_after(data, n_gib):
    """A raw deflate stream of `data` then `n_gib` GiB of zeros (full
    flushes make each 16 MiB of zeros the same bytes)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = packer.compress(data) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(bytes(1 << 24)) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + block * (64 * n_gib) + packer.flush()


def _data_set_start(data):
    """Where a Part 10 file's data set starts: after the preamble, 'DICM'
    and the file meta, whose length (0002,0000) gives."""
    return 144 + int.from_bytes(data[140:144], "little")


def test_gzip_bomb_after_the_pixels(tmp_path):
    """A gzipped slice followed by 2 GiB of zeros (a 2 MB file): the scan
    inflates its header, the load its pixels, never the rest."""
    stack = classic_series(tmp_path, n=2)
    path = gzip_file(str(tmp_path / "s1.dcm"))
    with open(path, "ab") as f:
        f.write(_zeros_members(2))
    assert os.path.getsize(path) < 3e6
    with peak_memory(30e6):
        _, (img,), _ = outcome(tmp_path, seconds=2)
    np.testing.assert_array_equal(img.array, expected_array(stack))


def test_deflate_bomb_after_the_pixels(tmp_path):
    """The same as a Deflated Explicit VR Little Endian data set: read as
    far as its header, then its pixels, never further."""
    stack = classic_series(tmp_path, n=2, syntax=DeflatedExplicitVRLittleEndian)
    data = (tmp_path / "s1.dcm").read_bytes()
    start = _data_set_start(data)
    raw = zlib.decompress(data[start:], -zlib.MAX_WBITS)
    (tmp_path / "s1.dcm").write_bytes(data[:start] + _deflated_zeros_after(raw, 2))
    assert os.path.getsize(tmp_path / "s1.dcm") < 3e6
    with peak_memory(30e6):
        _, (img,), _ = outcome(tmp_path, seconds=2)
    np.testing.assert_array_equal(img.array, expected_array(stack))


@pytest.mark.parametrize("deflated", [False, True], ids=["gzip", "deflated"])
def test_bomb_inside_the_header(tmp_path, deflated):
    """A private element declaring 2 GiB before the pixel data, its zeros
    there: refused before anything is inflated."""
    ds = image_dataset(ramp(1)[0], position=(0.0, 0.0, 0.0))
    ds.add_new((0x0009, 0x0010), "LO", "HOSTILE")
    ds.add_new((0x0009, 0x1010), "OB", b"")
    syntax = DeflatedExplicitVRLittleEndian if deflated else ExplicitVRLittleEndian
    path = save(ds, tmp_path / "bomb.dcm", syntax)
    with open(path, "rb") as f:
        data = f.read()
    if deflated:
        start = _data_set_start(data)
        raw = zlib.decompress(data[start:], -zlib.MAX_WBITS)
    else:
        start, raw = 0, data
    at = raw.index(b"\x09\x00\x10\x10OB\x00\x00") + 8
    raw = raw[:at] + (2 << 30).to_bytes(4, "little") + raw[at + 4:]
    if deflated:
        packed = data[:start] + _deflated_zeros_after(raw, 2)
    else:
        packed = gzip.compress(raw) + _zeros_members(2)
        path = path + ".gz"
        os.remove(tmp_path / "bomb.dcm")
    with open(path, "wb") as f:
        f.write(packed)
    with peak_memory(30e6):
        found, _, _ = outcome(tmp_path, seconds=2)
    assert "header larger than 1024 MiB" in reasons(found)[os.path.basename(path)]


def test_deflated_series_loads(tmp_path):
    """Deflated data sets, plain and gzipped: their pixels load (they were
    refused whole before, pydicom reading the deflated bytes as a data set)."""
    stack = classic_series(tmp_path / "a", n=2, syntax=DeflatedExplicitVRLittleEndian)
    stack_gz = classic_series(tmp_path / "b", n=2, syntax=DeflatedExplicitVRLittleEndian,
                              gz=True)
    for folder, expected in ((tmp_path / "a", stack), (tmp_path / "b", stack_gz)):
        _, (img,), _ = outcome(folder)
        np.testing.assert_array_equal(img.array, expected_array(expected))


# --------------------------------------------------------------------------
# header values made into file names


NAMES = ["../../x", "/etc/passwd", "..", "a\0b/../../c", "x" * 300, "...", "///", "\\\\",
         "   ", "\0", "%s/%n", "C:\\Windows\\x", "é/\u202e/名前"]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """One single-slice series per crafted name, written as its protocol,
    description and patient name."""
    folder = tmp_path_factory.mktemp("crafted") / "src"
    folder.mkdir()
    for k, name in enumerate(NAMES):
        ds = image_dataset(ramp(1, seed=k)[0], position=(0.0, 0.0, 0.0), modality="MR",
                           series_number=k + 1)
        raw = name.encode("utf-8")
        put(ds, {"ProtocolName": ("LO", raw), "SeriesDescription": ("LO", raw),
                 "PatientName": ("PN", raw), "SpecificCharacterSet": ("CS", b"ISO_IR 192")})
        save(ds, folder / f"{k}.dcm")
    return folder


def _tree(root):
    return {os.path.join(d, f) for d, dirs, files in os.walk(root) for f in files + dirs}


@pytest.mark.parametrize("pattern", ["%p_%s", "%n/%p", "%d"])
def test_header_values_as_file_names(crafted, tmp_path, pattern):
    """Every volume converted, each file inside the output folder (two
    levels down, so that '../..' would land in sight) under a name that is
    not hidden, of at most 255 bytes; nothing written anywhere else."""
    out = tmp_path / "a" / "b" / "out"
    before = _tree(crafted.parent)
    with time_box(10):
        result = medfast.convert(crafted, out, pattern=pattern)
    assert result.ok and len(result) == len(NAMES)
    assert _tree(crafted.parent) == before
    root = os.path.realpath(out)
    written = _tree(out)
    assert _tree(tmp_path) - written == {str(tmp_path / "a"), str(tmp_path / "a" / "b"),
                                         str(out)}
    for path in written:
        assert os.path.realpath(path).startswith(root + os.sep), path
        name = os.path.basename(path)
        assert not name.startswith(".") and len(name.encode()) <= 255 and "\0" not in name, \
            name
    assert {os.path.realpath(p) for p in result} <= {os.path.realpath(p) for p in written}


# --------------------------------------------------------------------------
# fuzzing the header -> geometry path


@functools.lru_cache(maxsize=None)
def _seeds():
    """Valid series as bytes: 4 classic slices (explicit VR little endian,
    the last one RLE) and 2 enhanced files of 3 frames."""
    seeds = {"classic": [], "enhanced": []}
    with tempfile.TemporaryDirectory() as folder:
        classic_series(folder, n=4, rows=6, cols=5)
        save(pydicom.dcmread(os.path.join(folder, "s3.dcm")), os.path.join(folder, "r.dcm"),
             RLELossless)
        for k in range(2):
            write_enhanced(os.path.join(folder, f"e{k}.dcm"), rows=3, cols=2, slices=3,
                           series_number=k + 1)
        for kind, names in (("classic", ("s0", "s1", "s2", "r")), ("enhanced", ("e0", "e1"))):
            for name in names:
                with open(os.path.join(folder, name + ".dcm"), "rb") as f:
                    seeds[kind].append(f.read())
    return seeds


_NUMBERS = [b"nan", b"inf", b"-inf", b"1e308", b"-1e308", b"1e-320", b"0", b"-0", b"\\",
            b"\\\\\\", b"99999999999", b"-1\\0\\0\\0\\-1\\0", b"0\\0\\0\\0\\0\\0",
            b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f"]
# Geometry and pixel-module elements (explicit VR little endian), whose
# values the "value" edit rewrites in place.
_TARGETS = [bytes.fromhex(t) for t in (
    "20003200", "20003700", "28003000", "18005000", "18008800", "28001000", "28001100",
    "28000001", "28000101", "28000200", "28000800", "28005310", "28005210")]
_EDIT = st.tuples(
    st.integers(0, 3),                                   # file
    st.floats(0, 1),                                     # where in it
    st.sampled_from(["overwrite", "insert", "delete", "cut", "value"]),
    st.one_of(st.binary(min_size=1, max_size=6), st.sampled_from(_NUMBERS)),
    st.sampled_from(_TARGETS))


def _mutate(data, where, how, what, target):
    """One edit of a file's bytes at `where` (0 to 1 of its length), or of
    the value of one of the elements of tag `target` ("value")."""
    if how == "value":
        # Every occurrence of a tag (per-frame ones included): one of them,
        # its value rewritten at its length, padded with spaces.
        found, at = [], data.find(target)
        while at >= 0:
            found.append(at)
            at = data.find(target, at + 1)
        if not found:
            return data
        at = found[int(where * (len(found) - 1))]
        length = int.from_bytes(data[at + 6:at + 8], "little")
        return data[:at + 8] + what[:length].ljust(length, b" ") + data[at + 8 + length:]
    at = int(where * (len(data) - 1))
    if how == "overwrite":
        return data[:at] + what + data[at + len(what):]
    if how == "insert":
        return data[:at] + what + data[at:]
    if how == "delete":
        return data[:at] + data[at + len(what):]
    return data[:at]


@settings(max_examples=examples(40), deadline=None)
@given(kind=st.sampled_from(["classic", "enhanced"]), count=st.integers(2, 4),
       edits=st.lists(_EDIT, min_size=1, max_size=4))
def test_fuzz_header_to_geometry(kind, count, edits):
    """Mutated small series: volumes with finite affines, skipped files
    with reasons or one-line errors naming a file; each within 3 s."""
    files = list(_seeds()[kind][:count])
    for index, where, how, what, target in edits:
        index %= len(files)
        files[index] = _mutate(files[index], where, how, what, target)
    with tempfile.TemporaryDirectory() as folder:
        for k, data in enumerate(files):
            with open(os.path.join(folder, f"f{k}.dcm"), "wb") as f:
                f.write(data)
        found, images, error = outcome(folder, seconds=3, convert=False)
        if error is None:
            assert len(images) == len(found)
        event("error" if error else f"{len(images)} volume(s), {len(found.skipped)} skipped")

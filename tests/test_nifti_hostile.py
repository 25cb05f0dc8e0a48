"""medfast.load on broken and hostile NIfTI/MGH files, made here.

Gzip bombs (a small image followed by 256 MiB of zeros, in one stream and
as medfast's blocked members): loaded in bounded time and memory.  Streams
cut short or followed by garbage, files shorter than declared, corrupt
header fields, absurd sizes: one-line errors naming the file.  Header
problems nibabel would log: one warning each, nothing on stderr.

Fuzzing: hypothesis mutates small valid ``.nii`` and ``.nii.gz`` files (byte
flips, overwrites, truncations, insertions, deletions; the raw file or its
compressed bytes).  Each example must load or raise ValueError, OSError,
MemoryError or the documented TypeError (a voxel type an Image cannot
hold), naming the file, in one line, within a time limit and a memory
bound.  The suite runs a small fixed number of examples; for a long run by
hand raise ``MEDFAST_HYPOTHESIS_SCALE`` (150 examples times the scale:
``MEDFAST_HYPOTHESIS_SCALE=200 python -m pytest tests/test_nifti_hostile.py
-k fuzz`` runs 30,000 in about 75 s on 2 cores).
Every failure it found is a case of ``test_corrupt_header_fields`` or
``test_fuzz_regressions``.
"""
import contextlib
import gzip
import io
import math
import signal
import struct
import time
import tracemalloc
import warnings
import zlib

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.nifti1 import Nifti1Extension

import medfast
from medfast import Image
from medfast.io import _gzip
from strategies import examples

EXTS = (".nii", ".nii.gz")
AFFINE = np.diag([1.5, 1.0, 2.0, 1.0])
ZEROS = 256 * 2**20          # a bomb's zeros: would blow MEMORY_BOUND if inflated
MEMORY_BOUND = 64 * 2**20
FUZZ_SECONDS = 5             # per example: a hang fails, it does not stall CI
NAN, INF = float("nan"), float("inf")


def _array(shape=(4, 5, 6)):
    return np.arange(math.prod(shape), dtype=np.int16).reshape(shape, order="F")


def _nifti(shape=(4, 5, 6), *, version=1, extension=False):
    """An uncompressed single-file NIfTI, as bytes."""
    klass = nib.Nifti2Image if version == 2 else nib.Nifti1Image
    img = klass(_array(shape), AFFINE)
    if extension:
        img.header.extensions.append(Nifti1Extension(6, b"a comment"))
    return img.to_bytes()


def _edited(raw, version=1, **fields):
    """`raw` with header fields replaced (numpy assignment: whole fields)."""
    block = bytearray(raw)
    klass = nib.Nifti2Header if version == 2 else nib.Nifti1Header
    header = np.ndarray((), klass.template_dtype, buffer=block)
    for name, value in fields.items():
        header[name] = value
    return bytes(block)


def _dims(*lengths):
    return [len(lengths), *lengths] + [1] * (7 - len(lengths))


def _write(tmp_path, name, raw):
    """`raw` under `name`; gzip-compressed (one stream) for a .gz name."""
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw, 1) if name.endswith(".gz") else raw)
    return path


def _bomb(payload, zeros):
    """One gzip stream: `payload` then `zeros` zero bytes (repeated full-flush
    blocks: seconds of compression avoided, a valid stream all the same)."""
    step = 16 * 2**20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [deflate.compress(payload), deflate.flush(zlib.Z_FULL_FLUSH)]
    block = deflate.compress(bytes(step)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc, chunk = zlib.crc32(payload), bytes(step)
    for _ in range(zeros // step):
        parts.append(block)
        crc = zlib.crc32(chunk, crc)
    parts.append(deflate.flush())
    size = (len(payload) + zeros // step * step) & 0xFFFFFFFF
    return (b"\x1f\x8b\x08\0\0\0\0\0\0\xff" + b"".join(parts)
            + struct.pack("<II", crc, size))


@contextlib.contextmanager
def _traced():
    """Peak bytes allocated (numpy's buffers included) inside the block."""
    peak = []
    tracemalloc.start()
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _one_line_naming(error, path):
    message = str(error)
    assert str(path) in message and "\n" not in message, message


# --------------------------------------------------------------------------
# Gzip bombs: decompression stops at what the header declares
# --------------------------------------------------------------------------
def _load_bounded(path):
    with _traced() as peak, warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        start = time.perf_counter()
        img = medfast.load(path)
        seconds = time.perf_counter() - start
    assert peak[0] < MEMORY_BOUND and seconds < 1, (peak, seconds)
    return img, [str(w.message) for w in record]


def test_gzip_bomb_one_stream(tmp_path):
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(_bomb(_nifti((40, 40, 20)), ZEROS))
    assert path.stat().st_size < 1_000_000
    img, messages = _load_bounded(path)
    assert np.array_equal(img.array, _array((40, 40, 20)))
    assert messages == [f"{path}: data after the {352 + 64000} bytes the header declares "
                        f"(more than {_gzip.TAIL_BYTES} bytes, not decompressed); ignored"]


def test_gzip_bomb_blocked_members(tmp_path):
    """medfast's own blocked file, more members of zeros appended."""
    path = tmp_path / "bomb.nii.gz"
    medfast.save(Image(_array((40, 40, 20)), AFFINE), path)
    member = _gzip._deflate_member(bytes(_gzip.MEMBER_BYTES))
    with open(path, "ab") as f:
        f.write(member * (ZEROS // _gzip.MEMBER_BYTES))
    img, messages = _load_bounded(path)
    assert np.array_equal(img.array, _array((40, 40, 20)))
    assert len(messages) == 1 and "not decompressed" in messages[0]


def test_mgz_bomb(tmp_path):
    path = tmp_path / "bomb.mgz"
    medfast.save(Image(_array((40, 40, 20)), AFFINE), path)
    path.write_bytes(_bomb(gzip.decompress(path.read_bytes()), ZEROS))
    with _traced() as peak:
        img = medfast.load(path)
    assert peak[0] < MEMORY_BOUND
    assert np.array_equal(img.array, _array((40, 40, 20)))


# --------------------------------------------------------------------------
# Data after the image: loaded, with a warning (nibabel ignores them)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ext", EXTS)
def test_bytes_after_the_image(tmp_path, ext):
    path = _write(tmp_path, f"long{ext}", _nifti() + b"x" * 100)
    with pytest.warns(UserWarning, match=rf"long{ext}: data after the 592 bytes the "
                                         r"header declares \(100 bytes\); ignored"):
        img = medfast.load(path)
    assert np.array_equal(img.array, _array())


def test_garbage_after_the_gzip_stream(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(gzip.compress(_nifti()) + b"not gzip")
    with pytest.warns(UserWarning, match=r"garbage.nii.gz: 8 bytes after the end of "
                                         r"the gzip data; ignored"):
        img = medfast.load(path)
    assert np.array_equal(img.array, _array())
    # Garbage where the image should go on: truncated.
    path.write_bytes(gzip.compress(_nifti()[:500]) + b"not gzip")
    with pytest.raises(ValueError, match=r"garbage.nii.gz: truncated: .* the gzip data "
                                         r"hold 500; then 8 bytes that are not gzip"):
        medfast.load(path)


# --------------------------------------------------------------------------
# Cut short, not gzip, not NIfTI
# --------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [5, 15, 300, -100, -4])
@pytest.mark.parametrize("writer", ["one stream", "blocked"])
def test_gzip_cut_short(tmp_path, keep, writer):
    """Inside the gzip header, the NIfTI header, the data, the trailer."""
    raw = _nifti((20, 20, 20))
    if writer == "blocked":
        medfast.save(Image(_array((20, 20, 20)), AFFINE), tmp_path / "full.nii.gz")
        data = (tmp_path / "full.nii.gz").read_bytes()
    else:
        data = gzip.compress(raw)
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="corrupt or truncated gzip data") as error:
        medfast.load(path)
    _one_line_naming(error.value, path)


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("content,message", [
    (b"", "not a NIfTI file"),
    (b"\x1f\x8b", "corrupt or truncated gzip data"),
    (b"\x1f\x8bnot really gzip" * 30, "corrupt or truncated gzip data"),
    (b"this is not an image at all" * 40, "not a NIfTI"),
    (gzip.compress(b"gzip, but not NIfTI" * 40, mtime=0), "not a NIfTI"),
    (gzip.compress(b"short", mtime=0), "not a NIfTI file"),
])
def test_not_gzip_or_not_nifti(tmp_path, ext, content, message):
    path = tmp_path / f"bad{ext}"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        medfast.load(path)
    _one_line_naming(error.value, path)


@pytest.mark.parametrize("ext", EXTS)
def test_shorter_than_declared(tmp_path, ext):
    path = _write(tmp_path, f"short{ext}", _nifti()[:-1])
    holds = "the gzip data hold 591" if ext == ".nii.gz" else "the file holds 591"
    with pytest.raises(ValueError, match=rf"short{ext}: truncated: the header describes "
                                         rf"592 bytes \(shape \(4, 5, 6\), int16\), {holds}"):
        medfast.load(path)


# --------------------------------------------------------------------------
# Corrupt headers: refused before anything is allocated or mapped
# --------------------------------------------------------------------------
CORRUPT = {
    "negative dim": ({"dim": _dims(4, -5, 6)}, r"dim\[2\] is -5; lengths must be positive"),
    "zero dim": ({"dim": _dims(4, 5, 0)}, r"dim\[3\] is 0; lengths must be positive"),
    "dim[0] 0": ({"dim": [0, 4, 5, 6, 1, 1, 1, 1]}, r"dim\[0\] is 0, the number of dim"),
    "dim[0] 8": ({"dim": [8, 4, 5, 6, 1, 1, 1, 1]}, r"dim\[0\] is 8, the number of dim"),
    "dim[0] negative": ({"dim": [-1, 4, 5, 6, 1, 1, 1, 1]}, r"dim\[0\] is -1"),
    "vox_offset NaN": ({"vox_offset": NAN}, r"vox_offset is nan"),
    "vox_offset inf": ({"vox_offset": INF}, r"vox_offset is inf"),
    "vox_offset negative": ({"vox_offset": -5}, r"vox_offset -5 lies inside the header"),
    "vox_offset 0": ({"vox_offset": 0}, r"vox_offset 0 lies inside the header"),
    "vox_offset huge": ({"vox_offset": 1e30}, r"truncated: the header describes 1\d{30} "),
    "absurd dims": ({"dim": _dims(*[32767] * 7)}, r"truncated: the header describes \d{32} "),
    "unknown datatype": ({"datatype": 999}, r"unknown or unsupported datatype 999"),
    "binary datatype": ({"datatype": 1}, r"unknown or unsupported datatype 1\)"),
    "sizeof_hdr": ({"sizeof_hdr": 347}, r"header size field 347, expected 348 or 540"),
    "magic of a pair": ({"magic": b"ni1"}, r"a \.hdr/\.img pair is not supported"),
    "no magic": ({"magic": b"abc"}, r"not a NIfTI file \(magic b'abc'"),
    "NaN sform": ({"sform_code": 1, "srow_x": [NAN, 0, 0, 0]},
                  r"the sform \(srow_x/y/z\) gives an affine with NaN or infinite values"),
    "NaN quaternion": ({"sform_code": 0, "qform_code": 1, "quatern_b": NAN},
                       r"the qform .* gives an affine with NaN"),
    "impossible quaternion": ({"sform_code": 0, "qform_code": 1, "quatern_b": 5.0},
                              r"the qform .* gives no affine \(w2 should be positive"),
    "NaN pixdim": ({"sform_code": 0, "qform_code": 0, "pixdim": [1, NAN, 1, 1, 1, 1, 1, 1]},
                   r"the pixdim gives an affine with NaN"),
    "infinite intercept": ({"scl_slope": 2.0, "scl_inter": INF},
                           r"Valid slope but invalid intercept inf"),
}


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("case", CORRUPT)
def test_corrupt_header_fields(tmp_path, ext, case):
    fields, message = CORRUPT[case]
    path = _write(tmp_path, f"corrupt{ext}", _edited(_nifti(), **fields))
    with pytest.raises(ValueError, match=message) as error:
        medfast.load(path)
    _one_line_naming(error.value, path)


@pytest.mark.parametrize("ext", EXTS)
def test_nifti2_dims_beyond_any_file(tmp_path, ext):
    raw = _edited(_nifti(version=2), version=2, dim=_dims(2**40, 2**40, 2**40))
    path = _write(tmp_path, f"huge{ext}", raw)
    with pytest.raises(ValueError, match=r"truncated: the header describes 2\d+ bytes "
                                         r"\(shape \(1099511627776, ") as error:
        medfast.load(path)
    _one_line_naming(error.value, path)
    assert "gzip data can hold" in str(error.value) or ext == ".nii"


def test_image_larger_than_memory_is_refused_first(tmp_path, monkeypatch):
    path = _write(tmp_path, "big.nii.gz", _nifti((40, 40, 20)))
    monkeypatch.setattr("medfast._memory.available_bytes", lambda: 10_000)
    inflate = medfast.io.nifti.inflate

    def header_only(f, path, size, tail=0):
        assert size <= 548, f"inflating {size} bytes"
        return inflate(f, path, size, tail)

    monkeypatch.setattr(medfast.io.nifti, "inflate", header_only)
    with pytest.raises(MemoryError, match=r"big.nii.gz: a 40x40x20 int16 array needs "
                                          r"62.5 KiB but only 9.8 KiB"):
        medfast.load(path)


@pytest.mark.parametrize("ext", EXTS)
def test_bad_extension_size(tmp_path, ext):
    raw = bytearray(_nifti(extension=True))
    struct.pack_into("<i", raw, 352, 4)            # an extension of 4 bytes
    path = _write(tmp_path, f"ext{ext}", bytes(raw))
    with pytest.raises(ValueError, match=r"invalid NIfTI header extension at byte 352 "
                                         r"\(size 4; 32 bytes left") as error:
        medfast.load(path)
    _one_line_naming(error.value, path)


def test_mgh_corrupt(tmp_path):
    medfast.save(Image(_array(), AFFINE), tmp_path / "a.mgh")
    raw = (tmp_path / "a.mgh").read_bytes()
    for name, data, message in [
            ("short.mgh", raw[:-100], "truncated: the header describes 524 bytes"),
            ("dims.mgh", raw[:4] + struct.pack(">i", -4) + raw[8:], r"dimensions \(-4, 5"),
            ("type.mgh", raw[:20] + struct.pack(">i", 99) + raw[24:], "unknown data type 99"),
            ("tiny.mgz", gzip.compress(raw[:50]), "not an MGH file")]:
        path = _write(tmp_path, name, data)
        with pytest.raises(ValueError, match=message) as error:
            medfast.load(path)
        _one_line_naming(error.value, path)


# --------------------------------------------------------------------------
# Header problems nibabel would log: one warning each, nothing on stderr
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ext", EXTS)
def test_header_problems_reported_once(tmp_path, ext, caplog, capfd):
    raw = _edited(_nifti(), qform_code=99, pixdim=[1, -1.5, 1, 2, 0, 0, 0, 0])
    path = _write(tmp_path, f"odd{ext}", raw)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        img = medfast.load(path)
    assert sorted(str(w.message) for w in record) == [
        f"{path}: pixdim[1,2,3] should be positive; setting to abs of pixdim values",
        f"{path}: qform_code 99 not valid; setting to 0"]
    assert img.meta["qform_code"] == 0 and img.meta["nifti"]["pixdim"][1] == 1.5
    assert capfd.readouterr().err == ""
    assert not [r for r in caplog.records if r.name.startswith("nibabel")]


# --------------------------------------------------------------------------
# Fuzzing
# --------------------------------------------------------------------------
class _Hang(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    def alarm(signum, frame):
        raise _Hang(f"no result after {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _blocked(raw):
    out = io.BytesIO()
    _gzip.write(out, [raw])
    return out.getvalue()


# Small valid files: NIfTI-1 with an extension and scaling, NIfTI-2.
_SCALED = _edited(_nifti(extension=True), scl_slope=2.0, scl_inter=-3.0)
BASES = {
    "nifti1.nii": _SCALED,
    "nifti2.nii": _nifti((3, 4, 5, 2), version=2),
    "one-stream.nii.gz": gzip.compress(_SCALED),
    "blocked.nii.gz": _blocked(_nifti((3, 4, 5, 2), version=2)),
}
_position = st.one_of(st.integers(0, 560), st.integers(0, 2**16))  # the header, often
# Header fields (both versions, little-endian) and odd values to write there.
_FIELDS = sorted({offset for klass in (nib.Nifti1Header, nib.Nifti2Header)
                  for _, offset in klass.template_dtype.fields.values()})
_WORDS = [struct.pack(fmt, value) for fmt, value in [
    ("<f", NAN), ("<f", INF), ("<f", -INF), ("<f", 3e38), ("<f", -1.0), ("<f", 0.0),
    ("<i", -1), ("<i", 2**31 - 1), ("<i", -2**31), ("<h", -1), ("<h", 0), ("<h", 32767),
    ("<h", 8), ("<q", 2**62), ("<q", -1)]]
_mutation = st.one_of(
    st.tuples(st.just("word"), st.sampled_from(_FIELDS), st.sampled_from(_WORDS)),
    st.tuples(st.just("flip"), _position, st.integers(1, 255)),
    st.tuples(st.just("set"), _position, st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])),
    st.tuples(st.just("cut"), _position, st.just(0)),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _position, st.integers(1, 64)),
)


def _mutate(data, mutations):
    data = bytearray(data)
    for kind, pos, value in mutations:
        pos = pos % (len(data) + 1)
        if kind == "word":
            data[pos:pos + len(value)] = value
        elif kind == "flip" and pos < len(data):
            data[pos] ^= value
        elif kind == "set" and pos < len(data):
            data[pos] = value
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = value
        elif kind == "delete":
            del data[pos:pos + value]
    return bytes(data)


def _check_load(path):
    """The property: an Image, or one documented error naming the file, in
    bounded time and memory."""
    with _traced() as peak:
        try:
            with _time_limit(FUZZ_SECONDS), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                medfast.load(path)
        except (ValueError, OSError, MemoryError) as error:
            _one_line_naming(error, path)
        except TypeError as error:  # documented: a voxel type an Image cannot hold
            assert "dtype" in str(error)
            _one_line_naming(error, path)
    assert peak[0] < MEMORY_BOUND


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASES)), mutations=st.lists(_mutation, min_size=1,
                                                               max_size=4),
       compress_after=st.booleans())
def test_fuzz_nifti_reader(tmp_path_factory, base, mutations, compress_after):
    """Mutated bytes, written as they are or (for .nii bases) gzip-compressed
    after the mutation, so that the .nii.gz path meets odd headers too."""
    data = _mutate(BASES[base], mutations)
    name = base
    if compress_after and base.endswith(".nii"):
        data, name = gzip.compress(data, 1), base + ".gz"
    path = tmp_path_factory.getbasetemp() / f"fuzz-{name}"
    path.write_bytes(data)
    _check_load(path)


@pytest.mark.parametrize("base,mutations", [
    # A singular affine (voxel sizes inf, inf, 0): Image's error printed the
    # matrix over five lines.
    ("nifti2.nii", [("insert", 349, b"\x00")]),
])
def test_fuzz_regressions(base, mutations, tmp_path):
    path = tmp_path / f"fuzz-{base}"
    path.write_bytes(_mutate(BASES[base], mutations))
    _check_load(path)

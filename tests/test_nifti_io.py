"""medfast.load / medfast.save: NIfTI and MGH round trips, nibabel interop,
the stdlib gzip fallback, atomic writes and errors."""
import gzip
import io
import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.nifti1 import Nifti1Extension

import medfast
from medfast import Image
from medfast.image import RGB24
from medfast.io import _gzip, nifti

AFFINE = np.array([[0.9, 0.1, 0.0, -10.0],
                   [0.0, 1.1, 0.2, 5.0],
                   [0.05, 0.0, 2.0, 3.0],
                   [0.0, 0.0, 0.0, 1.0]])
EXTS = (".nii", ".nii.gz")


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -3000), min(info.max, 3000), shape,
                        endpoint=True).astype(dtype)


def _nib_image(array, *, slope=None, inter=None, tr=None):
    """A nibabel image with every header field medfast keeps set."""
    img = nib.Nifti1Image(array, AFFINE, dtype=array.dtype)
    hdr = img.header
    img.set_qform(AFFINE @ np.diag([1.0, 1.0, 1.0, 1.0]), code=2)
    img.set_sform(AFFINE, code=4)
    hdr.set_xyzt_units("mm", "msec")
    hdr.set_intent("t test", (12.0,), name="tstat")
    hdr["descrip"] = b"medfast test"
    hdr["aux_file"] = b"aux"
    hdr["cal_min"], hdr["cal_max"] = -5, 5
    hdr.extensions.append(Nifti1Extension(6, b"a comment"))
    if slope is not None:
        hdr.set_slope_inter(slope, inter)
    if tr is not None:
        hdr["pixdim"][4] = tr
    return img


def _header(path):
    """nibabel's header of `path`, with the scaling nibabel moves to dataobj."""
    img = nib.load(path)
    hdr = img.header.copy()
    hdr.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
    return img, hdr


def _assert_same_file(path_a, path_b):
    img_a, hdr_a = _header(path_a)
    img_b, hdr_b = _header(path_b)
    a, b = np.asanyarray(img_a.dataobj), np.asanyarray(img_b.dataobj)
    assert a.dtype == b.dtype and np.array_equal(a, b)
    np.testing.assert_array_equal(img_a.affine, img_b.affine)
    assert hdr_a.get_data_dtype() == hdr_b.get_data_dtype()
    for key in hdr_a.keys():
        if key == "vox_offset":
            continue
        np.testing.assert_array_equal(hdr_a[key], hdr_b[key], err_msg=key)
    assert [(e.get_code(), e.get_content()) for e in hdr_a.extensions] == \
           [(e.get_code(), e.get_content()) for e in hdr_b.extensions]


# --------------------------------------------------------------------------
# Round trips and interop
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape,tr", [((9, 10, 11), None), ((7, 8, 9, 4), 2.5)])
def test_round_trip_and_interop(tmp_path, ext, dtype, shape, tr):
    array = _data(shape, dtype)
    theirs = tmp_path / f"nibabel{ext}"
    nib.save(_nib_image(array, tr=tr), theirs)

    img = medfast.load(theirs)                    # medfast reads nibabel's file
    assert img.array.dtype == dtype and np.array_equal(img.array, array)
    np.testing.assert_array_equal(img.affine, nib.load(theirs).affine)
    assert img.meta["qform_code"] == 2 and img.meta["sform_code"] == 4
    meta = img.meta["nifti"]
    assert meta["xyzt_units"] == 18 and meta["intent_code"] == 3
    assert meta["intent_params"] == (12.0, 0.0, 0.0) and meta["intent_name"] == "tstat"
    assert meta["descrip"] == "medfast test" and meta["extensions"] == [(6, b"a comment")]
    if tr is not None:
        assert meta["pixdim"][4] == tr

    ours = tmp_path / f"medfast{ext}"
    medfast.save(img, ours)                       # nibabel reads medfast's file
    _assert_same_file(theirs, ours)
    again = medfast.load(ours)
    assert again.array.dtype == dtype and np.array_equal(again.array, array)
    assert again.meta == img.meta


def _rgb(shape, seed=0):
    """An RGB24 array with random channels, and the channels as (..., 3)."""
    channels = np.random.default_rng(seed).integers(0, 256, shape + (3,), dtype=np.uint8)
    array = np.empty(shape, RGB24)
    for i, name in enumerate("RGB"):
        array[name] = channels[..., i]
    return array, channels


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("shape", [(5, 6, 7), (4, 5, 3, 2)])
def test_rgb24_round_trip_and_interop(tmp_path, ext, shape):
    # NIfTI RGB24 (datatype 128), as dcm2niix writes colour DICOM: one
    # R, G, B byte triplet per voxel, unscaled.
    array, channels = _rgb(shape)
    theirs = tmp_path / f"nibabel{ext}"
    nib.save(nib.Nifti1Image(array, AFFINE), theirs)
    img = medfast.load(theirs)                    # medfast reads nibabel's file
    assert img.array.dtype == RGB24 and img.shape == shape
    np.testing.assert_array_equal(np.stack([img.array[c] for c in "RGB"], -1), channels)
    np.testing.assert_array_equal(img.affine, nib.load(theirs).affine)

    ours = tmp_path / f"medfast{ext}"
    medfast.save(img, ours)                       # nibabel reads medfast's file
    back = nib.load(ours)
    assert back.header["datatype"] == 128 and back.header["bitpix"] == 24
    assert back.header.get_slope_inter() == (None, None)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), array)
    np.testing.assert_array_equal(back.affine, img.affine)
    # A new image (C order, no meta) too.
    fresh = tmp_path / f"fresh{ext}"
    medfast.save(Image(np.ascontiguousarray(array), AFFINE), fresh)
    np.testing.assert_array_equal(np.asanyarray(nib.load(fresh).dataobj), array)
    assert medfast.load(fresh).array.dtype == RGB24


def test_rgb24_only_in_nifti(tmp_path):
    array, _ = _rgb((3, 4, 5))
    with pytest.raises(TypeError, match="cannot be stored in MGH"):
        medfast.save(Image(array, AFFINE), tmp_path / "colour.mgz")
    rgba = np.zeros((3, 4, 5), [("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])
    nib.save(nib.Nifti1Image(rgba, AFFINE), tmp_path / "rgba.nii")
    with pytest.raises(TypeError, match="rgba.nii.*RGB24"):
        medfast.load(tmp_path / "rgba.nii")


@pytest.mark.parametrize("ext", EXTS)
def test_scaled_data(tmp_path, ext):
    raw = _data((8, 9, 10), np.int16)
    theirs = tmp_path / f"nibabel{ext}"
    nib.save(_nib_image(raw, slope=0.5, inter=-7.0), theirs)
    img = medfast.load(theirs)
    expected = np.asanyarray(nib.load(theirs).dataobj)   # nibabel's semantics
    assert img.array.dtype == expected.dtype == np.float64
    assert np.array_equal(img.array, expected)
    meta = img.meta["nifti"]
    assert (meta["scl_slope"], meta["scl_inter"], meta["on_disk_dtype"]) == (0.5, -7.0, "int16")
    ours = tmp_path / f"medfast{ext}"
    medfast.save(img, ours)                        # int16 + slope/inter again
    _assert_same_file(theirs, ours)
    assert np.array_equal(nib.load(ours).dataobj.get_unscaled(), raw)

    # Values the scaling cannot represent: stored unscaled, nothing lost.
    changed = img.replace(array=img.array + 0.1)
    medfast.save(changed, ours)
    back = medfast.load(ours)
    assert back.array.dtype == np.float64 and np.array_equal(back.array, changed.array)
    assert back.meta["nifti"]["scl_slope"] is None
    assert nib.load(ours).header.get_slope_inter() == (None, None)


def test_changed_affine_sets_both_forms(tmp_path):
    img = medfast.load(_write(tmp_path, _nib_image(_data((5, 6, 7), np.int16))))
    moved = img.replace(affine=np.diag([2.0, 3.0, 4.0, 1.0]))
    medfast.save(moved, tmp_path / "moved.nii.gz")
    out = nib.load(tmp_path / "moved.nii.gz")
    np.testing.assert_allclose(out.affine, moved.affine)
    np.testing.assert_allclose(out.header.get_qform(), moved.affine)
    assert out.header.get_zooms() == (2.0, 3.0, 4.0)
    assert int(out.header["qform_code"]) == 2 and int(out.header["sform_code"]) == 4


def test_plain_image_and_c_order(tmp_path):
    array = np.arange(4 * 5 * 6 * 3, dtype=np.int32).reshape(4, 5, 6, 3)   # C order
    img = Image(array, np.diag([1.5, 1.5, 2.0, 1.0]))
    for ext in EXTS:
        medfast.save(img, tmp_path / f"x{ext}")
        ref = nib.load(tmp_path / f"x{ext}")
        assert np.array_equal(np.asanyarray(ref.dataobj), array)
        np.testing.assert_array_equal(ref.affine, img.affine)
        assert int(ref.header["sform_code"]) == 1


def test_big_endian_and_nifti2(tmp_path):
    array = _data((6, 7, 8), np.float32)
    big = nib.Nifti1Image(array.astype(">f4"), AFFINE)
    path = _write(tmp_path, big, "big.nii.gz")
    img = medfast.load(path)
    assert np.array_equal(img.array, array)
    two = _write(tmp_path, nib.Nifti2Image(array, AFFINE), "two.nii.gz")
    img2 = medfast.load(two)
    assert img2.meta["nifti"]["version"] == 2 and np.array_equal(img2.array, array)
    medfast.save(img2, tmp_path / "two_again.nii.gz")
    assert isinstance(nib.load(tmp_path / "two_again.nii.gz"), nib.Nifti2Image)


def test_loaded_gz_array_is_writeable_view(tmp_path):
    path = _write(tmp_path, _nib_image(_data((5, 6, 7), np.int16)))
    img = medfast.load(path)
    assert img.array.flags.writeable and img.array.flags.f_contiguous
    assert img.array.base is not None          # a view of the decompressed buffer


def test_mgz_round_trip(tmp_path):
    from nibabel.freesurfer.mghformat import MGHImage
    array = _data((6, 7, 8), np.float32)
    ref = MGHImage(array, AFFINE)
    ref.header["tr"] = 2300.0
    nib.save(ref, tmp_path / "a.mgz")
    img = medfast.load(tmp_path / "a.mgz")
    assert np.array_equal(img.array, array) and img.meta["mgh"]["tr"] == 2300.0
    medfast.save(img, tmp_path / "b.mgz")
    back = nib.load(tmp_path / "b.mgz")
    assert np.array_equal(np.asanyarray(back.dataobj), array)
    np.testing.assert_allclose(back.affine, nib.load(tmp_path / "a.mgz").affine, atol=1e-5)
    assert float(back.header["tr"]) == 2300.0


def _write(tmp_path, nib_img, name="in.nii.gz"):
    path = tmp_path / name
    nib.save(nib_img, path)
    return path


# --------------------------------------------------------------------------
# gzip: standard stream, stdlib fallback
# --------------------------------------------------------------------------
def test_output_is_standard_gzip(tmp_path):
    img = Image(_data((20, 21, 22), np.int16), AFFINE)
    medfast.save(img, tmp_path / "a.nii.gz")
    medfast.save(img, tmp_path / "a.nii")
    with gzip.open(tmp_path / "a.nii.gz") as f:          # zlib reads it
        assert f.read() == (tmp_path / "a.nii").read_bytes()


def _gunzip(data, size=None):
    """All of a gzip stream, through medfast's bounded reader."""
    size = len(gzip.decompress(data)) if size is None else size
    found = _gzip.read(io.BytesIO(data), size)
    assert found.extra == 0 and found.garbage == 0
    return bytes(found.data)


@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_gzip_members(tmp_path, monkeypatch, threads):
    """Files are written as several gzip members (MF subfield: compressed
    size) that every gzip reader reads as one stream, and medfast reads
    them member by member, in threads."""
    monkeypatch.setattr(_gzip, "MEMBER_BYTES", 5000)
    monkeypatch.setattr(_gzip, "THREADS", threads)
    img = Image(_data((40, 41, 42), np.int16), AFFINE)
    medfast.save(img, tmp_path / "a.nii.gz")
    medfast.save(img, tmp_path / "a.nii")
    data = (tmp_path / "a.nii.gz").read_bytes()
    expected = (tmp_path / "a.nii").read_bytes()
    members = _gzip._blocked_prefix(io.BytesIO(data), len(expected))
    assert len(members) == -(-len(expected) // 5000)
    assert gzip.decompress(data) == expected                     # zlib: one stream
    assert np.array_equal(np.asanyarray(nib.load(tmp_path / "a.nii.gz").dataobj), img.array)
    assert _gunzip(data) == expected
    calls = []
    real = _gzip._inflate_member
    monkeypatch.setattr(_gzip, "_inflate_member", lambda *a: calls.append(1) or real(*a))
    assert np.array_equal(medfast.load(tmp_path / "a.nii.gz").array, img.array)
    assert len(calls) == len(members)                            # the blocked path ran
    # A damaged member or trailer is an error, never wrong voxels.
    start, length, _ = members[len(members) // 2]
    end = start + length - 8
    for where in (start + length // 2, end, end + 5):             # data, CRC, size
        bad = bytearray(data)
        bad[where] ^= 0x55
        with pytest.raises(_gzip.CorruptGzipError):
            _gunzip(bytes(bad), len(expected))


def test_blocked_gzip_empty_and_foreign():
    out = io.BytesIO()
    _gzip.write(out, [])
    assert gzip.decompress(out.getvalue()) == b""
    assert _gunzip(out.getvalue()) == b""
    # An ordinary gzip stream (no MF subfield) takes the one-stream path.
    plain = gzip.compress(b"abc" * 1000)
    assert _gzip._blocked_prefix(io.BytesIO(plain), 3000) == []
    assert _gunzip(plain) == b"abc" * 1000


def test_stdlib_fallback_identical(tmp_path, monkeypatch):
    img = medfast.load(_write(tmp_path, _nib_image(_data((9, 10, 11, 3), np.int16), tr=2.0)))
    medfast.save(img, tmp_path / "isal.nii.gz")
    monkeypatch.setattr(_gzip, "igzip", None)
    medfast.save(img, tmp_path / "stdlib.nii.gz")
    _assert_same_file(tmp_path / "isal.nii.gz", tmp_path / "stdlib.nii.gz")
    for name in ("isal.nii.gz", "stdlib.nii.gz"):
        back = medfast.load(tmp_path / name)
        assert np.array_equal(back.array, img.array) and back.meta == img.meta
    with pytest.raises(ValueError, match="corrupt or truncated"):
        medfast.load(_truncated(tmp_path, "stdlib.nii.gz"))


def test_content_over_extension(tmp_path):
    img = Image(_data((5, 6, 7), np.uint8), AFFINE)
    medfast.save(img, tmp_path / "a.nii.gz")
    medfast.save(img, tmp_path / "a.nii")
    os.replace(tmp_path / "a.nii.gz", tmp_path / "gz_named.nii")
    os.replace(tmp_path / "a.nii", tmp_path / "raw_named.nii.gz")
    for name in ("gz_named.nii", "raw_named.nii.gz"):
        assert np.array_equal(medfast.load(tmp_path / name).array, img.array)


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------
def test_atomic_write_leaves_nothing(tmp_path, monkeypatch):
    img = Image(_data((10, 11, 12), np.int16), AFFINE)
    medfast.save(img, tmp_path / "a.nii.gz")
    assert sorted(os.listdir(tmp_path)) == ["a.nii.gz"]
    assert os.stat(tmp_path / "a.nii.gz").st_mode & 0o600 == 0o600
    before = (tmp_path / "a.nii.gz").read_bytes()

    class Interrupted:
        """Written after the header and the data: the save fails at the end."""
        nbytes = 10

    real = nifti._as_parts
    monkeypatch.setattr(nifti, "_as_parts", lambda *b: real(*b) + [Interrupted()])
    for name in ("b.nii.gz", "b.nii", "a.nii.gz"):
        with pytest.raises(TypeError):
            medfast.save(img, tmp_path / name)
        # No new target, no temporary file, the old file untouched.
        assert sorted(os.listdir(tmp_path)) == ["a.nii.gz"]
        assert (tmp_path / "a.nii.gz").read_bytes() == before


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
def _truncated(tmp_path, name):
    data = (tmp_path / name).read_bytes()
    (tmp_path / ("cut_" + name)).write_bytes(data[: len(data) // 2])
    return tmp_path / ("cut_" + name)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".mgz"])
def test_a_file_is_opened_once(tmp_path, monkeypatch, ext):
    """load sniffs a file once and hands the open file to its reader (the
    memory map of a .nii included), as nibabel does."""
    path = tmp_path / f"a{ext}"
    img = Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.eye(4))
    medfast.save(img, path)
    opened = []

    def counting_open(name, *args, **kwargs):
        opened.append(os.fspath(name))
        return io.open(name, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    back = medfast.load(path)
    np.testing.assert_array_equal(back.array, img.array)
    assert opened == [str(path)]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        medfast.load(tmp_path / "nope.nii.gz")


def test_unsupported_formats(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"a\.png.*unsupported format"):
        medfast.load(png)
    dcm = tmp_path / "slice.dcm"
    dcm.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 10)
    # A broken DICOM file goes to the DICOM reader, which names the problem.
    with pytest.raises(ValueError, match=r"slice\.dcm: no DICOM volume found.*cut inside its header"):
        medfast.load(dcm)
    noext = tmp_path / "IM0001"
    noext.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 10)
    with pytest.raises(ValueError, match="IM0001: no DICOM volume found"):
        medfast.load(noext)
    with pytest.raises(ValueError, match="no DICOM volume found.*not a DICOM file"):
        medfast.load(tmp_path)
    with pytest.raises(ValueError, match="slice.dcm: a DICOM file; read DICOM with medfast.load"):
        medfast.io.load(dcm)
    img = Image(np.zeros((2, 3, 4), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="unsupported format"):
        medfast.save(img, tmp_path / "out.png")
    with pytest.raises(TypeError, match="medfast.Image"):
        medfast.save(np.zeros((2, 3, 4)), tmp_path / "out.nii")
    with pytest.raises(TypeError, match="cannot be stored in NIfTI"):
        medfast.save(img.replace(array=np.zeros((2, 3, 4), bool)), tmp_path / "b.nii")
    with pytest.raises(FileNotFoundError):
        medfast.save(img, tmp_path / "no_such_folder" / "a.nii")
    with pytest.raises(ValueError, match="descrip"):
        medfast.save(img.replace(meta={"nifti": {"descrip": "x" * 81}}), tmp_path / "c.nii")
    assert sorted(os.listdir(tmp_path)) == ["IM0001", "a.png", "slice.dcm"]


@pytest.mark.parametrize("ext", EXTS)
def test_corrupt_files(tmp_path, ext):
    img = Image(_data((30, 31, 32), np.int16), AFFINE)
    medfast.save(img, tmp_path / f"a{ext}")
    with pytest.raises(ValueError, match=f"cut_a{ext}.*(corrupt or truncated|truncated)"):
        medfast.load(_truncated(tmp_path, f"a{ext}"))
    garbage = tmp_path / f"garbage{ext}"
    garbage.write_bytes(b"this is not an image at all" * 20)
    with pytest.raises(ValueError, match=f"garbage{ext}.*not a NIfTI"):
        medfast.load(garbage)
    if ext == ".nii.gz":
        data = bytearray((tmp_path / "a.nii.gz").read_bytes())
        data[len(data) // 2] ^= 0xFF                   # one flipped byte
        bad = tmp_path / "flipped.nii.gz"
        bad.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="flipped.nii.gz.*corrupt or truncated"):
            medfast.load(bad)

"""medfast.Image: validation, derived geometry, and nibabel interop without copies."""
import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings

import medfast
from medfast import Image
from strategies import examples
from test_orientation import affines

AFFINE = np.array([[0.0, 0.0, -2.5, 90.0],
                   [-1.0, 0.0, 0.0, 120.0],
                   [0.0, 1.2, 0.0, -70.0],
                   [0.0, 0.0, 0.0, 1.0]])


def volume(shape=(4, 5, 6), dtype=np.int16):
    return np.arange(np.prod(shape)).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------
# Construction and validation
# --------------------------------------------------------------------------
def test_parts_are_kept_without_copying_the_array():
    array = np.asfortranarray(volume())
    img = Image(array, AFFINE.tolist(), {"TR": 2.0})
    assert img.array is array
    assert img.affine.dtype == np.float64
    np.testing.assert_array_equal(img.affine, AFFINE)
    assert img.meta == {"TR": 2.0}
    assert medfast.Image is Image


def test_affine_and_meta_are_private_copies():
    affine = AFFINE.copy()
    meta = {"a": 1}
    img = Image(volume(), affine, meta)
    affine[0, 3] = 0.0
    meta["b"] = 2
    assert img.affine[0, 3] == 90.0
    assert img.meta == {"a": 1}
    with pytest.raises(ValueError):
        img.affine[0, 0] = 5.0  # read-only
    with pytest.raises(AttributeError):
        img.array = np.zeros((2, 2, 2))


def test_memmap_is_kept(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32,
                                   shape=(3, 4, 5))
    assert Image(mm, np.eye(4)).array is mm


@pytest.mark.parametrize("affine, message", [
    (np.eye(3), "4x4"),
    (np.eye(4)[:, :3], "4x4"),
    (np.diag([1.0, np.nan, 1.0, 1.0]), "non-finite"),
    (np.diag([1.0, 1.0, np.inf, 1.0]), "non-finite"),
    (np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
    ([[1, 2, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "singular"),
    ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], "last row"),
])
def test_bad_affine_raises_value_error(affine, message):
    with pytest.raises(ValueError, match=f"affine.*{message}|{message}.*affine"):
        Image(volume(), affine)


def test_non_numeric_affine_raises_type_error():
    with pytest.raises(TypeError, match="affine"):
        Image(volume(), [["a"] * 4] * 4)


def test_nearly_exact_last_row_is_made_exact():
    affine = np.eye(4)
    affine[3, 3] = 1 - 1e-15
    assert Image(volume(), affine).affine[3, 3] == 1.0


@pytest.mark.parametrize("shape", [(), (4,), (4, 5), (2, 3, 4, 5, 6)])
def test_array_must_be_3d_or_4d(shape):
    with pytest.raises(ValueError, match="array.*3-D"):
        Image(np.zeros(shape), np.eye(4))


@pytest.mark.parametrize("array", [np.array([[["a"]]]), np.empty((2, 2, 2), object)])
def test_array_must_be_numeric(array):
    with pytest.raises(TypeError, match="array"):
        Image(array, np.eye(4))


def test_meta_must_be_a_mapping():
    with pytest.raises(TypeError, match="meta"):
        Image(volume(), np.eye(4), [("a", 1)])


def test_replace_shares_the_other_parts():
    img = Image(volume(), AFFINE, {"a": 1})
    moved = img.replace(affine=np.eye(4))
    assert moved.array is img.array and moved.meta == img.meta
    assert moved.orientation == "RAS" and img.orientation == "PSL"
    with pytest.raises(ValueError, match="array"):
        img.replace(array=np.zeros((2, 2)))


# --------------------------------------------------------------------------
# Derived geometry
# --------------------------------------------------------------------------
def test_properties_3d_and_4d():
    img = Image(volume(), AFFINE)
    assert img.shape == img.spatial_shape == (4, 5, 6)
    assert img.ndim == 3 and not img.is_4d and img.dtype == np.int16
    np.testing.assert_allclose(img.spacing, [1.0, 1.2, 2.5])
    np.testing.assert_array_equal(img.origin, [90.0, 120.0, -70.0])
    assert img.orientation == "PSL"
    img4 = Image(np.zeros((4, 5, 6, 7), np.float32), AFFINE)
    assert img4.shape == (4, 5, 6, 7) and img4.spatial_shape == (4, 5, 6)
    assert img4.ndim == 4 and img4.is_4d


def test_origin_and_spacing_are_copies():
    img = Image(volume(), AFFINE)
    img.origin[0] = 0.0
    img.spacing[0] = 0.0
    assert img.affine[0, 3] == 90.0 and img.spacing[0] == 1.0


@settings(max_examples=examples(100))
@given(affines())
def test_geometry_agrees_with_nibabel(affine):
    img = Image(np.zeros((2, 3, 4), np.float32), affine)
    nii = nib.Nifti1Image(img.array, affine)
    np.testing.assert_allclose(img.spacing, nii.header.get_zooms(), rtol=1e-6)
    np.testing.assert_allclose(img.spacing, nib.affines.voxel_sizes(affine), rtol=1e-12)
    np.testing.assert_array_equal(img.origin, affine[:3, 3])
    assert img.orientation == "".join(nib.aff2axcodes(affine))


def test_repr_is_readable():
    text = repr(Image(volume(), AFFINE, {"TR": 2.0}))
    assert text == ("Image(shape=(4, 5, 6), dtype=int16, orientation='PSL', "
                    "spacing=(1, 1.2, 2.5), origin=(90, 120, -70), meta=['TR'])")


# --------------------------------------------------------------------------
# nibabel interop
# --------------------------------------------------------------------------
def test_from_nibabel_shares_the_in_memory_array():
    array = volume()
    nii = nib.Nifti1Image(array, AFFINE)
    img = Image.from_nibabel(nii)
    assert img.array is array
    np.testing.assert_array_equal(img.affine, AFFINE)
    assert img.meta == {"qform_code": 0, "sform_code": 2}  # nibabel's defaults


def test_to_nibabel_shares_the_array_and_sets_scanner_codes():
    array = np.asfortranarray(volume(dtype=np.float32))
    img = Image(array, AFFINE)
    nii = img.to_nibabel()
    assert isinstance(nii, nib.Nifti1Image)
    assert nii.dataobj is array
    assert np.shares_memory(np.asanyarray(nii.dataobj), array)
    np.testing.assert_array_equal(nii.affine, AFFINE)
    assert int(nii.header["qform_code"]) == 1 and int(nii.header["sform_code"]) == 1
    np.testing.assert_allclose(nii.header.get_sform(), AFFINE)
    np.testing.assert_allclose(nii.header.get_qform(), AFFINE, atol=1e-6)
    assert nii.get_data_dtype() == np.float32


def test_to_nibabel_keeps_codes_from_meta():
    img = Image(volume(), AFFINE, {"qform_code": 0, "sform_code": 2})
    nii = img.to_nibabel()
    assert int(nii.header["qform_code"]) == 0 and int(nii.header["sform_code"]) == 2


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 3)])
def test_round_trip_through_nibabel_in_memory(shape):
    img = Image(volume(shape), AFFINE, {"qform_code": 1, "sform_code": 4})
    back = Image.from_nibabel(img.to_nibabel())
    assert back.array is img.array
    np.testing.assert_array_equal(back.affine, img.affine)
    assert back.meta == img.meta


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 3)])
def test_round_trip_through_a_nifti_file(tmp_path, shape):
    img = Image(volume(shape), AFFINE)
    path = tmp_path / "img.nii"
    nib.save(img.to_nibabel(), path)
    back = Image.from_nibabel(nib.load(path))
    # An uncompressed, unscaled file is memory-mapped, not read into a copy.
    assert isinstance(back.array, np.memmap)
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)
    assert back.meta == {"qform_code": 1, "sform_code": 1}
    assert back.orientation == img.orientation == "PSL"


def test_to_nibabel_int64_and_large_dimensions():
    nii = Image(volume(dtype=np.int64), AFFINE).to_nibabel()
    assert nii.get_data_dtype() == np.int64  # nibabel wants it explicit
    long = Image(np.zeros((32768, 1, 1), np.uint8), np.eye(4)).to_nibabel()
    assert isinstance(long, nib.Nifti2Image)


@pytest.mark.parametrize("dtype", [bool, np.float16])
def test_to_nibabel_unsupported_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match=f"array: dtype {np.dtype(dtype)}"):
        Image(np.zeros((2, 2, 2), dtype), np.eye(4)).to_nibabel()


def test_from_nibabel_rejects_other_objects():
    with pytest.raises(TypeError, match="img"):
        Image.from_nibabel(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="affine"):
        Image.from_nibabel(nib.Nifti1Image(np.zeros((2, 2, 2)), None))
    with pytest.raises(ValueError, match="array"):
        Image.from_nibabel(nib.Nifti1Image(np.zeros((2, 2)), np.eye(4)))


def test_canonical_through_nibabel_matches():
    # The everyday path: nibabel image in, canonical view out, same as nibabel.
    nii = nib.Nifti1Image(volume(dtype=np.float32), AFFINE)
    ours = medfast.as_canonical(Image.from_nibabel(nii))
    theirs = nib.as_closest_canonical(nii)
    np.testing.assert_array_equal(ours.array, theirs.get_fdata())
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-12)
    assert np.shares_memory(ours.array, nii.dataobj)

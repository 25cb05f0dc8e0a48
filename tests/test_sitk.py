"""Image.from_sitk / Image.to_sitk against SimpleITK and nibabel.

SimpleITK is LPS+ with arrays in (z, y, x) order; medfast is RAS+ with
(i, j, k) = (x, y, z).  Every check compares with what SimpleITK or
nibabel itself computes: round trips both ways on oblique and flipped
affines, the same file read by nibabel and by SimpleITK, and a world point
mapped to a voxel by each.
"""
import sys

import nibabel as nib
import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is not installed "
                           "(pip install \"medfast[compare]\")")

import medfast  # noqa: E402
from medfast import Image  # noqa: E402
from medfast.orientation import lps_to_ras_points, ras_to_lps_points  # noqa: E402


def rotation(axis, degrees):
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def make_affine(kind, rng):
    """A voxel -> RAS affine: 'oblique' (rotated), 'flipped' (a permutation
    with flips, so i grows towards L, ...) or 'both'."""
    linear = np.diag(rng.uniform(0.5, 2.5, 3))
    if kind in ("flipped", "both"):
        linear = np.eye(3)[:, rng.permutation(3)] * rng.choice([-1.0, 1.0], 3) @ linear
    if kind in ("oblique", "both"):
        linear = rotation(rng.normal(size=3), rng.uniform(10, 40)) @ linear
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    return affine


KINDS = ["oblique", "flipped", "both"]


def volume(shape, dtype, rng):
    return (rng.normal(size=shape) * 100 + 200).astype(dtype)


def sitk_geometry(img):
    return (img.GetSize(), np.array(img.GetSpacing()), np.array(img.GetOrigin()),
            np.array(img.GetDirection()))


def assert_same_sitk_geometry(a, b, atol=1e-12):
    size_a, *rest_a = sitk_geometry(a)
    size_b, *rest_b = sitk_geometry(b)
    assert size_a == size_b
    for x, y in zip(rest_a, rest_b):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def sitk_image(rng, kind, shape=(7, 8, 9), dtype=np.int16):
    """A SimpleITK image with geometry set directly in LPS: direction,
    spacing and origin from a random RAS affine converted by hand."""
    affine = make_affine(kind, rng)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # written out, not medfast's
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    img = sitk.GetImageFromArray(volume(shape[::-1], dtype, rng))
    img.SetSpacing(spacing.tolist())
    img.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    return img


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8, np.float64])
def test_medfast_sitk_medfast(kind, dtype):
    rng = np.random.default_rng(KINDS.index(kind))
    img = Image(volume((6, 7, 8), dtype, rng), make_affine(kind, rng))
    out = img.to_sitk()
    assert out.GetSize() == (6, 7, 8)
    back = Image.from_sitk(out)
    assert back.dtype == img.dtype
    assert np.array_equal(back.array, img.array)
    assert back.array.flags.f_contiguous  # a transposed view of SimpleITK's (z, y, x)
    np.testing.assert_allclose(back.affine, img.affine, rtol=0, atol=1e-12)
    assert back.orientation == img.orientation


@pytest.mark.parametrize("kind", KINDS)
def test_sitk_medfast_sitk(kind):
    rng = np.random.default_rng(10 + KINDS.index(kind))
    img = sitk_image(rng, kind)
    img.SetMetaData("0008|0060", "MR")
    mid = Image.from_sitk(img)
    assert mid.meta["sitk_metadata"] == {"0008|0060": "MR"}
    back = mid.to_sitk()
    assert_same_sitk_geometry(back, img)
    assert back.GetPixelID() == img.GetPixelID()
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    assert back.GetMetaData("0008|0060") == "MR"


def test_big_endian_and_memory_mapped_arrays(tmp_path):
    rng = np.random.default_rng(6)
    affine = make_affine("both", rng)
    data = volume((4, 5, 6), ">f4", rng)
    back = Image.from_sitk(Image(data, affine).to_sitk())
    assert back.dtype == np.float32 and np.array_equal(back.array, data)
    path = tmp_path / "img.nii"
    medfast.save(Image(volume((4, 5, 6), np.int16, rng), affine), path)
    loaded = medfast.load(path)  # a memory map, Fortran order
    assert np.array_equal(Image.from_sitk(loaded.to_sitk()).array, loaded.array)


def test_voxel_values_and_positions_agree():
    rng = np.random.default_rng(3)
    img = sitk_image(rng, "both")
    ours = Image.from_sitk(img)
    for index in [(0, 0, 0), (6, 0, 3), (2, 7, 8), (6, 7, 8)]:
        assert ours.array[index] == img.GetPixel(*index)
        lps = img.TransformIndexToPhysicalPoint(index)
        ras = ours.affine @ np.r_[index, 1.0]
        np.testing.assert_allclose(ras[:3], lps_to_ras_points(lps), atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_world_point_maps_to_the_same_voxel(kind):
    rng = np.random.default_rng(20 + KINDS.index(kind))
    img = Image(volume((6, 7, 8), np.float32, rng), make_affine(kind, rng))
    s = img.to_sitk()
    centre = img.affine @ np.r_[(np.array(img.shape) - 1) / 2, 1.0]
    for ras in centre[:3] + rng.uniform(-20, 20, (10, 3)):
        expected = (np.linalg.inv(img.affine) @ np.r_[ras, 1.0])[:3]
        got = s.TransformPhysicalPointToContinuousIndex(tuple(ras_to_lps_points(ras)))
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_4d_round_trips_as_a_4d_scalar_image():
    rng = np.random.default_rng(4)
    img = Image(volume((5, 6, 7, 3), np.float32, rng), make_affine("both", rng),
                {"nifti": {"pixdim": [1.0, 1, 1, 1, 2.5, 0, 0, 0]}})
    s = img.to_sitk()
    assert s.GetDimension() == 4 and s.GetSize() == (5, 6, 7, 3)
    assert s.GetNumberOfComponentsPerPixel() == 1
    assert s.GetSpacing()[3] == 2.5  # the NIfTI TR
    assert s.GetPixel(1, 2, 3, 2) == img.array[1, 2, 3, 2]
    back = Image.from_sitk(s)
    assert np.array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-12)
    assert back.meta["sitk_time"] == (0.0, 2.5)
    assert_same_sitk_geometry(back.to_sitk(), s)


def test_2d_image_gets_a_third_axis():
    img = sitk.GetImageFromArray(np.arange(12, dtype=np.int16).reshape(3, 4))
    img.SetSpacing((0.5, 2.0))
    img.SetOrigin((10.0, 20.0))
    ours = Image.from_sitk(img)
    assert ours.shape == (4, 3, 1)
    assert ours.array[3, 1, 0] == img.GetPixel(3, 1)
    np.testing.assert_allclose(ours.affine, np.diag([-0.5, -2.0, 1.0, 1.0])
                               + np.array([[0, 0, 0, -10.0], [0, 0, 0, -20.0],
                                           [0, 0, 0, 0], [0, 0, 0, 0]]))


# --------------------------------------------------------------------------
# The same file through nibabel and SimpleITK
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_sitk_written_nifti_read_by_nibabel(tmp_path, kind):
    rng = np.random.default_rng(30 + KINDS.index(kind))
    img = sitk_image(rng, kind)
    path = str(tmp_path / "img.nii.gz")
    sitk.WriteImage(img, path)
    nii = nib.load(path)
    ours = Image.from_sitk(img)
    assert np.array_equal(np.asanyarray(nii.dataobj), ours.array)
    np.testing.assert_allclose(nii.affine, ours.affine, rtol=0, atol=1e-4)  # float32 header


@pytest.mark.parametrize("kind", KINDS)
def test_medfast_saved_nifti_read_by_sitk(tmp_path, kind):
    rng = np.random.default_rng(40 + KINDS.index(kind))
    img = Image(volume((6, 7, 8), np.int16, rng), make_affine(kind, rng))
    path = str(tmp_path / "img.nii.gz")
    medfast.save(img, path)
    theirs = sitk.ReadImage(path)
    assert_same_sitk_geometry(theirs, img.to_sitk(), atol=1e-4)
    assert np.array_equal(sitk.GetArrayFromImage(theirs), sitk.GetArrayFromImage(img.to_sitk()))
    back = Image.from_sitk(theirs)
    assert np.array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, medfast.load(path).affine, atol=1e-4)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
def test_sheared_affine_raises_value_error():
    affine = np.eye(4)
    affine[0, 1] = 0.3  # j leans towards x: not perpendicular to i
    with pytest.raises(ValueError, match="shear"):
        Image(np.zeros((2, 3, 4), np.float32), affine).to_sitk()


def test_float32_rounding_is_not_a_shear():
    rng = np.random.default_rng(5)
    affine = make_affine("both", rng).astype(np.float32).astype(np.float64)
    Image(np.zeros((2, 3, 4), np.float32), affine).to_sitk()


@pytest.mark.parametrize("dtype", [bool, np.float16])
def test_unsupported_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match=f"dtype {np.dtype(dtype)}"):
        Image(np.zeros((2, 3, 4), dtype), np.eye(4)).to_sitk()


def test_vector_image_raises_value_error():
    img = sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.float32), isVector=True)
    with pytest.raises(ValueError, match="vector image.*3 components"):
        Image.from_sitk(img)


def test_4d_direction_mixing_time_and_space_raises():
    img = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False)
    direction = np.eye(4)
    direction[[2, 3]] = direction[[3, 2]]
    img.SetDirection(direction.ravel().tolist())
    with pytest.raises(ValueError, match="fourth axis"):
        Image.from_sitk(img)


def test_not_a_sitk_image_raises_type_error():
    with pytest.raises(TypeError, match="SimpleITK.Image"):
        Image.from_sitk(np.zeros((2, 2, 2)))


def test_missing_simpleitk_raises_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # import fails
    img = Image(np.zeros((2, 3, 4), np.float32), np.eye(4))
    with pytest.raises(ImportError, match=r"medfast\[compare\]"):
        img.to_sitk()
    with pytest.raises(ImportError, match="pip install SimpleITK"):
        Image.from_sitk(None)

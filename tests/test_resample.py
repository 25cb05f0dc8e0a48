"""medfast.resample: world-space resampling, checked against nibabel.processing."""
import nibabel
import nibabel.affines
import nibabel.processing
import numpy as np
import pytest
import scipy.ndimage
from scipy.spatial.transform import Rotation

import medfast
from medfast import Image
from medfast.resample import invert_transform, resample, resample_to


def random_affine(rng, oblique):
    rot = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix() if oblique else np.eye(3)
    # Random axis flips/permutations too for the axis-aligned case.
    if not oblique:
        rot = rot[rng.permutation(3)] * rng.choice([-1.0, 1.0], 3)
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(rng.uniform(0.6, 2.5, 3))
    affine[:3, 3] = rng.uniform(-30, 30, 3)
    return affine


def overlapping_grid(rng, in_shape, in_affine, oblique):
    """A grid whose centre lies at the input's centre (so both overlap)."""
    shape = tuple(int(n) for n in rng.integers(4, 18, 3))
    affine = random_affine(rng, oblique)
    centre = in_affine[:3, :3] @ ((np.array(in_shape) - 1) / 2) + in_affine[:3, 3]
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    return shape, affine


def nib_resample(data, affine, shape, out_affine, order):
    if data.ndim == 4:  # nibabel wants the time axis in the target shape
        shape = tuple(shape) + (data.shape[3],)
    img = nibabel.Nifti1Image(data, affine, dtype=data.dtype)
    return np.asanyarray(nibabel.processing.resample_from_to(
        img, (shape, out_affine), order=order, mode="constant", cval=0).dataobj)


# --------------------------------------------------------------------------
# like= / resample_to against nibabel
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("order", [0, 1])
def test_like_equals_nibabel(seed, order):
    rng = np.random.default_rng(seed)
    oblique = seed % 3 != 0
    in_shape = tuple(int(n) for n in rng.integers(4, 18, 3))
    if seed % 4 == 3:
        in_shape += (3,)  # 4-D
    dtype = [np.float32, np.int16, np.float64, np.uint8][seed % 4]
    data = (rng.normal(size=in_shape) * 60 + 100).astype(dtype)
    if seed % 2:
        data = np.asfortranarray(data)
    in_affine = random_affine(rng, oblique)
    shape, out_affine = overlapping_grid(rng, in_shape[:3], in_affine, seed % 2 == 0)
    reference = Image(np.zeros(shape, np.uint8), out_affine)

    expected = nib_resample(data, in_affine, shape, out_affine, order)
    got = resample_to(Image(data, in_affine), reference,
                      order=["nearest", "linear"][order])
    assert got.array.dtype == expected.dtype == data.dtype
    assert got.shape == expected.shape
    assert np.array_equal(got.affine, out_affine)
    # Same matrix arithmetic (inv(A_in).dot(A_out)) and scipy-identical core:
    # bytes agree.  For 4-D nibabel inverts a 5x5 affine, whose spatial block
    # has so far come out identical too.
    assert np.array_equal(got.array, expected)
    same = resample(Image(data, in_affine), like=reference, order=order)
    assert np.array_equal(same.array, got.array)


def test_4d_each_frame_is_the_3d_answer():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(9, 10, 11, 4)).astype(np.float32)
    affine = random_affine(rng, True)
    shape, out_affine = overlapping_grid(rng, data.shape[:3], affine, True)
    got = resample(Image(data, affine), shape=shape, affine=out_affine)
    assert got.shape == shape + (4,)
    for t in range(4):
        frame = resample(Image(data[..., t], affine), shape=shape, affine=out_affine)
        assert np.array_equal(got.array[..., t], frame.array)


def test_like_4d_reference_for_3d_image_is_an_error():
    img = Image(np.zeros((4, 4, 4)), np.eye(4))
    with pytest.raises(ValueError, match="like"):
        resample_to(img, Image(np.zeros((4, 4, 4, 2)), np.eye(4)))


def test_meta_kept_dtype_option():
    img = Image(np.arange(64, dtype=np.int16).reshape(4, 4, 4), np.eye(4), {"sform_code": 2})
    out = resample(img, affine=np.diag([0.5, 0.5, 0.5, 1]), dtype=np.float32)
    assert out.dtype == np.float32 and out.meta == {"sform_code": 2}
    assert out.array[2, 2, 2] == img.array[1, 1, 1]
    assert out.array[1, 0, 0] == pytest.approx(0.5 * img.array[1, 0, 0])


# --------------------------------------------------------------------------
# spacing=
# --------------------------------------------------------------------------
def test_spacing_grid_properties():
    rng = np.random.default_rng(3)
    affine = random_affine(rng, True)
    img = Image(rng.normal(size=(20, 15, 11)).astype(np.float32), affine)
    out = resample(img, spacing=(1.0, 2.0, 0.5))
    expected_shape = np.floor(np.array(img.shape) * img.spacing / [1.0, 2.0, 0.5] + 0.5)
    assert out.shape == tuple(int(n) for n in expected_shape)
    assert np.allclose(out.spacing, [1.0, 2.0, 0.5])
    assert out.orientation == img.orientation
    # Same directions (columns rescaled), same grid centre in world space.
    assert np.allclose(out.affine[:3, :3] / out.spacing, affine[:3, :3] / img.spacing)
    def centre(im):
        return nibabel.affines.apply_affine(im.affine, (np.array(im.shape) - 1) / 2)

    assert np.allclose(centre(out), centre(img))
    iso = resample(img, spacing=1.25)
    assert np.allclose(iso.spacing, 1.25)


@pytest.mark.parametrize("order", [0, 1])
def test_spacing_equals_explicit_grid(order):
    rng = np.random.default_rng(4)
    # Axis-aligned with power-of-two sizes: the voxel matrix inv(A) @ A_out
    # is then exact, so the explicit grid gives the very same samples.
    affine = np.diag([2.0, 1.0, 0.5, 1.0])
    affine[:3, 3] = [-10, 4, 7]
    img = Image(rng.normal(size=(16, 12, 10)).astype(np.float32), affine)
    out = resample(img, spacing=(1.0, 0.5, 1.0), order=order)
    explicit = resample(img, shape=out.shape, affine=out.affine, order=order)
    assert np.array_equal(out.array, explicit.array)
    # and nibabel on that grid
    assert np.array_equal(out.array, nib_resample(img.array, affine, out.shape, out.affine, order))


def test_spacing_oblique_close_to_explicit_grid():
    rng = np.random.default_rng(6)
    img = Image(rng.normal(size=(14, 13, 12)).astype(np.float64), random_affine(rng, True))
    out = resample(img, spacing=0.8)
    explicit = resample(img, shape=out.shape, affine=out.affine)
    # spacing= uses the exact diagonal voxel matrix, the explicit grid
    # recomputes it as inv(A) @ A_out (last-bit differences): linear
    # interpolation is continuous, so the values differ by rounding only.
    assert np.allclose(out.array, explicit.array, rtol=0, atol=1e-9)


def test_spacing_matches_nibabel_rescale_affine_when_centres_are_integer():
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    affine[:3, 3] = [5, -7, 2]
    img = Image(np.zeros((21, 21, 9), np.int16), affine)
    out = resample(img, spacing=(0.5, 0.5, 1.0))  # 63 x 63 x 27: n - 1 even
    assert out.shape == (63, 63, 27)
    expected = nibabel.affines.rescale_affine(affine, img.shape, (0.5, 0.5, 1.0), out.shape)
    assert np.allclose(out.affine, expected)


def test_spacing_matches_resample_to_output_on_a_ras_grid():
    rng = np.random.default_rng(8)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    data = rng.normal(size=(8, 9, 10)).astype(np.float32)
    img = Image(data, affine)
    out = resample(img, spacing=1.0, order=1)
    # resample_to_output's grid spans the voxel centres (2n - 1 samples);
    # ours spans the field of view (2n samples, shifted half a voxel).  On
    # nibabel's grid (given explicitly) the answers are identical.
    nib_out = nibabel.processing.resample_to_output(
        nibabel.Nifti1Image(data, affine), 1.0, order=1)
    assert out.shape == (16, 18, 20) and nib_out.shape == (15, 17, 19)
    ours_on_nib_grid = resample(img, shape=nib_out.shape, affine=nib_out.affine)
    assert np.array_equal(ours_on_nib_grid.array, np.asanyarray(nib_out.dataobj))


def test_spacing_uses_the_separable_path_and_scipy_values():
    import scipy.ndimage
    rng = np.random.default_rng(9)
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    img = Image(rng.normal(size=(10, 11, 12)).astype(np.float32), affine)
    out = resample(img, spacing=(0.5, 2.0, 0.7))
    zoom = np.array([0.5, 2.0, 0.7]) / img.spacing
    offset = (np.array(img.shape) - 1) / 2 - zoom * (np.array(out.shape) - 1) / 2
    expected = scipy.ndimage.affine_transform(img.array, np.diag(zoom), offset, out.shape, order=1)
    assert np.array_equal(out.array, expected)


# --------------------------------------------------------------------------
# order and dtype
# --------------------------------------------------------------------------
def test_nearest_keeps_labels():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 5, size=(10, 10, 10)).astype(np.uint16)
    out = resample(Image(labels, random_affine(rng, True)), spacing=0.7, order="nearest")
    assert out.dtype == np.uint16
    assert set(np.unique(out.array)) <= set(range(5))


def test_label_order_one_hot():
    labels = np.zeros((8, 8, 8), np.int16)
    labels[2:6, 2:6, 2:6] = 3
    labels[4:6, 4:6, 4:6] = 7
    img = Image(labels, np.eye(4))
    out = resample(img, spacing=0.5, order="label")
    assert out.dtype == np.int16
    assert set(np.unique(out.array)) <= {0, 3, 7}
    # On the input voxel centres of an identity grid the labels are unchanged.
    same = resample(img, affine=np.eye(4) @ np.diag([1, 1, 1, 1.0]), transform=np.eye(4),
                    order="label")
    assert np.array_equal(same.array, labels)
    # Half-way between a 3 and a 7 (tie): the smaller label wins.
    shifted = resample(img, transform=nibabel.affines.from_matvec(np.eye(3), [0.5, 0.5, 0.5]),
                       order="label")
    assert shifted.array[3, 3, 3] == 3 and shifted.array[4, 4, 4] == 7


def test_order_names_and_integers_agree():
    rng = np.random.default_rng(11)
    img = Image(rng.normal(size=(6, 7, 8)), random_affine(rng, True))
    for name, number in (("nearest", 0), ("linear", 1)):
        assert np.array_equal(resample(img, spacing=0.9, order=name).array,
                              resample(img, spacing=0.9, order=number).array)


def test_antialias_smooths_before_downsampling():
    rng = np.random.default_rng(12)
    data = rng.normal(size=(32, 32, 32)).astype(np.float32)
    img = Image(data, np.eye(4))
    plain = resample(img, spacing=4.0)
    smooth = resample(img, spacing=4.0, antialias=True)
    assert smooth.shape == plain.shape == (8, 8, 8)
    assert smooth.array.std() < 0.5 * plain.array.std()
    # No downsampling: nothing to smooth.
    up = resample(img, spacing=0.5, antialias=True)
    assert np.array_equal(up.array, resample(img, spacing=0.5).array)


# --------------------------------------------------------------------------
# transform=
# --------------------------------------------------------------------------
def test_identity_transform_is_the_input_grid():
    rng = np.random.default_rng(13)
    img = Image(rng.normal(size=(7, 8, 9)).astype(np.float32), random_affine(rng, True))
    out = resample(img, transform=np.eye(4))
    assert np.array_equal(out.array, img.array) and np.array_equal(out.affine, img.affine)
    rng2 = np.random.default_rng(14)
    shape, grid = overlapping_grid(rng2, img.shape, img.affine, True)
    ref = Image(np.zeros(shape), grid)
    assert np.array_equal(resample(img, like=ref, transform=np.eye(4)).array,
                          resample_to(img, ref).array)


def test_translation_moves_the_image():
    data = np.zeros((20, 20, 20), np.float32)
    data[10, 10, 10] = 1.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    img = Image(data, affine)
    # Output point p samples input point p + (4, 0, -6) mm: the content
    # moves by (-2, 0, +3) voxels of 2 mm.
    shift = nibabel.affines.from_matvec(np.eye(3), [4.0, 0.0, -6.0])
    out = resample(img, transform=shift)
    assert np.argwhere(out.array == 1.0).tolist() == [[8, 10, 13]]
    back = resample(img, transform=invert_transform(shift))
    assert np.argwhere(back.array == 1.0).tolist() == [[12, 10, 7]]


def test_transform_composes_with_output_grid():
    rng = np.random.default_rng(15)
    img = Image(rng.normal(size=(9, 9, 9)), random_affine(rng, True))
    world = np.eye(4)
    world[:3, :3] = Rotation.from_euler("z", 12, degrees=True).as_matrix()
    world[:3, 3] = [1, 2, 3]
    grid_shape, grid = overlapping_grid(rng, img.shape, img.affine, True)
    out = resample(img, shape=grid_shape, affine=grid, transform=world, order=0)
    # = nibabel on the grid whose affine already includes the transform
    # (same products, same order: identical bytes)
    expected = nib_resample(img.array, img.affine, grid_shape, world @ grid, 0)
    assert np.array_equal(out.array, expected)


# --------------------------------------------------------------------------
# World coordinates
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_bright_voxel_lands_at_its_world_position(seed):
    rng = np.random.default_rng(100 + seed)
    data = np.zeros((15, 16, 17), np.float32)
    ijk = rng.integers(3, 12, 3)
    data[tuple(ijk)] = 1000.0
    img = Image(data, random_affine(rng, True))
    world = nibabel.affines.apply_affine(img.affine, ijk)
    # Target grid: axis-aligned 1 mm, with a voxel centre exactly at `world`.
    target = np.eye(4)
    target[:3, 3] = world - [5, 6, 7]
    out = resample(img, shape=(11, 12, 13), affine=target, order=0)
    assert out.array[5, 6, 7] == 1000.0


# --------------------------------------------------------------------------
# Fast paths: flips and permutations are views
# --------------------------------------------------------------------------
@pytest.mark.parametrize("codes", ["LPS", "PSR", "ASL", "RAS", "IRP"])
@pytest.mark.parametrize("order", ["nearest", "linear"])
def test_reorientation_grid_is_a_view(codes, order):
    rng = np.random.default_rng(16)
    data = rng.normal(size=(6, 7, 8, 2)).astype(np.float32)
    img = Image(data, random_affine(rng, False))
    target = medfast.reorient(img, codes)
    out = resample(img, like=Image(target.array[..., 0], target.affine), order=order)
    assert np.shares_memory(out.array, data)
    assert np.array_equal(out.array, target.array)
    expected = nib_resample(data, img.affine, target.shape[:3], target.affine,
                            0 if order == "nearest" else 1)
    # nibabel's inv(A_in).dot(A_out) leaves ~1e-15 noise (0.9999999999999999
    # for 1, 4.999999999999998 for 5), so scipy may sample a hair beyond the
    # first or last voxel and return cval on that face (mode='constant'),
    # for order 0 as for 1; the view keeps the voxel that lies exactly
    # there.  Inside, the values agree (up to that rounding for linear).
    inner = (slice(1, -1),) * 3
    assert np.allclose(out.array[inner], expected[inner], rtol=1e-6, atol=1e-6)


def test_crop_is_a_view_and_outside_is_not():
    data = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    img = Image(data, np.eye(4))
    grid = np.eye(4)
    grid[:3, 3] = [2, 3, 4]
    crop = resample(img, shape=(5, 5, 5), affine=grid)
    assert np.shares_memory(crop.array, data)
    assert np.array_equal(crop.array, data[2:7, 3:8, 4:9])
    outside = resample(img, shape=(10, 10, 10), affine=grid)
    assert not np.shares_memory(outside.array, data)
    assert outside.array[9, 9, 9] == 0


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
def test_errors():
    img = Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(TypeError, match="img"):
        resample(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError, match="like.*nibabel image or a SimpleITK image"):
        resample(img, like=np.eye(4))
    with pytest.raises(ValueError, match="like="):
        resample(img, like=img, spacing=1.0)
    with pytest.raises(ValueError, match="spacing="):
        resample(img, spacing=1.0, shape=(3, 3, 3))
    with pytest.raises(ValueError, match="spacing"):
        resample(img, spacing=0)
    with pytest.raises(ValueError, match="spacing"):
        resample(img, spacing=(1, 2))
    with pytest.raises(ValueError, match="affine.*singular"):
        resample(img, affine=np.diag([1, 1, 0, 1]))
    with pytest.raises(ValueError, match="transform.*non-finite"):
        resample(img, transform=np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="transform.*singular"):
        resample(img, transform=np.diag([1, 0, 1, 1]))
    with pytest.raises(ValueError, match="order"):
        resample(img, order="bicubic")
    with pytest.raises(ValueError, match="order"):
        resample(img, order=6)
    with pytest.raises(TypeError, match="order"):
        resample(img, order=True)
    with pytest.raises(ValueError, match="mode"):
        resample(img, mode="bogus")
    with pytest.raises(ValueError, match="shape"):
        resample(img, shape=(0, 3, 3))
    with pytest.raises(TypeError, match="dtype"):
        resample(img, dtype=np.complex64)
    with pytest.raises(ValueError, match="antialias"):
        resample(img, spacing=2, order="nearest", antialias=True)
    with pytest.raises(MemoryError, match="resampled image.*needs"):
        resample(img, shape=(100000, 100000, 100000))


def test_shared_oblique_axes_take_the_separable_path():
    rng = np.random.default_rng(17)
    img = Image(rng.normal(size=(12, 13, 14)), random_affine(rng, True))
    grid = img.affine @ np.diag([0.7, 1.3, 0.9, 1.0])
    out = resample(img, shape=(15, 10, 14), affine=grid)
    # inv(A) @ A_out has ~1e-16 off-diagonal noise, zeroed so the core's
    # separable path applies; nibabel keeps it, so the sample points move by
    # ~1e-15 voxel: equal up to rounding inside.  On the faces that noise
    # can put nibabel's samples a hair outside the array (cval there, as in
    # test_reorientation_grid_is_a_view), hence the interior comparison.
    expected = nib_resample(img.array, img.affine, (15, 10, 14), grid, 1)
    inner = (slice(1, -1),) * 3
    assert np.allclose(out.array[inner], expected[inner], rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["cubic", 2, 4, 5])
def test_spline_orders_equal_scipy(order):
    """order='cubic' (3) and 2-5: scipy's prefiltered splines, same bytes."""
    rng = np.random.default_rng(4)
    data = rng.normal(size=(9, 8, 7)).astype(np.float32)
    affine = random_affine(rng, True)
    img = Image(data, affine)
    out = resample(img, spacing=0.8, order=order)
    voxel = np.linalg.inv(affine) @ out.affine
    k = 3 if order == "cubic" else order
    expected = scipy.ndimage.affine_transform(data, voxel[:3, :3], voxel[:3, 3], out.shape,
                                              order=k)
    assert np.array_equal(out.array, expected)


def test_float16_images_resample():
    """float16 data (which scipy rejects) are computed natively, float16 out."""
    data = np.random.default_rng(5).normal(size=(6, 6, 6)).astype(np.float16)
    img = Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    out = resample(img, spacing=1.3, order="linear")
    assert out.dtype == np.float16
    voxel = np.linalg.inv(img.affine) @ out.affine
    expected = scipy.ndimage.affine_transform(
        data.astype(np.float32), voxel[:3, :3], voxel[:3, 3], out.shape, order=1,
        output=np.float64).astype(np.float16)
    assert np.array_equal(out.array, expected)


def test_nibabel_and_simpleitk_images_are_accepted():
    data = np.random.default_rng(6).normal(size=(6, 5, 4)).astype(np.float32)
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    expected = resample(Image(data, affine), spacing=1.0)
    nii = nibabel.Nifti1Image(data, affine)
    got = resample(nii, spacing=1.0)
    assert isinstance(got, Image) and np.array_equal(got.array, expected.array)
    assert np.array_equal(resample(Image(data, affine), like=nii).array, data)
    pytest.importorskip("SimpleITK")
    s_img = Image(data, affine).to_sitk()
    got = resample(s_img, spacing=1.0)
    assert np.allclose(got.affine, expected.affine) and np.array_equal(got.array, expected.array)

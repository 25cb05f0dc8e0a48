"""Axis codes and reorientation (medfast.orientation) against nibabel.

Random affines are drawn as a voxel-axis permutation, flips, anisotropic
voxel sizes and (optionally) an oblique rotation of up to 40 degrees about a
random axis, with a random translation.  Every answer is compared with
``nibabel.orientations`` / ``nibabel.as_closest_canonical``, and the
geometry is checked directly: reorienting is a view, keeps every voxel's
world position, and round-trips exactly.
"""
import itertools

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

import medfast
from medfast import Image, aff2axcodes, as_canonical, reorient
from medfast.orientation import (LPS_TO_RAS, check_axcodes, lps_to_ras_affine,
                                 lps_to_ras_points, ras_to_lps_affine,
                                 ras_to_lps_points, reorient_array)
from strategies import examples

#: All 48 orientations: 6 orders of the world axes x 8 choices of sign.
ALL_CODES = ["".join(pair[s] for pair, s in zip(order, signs))
             for order in itertools.permutations([("L", "R"), ("P", "A"), ("I", "S")])
             for signs in itertools.product((0, 1), repeat=3)]


def rotation(axis, degrees):
    """Rodrigues' rotation matrix about `axis` by `degrees`."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


@st.composite
def affines(draw, oblique=True):
    """A voxel -> RAS affine: permutation, flips, voxel sizes, rotation, shift."""
    perm = draw(st.permutations(range(3)))
    flips = draw(st.lists(st.sampled_from((-1.0, 1.0)), min_size=3, max_size=3))
    sizes = draw(st.lists(st.floats(0.2, 5.0), min_size=3, max_size=3))
    linear = np.eye(3)[:, perm] @ np.diag(np.multiply(flips, sizes))
    if oblique and draw(st.booleans()):
        axis = draw(st.lists(st.floats(-1, 1), min_size=3, max_size=3)
                    .filter(lambda v: np.linalg.norm(v) > 0.1))
        linear = rotation(axis, draw(st.floats(-40, 40))) @ linear
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = draw(st.lists(st.floats(-200, 200), min_size=3, max_size=3))
    return affine


@st.composite
def images(draw, four_d=None):
    """A small image whose voxel values are their flat indices (so every
    value tells where it came from)."""
    shape = draw(st.lists(st.integers(1, 5), min_size=3, max_size=3))
    if four_d if four_d is not None else draw(st.booleans()):
        shape.append(draw(st.integers(1, 3)))
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    if draw(st.booleans()):
        array = np.asfortranarray(array)  # nibabel's layout
    return Image(array, draw(affines()))


def nibabel_reoriented(img, codes):
    nii = nib.Nifti1Image(img.array, img.affine)
    ornt = ornt_transform(io_orientation(img.affine), axcodes2ornt(codes))
    return nii.as_reoriented(ornt)


# --------------------------------------------------------------------------
# Axis codes
# --------------------------------------------------------------------------
@settings(max_examples=examples(200))
@given(affines())
def test_aff2axcodes_equals_nibabel(affine):
    assert aff2axcodes(affine) == "".join(nib.aff2axcodes(affine))


@pytest.mark.parametrize("degrees", [44.9, 45.0, 45.1, -45.0, 60.0, 90.0, 135.0])
@pytest.mark.parametrize("axis", [(0, 0, 1), (1, 0, 0), (1, 1, 0), (1, 1, 1)])
def test_aff2axcodes_near_ties_equal_nibabel(axis, degrees):
    # The closest axes are chosen as io_orientation does, ties included.
    affine = np.eye(4)
    affine[:3, :3] = rotation(axis, degrees) @ np.diag([0.7, 1.0, 3.0])
    assert aff2axcodes(affine) == "".join(nib.aff2axcodes(affine))


def test_aff2axcodes_examples():
    assert aff2axcodes(np.eye(4)) == "RAS"
    assert aff2axcodes(np.diag([-1, -1, 1, 1])) == "LPS"
    assert aff2axcodes([[0, 0, 2, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]) == "PSR"


def test_all_codes_are_48_distinct_and_valid():
    assert len(set(ALL_CODES)) == 48
    assert [check_axcodes(c) for c in ALL_CODES] == ALL_CODES


@pytest.mark.parametrize("codes, expected", [("las", "LAS"), (("P", "s", "R"), "PSR")])
def test_check_axcodes_normalises(codes, expected):
    assert check_axcodes(codes) == expected


@pytest.mark.parametrize("codes", ["RA", "RASL", "RAR", "LRS", "XYZ", "", "R A"])
def test_check_axcodes_rejects(codes):
    with pytest.raises(ValueError, match="codes"):
        check_axcodes(codes)


def test_check_axcodes_rejects_non_strings():
    with pytest.raises(TypeError, match="codes"):
        check_axcodes(5)


# --------------------------------------------------------------------------
# Reorientation
# --------------------------------------------------------------------------
@settings(max_examples=examples(25))
@given(images())
def test_reorient_all_48_codes_equals_nibabel(img):
    for codes in ALL_CODES:
        ours = reorient(img, codes)
        theirs = nibabel_reoriented(img, codes)
        np.testing.assert_array_equal(ours.array, np.asanyarray(theirs.dataobj))
        assert ours.array.shape == theirs.shape
        np.testing.assert_allclose(ours.affine, theirs.affine, rtol=0, atol=1e-9)
        assert np.shares_memory(ours.array, img.array)  # a view, not a copy
        assert ours.orientation == codes
        assert ours.meta == img.meta


@settings(max_examples=examples(25))
@given(images(), st.sampled_from(ALL_CODES))
def test_reorient_keeps_world_positions_and_round_trips(img, codes):
    ours = reorient(img, codes)
    # Each voxel's value is its old flat index: its world position must not move.
    new_index = np.indices(ours.spatial_shape).reshape(3, -1)
    first_frame = ours.array[(...,) + (0,) * (ours.ndim - 3)]
    old_index = np.unravel_index(first_frame.ravel().astype(int), img.shape)[:3]
    ones = np.ones((1, new_index.shape[1]))
    np.testing.assert_allclose(ours.affine @ np.vstack([new_index, ones]),
                               img.affine @ np.vstack([old_index, ones]),
                               rtol=0, atol=1e-9)
    # Trailing axes stay in place.
    assert ours.shape[3:] == img.shape[3:]
    assert ours.array.strides[3:] == img.array.strides[3:]
    # Back to the original orientation: the very same view and affine.
    back = reorient(ours, img.orientation)
    assert back.array.shape == img.array.shape
    assert back.array.strides == img.array.strides
    assert (back.array.__array_interface__["data"][0]
            == img.array.__array_interface__["data"][0])
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, rtol=0, atol=1e-9)


@settings(max_examples=examples(40))
@given(images())
def test_as_canonical_equals_nibabel(img):
    ours = as_canonical(img)
    theirs = nib.as_closest_canonical(nib.Nifti1Image(img.array, img.affine))
    np.testing.assert_array_equal(ours.array, np.asanyarray(theirs.dataobj))
    assert ours.array.shape == theirs.shape
    np.testing.assert_allclose(ours.affine, theirs.affine, rtol=0, atol=1e-9)
    assert np.shares_memory(ours.array, img.array)
    assert ours.orientation == "RAS"


def test_as_canonical_4d_keeps_time_axis():
    array = np.random.default_rng(0).random((4, 5, 6, 3)).astype(np.float32)
    affine = np.array([[0, 0, -2.0, 10], [0, -1.5, 0, 20], [3.0, 0, 0, -5], [0, 0, 0, 1]])
    img = Image(array, affine)
    assert img.orientation == "SPL"
    ours = as_canonical(img)
    theirs = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    assert ours.shape == (6, 5, 4, 3)
    np.testing.assert_array_equal(ours.array, np.asanyarray(theirs.dataobj))
    np.testing.assert_allclose(ours.affine, theirs.affine, rtol=0, atol=1e-12)
    for t in range(3):  # each frame reoriented alike
        np.testing.assert_array_equal(ours.array[..., t], reorient(
            Image(array[..., t], affine), "RAS").array)


def test_reorient_to_own_orientation_returns_the_image():
    img = Image(np.zeros((2, 3, 4)), np.diag([-1, 2, 3, 1]))
    assert reorient(img, "LAS") is img
    ras = Image(np.zeros((2, 3, 4)), np.eye(4))
    assert as_canonical(ras) is ras


def test_reorient_keeps_meta_and_gives_writable_views():
    img = Image(np.zeros((2, 3, 4)), np.eye(4), {"description": "x"})
    out = reorient(img, "LPI")
    assert out.meta == {"description": "x"}
    out.array[0, 0, 0] = 7  # a view: writing through it changes the input
    assert img.array[-1, -1, -1] == 7


def test_reorient_oblique_picks_closest_axes():
    # 30 degrees about z: i stays closest to R, j to A.
    affine = np.eye(4)
    affine[:3, :3] = rotation((0, 0, 1), 30) @ np.diag([1.0, 2.0, 3.0])
    img = Image(np.arange(24).reshape(2, 3, 4), affine)
    out = reorient(img, "LPI")
    np.testing.assert_array_equal(out.array, img.array[::-1, ::-1, ::-1])


def test_reorient_array_works_without_image():
    array = np.arange(24).reshape(2, 3, 4)
    view, affine = reorient_array(array, np.eye(4), "PRS")
    np.testing.assert_array_equal(view, array.transpose(1, 0, 2)[::-1])
    np.testing.assert_array_equal(affine, [[0, 1, 0, 0], [-1, 0, 0, 2],
                                           [0, 0, 1, 0], [0, 0, 0, 1]])
    with pytest.raises(ValueError, match="array"):
        reorient_array(array[0], np.eye(4), "RAS")
    with pytest.raises(ValueError, match="codes"):
        reorient_array(array, np.eye(4), "RRS")
    with pytest.raises(ValueError, match="singular"):
        reorient_array(array, np.diag([1, 1, 0, 1]), "RAS")


def test_aff2axcodes_rejects_bad_affines():
    with pytest.raises(ValueError, match="4x4"):
        aff2axcodes(np.eye(3))
    with pytest.raises(ValueError, match="non-finite"):
        aff2axcodes(np.diag([1, np.nan, 1, 1]))
    with pytest.raises(ValueError, match="singular"):
        aff2axcodes([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def test_exports():
    assert medfast.reorient is reorient
    assert medfast.as_canonical is as_canonical
    assert medfast.aff2axcodes is aff2axcodes


# --------------------------------------------------------------------------
# LPS <-> RAS
# --------------------------------------------------------------------------
def test_lps_ras_flip_is_its_own_inverse():
    np.testing.assert_array_equal(LPS_TO_RAS @ LPS_TO_RAS, np.eye(4))
    assert not LPS_TO_RAS.flags.writeable
    assert aff2axcodes(lps_to_ras_affine(np.eye(4))) == "LPS"


@settings(max_examples=examples(50))
@given(affines())
def test_lps_ras_affines_and_points_agree(ras_affine):
    lps_affine = ras_to_lps_affine(ras_affine)
    np.testing.assert_array_equal(lps_to_ras_affine(lps_affine), ras_affine)
    index = np.array([[0, 0, 0, 1], [1, 2, 3, 1], [-4, 5, 0.5, 1]]).T
    ras_points = (ras_affine @ index)[:3].T
    lps_points = (lps_affine @ index)[:3].T
    np.testing.assert_array_equal(ras_to_lps_points(ras_points), lps_points)
    np.testing.assert_array_equal(lps_to_ras_points(lps_points), ras_points)


def test_lps_to_ras_points_shape_check():
    with pytest.raises(ValueError, match="points"):
        lps_to_ras_points([1.0, 2.0])


def test_lps_affine_agrees_with_simpleitk():
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    image.SetSpacing((0.5, 1.5, 2.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection(rotation((1, 2, 3), 25).ravel().tolist())
    lps_affine = np.eye(4)
    lps_affine[:3, :3] = (np.array(image.GetDirection()).reshape(3, 3)
                          @ np.diag(image.GetSpacing()))
    lps_affine[:3, 3] = image.GetOrigin()
    ras_affine = lps_to_ras_affine(lps_affine)
    for index in [(0, 0, 0), (3, 1, 5), (1, 4, 2)]:
        lps_point = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose(lps_to_ras_points(lps_point),
                                   (ras_affine @ [*index, 1])[:3], atol=1e-9)

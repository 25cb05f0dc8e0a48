"""medfast.load_transform: ITK/ANTs transform files, checked against SimpleITK.

SimpleITK writes each transform (``.tfm``/``.txt`` text, ``.mat`` MATLAB
v4) and then decides what is right: its ``TransformPoint`` on LPS points,
and ``sitk.Resample`` with the same transform, which medfast.resample must
reproduce away from the edges.  Files SimpleITK cannot write (float32
parameters as ANTs writes them, big-endian, MATLAB v5) are made with
scipy.io.savemat or by hand and compared with SimpleITK's reading of them.
"""
import struct
import sys

import numpy as np
import pytest

import medfast
from medfast import Image, load_transform
from medfast.orientation import (LPS_TO_RAS, lps_to_ras_points, lps_to_ras_transform,
                                 ras_to_lps_points, ras_to_lps_transform)

try:
    import SimpleITK as sitk
except ImportError:  # the SimpleITK-based tests are skipped
    sitk = None

needs_sitk = pytest.mark.skipif(sitk is None, reason="SimpleITK is not installed "
                                "(pip install \"medfast[compare]\")")


def random_affine_transform(rng):
    tx = sitk.AffineTransform(3)
    tx.SetMatrix((np.eye(3) + rng.normal(scale=0.15, size=(3, 3))).ravel().tolist())
    tx.SetTranslation(rng.uniform(-5, 5, 3).tolist())
    tx.SetCenter(rng.uniform(-30, 30, 3).tolist())
    return tx


def sitk_transforms(rng):
    """One transform of each supported kind, with random parameters."""
    euler = sitk.Euler3DTransform(rng.uniform(-20, 20, 3).tolist(),
                                  *rng.uniform(-0.5, 0.5, 3), rng.uniform(-5, 5, 3).tolist())
    euler_zyx = sitk.Euler3DTransform(euler)
    euler_zyx.SetComputeZYX(True)
    versor = sitk.VersorRigid3DTransform()
    versor.SetRotation(rng.normal(size=3).tolist(), rng.uniform(-1, 1))
    versor.SetTranslation(rng.uniform(-5, 5, 3).tolist())
    versor.SetCenter(rng.uniform(-30, 30, 3).tolist())
    similarity = sitk.Similarity3DTransform()
    similarity.SetRotation(rng.normal(size=3).tolist(), rng.uniform(-1, 1))
    similarity.SetScale(rng.uniform(0.8, 1.2))
    similarity.SetTranslation(rng.uniform(-5, 5, 3).tolist())
    similarity.SetCenter(rng.uniform(-30, 30, 3).tolist())
    return {
        "affine": random_affine_transform(rng),
        "euler": euler, "euler_zyx": euler_zyx, "versor": versor,
        "similarity": similarity,
        "translation": sitk.TranslationTransform(3, rng.uniform(-5, 5, 3).tolist()),
        "identity": sitk.Transform(),
    }


def assert_maps_points_like(T, tx, rng, atol=1e-9):
    """T (RAS) applied to a point == ITK's TransformPoint of the LPS point."""
    for ras in rng.uniform(-100, 100, (10, 3)):
        expected = tx.TransformPoint(tuple(ras_to_lps_points(ras)))
        got = T @ np.r_[ras, 1.0]
        np.testing.assert_allclose(got[:3], lps_to_ras_points(expected), rtol=0, atol=atol)


# --------------------------------------------------------------------------
# Against SimpleITK
# --------------------------------------------------------------------------
KINDS = ["affine", "euler", "euler_zyx", "versor", "similarity", "translation", "identity"]


@needs_sitk
@pytest.mark.parametrize("ext", [".tfm", ".txt", ".mat"])
@pytest.mark.parametrize("kind", KINDS)
def test_transform_point_equals_sitk(tmp_path, kind, ext):
    rng = np.random.default_rng(KINDS.index(kind))
    tx = sitk_transforms(rng)[kind]
    path = tmp_path / f"tx{ext}"
    sitk.WriteTransform(tx, str(path))
    T = load_transform(path)
    assert T.shape == (4, 4) and T.dtype == np.float64
    np.testing.assert_array_equal(T[3], [0, 0, 0, 1])
    assert_maps_points_like(T, tx, rng)


@needs_sitk
def test_composite_is_applied_last_to_first(tmp_path):
    rng = np.random.default_rng(7)
    parts = sitk_transforms(rng)
    tx = sitk.CompositeTransform([parts["affine"], parts["euler"], parts["similarity"]])
    sitk.WriteTransform(tx, str(tmp_path / "c.tfm"))
    assert_maps_points_like(load_transform(tmp_path / "c.tfm"), tx, rng)


def smooth_volume(shape):
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return (100 + 50 * np.sin(2 * grids[0]) * np.cos(3 * grids[1]) + 30 * grids[2] ** 2
            ).astype(np.float32)


@needs_sitk
@pytest.mark.parametrize("ext", [".tfm", ".mat"])
def test_resample_with_loaded_transform_equals_sitk_resample(tmp_path, ext):
    rng = np.random.default_rng(11)
    # Moving image: oblique, flipped axes; reference: a rotated 1.2 mm grid.
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.0, -0.9, 1.3])
    affine[:3, 3] = [-20.0, 15.0, -25.0]
    img = Image(smooth_volume((36, 40, 32)), affine)
    centre = affine @ np.r_[(np.array(img.shape) - 1) / 2, 1.0]
    ref_affine = np.eye(4)
    ref_affine[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0] * 1.2
    ref_shape = (24, 26, 22)
    ref_affine[:3, 3] = centre[:3] - ref_affine[:3, :3] @ ((np.array(ref_shape) - 1) / 2)
    ref = Image(np.zeros(ref_shape, np.float32), ref_affine)
    tx = sitk.AffineTransform(3)
    tx.SetMatrix((rotation_about_z(8) @ np.diag([1.05, 0.95, 1.0])).ravel().tolist())
    tx.SetTranslation([2.0, -3.0, 1.5])
    tx.SetCenter(ras_to_lps_points(centre[:3]).tolist())
    sitk.WriteTransform(tx, str(tmp_path / f"tx{ext}"))
    T = load_transform(tmp_path / f"tx{ext}")

    ours = medfast.resample(img, like=ref, transform=T).array
    theirs = sitk.GetArrayFromImage(sitk.Resample(
        img.to_sitk(), ref.to_sitk(), tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)).T
    # Compare where the sample lies at least 1.5 voxels inside the input
    # (SimpleITK extends the image by half a voxel at the edges).
    voxel = np.linalg.inv(img.affine) @ T @ ref.affine
    index = np.indices(ref_shape).reshape(3, -1)
    coords = voxel[:3, :3] @ index + voxel[:3, 3:]
    inside = ((coords >= 1.5) & (coords <= np.array(img.shape)[:, None] - 2.5)).all(axis=0)
    inside = inside.reshape(ref_shape)
    assert inside.mean() > 0.3  # the test compares a large part of the grid
    np.testing.assert_allclose(ours[inside], theirs[inside], rtol=1e-3, atol=0)
    # ... and the whole comparison is not vacuous: the transform matters.
    plain = medfast.resample(img, like=ref).array
    assert np.abs(plain[inside] - theirs[inside]).max() > 1.0


def rotation_about_z(degrees):
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


# --------------------------------------------------------------------------
# MATLAB variants: float32 (ANTs), big-endian, v5; scipy not needed for v4
# --------------------------------------------------------------------------
def v4_variable(name, values, order="<", precision=0):
    """One MATLAB v4 variable (a column vector), written by hand."""
    dtype = np.dtype({0: "f8", 1: "f4"}[precision]).newbyteorder(order)
    mopt = (1000 if order == ">" else 0) + 10 * precision
    name = name.encode() + b"\0"
    header = struct.pack(f"{order}5i", mopt, len(values), 1, 0, len(name))
    return header + name + np.asarray(values, dtype=dtype).tobytes()


PARAMS = [1.1, 0.1, -0.2, 0.05, 0.9, 0.1, 0.02, -0.03, 1.05, 3.0, -4.0, 5.0]
CENTER = [10.0, -20.0, 30.0]


@needs_sitk
@pytest.mark.parametrize("order, precision", [("<", 1), (">", 0), (">", 1)])
def test_hand_written_v4_files_equal_sitk(tmp_path, order, precision):
    kind = "float" if precision else "double"
    path = tmp_path / "ants.mat"
    path.write_bytes(v4_variable(f"AffineTransform_{kind}_3_3", PARAMS, order, precision)
                     + v4_variable("fixed", CENTER, order, precision))
    tx = sitk.ReadTransform(str(path))
    assert_maps_points_like(load_transform(path), tx, np.random.default_rng(0), atol=1e-6)


@needs_sitk
def test_scipy_v4_and_v5_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    variables = {"AffineTransform_float_3_3": np.array(PARAMS, np.float32)[:, None],
                 "fixed": np.array(CENTER, np.float32)[:, None]}
    scipy_io.savemat(tmp_path / "v4.mat", variables, format="4")
    scipy_io.savemat(tmp_path / "v5.mat", variables, format="5")
    tx = sitk.ReadTransform(str(tmp_path / "v4.mat"))
    rng = np.random.default_rng(1)
    assert_maps_points_like(load_transform(tmp_path / "v4.mat"), tx, rng, atol=1e-5)
    np.testing.assert_array_equal(load_transform(tmp_path / "v5.mat"),
                                  load_transform(tmp_path / "v4.mat"))


def test_v4_reader_needs_no_scipy(tmp_path, monkeypatch):
    path = tmp_path / "a.mat"
    path.write_bytes(v4_variable("AffineTransform_double_3_3", PARAMS)
                     + v4_variable("fixed", CENTER))
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    T = load_transform(path)
    # Written out: x -> M x + t + c - M c in LPS, conjugated to RAS.
    M = np.array(PARAMS[:9]).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = M
    lps[:3, 3] = np.array(PARAMS[9:]) + CENTER - M @ CENTER
    np.testing.assert_allclose(T, LPS_TO_RAS @ lps @ LPS_TO_RAS, rtol=0, atol=1e-12)


def test_lps_ras_transform_conversion_matches_point_conversion():
    rng = np.random.default_rng(2)
    W = np.eye(4)
    W[:3] = rng.normal(size=(3, 4))
    W_ras = lps_to_ras_transform(W)
    np.testing.assert_array_equal(ras_to_lps_transform(W_ras), W)
    for lps in rng.normal(size=(5, 3)) * 50:
        np.testing.assert_allclose(lps_to_ras_points((W @ np.r_[lps, 1])[:3]),
                                   (W_ras @ np.r_[lps_to_ras_points(lps), 1])[:3])


def test_exported():
    assert medfast.load_transform is medfast.io.load_transform is load_transform
    assert "load_transform" in medfast.__all__ and "load_transform" in medfast.io.__all__


# --------------------------------------------------------------------------
# Bad input: ValueError naming the file and the problem
# --------------------------------------------------------------------------
TFM = "#Insight Transform File V1.0\n#Transform 0\nTransform: {name}\nParameters: {p}\n" \
      "FixedParameters: {f}\n"


def text_file(tmp_path, name="AffineTransform_double_3_3", params=PARAMS, fixed=CENTER):
    path = tmp_path / "bad.tfm"
    path.write_text(TFM.format(name=name, p=" ".join(map(str, params)),
                               f=" ".join(map(str, fixed))))
    return path


@pytest.mark.parametrize("content, message", [
    (b"hello world, not a transform\n", "not an ITK transform file"),
    (b"", "not an ITK transform file"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
    (b"#Insight Transform File V1.0\n", "no transform"),
    (b"#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\n",
     "no 'Parameters:'"),
    (b"#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\n"
     b"Parameters: 1 0 0 0 1 0 0 0 1 0 0 x\nFixedParameters: 0 0 0\n", "must be numbers"),
    (b"#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\n"
     b"Parameters: 1 0 0 0 1 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n"
     b"Transform: AffineTransform_double_3_3\n"
     b"Parameters: 1 0 0 0 1 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n",
     "not parts of a CompositeTransform"),
    (b"#Insight Transform File V1.0\nTransform: Affine\n", "not an ITK transform name"),
    (b"#Insight Transform File V1.0\nSomething: 1\n", "unknown key"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.tfm"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_transform(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name, params, fixed, message", [
    ("AffineTransform_double_3_3", PARAMS[:11], CENTER, "needs 12 parameters, found 11"),
    ("AffineTransform_double_3_3", PARAMS, CENTER[:2], "fixed parameters"),
    ("AffineTransform_double_2_2", PARAMS[:6], CENTER[:2], "2-D"),
    ("BSplineTransform_double_3_3", PARAMS, CENTER, "'BSplineTransform' is not supported"),
    ("AffineTransform_double_3_3", [0.0] * 12, CENTER, "singular"),
    ("AffineTransform_double_3_3", PARAMS[:11] + ["nan"], CENTER, "non-finite"),
])
def test_bad_transforms(tmp_path, name, params, fixed, message):
    path = text_file(tmp_path, name, params, fixed)
    with pytest.raises(ValueError, match=message) as info:
        load_transform(path)
    assert str(path) in str(info.value)


def test_truncated_and_odd_mat_files(tmp_path):
    whole = (v4_variable("AffineTransform_double_3_3", PARAMS)
             + v4_variable("fixed", CENTER))
    path = tmp_path / "t.mat"
    for cut, message in [(len(whole) - 8, "truncated"), (len(whole) - 30, "truncated"),
                         (100, "truncated")]:
        path.write_bytes(whole[:cut])
        with pytest.raises(ValueError, match=message):
            load_transform(path)
    path.write_bytes(v4_variable("fixed", CENTER))
    with pytest.raises(ValueError, match="expected one transform variable"):
        load_transform(path)
    path.write_bytes(v4_variable("CompositeTransform_double_3_3", PARAMS[:6])
                     + v4_variable("fixed", CENTER))
    with pytest.raises(ValueError, match="CompositeTransform in a .mat"):
        load_transform(path)


@needs_sitk
def test_sitk_written_2d_and_nonlinear_transforms_are_refused(tmp_path):
    for ext in (".tfm", ".mat"):
        path = str(tmp_path / f"a2{ext}")
        sitk.WriteTransform(sitk.AffineTransform(2), path)
        with pytest.raises(ValueError, match="2-D"):
            load_transform(path)
    path = str(tmp_path / "b.tfm")
    sitk.WriteTransform(sitk.BSplineTransform(3), path)
    with pytest.raises(ValueError, match="BSplineTransform.*not supported"):
        load_transform(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_transform(tmp_path / "nope.tfm")
    with pytest.raises(ValueError, match="folder"):
        load_transform(tmp_path)


def test_nifti_file_is_not_a_transform(tmp_path):
    path = tmp_path / "img.nii"
    medfast.save(Image(np.zeros((2, 3, 4), np.int16), np.eye(4)), path)
    with pytest.raises(ValueError, match="not an ITK transform file"):
        load_transform(path)

"""medfast.dask: dask arrays resampled chunk by chunk, compared byte for
byte with the in-memory call on odd chunkings, every mode."""
import numpy as np
import pytest

from medfast import Image, ndimage, resample

da = pytest.importorskip("dask.array")
mdask = pytest.importorskip("medfast.dask")

MODES = ("constant", "grid-constant", "nearest", "reflect", "mirror", "grid-wrap", "wrap")


def _same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _random_affine(rng, diagonal=False):
    matrix = np.diag(rng.uniform(0.6, 1.5, 3) * rng.choice([-1, 1], 3))
    if not diagonal:
        matrix = matrix + rng.normal(0, 0.3, (3, 3))
    return matrix, rng.normal(0, 6, 3)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("seed", range(2))
def test_equal_to_in_memory_call_on_odd_chunkings(order, seed):
    """Input chunks (7, 11, 5) and output chunks (6, 13, 4) divide nothing
    evenly; transforms reach outside the input, so every mode's edge
    handling is used (the wrapping ones read the far side)."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(size=(23, 27, 17)).astype(np.float32)
    lazy = da.from_array(volume, chunks=(7, 11, 5))
    matrix, offset = _random_affine(rng, diagonal=seed == 0)
    for mode in MODES:
        expected = ndimage.affine_transform(volume, matrix, offset, (21, 30, 13), order=order,
                                            mode=mode, cval=1.5)
        got = mdask.affine_transform(lazy, matrix, offset, (21, 30, 13),
                                     output_chunks=(6, 13, 4), order=order, mode=mode,
                                     cval=1.5).compute(scheduler="sync")
        assert _same_bytes(got, expected), mode


def test_matrix_forms_integer_data_and_2d():
    rng = np.random.default_rng(5)
    volume = rng.integers(-500, 500, size=(19, 16, 12)).astype(np.int16)
    lazy = da.from_array(volume, chunks=(5, 9, 12))
    matrix, offset = _random_affine(rng)
    homogeneous = np.eye(4)
    homogeneous[:3, :3], homogeneous[:3, 3] = matrix, offset
    expected = ndimage.affine_transform(volume, matrix, offset, order=1)
    for form in (homogeneous, homogeneous[:3]):
        got = mdask.affine_transform(lazy, form, output_chunks=(8, 8, 8)).compute()
        assert _same_bytes(got, expected)
    diagonal = np.array([0.7, -1.2, 1.1])
    expected = ndimage.affine_transform(volume, diagonal, [2.0, 17.0, -1.0], order=0)
    got = mdask.affine_transform(lazy, diagonal, [2.0, 17.0, -1.0], order=0,
                                 output_chunks=(7, 7, 5)).compute()
    assert _same_bytes(got, expected)
    flat = rng.random((25, 18))
    rotation = np.array([[0.8, -0.6], [0.6, 0.8]])
    expected = ndimage.affine_transform(flat, rotation, [3.0, -4.0], order=1, mode="mirror")
    got = mdask.affine_transform(da.from_array(flat, chunks=(6, 7)), rotation, [3.0, -4.0],
                                 mode="mirror", output_chunks=(4, 9)).compute()
    assert _same_bytes(got, expected)


def test_each_output_chunk_reads_only_its_region():
    """A 0.5 zoom of a 64^3 array in 16^3 chunks: an output chunk of 8^3
    needs one or two input chunks along each axis, not all four."""
    lazy = da.zeros((64, 64, 64), chunks=16, dtype=np.float32)
    out = mdask.affine_transform(lazy, np.diag([0.5, 0.5, 0.5]), 0.0, (64, 64, 64),
                                 output_chunks=8)
    from dask.core import flatten, get_dependencies

    graph = dict(out.__dask_graph__())
    inputs = {key for key in graph if isinstance(key, tuple) and key[0] == lazy.name}
    assert len(inputs) == 64
    keys = list(flatten(out.__dask_keys__()))
    assert len(keys) == 512
    for key in keys:
        read = get_dependencies(graph, key) & inputs
        assert 1 <= len(read) <= 8  # at most two chunks along each axis


def test_resample_equal_to_in_memory_resample():
    rng = np.random.default_rng(2)
    volume = rng.normal(size=(20, 18, 14)).astype(np.float32)
    affine = np.array([[0.0, -1.1, 0.1, 10], [0.9, 0.0, 0.0, -20], [0.05, 0.0, 2.0, 5],
                       [0, 0, 0, 1]])
    img = Image(volume, affine)
    lazy = da.from_array(volume, chunks=(6, 7, 5))
    for grid in ({"spacing": 0.8}, {"like_shape": (15, 16, 17), "like_affine": np.diag(
            [1.2, 1.2, 1.2, 1]) + np.array([[0, 0, 0, -5.0]] * 3 + [[0, 0, 0, 0]])}):
        like = ({} if "spacing" in grid
                else {"shape": grid["like_shape"], "affine": grid["like_affine"]})
        expected = resample(img, order="linear", **(like or grid))
        got, got_affine = mdask.resample(lazy, affine, output_chunks=(7, 6, 9), **grid)
        assert _same_bytes(got.compute(), np.ascontiguousarray(expected.array))
        assert np.array_equal(got_affine, expected.affine)


def test_unsupported_orders_are_clear():
    lazy = da.zeros((8, 8, 8), chunks=4)
    with pytest.raises(NotImplementedError, match="prefilter over the whole input"):
        mdask.affine_transform(lazy, np.eye(3), order=3)
    with pytest.raises(NotImplementedError, match="label"):
        mdask.resample(lazy, np.eye(4), spacing=2.0, order="label")
    with pytest.raises(ValueError, match="mode"):
        mdask.affine_transform(lazy, np.eye(3), mode="bogus")

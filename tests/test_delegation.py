"""Calls outside the native kernels are handed to scipy unchanged: 1-D and
4-D arrays, int64/uint64 data, output ranks above 3.  Their results are
exactly scipy's.  (Spline orders 2-5 run natively; they are checked here
on fixed cases and in test_splines.py on random ones.)"""
import warnings

import numpy as np
import pytest
import scipy.ndimage

import medfast.ndimage as mf
from strategies import DTYPES, MODES, assert_same


def both(name, *args, **kwargs):
    expected = getattr(scipy.ndimage, name)(*args, **kwargs)
    actual = getattr(mf, name)(*args, **kwargs, threads=2, backend="cython")
    assert_same(actual, expected, context=f"{name} {kwargs}")
    return actual


def data(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(-1000, 1001, size=shape) / 4).astype(dtype)


def rot2(angle=0.4):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def test_native_dict_describes_the_kernels():
    """medfast.ndimage.NATIVE lists what runs natively."""
    native = mf.NATIVE
    assert native["orders"] == (0, 1, 2, 3, 4, 5)
    assert native["ranks"] == (2, 3)
    assert set(native["modes"]) == set(MODES)
    assert set(native["input_dtypes"]) == {d.name for d in DTYPES}
    assert set(native["output_dtypes"]) == {d.name for d in DTYPES}
    assert set(native["backends"]) == {"cython", "numba"}


@pytest.mark.parametrize("order", [2, 3, 4, 5])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefilter", [True, False])
def test_spline_orders_2_to_5(order, mode, prefilter):
    a2, a3 = data((7, 8)), data((5, 6, 7), np.float32)
    both("affine_transform", a2, rot2(), offset=[0.5, -1.0], order=order, mode=mode,
         cval=1.5, prefilter=prefilter)
    both("affine_transform", a3, np.diag([0.8, 1.2, -1.0]), offset=1.0, order=order,
         mode=mode, prefilter=prefilter, output=np.float64)
    both("map_coordinates", a2, [[0.5, 3.25, -1.0], [7.5, 2.0, 4.4]], order=order,
         mode=mode, prefilter=prefilter)
    both("shift", a3, [0.5, -1.25, 2.0], order=order, mode=mode, prefilter=prefilter)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "It is recommended to use mode")
        both("zoom", a2, 1.5, order=order, mode=mode, prefilter=prefilter,
             grid_mode=True)
    both("zoom", a3, [0.5, 1.0, 2.0], order=order, mode=mode, prefilter=prefilter)


def test_default_order_is_3_like_scipy():
    a = data((6, 7))
    expected = scipy.ndimage.affine_transform(a, rot2())
    assert_same(mf.affine_transform(a, rot2()), expected)
    assert_same(mf.zoom(a, 1.3), scipy.ndimage.zoom(a, 1.3))


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("mode", ["constant", "nearest", "mirror", "grid-wrap"])
def test_one_dimensional_input(order, mode):
    a = data((9,))
    both("affine_transform", a, [[0.75]], offset=0.5, order=order, mode=mode)
    both("affine_transform", a, [1.5], offset=-0.5, order=order, mode=mode)
    both("affine_transform", a, [[1.0, 2.0], [0.0, 1.0]], order=order, mode=mode)
    both("map_coordinates", a, [[-0.5, 0.5, 3.25, 8.5, 9.0]], order=order, mode=mode)
    both("zoom", a, 1.7, order=order, mode=mode)
    both("shift", a, 0.5, order=order, mode=mode)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", ["constant", "grid-constant", "reflect", "wrap"])
def test_four_dimensional_input(order, mode):
    a = data((3, 4, 5, 2), np.int16)
    m = np.eye(4)
    m[1:3, 1:3] = rot2(0.3)
    both("affine_transform", a, m, offset=[0.5, 0, -0.5, 0.25], order=order, mode=mode)
    both("affine_transform", a, np.ones(4) * 0.75, order=order, mode=mode)
    both("map_coordinates", a, np.ones((4, 3, 2)) * 1.5, order=order, mode=mode)
    both("zoom", a, 1.5, order=order, mode=mode)
    both("shift", a, [0.5, 0.5, -1.5, 0], order=order, mode=mode)


@pytest.mark.parametrize("order", [0, 1])
def test_output_rank_above_three(order):
    """(2, 4) matrix: a 2-D input sampled on a 4-D grid; coordinates with 4
    output dimensions."""
    a = data((5, 6))
    m = np.array([[1.0, 0.5, 0.0, 0.25], [0.0, 0.5, 1.0, -0.25]])
    both("affine_transform", a, m, output_shape=(2, 3, 4, 2), order=order)
    both("map_coordinates", a, np.full((2, 2, 2, 2, 2), 1.5), order=order)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, "=f8"])
@pytest.mark.parametrize("order", [0, 1])
def test_other_input_dtypes(dtype, order):
    """int64/uint64 (and an explicitly native float64): scipy's results."""
    a = np.abs(data((5, 6, 7))).astype(dtype)
    both("affine_transform", a, np.eye(3)[[0, 2, 1]], output_shape=(5, 7, 6),
         order=order)
    both("affine_transform", a, np.diag([0.5, 1.5, 1.0]), offset=0.25, order=order)
    both("zoom", a, 1.5, order=order)
    both("shift", a, 0.5, order=order)
    both("map_coordinates", a, np.ones((3, 4)) * 1.5, order=order)


NON_NATIVE = [np.dtype(">f4"), np.dtype(">i2"), np.dtype(">f8"), np.dtype(">u2")]
if np.little_endian is False:  # pragma: no cover - big-endian hosts
    NON_NATIVE = [d.newbyteorder("<") for d in NON_NATIVE]


@pytest.mark.parametrize("dtype", NON_NATIVE, ids=str)
@pytest.mark.parametrize("order", [0, 1])
def test_non_native_byte_order_input_values(dtype, order):
    """Byte-swapped data (e.g. from big-endian NIfTI/Analyze files): the
    values equal scipy's; see the next test for the result's dtype."""
    a = np.abs(data((5, 6, 7))).astype(dtype)
    for name, args, kw in (("affine_transform", (np.eye(3)[[0, 2, 1]],),
                            {"output_shape": (5, 7, 6)}),
                           ("affine_transform", (np.diag([0.5, 1.5, 1.0]),),
                            {"offset": 0.25}),
                           ("zoom", (1.5,), {}), ("shift", (0.5,), {}),
                           ("map_coordinates", (np.ones((3, 4)) * 1.5,), {})):
        expected = getattr(scipy.ndimage, name)(a, *args, order=order, **kw)
        actual = getattr(mf, name)(a, *args, order=order, **kw)
        np.testing.assert_array_equal(actual, expected)
        # with an explicit native output dtype the results are identical
        expected = getattr(scipy.ndimage, name)(a, *args, order=order, **kw,
                                                output=dtype.newbyteorder("="))
        actual = getattr(mf, name)(a, *args, order=order, **kw,
                                   output=dtype.newbyteorder("="))
        assert_same(actual, expected)


@pytest.mark.parametrize("dtype", NON_NATIVE, ids=str)
def test_non_native_byte_order_input_default_output_dtype(dtype):
    a = np.abs(data((5, 6, 7))).astype(dtype)
    expected = scipy.ndimage.shift(a, 0.5, order=1)
    actual = mf.shift(a, 0.5, order=1)
    assert actual.dtype == expected.dtype, f"{actual.dtype.str} != {expected.dtype.str}"


@pytest.mark.parametrize("output", [np.int64, np.uint64, np.dtype(">f8"),
                                    np.dtype(">i4")])
def test_other_output_dtypes(output):
    a = data((5, 6, 7))
    both("affine_transform", a, np.eye(3), offset=0.5, order=1, output=output)
    sp_out = np.zeros((5, 6, 7), output)
    mf_out = np.zeros((5, 6, 7), output)
    scipy.ndimage.shift(a, 0.5, order=1, output=sp_out)
    assert mf.shift(a, 0.5, order=1, output=mf_out) is mf_out
    assert_same(mf_out, sp_out)


@pytest.mark.parametrize("order", [1, 3])
def test_float16_input_is_computed_natively(order):
    """scipy rejects float16 data (RuntimeError); medfast reads them as
    float32 (exact) and rounds the float64 result once to float16."""
    a = data((5, 6), np.float16)
    with pytest.raises(RuntimeError):
        scipy.ndimage.affine_transform(a, rot2(), order=order)
    expected = scipy.ndimage.affine_transform(
        a.astype(np.float32), rot2(), order=order, output=np.float64).astype(np.float16)
    assert_same(mf.affine_transform(a, rot2(), order=order), expected)
    out = np.zeros((5, 6), np.float16)
    assert mf.shift(a.astype(np.float32), 0.5, order=order, output=out) is out
    assert_same(out, scipy.ndimage.shift(a.astype(np.float32), 0.5, order=order,
                                         output=np.float64).astype(np.float16))


def test_delegated_call_returns_the_output_array():
    a = data((5, 6, 7))
    out = np.zeros((5, 6, 7), np.float32)
    assert mf.affine_transform(a, np.eye(3), order=3, output=out) is out
    ref = scipy.ndimage.affine_transform(a, np.eye(3), order=3, output=np.float32)
    assert_same(out, ref)
    out4 = np.zeros((2, 2, 2, 2))
    assert mf.zoom(np.ones((2, 2, 2, 2)), 1.0, output=out4, order=1) is out4


def test_zero_size_input_is_delegated():
    a = np.zeros((0, 5), np.float32)
    both("affine_transform", a, np.eye(2), output_shape=(3, 3), order=1, cval=2.0)
    both("shift", a, 0.5, order=1)

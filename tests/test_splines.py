"""Spline orders 2-5 and the B-spline prefilter: scipy's bytes.

The same randomized whole-call comparison as test_against_scipy.py, drawn
with spline orders (every mode, dtype pair, layout, matrix form, 2-D and
3-D, prefilter on and off), plus ``spline_filter``/``spline_filter1d`` on
arrays of 1 to 4 dimensions.  Every result is compared byte for byte.
"""
import warnings

import numpy as np
import pytest
import scipy.ndimage
from hypothesis import given, settings, strategies as st

import medfast.ndimage as mf
from strategies import (
    DTYPES, MODES, affine_call, affine_cases, aligned_linear, assert_same,
    examples, map_coordinates_call, map_coordinates_cases, shapes, shift_call,
    shift_cases, zoom_call, zoom_cases)

# np.pad (in scipy and here alike) casting a NaN cval into integer padding
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast")

SPLINES = (2, 3, 4, 5)
THREADS = st.sampled_from([1, 2])


def both_or_neither(call, case, **kwargs):
    """``call(case)``, or, where scipy cannot pad an integer input with an
    out-of-range cval ('grid-constant' prefilter), medfast's one-line error."""
    try:
        call(case, **kwargs)
    except OverflowError:
        assert case["mode"] == "grid-constant" and case.get("prefilter")
        with pytest.raises(ValueError, match="cval=.* does not fit"):
            mf._prefiltered(np.zeros((2, 2), case["dtype"]), case["order"],
                            "grid-constant", case["cval"], 1)


@settings(max_examples=examples(90))
@given(case=affine_cases(orders=SPLINES), threads=THREADS)
def test_affine_transform_splines_match_scipy(case, threads):
    """Any matrix form (general, separable, 1-D diagonal), 2-D and 3-D."""
    both_or_neither(affine_call, case, threads=threads, backend="cython")


@settings(max_examples=examples(40))
@given(case=affine_cases(ranks=(3,), linear=aligned_linear, orders=SPLINES,
                         in_shapes=shapes(3, 1, 7).map(lambda s: s[:2] + (s[2] * 5,)),
                         out_shapes=shapes(3, 1, 5).map(lambda s: s[:2] + (s[2] * 8,)),
                         forms=("square",)),
       threads=THREADS)
def test_aligned_spline_rows_match_scipy(case, threads):
    """Rows along the input's last axis, long enough for the partial
    products and the eight-voxel combine (and short ones beside them)."""
    both_or_neither(affine_call, case, threads=threads, backend="cython")


@settings(max_examples=examples(50))
@given(case=map_coordinates_cases(orders=SPLINES), threads=THREADS)
def test_map_coordinates_splines_match_scipy(case, threads):
    both_or_neither(map_coordinates_call, case, threads=threads, backend="cython")


@pytest.mark.filterwarnings("ignore:It is recommended to use mode")
@settings(max_examples=examples(50))
@given(case=zoom_cases(orders=SPLINES), threads=THREADS)
def test_zoom_splines_match_scipy(case, threads):
    both_or_neither(zoom_call, case, threads=threads, backend="cython")


@settings(max_examples=examples(50))
@given(case=shift_cases(orders=SPLINES), threads=THREADS)
def test_shift_splines_match_scipy(case, threads):
    both_or_neither(shift_call, case, threads=threads, backend="cython")


@st.composite
def filter_cases(draw):
    ndim = draw(st.integers(1, 4))
    return dict(shape=draw(shapes(ndim, 1, 9 if ndim < 3 else 5)),
                dtype=draw(st.sampled_from(list(DTYPES) + [np.dtype(np.int64), np.dtype(np.float16)])),
                output=draw(st.sampled_from([np.float64, np.float32, np.int32, np.uint8])),
                order=draw(st.sampled_from(SPLINES)),
                mode=draw(st.sampled_from(list(MODES) + ["mirror"])),
                axis=draw(st.integers(-ndim, ndim - 1)),
                seed=draw(st.integers(0, 2 ** 32 - 1)),
                threads=draw(THREADS))


def _filter_input(case):
    rng = np.random.default_rng(case["seed"])
    values = rng.normal(size=case["shape"]) * 40 + 50
    if case["dtype"] == np.float16:
        return values.astype(np.float16)  # scipy rejects float16; compared via float32
    return values.astype(case["dtype"])


@settings(max_examples=examples(60))
@given(case=filter_cases())
def test_spline_filter_matches_scipy(case):
    """spline_filter and spline_filter1d, any ndim, dtype and output dtype
    (a non-float64 output is rounded after every axis, as in scipy)."""
    data = _filter_input(case)
    ref_data = data.astype(np.float32) if data.dtype == np.float16 else data
    kwargs = dict(order=case["order"], output=case["output"], mode=case["mode"])
    with warnings.catch_warnings():
        # integer outputs of out-of-range values: C casts, as scipy
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = scipy.ndimage.spline_filter(ref_data, **kwargs)
        actual = mf.spline_filter(data, **kwargs, threads=case["threads"])
        if np.dtype(case["output"]).kind == "f":
            assert_same(actual, expected, context="spline_filter")
        expected = scipy.ndimage.spline_filter1d(ref_data, axis=case["axis"], **kwargs)
        actual = mf.spline_filter1d(data, axis=case["axis"], **kwargs,
                                    threads=case["threads"])
    if np.dtype(case["output"]).kind == "f":
        assert_same(actual, expected, context="spline_filter1d")
    else:
        # float -> integer conversion of values beyond the type's range is
        # undefined in C: compare where the float64 result fits
        exact = scipy.ndimage.spline_filter1d(ref_data, axis=case["axis"],
                                              order=case["order"], mode=case["mode"])
        info = np.iinfo(case["output"])
        fits = (exact > info.min - 1) & (exact < info.max + 1)
        assert_same(actual[fits], expected[fits], context="spline_filter1d")


def test_spline_filter_into_an_output_array():
    a = np.random.default_rng(0).normal(size=(6, 7, 8))
    out = np.empty_like(a)
    assert mf.spline_filter(a, 3, output=out) is out
    assert_same(out, scipy.ndimage.spline_filter(a, 3))
    out32 = np.empty((6, 7, 8), np.float32)
    assert mf.spline_filter1d(a, 4, axis=1, output=out32, mode="grid-wrap") is out32
    assert_same(out32, scipy.ndimage.spline_filter1d(a, 4, axis=1, output=np.float32,
                                                     mode="grid-wrap"))
    # in place, as scipy allows
    b = a.copy()
    assert_same(mf.spline_filter(b, 5, output=b), scipy.ndimage.spline_filter(a, 5))


def test_spline_filter_orders_0_and_1_and_errors():
    a = np.arange(12.0).reshape(3, 4)
    assert_same(mf.spline_filter1d(a, 1), scipy.ndimage.spline_filter1d(a, 1))
    with pytest.raises(ValueError, match="order must be between 2 and 5"):
        mf.spline_filter(a, 1)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        mf.spline_filter1d(a, 3, axis=2)
    with pytest.raises(ValueError, match="mode 'edge'"):
        mf.spline_filter(a, 3, mode="edge")


def test_prefiltered_coefficients_can_be_reused():
    """prefilter=False on spline_filter's output is the prefiltered call."""
    a = np.random.default_rng(1).normal(size=(9, 8, 10)).astype(np.float32)
    matrix = np.array([[0.9, 0.2, 0.0], [-0.2, 0.9, 0.1], [0.0, 0.05, 1.1]])
    coefficients = mf.spline_filter(a, 3, mode="mirror")
    reused = mf.affine_transform(coefficients, matrix, 0.5, order=3, mode="mirror",
                                 prefilter=False, output=np.float32)
    assert_same(reused, mf.affine_transform(a, matrix, 0.5, order=3, mode="mirror"))
    assert_same(reused, scipy.ndimage.affine_transform(a, matrix, 0.5, order=3,
                                                       mode="mirror"))


def test_numba_backend_runs_splines_in_the_compiled_kernels():
    """backend='numba' has orders 0 and 1; orders 2-5 run in the compiled
    kernels (documented), never in scipy, with scipy's bytes."""
    a = np.random.default_rng(2).normal(size=(7, 6, 9))
    matrix = np.array([[1.0, 0.3, 0.0], [-0.3, 1.0, 0.0], [0.0, 0.0, 0.8]])
    for order in SPLINES:
        assert_same(mf.affine_transform(a, matrix, 0.25, order=order, backend="numba"),
                    scipy.ndimage.affine_transform(a, matrix, 0.25, order=order))


@pytest.mark.parametrize("order", SPLINES)
@pytest.mark.parametrize("mode", ["constant", "nearest", "mirror", "grid-wrap"])
def test_oblique_rows_match_scipy(order, mode):
    """General (not aligned) rows long enough for the many-point sums of
    sixteen (AVX2) and eight (SSE2) voxels, plus their scalar tails, and
    coordinates of map_coordinates along such rows."""
    rng = np.random.default_rng(order)
    data = rng.normal(size=(11, 12, 30)).astype(np.float32)
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    matrix = (np.eye(3) + np.sin(0.3) * k + (1 - np.cos(0.3)) * k @ k) * 0.95
    offset = (np.array(data.shape) - 1) / 2 - matrix @ (np.array([9, 10, 37]) - 1) / 2
    assert_same(mf.affine_transform(data, matrix, offset, (9, 10, 37), order=order, mode=mode,
                                    threads=2),
                scipy.ndimage.affine_transform(data, matrix, offset, (9, 10, 37), order=order,
                                               mode=mode))
    coords = rng.uniform(-1, 31, size=(3, 2, 45)) * (np.array(data.shape)[:, None, None] / 31)
    assert_same(mf.map_coordinates(data, coords, order=order, mode=mode),
                scipy.ndimage.map_coordinates(data, coords, order=order, mode=mode))

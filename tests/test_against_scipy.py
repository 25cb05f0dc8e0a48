"""Property-based tests: medfast.ndimage gives exactly scipy.ndimage's bytes.

Each test draws whole calls (input shape/dtype/layout/data, matrix or
coordinates or zoom or shift, output shape/dtype/array, mode, order, cval,
threads) from ``strategies`` and compares every byte of the result with
scipy's (order 0 and order 1 are both bit-identical by design).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from strategies import (
    ALL_CALLS, affine_call, affine_cases, aligned_linear, examples,
    map_coordinates_call, map_coordinates_cases, requires_numba, shift_call,
    shift_cases, zoom_call, zoom_cases)

THREADS = st.sampled_from([1, 2])
GRID_MODE_WARNING = "ignore:It is recommended to use mode"


@settings(max_examples=examples(1000))
@given(case=affine_cases(), threads=THREADS)
def test_affine_transform_matches_scipy(case, threads):
    """Any matrix form, shape, dtype pair, layout, mode, order and cval."""
    affine_call(case, threads=threads, backend="cython")


@settings(max_examples=examples(400))
@given(case=affine_cases(ranks=(3,)), threads=THREADS)
def test_affine_transform_3d_matches_scipy(case, threads):
    """3-D inputs only (the separable fast path for diagonal matrices and the
    general 3-D kernels)."""
    affine_call(case, threads=threads, backend="cython")


@settings(max_examples=examples(500))
@given(case=affine_cases(max_side=5, dtypes=[np.dtype(np.float64), np.dtype(np.int16)],
                         out_dtypes=[np.dtype(np.float64), np.dtype(np.int16)],
                         layouts=("C",)),
       threads=THREADS)
def test_affine_transform_ties_matches_scipy(case, threads):
    """Narrowed to a few dtypes so that hypothesis spends its examples on
    the geometry: exact ties and boundaries from quarter-valued matrices,
    offsets and integer-valued data."""
    case["style"] = "int" if case["style"] not in ("few", "nonfinite") else case["style"]
    affine_call(case, threads=threads, backend="cython")


@settings(max_examples=examples(600))
@given(case=map_coordinates_cases(), threads=THREADS)
def test_map_coordinates_matches_scipy(case, threads):
    """float32/float64/int coordinates of output rank 1-3, all layouts."""
    map_coordinates_call(case, threads=threads, backend="cython")


@pytest.mark.filterwarnings(GRID_MODE_WARNING)
@settings(max_examples=examples(500))
@given(case=zoom_cases(), threads=THREADS)
def test_zoom_matches_scipy(case, threads):
    """Scalar and per-axis zooms, grid_mode, prefilter (zoom 1 shortcut)."""
    zoom_call(case, threads=threads, backend="cython")


@settings(max_examples=examples(500))
@given(case=shift_cases(), threads=THREADS)
def test_shift_matches_scipy(case, threads):
    """Scalar and per-axis shifts, incl. half-voxel ties and big shifts."""
    shift_call(case, threads=threads, backend="cython")


@settings(max_examples=examples(150))
@given(case=st.one_of(affine_cases(), map_coordinates_cases(), zoom_cases(),
                      shift_cases()))
def test_default_backend_and_threads_match_scipy(case):
    """No threads=/backend= arguments: the defaults a drop-in user gets."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "It is recommended to use mode")
        if "matrix" in case:
            affine_call(case)
        elif "coords_shape" in case:
            map_coordinates_call(case)
        elif "zoom" in case:
            zoom_call(case)
        else:
            shift_call(case)


# ---------------------------------------------------------------------------
# Numba backend: fewer examples (every new dtype/layout signature costs a JIT
# compile), a fixed set of dtype pairs that still covers every dtype both as
# input and as output, and C or strided layouts.
# ---------------------------------------------------------------------------
NUMBA_DTYPE_PAIRS = [(np.dtype(a), np.dtype(b)) for a, b in [
    # a cycle: every dtype once as input and once as output
    ("uint8", "int8"), ("int8", "uint16"), ("uint16", "int16"), ("int16", "uint32"),
    ("uint32", "int32"), ("int32", "float32"), ("float32", "float64"),
    ("float64", "bool"), ("bool", "uint8"),
    # the common same-dtype calls
    ("float32", "float32"), ("uint8", "uint8")]]


@st.composite
def numba_cases(draw):
    in_dtype, out_dtype = draw(st.sampled_from(NUMBA_DTYPE_PAIRS))
    name = draw(st.sampled_from(sorted(ALL_CALLS)))
    strategy, _ = ALL_CALLS[name]
    case = draw(strategy(max_side=5, dtypes=[in_dtype], out_dtypes=[out_dtype],
                         layouts=("C", "strided")))
    case["function"] = name
    return case


@requires_numba
@pytest.mark.filterwarnings(GRID_MODE_WARNING)
@settings(max_examples=examples(40))
@given(case=numba_cases(), threads=THREADS)
def test_numba_backend_matches_scipy(case, threads):
    """backend='numba' gives scipy's (hence the Cython backend's) bytes."""
    _, run = ALL_CALLS[case["function"]]
    run(case, threads=threads, backend="numba")


# ---------------------------------------------------------------------------
# Focused: arithmetic order (real-valued matrices) and long aligned rows
# ---------------------------------------------------------------------------
@settings(max_examples=examples(400))
@given(case=affine_cases(max_side=9, dtypes=[np.dtype(np.float64), np.dtype(np.float32)],
                         out_dtypes=[np.dtype(np.float64)],
                         kinds=("rotation", "random", "shear", "near_singular"),
                         forms=("square", "homogeneous", "rectangular")),
       threads=THREADS)
def test_affine_transform_real_matrices_bit_identical(case, threads):
    """Real-valued rotations/shears with centred offsets and real data into
    float64: any difference in the order of the coordinate sum or of the
    weight products shows up in the last bits."""
    case["style"] = "real"
    case["order"] = 1
    affine_call(case, threads=threads, backend="cython")


LONG_ROWS = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 64))
SHORT_ROWS = st.tuples(st.integers(0, 5), st.integers(1, 5), st.integers(1, 24))


@settings(max_examples=examples(400))
@given(case=affine_cases(ranks=(3,), linear=aligned_linear, forms=("square",),
                         in_shapes=LONG_ROWS, out_shapes=SHORT_ROWS),
       threads=THREADS)
def test_affine_transform_aligned_rows_matches_scipy(case, threads):
    """Output rows along the input's last axis, from 16x down- to 4x
    up-sampling, long input rows, odd and even run lengths: the aligned-row
    kernels (partial products, paired voxels, reused row tables)."""
    affine_call(case, threads=threads, backend="cython")

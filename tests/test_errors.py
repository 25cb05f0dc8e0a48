"""Bad arguments raise a clear ValueError/TypeError naming the argument;
outputs that cannot fit in memory raise MemoryError before allocating."""
import tracemalloc

import numpy as np
import pytest

import medfast._memory
import medfast.ndimage as mf

A2 = np.zeros((4, 5), np.float32)
A3 = np.zeros((4, 5, 6), np.float32)


# ---------------------------------------------------------------------------
# affine_transform: matrix, offset, output
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("form", ["square", "diagonal", "homogeneous", "short"])
def test_non_finite_matrix(form, bad):
    m = {"square": np.eye(3), "diagonal": np.ones(3), "homogeneous": np.eye(4),
         "short": np.eye(4)[:3]}[form].copy()
    m.flat[1 if m.ndim == 2 else 0] = bad
    with pytest.raises(ValueError, match=r"matrix .*non-finite"):
        mf.affine_transform(A3, m, order=1)


@pytest.mark.parametrize("offset", [np.nan, [0.0, np.inf, 0.0], [-np.inf, 0, 0]])
def test_non_finite_offset(offset):
    with pytest.raises(ValueError, match=r"offset .*non-finite"):
        mf.affine_transform(A3, np.eye(3), offset=offset, order=1)


def test_wrong_number_of_matrix_rows():
    with pytest.raises(ValueError, match=r"matrix has 2 rows but input has 3 dimensions"):
        mf.affine_transform(A3, np.eye(2), order=1)
    with pytest.raises(ValueError, match=r"matrix has 1 rows"):
        mf.affine_transform(A2, [1.0], order=0)


def test_wrong_number_of_matrix_columns():
    with pytest.raises(ValueError, match=r"matrix has 2 columns but the output has 3"):
        mf.affine_transform(A3, np.ones((3, 2)), order=1)
    with pytest.raises(ValueError, match=r"matrix has 3 columns but the output has 2"):
        mf.affine_transform(A3, np.eye(3), output_shape=(4, 5), order=1)
    with pytest.raises(ValueError, match=r"diagonal\) matrix needs an output of 3"):
        mf.affine_transform(A3, np.ones(3), output_shape=(4, 5), order=1)


@pytest.mark.parametrize("shape", [(2, 2, 2), ()])
def test_matrix_of_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"matrix must be 1-D \(diagonal\) or 2-D"):
        mf.affine_transform(A2, np.ones(shape), order=1)


@pytest.mark.parametrize("bottom", [[0, 0, 0, 2], [0, 1, 0, 1], [0, 0, 0, 0]])
def test_bad_homogeneous_bottom_row(bottom):
    m = np.eye(4)
    m[3] = bottom
    with pytest.raises(ValueError, match=r"matrix: expected a homogeneous .*bottom row"):
        mf.affine_transform(A3, m, order=1)


def test_non_numeric_matrix():
    with pytest.raises(TypeError, match=r"matrix must be real numbers"):
        mf.affine_transform(A2, "identity", order=1)


@pytest.mark.parametrize("func,args,kwargs", [
    ("affine_transform", (np.eye(3),), {"output_shape": (4, 5, 6)}),
    ("map_coordinates", (np.zeros((3, 4, 5, 6)),), {}),
    ("zoom", (1.0,), {}),
    ("zoom", (2.0,), {}),
    ("shift", (0.5,), {}),
])
def test_output_array_of_wrong_shape(func, args, kwargs):
    """(affine_transform without output_shape takes the output array's
    shape, as scipy does.)"""
    out = np.zeros((4, 5, 7), np.float32)
    with pytest.raises(ValueError, match=r"output: array has shape \(4, 5, 7\)"):
        getattr(mf, func)(A3, *args, output=out, order=1, **kwargs)


def test_output_shape_conflicts_with_output_array():
    with pytest.raises(ValueError, match=r"output: array has shape"):
        mf.affine_transform(A3, np.eye(3), output_shape=(2, 2, 2),
                            output=np.zeros((4, 5, 6)), order=1)


def test_read_only_output_array():
    out = np.zeros((4, 5, 6), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"output: array is read-only"):
        mf.affine_transform(A3, np.eye(3), output=out, order=1)


@pytest.mark.parametrize("output", [np.complex128, "c8", np.zeros((4, 5, 6), complex),
                                    np.dtype("U3"), object])
def test_unsupported_output_dtype(output):
    with pytest.raises(TypeError, match=r"output"):
        mf.affine_transform(A3, np.eye(3), output=output, order=1)


@pytest.mark.parametrize("output_shape,exc,match", [
    ((4, -1, 6), ValueError, r"output_shape must not have negative sizes"),
    ((), ValueError, r"output_shape must have at least one dimension"),
    ((4.5, 5, 6), TypeError, r"output_shape must be a sequence of integers"),
])
def test_bad_output_shape(output_shape, exc, match):
    with pytest.raises(exc, match=match):
        mf.affine_transform(A3, np.eye(3), output_shape=output_shape, order=1)


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------
CALLS = [
    ("affine_transform", lambda a: (np.eye(max(a.ndim, 1)),)),
    ("map_coordinates", lambda a: (np.zeros((max(a.ndim, 1), 2)),)),
    ("zoom", lambda a: (1.5,)),
    ("shift", lambda a: (0.5,)),
]


@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_is_a_type_error(func, make_args, dtype):
    a = np.zeros((4, 5), dtype)
    with pytest.raises(TypeError, match=r"input: complex data"):
        getattr(mf, func)(a, *make_args(a), order=1)


@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
def test_zero_dimensional_input(func, make_args):
    a = np.float32(3.0)
    with pytest.raises(ValueError, match=r"input: must have at least one dimension"):
        getattr(mf, func)(np.asarray(a), *make_args(np.zeros(1)), order=1)


@pytest.mark.parametrize("value", [np.array(["a", "b"]), np.array([object(), 1]),
                                   np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_non_numeric_input(value):
    with pytest.raises(TypeError, match=r"input: dtype .* is not a numeric type"):
        mf.shift(value, 1, order=0)


# ---------------------------------------------------------------------------
# threads, mode, order, backend, cval (every function)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("threads", [0, -1, -8])
def test_non_positive_threads(func, make_args, threads):
    with pytest.raises(ValueError, match=r"threads must be a positive integer"):
        getattr(mf, func)(A3, *make_args(A3), order=1, threads=threads)


@pytest.mark.parametrize("threads", [True, 1.0, "2", 2.5])
def test_non_integer_threads(threads):
    with pytest.raises(TypeError, match=r"threads must be a positive integer"):
        mf.affine_transform(A3, np.eye(3), order=1, threads=threads)


def test_threads_accepts_numpy_integers():
    mf.affine_transform(A3, np.eye(3), order=1, threads=np.int64(2))


@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("mode", ["Constant", "edge", "", None, "grid_wrap"])
def test_bad_mode(func, make_args, mode):
    with pytest.raises(ValueError, match=r"mode .* is not supported"):
        getattr(mf, func)(A3, *make_args(A3), order=1, mode=mode)


@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("order", [-1, 6, 100])
def test_order_out_of_range(func, make_args, order):
    with pytest.raises(ValueError, match=r"order must be between 0 and 5"):
        getattr(mf, func)(A3, *make_args(A3), order=order)


@pytest.mark.parametrize("order", [1.5, "1", None])
def test_non_integer_order(order):
    with pytest.raises(TypeError, match=r"order must be an integer"):
        mf.affine_transform(A3, np.eye(3), order=order)


@pytest.mark.parametrize("func,make_args", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("backend", ["numpy", "Cython", "", 1])
def test_bad_backend(func, make_args, backend):
    with pytest.raises(ValueError, match=r"backend must be one of"):
        getattr(mf, func)(A3, *make_args(A3), order=1, backend=backend)


@pytest.mark.parametrize("cval", ["zero", None, [1, 2], 1j])
def test_bad_cval(cval):
    with pytest.raises(TypeError, match=r"cval must be a real number"):
        mf.affine_transform(A3, np.eye(3), order=1, cval=cval)


def test_arguments_are_checked_before_delegating_to_scipy():
    """Calls scipy would handle (order 3, 4-D) get the same clear errors."""
    with pytest.raises(ValueError, match=r"threads"):
        mf.affine_transform(np.zeros((2, 2, 2, 2)), np.eye(4), order=1, threads=0)
    with pytest.raises(ValueError, match=r"matrix .*non-finite"):
        mf.affine_transform(A3, np.full((3, 3), np.nan), order=3)
    with pytest.raises(ValueError, match=r"backend"):
        mf.zoom(A3, 2, order=3, backend="fortran")


# ---------------------------------------------------------------------------
# map_coordinates, zoom, shift specifics
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (2, 4), (4, 4), (1, 2, 3)])
def test_map_coordinates_wrong_coordinates_shape(shape):
    with pytest.raises(ValueError, match=r"coordinates must have shape \(3, \.\.\.\)"):
        mf.map_coordinates(A3, np.zeros(shape), order=1)


@pytest.mark.parametrize("dtype", [complex, object, "U2"])
def test_map_coordinates_non_real_coordinates(dtype):
    with pytest.raises(TypeError, match=r"coordinates must be real numbers"):
        mf.map_coordinates(A2, np.zeros((2, 3), dtype=dtype), order=1)


@pytest.mark.parametrize("zoom,exc,match", [
    (np.nan, ValueError, r"zoom contains non-finite"),
    ([1.0, np.inf], ValueError, r"zoom contains non-finite"),
    ([1.0, 2.0, 3.0], ValueError, r"zoom must be a number or a sequence of 2"),
    (-2.0, ValueError, r"zoom must not be negative"),
    ("x", TypeError, r"zoom must be real numbers"),
])
def test_bad_zoom(zoom, exc, match):
    with pytest.raises(exc, match=match):
        mf.zoom(A2, zoom, order=1)


@pytest.mark.parametrize("shift,exc,match", [
    (np.nan, ValueError, r"shift contains non-finite"),
    ([np.inf, 0.0], ValueError, r"shift contains non-finite"),
    ([1.0, 2.0, 3.0], ValueError, r"shift must be a number or a sequence of 2"),
])
def test_bad_shift(shift, exc, match):
    with pytest.raises(exc, match=match):
        mf.shift(A2, shift, order=1)


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("func,args,unit", [
    ("affine_transform", (np.eye(3),), "KiB"),
    ("map_coordinates", (np.zeros((3, 20, 20, 20)),), "KiB"),
    ("zoom", (4.0,), "MiB"),
    ("shift", (0.5,), "KiB"),
])
def test_output_larger_than_available_memory(monkeypatch, func, args, unit):
    """MemoryError naming the output and its size, before allocating."""
    monkeypatch.setattr(medfast._memory, "available_bytes", lambda: 1000)
    a = np.zeros((16, 16, 16), np.float32)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with pytest.raises(MemoryError, match=rf"^output: .* needs [0-9.]+ {unit} but "
                                              r"only 1000 B of memory is available"):
            getattr(mf, func)(a, *args, order=1)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024, f"{peak} bytes were allocated before failing"


def test_output_given_as_dtype_is_checked(monkeypatch):
    monkeypatch.setattr(medfast._memory, "available_bytes", lambda: 10 * 2 ** 20)
    a = np.zeros((64, 64, 64), np.uint8)  # 256 KiB as uint8, 2 MiB as float64
    mf.affine_transform(a, np.eye(3), order=0)
    with pytest.raises(MemoryError, match=r"output: a 64x64x64 float64 array needs "
                                          r"2\.0 MiB"):
        monkeypatch.setattr(medfast._memory, "available_bytes", lambda: 2 ** 20)
        mf.affine_transform(a, np.eye(3), order=0, output=np.float64)


def test_output_array_needs_no_memory_check(monkeypatch):
    """A caller-provided output array is used as is."""
    monkeypatch.setattr(medfast._memory, "available_bytes", lambda: 0)
    out = np.zeros((4, 5, 6), np.float32)
    assert mf.affine_transform(A3, np.eye(3), order=1, output=out) is out


def test_unknown_available_memory_does_not_block(monkeypatch):
    monkeypatch.setattr(medfast._memory, "available_bytes", lambda: None)
    assert mf.zoom(A3, 2.0, order=1).shape == (8, 10, 12)


@pytest.mark.parametrize("func,args,kwargs", [
    ("affine_transform", (np.eye(3),), {"output_shape": (100000, 100000, 1000)}),
    ("zoom", (20000.0,), {}),
    ("affine_transform", (np.eye(3),), {"output_shape": (100000, 100000, 1000),
                                        "order": 3}),
])
def test_huge_output_fails_fast_with_real_memory(func, args, kwargs):
    """Tens of TiB: refused by medfast's own check (with the size), not by a
    failed allocation or the OOM killer."""
    kwargs = {"order": 1, **kwargs}
    with pytest.raises(MemoryError, match=r"^output: .* needs [0-9.]+ (TiB|GiB) but only"):
        getattr(mf, func)(A3, *args, **kwargs)


def test_format_bytes_units():
    from medfast._memory import format_bytes
    assert format_bytes(1000) == "1000 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2 ** 20) == "3.0 MiB"
    assert format_bytes(2 ** 41) == "2.0 TiB"

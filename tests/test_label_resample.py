"""resample(order='label'): the one-pass kernel (src/_labels.pyx) gives the
bytes of the per-label reference (``_label_resample_reference``: each
label's indicator through the order-1 core, then the running maximum).

Every kernel call here is made with the reference patched to fail, so a
silent fallback cannot make a comparison pass by comparing the reference
with itself.
"""
import importlib
import tracemalloc
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.transform import Rotation

from medfast import Image, resample
from strategies import LAYOUTS, NICE, assert_same, examples, quarter, square_linear, with_layout

R = importlib.import_module("medfast.resample")

requires_kernel = pytest.mark.skipif(R._label_kernels() is None,
                                     reason="the compiled medfast._labels is not built")

LABEL_DTYPES = tuple(np.dtype(t) for t in (
    np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64,
    np.uint64, np.bool_))
NATIVE_MODES = ("constant", "nearest", "grid-constant", "reflect", "mirror", "wrap",
                "grid-wrap", "grid-mirror")
KIB = 1024


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def label_values(rng, dtype, n):
    """`n` distinct labels of `dtype`: 0, small ones (negative ones for
    signed types) and sometimes the type's extremes."""
    if dtype == np.bool_:
        return np.array([False, True])
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -300), min(info.max, 300)
    pool = np.arange(lo, hi + 1)
    values = set(rng.choice(pool, size=min(n, pool.size), replace=False).tolist()) | {0}
    if rng.random() < 0.3:
        values |= {int(info.min), int(info.max)}
    return np.array(sorted(values), dtype=dtype)


def label_map(rng, shape, dtype, n_labels):
    """Random regions (a coarse grid repeated) or random voxels."""
    values = label_values(rng, np.dtype(dtype), n_labels)
    if rng.random() < 0.5:
        block = [int(rng.integers(1, 4)) for _ in shape]
        coarse = rng.integers(0, values.size, size=[-(-n // b) for n, b in zip(shape, block)])
        index = np.kron(coarse, np.ones(block, int))[tuple(slice(0, n) for n in shape)]
    else:
        index = rng.integers(0, values.size, size=shape)
    return values[index]


def random_linear(rng):
    kind = rng.choice(["rotation", "scaled_rotation", "perm_flip", "diagonal", "quarter",
                       "identity"])
    if kind == "rotation":
        return Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
    if kind == "scaled_rotation":
        rot = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        return rot @ np.diag(rng.uniform(0.4, 2.5, 3))
    if kind == "perm_flip":
        return (np.eye(3)[rng.permutation(3)] * rng.choice([-1.0, 1.0], 3)[:, None]
                * rng.choice(NICE, 3)[:, None])
    if kind == "diagonal":
        return np.diag(rng.choice([-1.0, 1.0], 3) * rng.choice(NICE + (0.9, 1.7), 3))
    if kind == "quarter":
        return rng.integers(-8, 9, size=(3, 3)) / 4.0
    return np.eye(3)


def centred_offset(rng, linear, in_shape, out_shape):
    """The output centre onto the input centre, plus a quarter-voxel or
    arbitrary shift (ties and boundaries)."""
    c_in = (np.array(in_shape) - 1) / 2
    c_out = (np.array(out_shape) - 1) / 2
    shift = (rng.integers(-6, 7, 3) / 4.0 if rng.random() < 0.5
             else rng.uniform(-2, 2, 3))
    return c_in - linear @ c_out + shift


def reference(src, linear, offset, out_shape, mode, cval, dtype=None):
    out = np.empty(out_shape, dtype=dtype or src.dtype.newbyteorder("="))
    R._label_resample_reference(src, linear, offset, out, mode, cval, 1)
    return out


def one_pass(src, linear, offset, out, mode, cval, threads):
    """The kernel path, with the reference patched to fail."""
    with mock.patch.object(R, "_label_resample_reference",
                           side_effect=AssertionError("fell back to the reference")):
        R._label_resample(src, linear, offset, out, mode, cval, threads)
    return out


# --------------------------------------------------------------------------
# Random label maps and grids against the reference
# --------------------------------------------------------------------------
@requires_kernel
@pytest.mark.parametrize("seed", range(150))
def test_one_pass_equals_reference(seed):
    rng = np.random.default_rng(seed)
    dtype = LABEL_DTYPES[seed % len(LABEL_DTYPES)]
    in_shape = tuple(int(n) for n in rng.choice([1, 2, 3, 5, 8, 11], 3))
    out_shape = tuple(int(n) for n in rng.choice([1, 2, 4, 7, 12], 3))
    src = with_layout(label_map(rng, in_shape, dtype, int(rng.integers(2, 51))),
                      LAYOUTS[seed % len(LAYOUTS)], seed)
    linear = random_linear(rng)
    offset = centred_offset(rng, linear, in_shape, out_shape)
    mode = NATIVE_MODES[seed % len(NATIVE_MODES)]
    cval = float(rng.choice([0.0, 1.0, 7.0, 2.5, -3.0]) if dtype.kind == "i"
                 else rng.choice([0.0, 1.0, 7.0]))
    expected = reference(src, linear, offset, out_shape, mode, cval)
    out = with_layout(np.zeros(out_shape, dtype), ("C", "F", "reversed")[seed % 3])
    got = one_pass(src, linear, offset, out, mode, cval, 1 + seed % 2)
    assert_same(got, expected, context=f"seed {seed} {dtype} {mode}")


@requires_kernel
@settings(max_examples=examples(300))
@given(linear=square_linear(3), data=st.data())
def test_one_pass_equals_reference_hypothesis(linear, data):
    """Quarter-valued grids over few labels: exact ties between labels and
    samples exactly on the boundary faces."""
    in_shape = data.draw(st.tuples(*[st.integers(1, 6)] * 3), label="in_shape")
    out_shape = data.draw(st.tuples(*[st.integers(1, 6)] * 3), label="out_shape")
    dtype = data.draw(st.sampled_from(LABEL_DTYPES), label="dtype")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    mode = data.draw(st.sampled_from(NATIVE_MODES), label="mode")
    threads = data.draw(st.sampled_from([1, 2]), label="threads")
    offset = np.array([data.draw(st.one_of(quarter(-n - 1, n + 1),
                                           st.floats(-n - 2, n + 2)), label="offset")
                       for n in in_shape])
    rng = np.random.default_rng(seed)
    src = label_map(rng, in_shape, dtype, int(rng.integers(2, 6)))
    expected = reference(src, linear, offset, out_shape, mode, 0.0)
    got = one_pass(src, linear, offset, np.empty(out_shape, dtype), mode, 0.0, threads)
    assert_same(got, expected)


@requires_kernel
@pytest.mark.parametrize("seed", range(8))
def test_resample_3d_and_4d_equal_reference(seed, monkeypatch):
    """End to end through resample (like=, spacing=, transform=), 3-D and
    4-D (strided frames), against the same call with the reference."""
    rng = np.random.default_rng(100 + seed)
    shape = (9, 1, 7) if seed % 4 == 1 else (9, 10, 7)
    if seed % 2:
        shape += (3,)
    dtype = (np.uint8, np.int16, np.int32, np.uint16)[seed % 4]
    img = Image(label_map(rng, shape, dtype, int(rng.integers(2, 51))),
                np.diag([1.2, 0.9, 2.0, 1.0]) @ np.vstack([np.eye(4)[:3], [0, 0, 0, 1]]))
    rot = np.eye(4)
    rot[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    kwargs = [dict(spacing=0.7), dict(transform=rot), dict(like=Image(
        np.zeros((6, 8, 5), np.uint8), rot @ np.diag([1.5, 1.1, 1.3, 1.0])))][seed % 3]
    mode = ("constant", "nearest")[seed % 2]
    threads = 1 + seed % 2
    with mock.patch.object(R, "_label_resample_reference",
                           side_effect=AssertionError("fell back to the reference")):
        got = resample(img, order="label", mode=mode, cval=5, threads=threads, **kwargs)
    monkeypatch.setattr(R, "_label_resample", R._label_resample_reference)
    expected = resample(img, order="label", mode=mode, cval=5, threads=threads, **kwargs)
    assert_same(got.array, expected.array)
    assert np.array_equal(got.affine, expected.affine)


@requires_kernel
def test_threads_give_identical_results():
    rng = np.random.default_rng(7)
    src = label_map(rng, (40, 33, 27), np.int16, 30)
    linear = Rotation.from_euler("xyz", [12, -20, 33], degrees=True).as_matrix() * 0.8
    offset = centred_offset(rng, linear, src.shape, (37, 41, 29))
    outs = [one_pass(src, linear, offset, np.empty((37, 41, 29), np.int16), "constant", 0, t)
            for t in (1, 2, 3)]
    assert_same(outs[1], outs[0])
    assert_same(outs[2], outs[0])
    assert_same(outs[0], reference(src, linear, offset, (37, 41, 29), "constant", 0))


@requires_kernel
def test_extreme_labels_and_byte_swapped_input():
    rng = np.random.default_rng(8)
    for dtype, values in ((np.int64, [np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max]),
                          (np.uint64, [0, 1, 2 ** 63, 2 ** 64 - 1]),
                          (np.dtype(">i2"), [-32768, -5, 0, 9, 32767]),
                          (np.dtype(">u4"), [0, 3, 2 ** 32 - 1])):
        src = np.array(values, dtype=dtype)[rng.integers(0, len(values), (6, 7, 5))]
        linear = Rotation.random(random_state=3).as_matrix() * 0.7
        offset = centred_offset(rng, linear, src.shape, (8, 8, 6))
        expected = reference(src, linear, offset, (8, 8, 6), "constant", 0)
        out = np.empty((8, 8, 6), np.dtype(dtype).newbyteorder("="))
        assert_same(one_pass(src, linear, offset, out, "constant", 0, 2), expected)


# --------------------------------------------------------------------------
# Ties, cval
# --------------------------------------------------------------------------
@requires_kernel
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.uint16, np.int8])
def test_half_voxel_ties_go_to_the_smaller_label(dtype):
    low, high = (-5, 7) if np.dtype(dtype).kind == "i" else (3, 7)
    src = np.full((4, 4, 4), high, dtype)
    src[:2] = low  # halves along axis 0; the tie lies between i = 1 and 2
    for first, _ in ((low, high), (high, low)):  # either side of the tie
        data = src if first == low else src[::-1]
        out = one_pass(data, np.eye(3), [1.5, 0.0, 0.0], np.empty((1, 4, 4), dtype),
                       "constant", 0, 1)
        assert (out == min(low, high)).all()
        assert_same(out, reference(data, np.eye(3), [1.5, 0.0, 0.0], (1, 4, 4), "constant", 0))


@requires_kernel
def test_eight_way_tie_at_a_cube_centre():
    src = np.array([40, 3, 17, 9, 25, 11, 30, 6], np.uint8).reshape(2, 2, 2)
    for labels in (src, src[::-1, ::-1], src.transpose(2, 0, 1)):
        out = one_pass(labels, np.eye(3), [0.5, 0.5, 0.5], np.empty((1, 1, 1), np.uint8),
                       "nearest", 0, 1)
        assert out[0, 0, 0] == 3


@requires_kernel
def test_tie_between_unequal_corner_counts():
    # At (0.5, 0.5, 0.25) the corners at k = 0 weigh 3/16, those at k = 1
    # 1/16 (exact): label 8 has two heavy corners (6/16), label 2 one heavy
    # and three light ones (6/16 too).  The smaller label wins.
    src = np.zeros((2, 2, 2), np.int16)
    src[..., 0] = [[8, 8], [2, 9]]
    src[..., 1] = [[2, 2], [2, 5]]
    out = one_pass(src, np.eye(3), [0.5, 0.5, 0.25], np.empty((1, 1, 1), np.int16),
                   "constant", 0, 1)
    assert out[0, 0, 0] == 2
    assert_same(out, reference(src, np.eye(3), [0.5, 0.5, 0.25], (1, 1, 1), "constant", 0))
    src[1, 0, 1] = 5  # now 2 has 5/16: 8 wins
    out = one_pass(src, np.eye(3), [0.5, 0.5, 0.25], np.empty((1, 1, 1), np.int16),
                   "constant", 0, 1)
    assert out[0, 0, 0] == 8


@requires_kernel
def test_cval_where_every_weight_is_zero():
    src = np.arange(1, 28, dtype=np.int16).reshape(3, 3, 3)
    offset = [-5.0, 0.0, 0.0]  # wholly outside along axis 0
    for cval, expected in ((0.0, 0), (2.7, 2), (-4.0, -4)):
        out = one_pass(src, np.eye(3), offset, np.empty((2, 3, 3), np.int16), "constant",
                       cval, 1)
        assert (out == expected).all()
    boolean = one_pass(src > 5, np.eye(3), offset, np.empty((2, 3, 3), bool), "constant",
                       1.0, 1)
    assert boolean.all()
    # 'nearest' never leaves the input: no cval.
    out = one_pass(src, np.eye(3), offset, np.empty((2, 3, 3), np.int16), "nearest", -1, 1)
    assert_same(out, src[:1].repeat(2, axis=0))
    # 'grid-constant' interpolates towards cval across the face: one voxel
    # out the outside weight of 1 - 0.25 leaves the edge label the winner.
    out = one_pass(src, np.eye(3), [2.25, 0, 0], np.empty((1, 3, 3), np.int16),
                   "grid-constant", -1, 1)
    assert_same(out, src[2:])
    assert_same(out, reference(src, np.eye(3), [2.25, 0, 0], (1, 3, 3), "grid-constant", -1))


# --------------------------------------------------------------------------
# Float labels, other output dtypes, the reference path
# --------------------------------------------------------------------------
@requires_kernel
@pytest.mark.parametrize("case", ["float", "float64_to_int16", "dtype", "cval_not_a_label",
                                  "uint8_all_values"])
def test_one_pass_for_floats_and_other_output_dtypes(case):
    """Whole-number float maps and outputs of another dtype take the one
    pass too (no per-label work), with the reference's bytes."""
    rng = np.random.default_rng(9)
    src = label_map(rng, (6, 5, 7), np.int16, 6)
    out_dtype, cval = np.int16, 3.0
    if case == "float":
        src, out_dtype = src.astype(np.float32), np.float32
    elif case == "float64_to_int16":
        src = src.astype(np.float64)
    elif case == "dtype":
        out_dtype = np.float32
    elif case == "cval_not_a_label":
        out_dtype, cval = np.float64, -0.5
    else:
        src = np.arange(6 * 5 * 7).reshape(6, 5, 7).astype(np.uint8)  # 210 labels
        out_dtype = np.int32
    linear = Rotation.random(random_state=9).as_matrix()
    offset = centred_offset(rng, linear, src.shape, (7, 7, 7))
    expected = reference(src, linear, offset, (7, 7, 7), "constant", cval, out_dtype)
    out = one_pass(src, linear, offset, np.empty((7, 7, 7), out_dtype), "constant", cval, 2)
    assert_same(out, expected)


def test_non_integer_labels_are_refused():
    img = Image(np.random.default_rng(0).random((4, 4, 4)).astype(np.float32), np.eye(4))
    with pytest.raises(ValueError, match="order='label' needs integer labels.*0\\.6"):
        resample(img, spacing=0.5, order="label")
    img = Image(np.full((2, 2, 2), np.nan), np.eye(4))
    with pytest.raises(ValueError, match="non-integer values .*nan"):
        resample(img, spacing=0.5, order="label")


@requires_kernel
def test_many_labels_take_one_pass():
    """A random label in every voxel (4,096 labels in a float map): one pass,
    as fast as two labels, where the per-label reference took seconds."""
    import time
    rng = np.random.default_rng(3)
    many = Image(rng.permutation(16 ** 3).reshape(16, 16, 16).astype(np.float32), np.eye(4))
    few = Image((many.array % 2).astype(np.float32), np.eye(4))
    times = {}
    with mock.patch.object(R, "_label_resample_reference",
                           side_effect=AssertionError("fell back to the reference")):
        for name, img in (("few", few), ("many", many)):
            start = time.perf_counter()
            out = resample(img, spacing=0.7, order="label")
            times[name] = time.perf_counter() - start
    assert out.dtype == np.float32 and np.isin(out.array, many.array).all()
    assert times["many"] < 0.5, times


def test_no_kernel_gives_the_reference(monkeypatch):
    rng = np.random.default_rng(9)
    src = label_map(rng, (6, 5, 7), np.int16, 6)
    linear = Rotation.random(random_state=9).as_matrix()
    offset = centred_offset(rng, linear, src.shape, (7, 7, 7))
    expected = reference(src, linear, offset, (7, 7, 7), "reflect", 3.0)
    monkeypatch.setattr(R, "_label_kernels", lambda: None)
    spy = mock.Mock(wraps=R._label_resample_reference)
    monkeypatch.setattr(R, "_label_resample_reference", spy)
    out = np.empty((7, 7, 7), np.int16)
    R._label_resample(src, linear, offset, out, "reflect", 3.0, 2)
    assert spy.call_count == 1
    assert_same(out, expected)


# --------------------------------------------------------------------------
# Memory: no volume per label
# --------------------------------------------------------------------------
def peak_traced(fn):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


@requires_kernel
def test_peak_memory_is_the_output_with_100_labels(monkeypatch):
    rng = np.random.default_rng(10)
    labels = label_map(rng, (64, 64, 64), np.uint8, 150)
    assert np.unique(labels).size > 100
    img = Image(labels, np.eye(4))
    rot = np.eye(4)
    rot[:3, :3] = Rotation.from_euler("z", 10, degrees=True).as_matrix()

    def call():
        return resample(img, transform=rot, order="label", threads=2).array

    call()  # warm-up (imports)
    out, peak = peak_traced(call)
    assert peak <= out.nbytes + 64 * KIB, (
        f"peak {peak} bytes for an output of {out.nbytes} bytes")
    # The reference needs several output-sized float32 volumes (not one per
    # label either): the bound above does tell the two apart.
    monkeypatch.setattr(R, "_label_resample", R._label_resample_reference)
    expected, ref_peak = peak_traced(call)
    assert ref_peak > 5 * out.nbytes
    assert_same(out, expected)

"""Shared hypothesis strategies and helpers for the medfast test suite.

Test cases are drawn as small, readable parameter records (:class:`Case`):
shapes, dtypes, a data seed and "style", matrices as nested lists, and so
on.  The arrays themselves are built from those parameters by
:func:`make_input` / :func:`make_output_pair`, so a falsifying example printed by
hypothesis is short and can be pasted back into a reproducer.

Integer-valued data and matrices/offsets/coordinates that are multiples of
0.25 or 0.5 are drawn often: they hit exact half-voxel ties and exact
boundaries, which is where rounding rules and boundary handling differ if
they are not replicated exactly.
"""
import importlib.util
import math
import os

import numpy as np
import pytest
import scipy.ndimage
from hypothesis import strategies as st

import medfast.ndimage

# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------
HAVE_NUMBA_BACKEND = importlib.util.find_spec("medfast._numba_kernels") is not None

#: Marks a test that needs ``backend='numba'``.
requires_numba = pytest.mark.skipif(
    not HAVE_NUMBA_BACKEND,
    reason="backend='numba' not available: medfast/_numba_kernels.py does not "
           "exist yet (the Numba backend is being written)")

#: ``@pytest.mark.parametrize("backend", BACKENDS)``: both kernel backends.
BACKENDS = [pytest.param("cython", id="cython"),
            pytest.param("numba", id="numba", marks=requires_numba)]


def examples(n):
    """``max_examples`` for a test: ``n`` times ``MEDFAST_HYPOTHESIS_SCALE``."""
    return max(1, int(n * float(os.environ.get("MEDFAST_HYPOTHESIS_SCALE", "1"))))


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------
MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror",
         "mirror", "wrap", "grid-wrap")

#: Every dtype the native kernels read and write.
DTYPES = tuple(np.dtype(t) for t in (
    np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
    np.float32, np.float64, np.bool_))
INT_DTYPES = tuple(d for d in DTYPES if d.kind in "iu")
FLOAT_DTYPES = tuple(d for d in DTYPES if d.kind == "f")

#: Memory layouts of input (and output) arrays.
LAYOUTS = ("C", "F", "transposed", "strided", "reversed")

#: Data styles (see :func:`make_values`).
STYLES = ("int", "quarter", "real", "few", "extreme", "nan", "inf", "nonfinite")

#: Simple factors: exact in binary, so products and sums tie exactly.
NICE = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


class Case(dict):
    """A dict of drawn parameters with a compact, paste-able repr."""

    def __repr__(self):
        return "Case(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"

    __str__ = __repr__


# ---------------------------------------------------------------------------
# Array construction
# ---------------------------------------------------------------------------
def make_values(seed, shape, style):
    """float64 values in about [-1000, 1000] (except 'extreme'/'nonfinite').

    Styles: 'int' integers; 'quarter' multiples of 0.25 (ties); 'real'
    arbitrary reals; 'few' a handful of values incl. -0.0 and repeats;
    'extreme' markers for the dtype's extremes (see :func:`to_dtype`);
    'nan' / 'inf' reals sprinkled with NaN / with +-inf; 'nonfinite' both.

    With 'nonfinite' data a NaN from the data can meet a NaN created by the
    arithmetic (inf * 0 gives the x86 "default NaN", which has the sign bit
    set) in one sum; which of the two propagates depends on the operand
    order the C compiler picked (scipy itself differs between its
    geometric_transform and zoom_shift code), so such results are compared
    with NaN payloads ignored (see :func:`assert_same`).
    """
    rng = np.random.default_rng(seed)
    if style == "int":
        return rng.integers(-1000, 1001, size=shape).astype(np.float64)
    if style == "quarter":
        return rng.integers(-4000, 4001, size=shape) / 4.0
    if style == "real":
        return rng.uniform(-1000, 1000, size=shape)
    if style == "few":
        return rng.choice(np.array([-1000.0, -2.5, -0.0, 0.0, 1.0, 2.5, 1000.0]),
                          size=shape)
    if style == "extreme":
        # Codes, resolved per dtype by to_dtype: +-9 max/min, +-8 tiny.
        return rng.choice(np.array([-9.0, -8.0, -0.0, 0.0, 1.0, 8.0, 9.0, 500.0]),
                          size=shape)
    if style in ("nan", "inf", "nonfinite"):
        v = rng.uniform(-1000, 1000, size=shape)
        mask = rng.random(size=shape)
        if style != "inf":
            v[mask < 0.15] = np.nan
        if style != "nan":
            v[(mask >= 0.15) & (mask < 0.25)] = np.inf
            v[(mask >= 0.25) & (mask < 0.3)] = -np.inf
        return v
    raise ValueError(style)


def to_dtype(values, dtype, small_nonneg=False, extreme=False):
    """Scale values in [-1000, 1000] into ``dtype``'s range.

    ``small_nonneg`` restricts the data to [0, 255] (needed for bool
    outputs: scipy stores them with a C cast to an unsigned char, which is
    undefined for values outside (-1, 256)).  With ``extreme``, the codes
    +-9 and +-8 become the dtype's largest and smallest (subnormal for
    floats) magnitudes.
    """
    dtype = np.dtype(dtype)
    v = np.array(values, dtype=np.float64)
    if dtype == np.bool_:
        return v > 0
    if small_nonneg:
        v = np.where(np.isfinite(v), np.abs(v) % 256, 0.0)
        if dtype.kind in "iu":
            v = np.floor(v)
            return np.minimum(v, np.iinfo(dtype).max).astype(dtype)
        return v.astype(dtype)
    if dtype.kind == "f":
        out = v.astype(dtype)
        if extreme:
            big = 3e38 if dtype == np.float32 else 1e300
            tiny = 1e-45 if dtype == np.float32 else 5e-324  # subnormals
            out[v == 9.0], out[v == -9.0] = big, -big
            out[v == 8.0], out[v == -8.0] = tiny, -tiny
        return out
    info = np.iinfo(dtype)
    if dtype.kind == "u":
        scaled = np.round((v + 1000.0) * ((info.max - 1) / 2000.0))
    else:
        scaled = np.round(v * ((info.max - 1) / 1000.0))
    scaled = np.clip(np.where(np.isfinite(scaled), scaled, 0.0), info.min, info.max)
    out = scaled.astype(dtype)
    if extreme:
        out[v == 9.0], out[v == -9.0] = info.max, info.min
        out[v == 8.0], out[v == -8.0] = 1, info.min + 1
    return out


def fill_value(dtype):
    """A recognisable value for memory outside a view / unwritten output."""
    return True if np.dtype(dtype) == np.bool_ else 77


def with_layout(data, layout, rng_seed=0):
    """An array equal to ``data`` (same shape and values) laid out in memory
    as ``layout``: 'C', 'F', 'transposed' (permuted strides), 'strided'
    (a view with steps of 2 or 3 and some reversed axes, like
    ``a[::-1, :, ::2]``) or 'reversed' (every axis reversed)."""
    data = np.asarray(data)
    if layout == "C":
        return np.ascontiguousarray(data)
    if layout == "F":
        return np.asfortranarray(data)
    rng = np.random.default_rng(rng_seed)
    if layout == "transposed":
        perm = rng.permutation(data.ndim)
        if data.ndim > 1 and np.all(perm == np.arange(data.ndim)):
            perm = perm[::-1]
        base = np.ascontiguousarray(np.transpose(data, perm))
        return np.transpose(base, np.argsort(perm))
    if layout == "strided":
        steps = [int(rng.choice([1, 2, 3, -1, -2])) for _ in range(data.ndim)]
        if all(s == 1 for s in steps):
            steps[-1] = 2
    elif layout == "reversed":
        steps = [-1] * data.ndim
    else:
        raise ValueError(layout)
    base = np.full([max(n, 1) * abs(s) for n, s in zip(data.shape, steps)],
                   fill_value(data.dtype), dtype=data.dtype)
    view = base[tuple(slice(None, None, s) for s in steps)]
    view = view[tuple(slice(0, n) for n in data.shape)]
    view[...] = data
    assert view.shape == data.shape
    return view


def make_input(case):
    """The input array described by ``case`` (keys: seed, style, shape,
    dtype, layout, small_nonneg)."""
    values = make_values(case["seed"], case["shape"], case["style"])
    data = to_dtype(values, case["dtype"], case.get("small_nonneg", False),
                    extreme=case["style"] == "extreme")
    return with_layout(data, case.get("layout", "C"), case["seed"])


def make_output_pair(spec, shape):
    """``(for_scipy, for_medfast)`` values of the ``output=`` argument.

    ``spec`` is None, ``('dtype', name)`` or ``('array', name, layout)``.
    For arrays, two identical, separately allocated arrays are returned.
    """
    if spec is None:
        return None, None
    if spec[0] == "dtype":
        return np.dtype(spec[1]), np.dtype(spec[1])
    _, name, layout = spec
    pair = []
    for _ in range(2):
        a = np.full(shape, fill_value(name), dtype=name)
        pair.append(with_layout(a, layout, 1))
    return tuple(pair)


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------
def _describe_bytes_mismatch(actual, expected):
    a = np.ascontiguousarray(actual)
    e = np.ascontiguousarray(expected)
    ab = a.reshape(-1).view(np.uint8).reshape(a.size, a.itemsize)
    eb = e.reshape(-1).view(np.uint8).reshape(e.size, e.itemsize)
    bad = np.flatnonzero(np.any(ab != eb, axis=1))
    if bad.size == 0:
        return None
    lines = [f"{bad.size} of {a.size} elements differ in their bytes; first:"]
    for flat in bad[:5]:
        idx = np.unravel_index(flat, a.shape)
        lines.append(f"  at {tuple(int(i) for i in idx)}: actual "
                     f"{a.reshape(-1)[flat]!r} (0x{ab[flat][::-1].tobytes().hex()}) "
                     f"expected {e.reshape(-1)[flat]!r} "
                     f"(0x{eb[flat][::-1].tobytes().hex()})")
    return "\n".join(lines)


def canonical_nans(a):
    """A copy of ``a`` with every NaN replaced by the positive quiet NaN."""
    if a.dtype.kind != "f":
        return a
    return np.where(np.isnan(a), np.array(np.nan, dtype=a.dtype), a)


def assert_same(actual, expected, context="", nan_payload=True):
    """Exactly equal: dtype, shape, values (NaN == NaN) and every byte
    (so -0.0 vs +0.0, NaN payloads and non-canonical bool bytes count).

    ``nan_payload=False`` ignores only the sign/payload of NaNs (their
    positions must still match): for data that mixes NaN and inf, see
    :func:`make_values`.
    """
    if not nan_payload:
        actual, expected = canonical_nans(actual), canonical_nans(expected)
    assert isinstance(actual, np.ndarray), f"not an ndarray: {type(actual)} {context}"
    assert actual.dtype == expected.dtype, (
        f"dtype {actual.dtype} != expected {expected.dtype} {context}")
    assert actual.shape == expected.shape, (
        f"shape {actual.shape} != expected {expected.shape} {context}")
    if actual.dtype != np.bool_:
        np.testing.assert_array_equal(actual, expected, err_msg=context, strict=True)
    problem = _describe_bytes_mismatch(actual, expected)
    assert problem is None, f"{problem}\n{context}"


def compare_with_scipy(name, input, args=(), kwargs=None, output=None,
                       output_shape_for_array=None, threads=None, backend=None,
                       nan_payload=True):
    """Call ``scipy.ndimage.<name>`` and ``medfast.ndimage.<name>`` with the
    same arguments and assert identical results.

    ``output`` is an output spec (see :func:`make_output_pair`); for array
    outputs the shape is ``output_shape_for_array``.  Returns medfast's
    result.
    """
    kwargs = dict(kwargs or {})
    sp_out, mf_out = make_output_pair(output, output_shape_for_array)
    expected = getattr(scipy.ndimage, name)(input, *args, output=sp_out, **kwargs)
    extra = {}
    if threads is not None:
        extra["threads"] = threads
    if backend is not None:
        extra["backend"] = backend
    actual = getattr(medfast.ndimage, name)(input, *args, output=mf_out,
                                            **kwargs, **extra)
    if isinstance(mf_out, np.ndarray):
        assert actual is mf_out, "the output array passed in must be returned"
        expected = sp_out
    assert_same(actual, expected, context=f"{name}{extra}", nan_payload=nan_payload)
    return actual


# ---------------------------------------------------------------------------
# Strategies: building blocks
# ---------------------------------------------------------------------------
def shapes(rank, min_side=1, max_side=7):
    """Shapes of the given rank, sides about uniform in [1, max_side]
    (size-1 axes are common); with min_side=0 a few axes are empty."""
    sizes = list(range(max(min_side, 1), max_side + 1))
    side = st.sampled_from(([0] if min_side == 0 else []) + sizes * 6)
    return st.tuples(*[side] * rank)


def quarter(lo, hi):
    """Multiples of 0.25 in [lo, hi]."""
    return st.integers(math.ceil(4 * lo), math.floor(4 * hi)).map(lambda k: k / 4.0)


def finite(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def nice_factor():
    """A non-zero scale: exact binary fractions (ties) or arbitrary."""
    return st.one_of(st.sampled_from(NICE), st.sampled_from(NICE).map(lambda x: -x),
                     finite(0.1, 3.0), finite(-3.0, -0.1))


def _rotation(n, angle, i, j):
    m = np.eye(n)
    c, s = math.cos(angle), math.sin(angle)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


MATRIX_KINDS = ("identity", "perm_flip_scale", "rotation", "rot90", "shear",
                "quarter", "random", "near_singular", "singular", "diagonal")


@st.composite
def square_linear(draw, n, kinds=MATRIX_KINDS):
    """An (n, n) linear part: rotations, shears, flips, axis permutations,
    anisotropic scaling, near-singular/singular, diagonal, arbitrary."""
    kind = draw(st.sampled_from(kinds))
    if kind == "identity":
        m = np.eye(n)
    elif kind == "perm_flip_scale":
        perm = draw(st.permutations(range(n)))
        scales = [draw(nice_factor()) for _ in range(n)]
        m = np.eye(n)[list(perm)] * np.array(scales)[:, None]
    elif kind == "rotation":
        m = np.eye(n)
        for _ in range(draw(st.integers(1, 2))):
            i, j = draw(st.permutations(range(n)))[:2]
            m = m @ _rotation(n, draw(finite(-math.pi, math.pi)), i, j)
    elif kind == "rot90":
        i, j = draw(st.permutations(range(n)))[:2]
        m = np.round(_rotation(n, draw(st.sampled_from([0.5, 1.0, 1.5])) * math.pi, i, j))
        m = m + 0.0  # no -0.0 from rounding
    elif kind == "shear":
        m = np.eye(n)
        for _ in range(draw(st.integers(1, 2))):
            i, j = draw(st.permutations(range(n)))[:2]
            m[i, j] = draw(st.one_of(quarter(-2, 2), finite(-2, 2)))
    elif kind == "quarter":
        m = np.array([[draw(quarter(-2, 2)) for _ in range(n)] for _ in range(n)])
    elif kind == "random":
        m = np.array([[draw(finite(-2.5, 2.5)) for _ in range(n)] for _ in range(n)])
    elif kind == "near_singular":
        u = np.array([draw(quarter(-2, 2)) for _ in range(n)])
        v = np.array([draw(quarter(-2, 2)) for _ in range(n)])
        m = np.outer(u, v) + np.eye(n) * draw(st.sampled_from([1e-9, -1e-12, 2.0 ** -30]))
    elif kind == "singular":
        m = np.array([[draw(quarter(-2, 2)) for _ in range(n)] for _ in range(n)])
        m[:, draw(st.integers(0, n - 1))] = 0.0
        if draw(st.booleans()):
            m[draw(st.integers(0, n - 1)), :] = 0.0
    else:  # diagonal, zeros allowed (an axis collapsed onto one coordinate)
        m = np.diag([draw(st.one_of(nice_factor(), st.just(0.0), st.just(-1.0)))
                     for _ in range(n)])
    return m


@st.composite
def rect_linear(draw, n, k):
    """An (n, k) linear part for an output of rank k != n."""
    kind = draw(st.sampled_from(["quarter", "random", "columns"]))
    if kind == "quarter":
        return np.array([[draw(quarter(-2, 2)) for _ in range(k)] for _ in range(n)])
    if kind == "random":
        return np.array([[draw(finite(-2.5, 2.5)) for _ in range(k)] for _ in range(n)])
    square = draw(square_linear(max(n, k)))
    return square[:n, :k]


def offset_value(n):
    """One offset / shift component for an axis of length n."""
    return st.one_of(
        quarter(-n - 2, n + 2),
        st.sampled_from([0.0, -0.5, 0.5, n - 0.5, n - 1.0, -1.0, float(n), n + 0.5]),
        finite(-2.0 * n - 3, 2.0 * n + 3),
        quarter(-4, 4).map(lambda x: x + 1e6),
        quarter(-4, 4).map(lambda x: x - 1e6),
    )


def cvals(out_dtype):
    """cval values; NaN only where it can be stored (float outputs: NaN to
    an integer is undefined behaviour in scipy's C cast)."""
    out_dtype = np.dtype(out_dtype)
    if out_dtype == np.bool_:
        return st.sampled_from([0.0, 1.0, 0.5, 255.0])
    base = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -7.5, 0.5, 1000.25, 1e10, -1e10]),
                     finite(-2000, 2000))
    if out_dtype.kind == "f":
        return st.one_of(base, st.just(float("nan")))
    return base


@st.composite
def data_params(draw, rank, min_side=1, max_side=7, dtypes=DTYPES, layouts=LAYOUTS):
    """Parameters of an input array (see :func:`make_input`)."""
    return Case(shape=draw(shapes(rank, min_side, max_side)),
                dtype=draw(st.sampled_from(dtypes)).name,
                layout=draw(st.sampled_from(layouts)),
                seed=draw(st.integers(0, 2 ** 32 - 1)))


@st.composite
def output_and_values(draw, case, out_dtypes=DTYPES, out_layouts=("C", "F", "strided")):
    """Complete ``case`` with: an output spec, the data style (restricted
    so that scipy's result is defined for that output dtype) and cval."""
    in_dtype = np.dtype(case["dtype"])
    kind = draw(st.sampled_from(["none", "dtype", "array"]))
    if kind == "none":
        out_dtype, spec = in_dtype, None
    else:
        out_dtype = draw(st.one_of(st.just(in_dtype), st.sampled_from(out_dtypes)))
        if kind == "dtype":
            spec = ("dtype", out_dtype.name)
        else:
            spec = ("array", out_dtype.name, draw(st.sampled_from(out_layouts)))
    styles = ["int", "quarter", "real", "few"]
    if out_dtype != np.bool_:
        styles.append("extreme")
    if out_dtype.kind == "f" and in_dtype.kind == "f":
        styles += ["nan", "inf", "nonfinite"]
    case["style"] = draw(st.sampled_from(styles))
    case["small_nonneg"] = out_dtype == np.bool_
    case["output"] = spec
    # A NaN cval meeting inf * 0 is the same NaN-payload race as 'nonfinite'.
    case["cval"] = draw(cvals(np.int32 if case["style"] == "inf" else out_dtype))
    return case


def nan_payload_matters(case):
    """False for data mixing NaN and inf (see :func:`make_values`)."""
    return case["style"] != "nonfinite"


# ---------------------------------------------------------------------------
# Strategies: whole calls
# ---------------------------------------------------------------------------
FORMS = ("square", "square", "square", "diagonal_1d", "homogeneous",
         "homogeneous_short", "rectangular")


@st.composite
def affine_cases(draw, ranks=(2, 3), max_side=7, dtypes=DTYPES, out_dtypes=DTYPES,
                 layouts=LAYOUTS, kinds=MATRIX_KINDS, forms=FORMS, linear=None,
                 in_shapes=None, out_shapes=None, orders=(0, 1)):
    """Arguments of an ``affine_transform`` call (see :func:`affine_call`).

    ``linear``: an optional strategy ``rank -> strategy of (rank, rank)
    arrays`` replacing :func:`square_linear`; ``in_shapes``/``out_shapes``
    optional strategies of input/output shapes (rank 3 only).
    """
    rank = draw(st.sampled_from(ranks))
    case = draw(data_params(rank, 1, max_side, dtypes, layouts))
    if in_shapes is not None:
        case["shape"] = draw(in_shapes)
    form = draw(st.sampled_from(forms))
    if form == "rectangular":
        out_rank = draw(st.sampled_from([k for k in (1, 2, 3)
                                         if k != rank and k != rank + 1]))
        linear = draw(rect_linear(rank, out_rank))
    elif form == "diagonal_1d":
        out_rank = rank
        linear = np.array([draw(nice_factor()) for _ in range(rank)])
    else:
        out_rank = rank
        linear = draw(square_linear(rank, kinds) if linear is None else linear(rank))
    if out_rank == rank and draw(st.booleans()):
        out_shape = None
    elif out_shapes is not None and out_rank == rank:
        out_shape = draw(out_shapes)
    else:
        out_shape = draw(shapes(out_rank, 0, max_side))
    offset_kind = draw(st.sampled_from(["centered", "centered", "scalar", "per_axis"]))
    if offset_kind == "centered":
        # The output centre maps onto the input centre (as in practice), so
        # most output points sample inside the input, plus a small shift.
        c_out = (np.array(out_shape if out_shape is not None else case["shape"],
                          dtype=np.float64) - 1) / 2
        c_in = (np.array(case["shape"], dtype=np.float64) - 1) / 2
        m = np.diag(linear) if linear.ndim == 1 else linear
        offset = c_in - m @ c_out
        if linear.ndim == 1:
            offset = c_in - linear * c_out
        offset = (offset + np.array([draw(st.one_of(quarter(-1, 1), finite(-1, 1)))
                                     for _ in range(rank)])).tolist()
    elif offset_kind == "scalar":
        offset = draw(offset_value(min(case["shape"])))
    else:
        offset = [draw(offset_value(n)) for n in case["shape"]]
    if form == "homogeneous":
        matrix = np.eye(rank + 1)
        matrix[:rank, :rank] = linear
        matrix[:rank, rank] = np.broadcast_to(offset, (rank,))
        offset = draw(st.sampled_from([0.0, 123.0]))  # ignored by both
    elif form == "homogeneous_short":
        matrix = np.zeros((rank, rank + 1))
        matrix[:, :rank] = linear
        matrix[:, rank] = np.broadcast_to(offset, (rank,))
        offset = 0.0
    else:
        matrix = linear
    case.update(matrix=matrix.tolist(), offset=offset, output_shape=out_shape,
                order=draw(st.sampled_from(orders)), mode=draw(st.sampled_from(MODES)))
    draw_prefilter(draw, case)
    draw(output_and_values(case, out_dtypes))
    if case["output"] is not None and case["output"][0] == "array" and out_shape is None:
        case["output_shape_for_array"] = tuple(case["shape"])
    else:
        case["output_shape_for_array"] = out_shape
    return case


@st.composite
def aligned_linear(draw, n):
    """3-D matrices whose output rows run along the input's last axis
    (m[0, 2] == m[1, 2] == 0): medfast's aligned-row kernels.  The last
    column scales from strong down- to up-sampling (long rows skip the
    partial-product buffers); m[2, :2] == 0 makes every row of an output
    plane reuse the same last-axis tables."""
    assert n == 3
    m = draw(square_linear(2, ("identity", "rotation", "rot90", "shear",
                               "perm_flip_scale", "random", "quarter")))
    out = np.zeros((3, 3))
    out[:2, :2] = m
    out[2, 2] = draw(st.one_of(st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 9.0, 16.0,
                                                -1.0, -3.0, 0.0]),
                               finite(-12, 12)))
    if draw(st.booleans()):
        out[2, :2] = [draw(st.one_of(quarter(-1, 1), finite(-1, 1))) for _ in range(2)]
    return out


def draw_prefilter(draw, case):
    """Spline orders 2-5 draw ``prefilter`` (True: scipy's default)."""
    if case["order"] > 1:
        case["prefilter"] = draw(st.booleans())


def spline_kwargs(case):
    """``prefilter`` when the case drew one."""
    return {"prefilter": case["prefilter"]} if "prefilter" in case else {}


def affine_call(case, threads=None, backend=None):
    """Run the case through scipy and medfast and compare."""
    input = make_input(case)
    kwargs = dict(offset=case["offset"], order=case["order"], mode=case["mode"],
                  cval=case["cval"], **spline_kwargs(case))
    if case["output_shape"] is not None:
        kwargs["output_shape"] = case["output_shape"]
    return compare_with_scipy("affine_transform", input, (np.array(case["matrix"]),),
                              kwargs, case["output"], case["output_shape_for_array"],
                              threads, backend, nan_payload_matters(case))


@st.composite
def map_coordinates_cases(draw, ranks=(2, 3), max_side=7, dtypes=DTYPES,
                          out_dtypes=DTYPES, layouts=LAYOUTS, orders=(0, 1)):
    """Arguments of a ``map_coordinates`` call."""
    rank = draw(st.sampled_from(ranks))
    case = draw(data_params(rank, 1, max_side, dtypes, layouts))
    out_rank = draw(st.integers(1, 3))
    case["coords_shape"] = (rank,) + draw(shapes(out_rank, 0, 6))
    case["coords_dtype"] = draw(st.sampled_from(
        ["float64", "float64", "float32", "int64", "int32", "uint8"]))
    case["coords_style"] = draw(st.sampled_from(["quarter", "real", "int", "big", "edges"]))
    case["coords_layout"] = draw(st.sampled_from(["C", "F", "strided"]))
    case["order"] = draw(st.sampled_from(orders))
    case["mode"] = draw(st.sampled_from(MODES))
    draw_prefilter(draw, case)
    draw(output_and_values(case, out_dtypes))
    case["output_shape_for_array"] = case["coords_shape"][1:]
    return case


def make_coordinates(case):
    """The coordinate array of a map_coordinates case."""
    rng = np.random.default_rng(case["seed"] + 1)
    shape, style = case["coords_shape"], case["coords_style"]
    n = np.array(case["shape"], dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))
    if style == "quarter":
        c = np.floor(rng.uniform(-2, 1, size=shape) * 4 + rng.uniform(0, 1, size=shape)
                     * (n + 2) * 4) / 4
    elif style == "real":
        c = rng.uniform(-3, 1, size=shape) + rng.uniform(0, 1, size=shape) * (n + 3)
    elif style == "int":
        c = rng.integers(-2, 3, size=shape) + np.floor(rng.uniform(0, 1, size=shape) * n)
    elif style == "big":
        c = (rng.integers(-8, 9, size=shape) / 4.0
             + rng.choice([-1e6, 1e6, 12345.0], size=shape))
    else:  # exact boundaries and ties
        c = np.empty(shape)
        for h, m in enumerate(case["shape"]):
            table = np.array([0.0, -0.5, m - 1.0, m - 0.5, -1.0, m, 0.5, m - 1.5])
            c[h] = table[rng.integers(0, table.size, size=shape[1:])]
    dtype = np.dtype(case["coords_dtype"])
    if dtype.kind in "iu":
        c = np.round(c)
        if dtype.kind == "u":
            c = np.abs(c)
        c = np.clip(c, np.iinfo(dtype).min, np.iinfo(dtype).max)
    return with_layout(c.astype(dtype), case["coords_layout"], case["seed"])


def map_coordinates_call(case, threads=None, backend=None):
    input = make_input(case)
    coords = make_coordinates(case)
    kwargs = dict(order=case["order"], mode=case["mode"], cval=case["cval"],
                  **spline_kwargs(case))
    return compare_with_scipy("map_coordinates", input, (coords,), kwargs,
                              case["output"], case["output_shape_for_array"],
                              threads, backend, nan_payload_matters(case))


@st.composite
def zoom_cases(draw, ranks=(2, 3), max_side=7, dtypes=DTYPES, out_dtypes=DTYPES,
               layouts=LAYOUTS, orders=(0, 1)):
    """Arguments of a ``zoom`` call (grid_mode and prefilter included)."""
    rank = draw(st.sampled_from(ranks))
    case = draw(data_params(rank, 1, max_side, dtypes, layouts))
    factor = st.one_of(st.sampled_from([0.25, 0.5, 2 / 3, 1.0, 1.25, 1.5, 2.0, 3.0]),
                       finite(0.1, 3.5))
    case["zoom"] = (draw(factor) if draw(st.booleans())
                    else [draw(factor) for _ in range(rank)])
    case["grid_mode"] = draw(st.booleans())
    case["prefilter"] = draw(st.booleans())
    case["order"] = draw(st.sampled_from(orders))
    case["mode"] = draw(st.sampled_from(MODES))
    draw(output_and_values(case, out_dtypes))
    zooms = np.broadcast_to(case["zoom"], (rank,))
    case["output_shape_for_array"] = tuple(int(round(n * z))
                                           for n, z in zip(case["shape"], zooms))
    return case


def zoom_call(case, threads=None, backend=None):
    input = make_input(case)
    kwargs = dict(order=case["order"], mode=case["mode"], cval=case["cval"],
                  prefilter=case["prefilter"], grid_mode=case["grid_mode"])
    return compare_with_scipy("zoom", input, (case["zoom"],), kwargs, case["output"],
                              case["output_shape_for_array"], threads, backend,
                              nan_payload_matters(case))


@st.composite
def shift_cases(draw, ranks=(2, 3), max_side=7, dtypes=DTYPES, out_dtypes=DTYPES,
                layouts=LAYOUTS, orders=(0, 1)):
    """Arguments of a ``shift`` call."""
    rank = draw(st.sampled_from(ranks))
    case = draw(data_params(rank, 1, max_side, dtypes, layouts))
    if draw(st.booleans()):
        case["shift"] = draw(offset_value(min(case["shape"])))
    else:
        case["shift"] = [draw(offset_value(n)) for n in case["shape"]]
    case["order"] = draw(st.sampled_from(orders))
    case["mode"] = draw(st.sampled_from(MODES))
    draw_prefilter(draw, case)
    draw(output_and_values(case, out_dtypes))
    case["output_shape_for_array"] = tuple(case["shape"])
    return case


def shift_call(case, threads=None, backend=None):
    input = make_input(case)
    kwargs = dict(order=case["order"], mode=case["mode"], cval=case["cval"],
                  **spline_kwargs(case))
    return compare_with_scipy("shift", input, (case["shift"],), kwargs, case["output"],
                              case["output_shape_for_array"], threads, backend,
                              nan_payload_matters(case))


#: (strategy, runner) pairs for each resampling function.
ALL_CALLS = {
    "affine_transform": (affine_cases, affine_call),
    "map_coordinates": (map_coordinates_cases, map_coordinates_call),
    "zoom": (zoom_cases, zoom_call),
    "shift": (shift_cases, shift_call),
}

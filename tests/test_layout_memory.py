"""Memory layouts and memory use: Fortran-ordered, transposed and strided
inputs are read in place (same results as their C-contiguous copies, no
input copy), the only large allocation is the output; the default backend
never imports Numba; show_config()/config() report the build."""
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import scipy.ndimage

import medfast
import medfast.ndimage as mf
from medfast._config import config
from strategies import BACKENDS, LAYOUTS, assert_same, with_layout

KIB = 1024


def rotation3(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


CALLS = {
    "rotation": ("affine_transform", (rotation3(0.3),), {"offset": [0.5, -3.0, 4.0]}),
    "general": ("affine_transform", (np.array([[0.9, 0.2, 0.1], [0.1, 1.1, 0.3],
                                               [0.2, 0.1, 0.8]]),), {"offset": -1.0}),
    "diagonal": ("affine_transform", (np.diag([0.8, 1.25, -1.0]),),
                 {"offset": [1.0, 0.5, 20.0]}),
    "diagonal_1d": ("affine_transform", (np.array([0.8, 1.25, 0.5]),), {}),
    "permutation": ("affine_transform", (np.eye(3)[[2, 0, 1]],), {}),
    "zoom": ("zoom", (0.75,), {}),
    "shift": ("shift", ([0.5, -1.5, 2.25],), {}),
}


def call(name, a, backend="cython", **extra):
    fn, args, kwargs = CALLS[name]
    return getattr(mf, fn)(a, *args, **kwargs, **extra, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_layouts_match_c_contiguous_copy_and_scipy(name, layout, order, backend):
    rng = np.random.default_rng(0)
    data = (rng.random((12, 13, 14)) * 1000).astype(np.float32)
    view = with_layout(data, layout, rng_seed=3)
    c_copy = np.ascontiguousarray(view)
    got = call(name, view, backend=backend, order=order, mode="mirror")
    assert_same(got, call(name, c_copy, backend=backend, order=order, mode="mirror"))
    fn, args, kwargs = CALLS[name]
    assert_same(got, getattr(scipy.ndimage, fn)(view, *args, **kwargs, order=order,
                                                mode="mirror"))
    assert got.flags.c_contiguous


@pytest.mark.parametrize("layout", LAYOUTS)
def test_map_coordinates_layouts(layout):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 1000, size=(9, 10, 11)).astype(np.uint16)
    coords = with_layout(rng.uniform(-1, 11, size=(3, 5, 6, 7)), layout, rng_seed=2)
    view = with_layout(data, layout, rng_seed=4)
    for order in (0, 1):
        got = mf.map_coordinates(view, coords, order=order)
        assert_same(got, scipy.ndimage.map_coordinates(view, coords, order=order))
        assert_same(got, mf.map_coordinates(np.ascontiguousarray(view),
                                            np.ascontiguousarray(coords), order=order))


def test_transposed_input_equals_transposing_the_matrix():
    """a.T resampled with M equals a resampled with the axis-permuted M
    (views cost nothing): exactly for order 0 (M has exact binary entries,
    so the permuted coordinate sums round identically), to the last bit
    for order 1 (the corners are summed in a different order)."""
    rng = np.random.default_rng(2)
    a = rng.random((10, 11, 12))
    m = np.array([[0.5, 0.25, 0.0], [0.0, 1.0, 0.5], [0.25, 0.0, 0.75]])
    p = [2, 1, 0]
    for order in (0, 1):
        lhs = mf.affine_transform(a.T, m, order=order, output_shape=(12, 11, 10))
        rhs = mf.affine_transform(a, m[p][:, p], order=order, output_shape=(10, 11, 12))
        if order == 0:
            assert_same(lhs, np.ascontiguousarray(rhs.T))
        else:
            np.testing.assert_allclose(lhs, rhs.T, rtol=1e-15, atol=1e-15)


# ---------------------------------------------------------------------------
# Peak memory: the output and nothing input-sized
# ---------------------------------------------------------------------------
def peak_traced(fn):
    """(result, peak bytes traced by tracemalloc during fn())."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


MEMORY_LAYOUTS = {
    "C": lambda a: a,
    "F": np.asfortranarray,
    "strided": lambda a: np.pad(a, ((0, 0), (0, 0), (0, 64)))[::-1, :, ::2],
    "transposed": lambda a: np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0),
}


@pytest.mark.parametrize("layout", sorted(MEMORY_LAYOUTS))
@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("order", [0, 1])
def test_peak_memory_is_the_output(name, layout, order):
    """For a 64^3 float32 input with output=None the peak traced memory is
    at most the output plus 5% and 64 KiB: the input is not copied, nor
    converted, whatever its layout."""
    rng = np.random.default_rng(0)
    a = MEMORY_LAYOUTS[layout](rng.random((64, 64, 64), dtype=np.float32))
    assert a.shape[0] == 64 and (layout == "C") == a.flags.c_contiguous
    call(name, a[:4, :4, :4], order=order)  # warm-up (imports, caches)
    out, peak = peak_traced(lambda: call(name, a, order=order))
    assert peak <= out.nbytes * 1.05 + 64 * KIB, (
        f"peak {peak / KIB:.0f} KiB for a {out.nbytes / KIB:.0f} KiB output")


@pytest.mark.parametrize("layout", sorted(MEMORY_LAYOUTS))
def test_peak_memory_map_coordinates(layout):
    """map_coordinates with float64 coordinates: the coordinates are read in
    place too."""
    rng = np.random.default_rng(0)
    a = MEMORY_LAYOUTS[layout](rng.random((64, 64, 64), dtype=np.float32))
    coords = rng.uniform(0, 63, size=(3, 32, 32, 32))
    mf.map_coordinates(a, coords[:, :2, :2, :2], order=1)
    out, peak = peak_traced(lambda: mf.map_coordinates(a, coords, order=1))
    assert peak <= out.nbytes * 1.05 + 64 * KIB


@pytest.mark.parametrize("layout", sorted(MEMORY_LAYOUTS))
def test_peak_memory_with_output_array(layout):
    """With a caller-provided output array nothing large is allocated."""
    rng = np.random.default_rng(0)
    a = MEMORY_LAYOUTS[layout](rng.random((64, 64, 64), dtype=np.float32))
    out = np.empty((64, 64, 64), np.float32)
    call("rotation", a[:4, :4, :4], order=1)
    result, peak = peak_traced(lambda: call("rotation", a, order=1, output=out))
    assert result is out
    assert peak <= 64 * KIB


def test_bool_input_gives_bool_output_without_conversion():
    """bool data is read as bytes in place: bool result, no input copy."""
    mask = np.random.default_rng(0).random((64, 64, 64)) > 0.5
    view = mask[::-1, :, ::2]
    call("rotation", view[:4, :4, :4], order=0)
    for m in (mask, view, np.asfortranarray(mask)):
        for order in (0, 1):
            out, peak = peak_traced(lambda m=m, order=order: call("rotation", m, order=order))
            assert out.dtype == np.bool_
            assert peak <= out.nbytes * 1.05 + 64 * KIB
            assert_same(out, scipy.ndimage.affine_transform(
                m, rotation3(0.3), offset=[0.5, -3.0, 4.0], order=order))


# ---------------------------------------------------------------------------
# Import hygiene and configuration report
# ---------------------------------------------------------------------------
def test_default_backend_does_not_import_numba():
    """A fresh interpreter: resampling with the default backend never
    imports (let alone JIT-compiles) Numba."""
    code = (
        "import sys, numpy as np, medfast\n"
        "a = np.zeros((8, 8, 8), np.float32)\n"
        "medfast.ndimage.affine_transform(a, np.eye(3), order=1)\n"
        "medfast.ndimage.affine_transform(a, [[1, .1, 0], [0, 1, 0], [0, 0, 1]], order=0)\n"
        "medfast.ndimage.affine_transform(a[0], np.eye(2), order=1, backend='cython')\n"
        "medfast.ndimage.map_coordinates(a, np.ones((3, 2, 2)), order=1)\n"
        "medfast.ndimage.zoom(a, 1.5, order=1)\n"
        "medfast.ndimage.shift(a[0], 0.5, order=0)\n"
        "print('numba' in sys.modules)\n")
    env = {k: v for k, v in __import__("os").environ.items()
           if k != "MEDFAST_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_show_config_reports_openmp_and_threads(capsys):
    medfast.show_config()
    text = capsys.readouterr().out
    assert "OpenMP" in text
    assert "threads" in text
    assert medfast.__version__ in text


def test_config_dict():
    c = config()
    assert {"openmp", "threads", "version", "cython_kernels", "numba",
            "available_cores"} <= set(c)
    assert isinstance(c["openmp"], bool)
    assert c["threads"] == medfast.get_num_threads()
    from medfast import _kernels
    assert c["openmp"] == bool(_kernels.HAVE_OPENMP)
    assert c["cython_kernels"] is True

"""Threading: results independent of the thread count, thread-count
configuration (argument, set_num_threads, MEDFAST_NUM_THREADS, affinity),
the GIL released while resampling, concurrent callers."""
import os
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import medfast
import medfast.ndimage as mf
from medfast._config import config
from strategies import BACKENDS, affine_call, affine_cases, assert_same, examples


def rotation3(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def calls(a):
    """A varied set of calls on ``a`` (3-D): every kernel path."""
    coords = np.random.default_rng(1).uniform(-2, 20, size=(3, 7, 9, 11))
    return [
        ("affine_transform", (rotation3(0.3),), {"offset": [0.5, -2.0, 3.0]}),
        ("affine_transform", (np.array([[0.9, 0.2, 0.1], [0.1, 1.1, 0.3],
                                        [0.2, 0.1, 0.8]]),), {"offset": 1.25}),
        ("affine_transform", (np.diag([0.7, 1.3, 2.0]),), {"offset": [1.0, -0.5, 2.0]}),
        ("affine_transform", (np.array([0.7, 1.3, 0.5]),), {"output_shape": (13, 9, 40)}),
        ("affine_transform", (np.eye(3)[[0, 2, 1]],), {"output_shape": (17, 29, 23)}),
        ("affine_transform", (rotation3(0.2)[:, :2],), {"output_shape": (21, 25)}),
        ("map_coordinates", (coords,), {}),
        ("zoom", (1.3,), {}),
        ("zoom", ([0.5, 2.0, 0.9],), {"grid_mode": True, "mode": "grid-constant"}),
        ("shift", ([0.5, -1.5, 2.25],), {}),
    ]


# Numba: one dtype (each dtype is another JIT compilation).
DTYPE_BACKENDS = [pytest.param(d, "cython", id=f"{np.dtype(d).name}-cython")
                  for d in (np.float32, np.uint8, np.int16, np.float64)]
DTYPE_BACKENDS += [pytest.param(np.float32, b.values[0], id=f"float32-{b.id}",
                                marks=b.marks) for b in BACKENDS if b.id == "numba"]


@pytest.mark.parametrize("dtype,backend", DTYPE_BACKENDS)
@pytest.mark.parametrize("mode", ["constant", "reflect", "grid-wrap"])
@pytest.mark.parametrize("order", [0, 1])
def test_results_do_not_depend_on_thread_count(order, mode, dtype, backend):
    """threads=1, 2, 3, 5, 16 give identical bytes (rows split unevenly,
    more threads than cores and than some outputs' rows)."""
    rng = np.random.default_rng(0)
    a = (rng.random((17, 23, 29)) * 200).astype(dtype)
    for name, args, kwargs in calls(a):
        kwargs = dict(kwargs, order=order, cval=-1.0)
        kwargs.setdefault("mode", mode)
        one = getattr(mf, name)(a, *args, **kwargs, threads=1, backend=backend)
        for threads in (2, 3, 5, 16):
            many = getattr(mf, name)(a, *args, **kwargs, threads=threads, backend=backend)
            assert_same(many, one, context=f"{name} threads={threads}")
    b = a[0]
    one = mf.affine_transform(b, rotation3(0.3)[1:, 1:], order=order, threads=1,
                              backend=backend)
    assert_same(mf.affine_transform(b, rotation3(0.3)[1:, 1:], order=order, threads=2,
                                    backend=backend), one)


@settings(max_examples=examples(60))
@given(case=affine_cases(max_side=12), threads=st.sampled_from([2, 3, 4]))
def test_any_thread_count_matches_scipy(case, threads):
    """More threads than cores, on bigger random cases: still scipy's bytes."""
    affine_call(case, threads=threads, backend="cython")


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_more_threads_than_rows(threads):
    a = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    ref = mf.affine_transform(a, rotation3(0.1), output_shape=(1, 1, 5), order=1,
                              threads=1)
    got = mf.affine_transform(a, rotation3(0.1), output_shape=(1, 1, 5), order=1,
                              threads=threads)
    assert_same(got, ref)


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
def test_set_and_get_num_threads(monkeypatch):
    monkeypatch.delenv("MEDFAST_NUM_THREADS", raising=False)
    medfast.set_num_threads(3)
    assert medfast.get_num_threads() == 3
    assert config()["threads"] == 3
    medfast.set_num_threads(np.int32(1))
    assert medfast.get_num_threads() == 1
    medfast.set_num_threads(None)
    assert medfast.get_num_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-2, ValueError),
                                   (True, TypeError), (1.5, TypeError),
                                   ("4", TypeError)])
def test_set_num_threads_rejects_bad_values(n, exc):
    medfast.set_num_threads(2)
    with pytest.raises(exc, match=r"set_num_threads\(n\) must be a positive integer"):
        medfast.set_num_threads(n)
    assert medfast.get_num_threads() == 2  # unchanged


def test_default_is_the_affinity_mask(monkeypatch):
    """All cores this process may run on (not os.cpu_count())."""
    monkeypatch.delenv("MEDFAST_NUM_THREADS", raising=False)
    assert medfast.get_num_threads() == len(os.sched_getaffinity(0))
    assert config()["available_cores"] == len(os.sched_getaffinity(0))


def test_default_follows_a_changed_affinity_mask(monkeypatch):
    monkeypatch.delenv("MEDFAST_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert medfast.get_num_threads() == 3


@pytest.mark.parametrize("value,expected", [("1", 1), ("3", 3), (" 2 ", 2), ("64", 64)])
def test_environment_variable(monkeypatch, value, expected):
    monkeypatch.setenv("MEDFAST_NUM_THREADS", value)
    assert medfast.get_num_threads() == expected
    a = np.ones((4, 5, 6), np.float32)
    assert_same(mf.zoom(a, 1.5, order=1), mf.zoom(a, 1.5, order=1, threads=1))


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_environment_variable_means_default(monkeypatch, value):
    monkeypatch.setenv("MEDFAST_NUM_THREADS", value)
    assert medfast.get_num_threads() == len(os.sched_getaffinity(0))


def test_set_num_threads_overrides_environment(monkeypatch):
    monkeypatch.setenv("MEDFAST_NUM_THREADS", "3")
    medfast.set_num_threads(1)
    assert medfast.get_num_threads() == 1
    medfast.set_num_threads(None)
    assert medfast.get_num_threads() == 3


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5", "1e3", "two"])
def test_invalid_environment_variable(monkeypatch, value):
    """A clear ValueError naming the variable and its value, also from a
    call using the default; an explicit threads= argument still works."""
    monkeypatch.setenv("MEDFAST_NUM_THREADS", value)
    with pytest.raises(ValueError, match=r"MEDFAST_NUM_THREADS must be a positive "
                                         rf"integer, got '{value}'"):
        medfast.get_num_threads()
    a = np.ones((4, 5, 6), np.float32)
    with pytest.raises(ValueError, match=r"MEDFAST_NUM_THREADS"):
        mf.affine_transform(a, np.eye(3), order=1)
    mf.affine_transform(a, np.eye(3), order=1, threads=2)


# ---------------------------------------------------------------------------
# GIL and concurrency
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_kernels_release_the_gil(backend):
    """While a large resample runs in a background thread (threads=1), the
    main thread keeps executing Python code.

    With a 0.1 ms switch interval, a call that held the GIL would leave the
    main loop a few switch intervals' worth of iterations (measured: ~6000
    for a GIL-holding builtin); a released GIL gives it the whole call
    (~0.2 s here: millions of iterations, and still hundreds of thousands
    on a machine 10x slower or with a single core)."""
    rng = np.random.default_rng(0)
    big = rng.random((128, 128, 128), dtype=np.float32)
    kwargs = dict(output_shape=(224, 224, 224), order=1, threads=1, backend=backend)
    # warm up (JIT compilation for numba holds the GIL)
    mf.affine_transform(big[:8, :8, :8], rotation3(0.3), order=1, threads=1,
                        backend=backend)
    started, done = threading.Event(), threading.Event()
    result = {}

    def work():
        started.set()
        result["out"] = mf.affine_transform(big, rotation3(0.3), **kwargs)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        count = 0
        while not done.is_set():
            count += 1
        worker.join()
    finally:
        sys.setswitchinterval(old)
    assert result["out"].shape == (224, 224, 224)
    assert count > 200_000, f"main thread ran only {count} iterations"


def test_concurrent_calls_from_python_threads():
    """Several Python threads calling medfast at once (each multithreaded)
    get the same results as sequential calls."""
    rng = np.random.default_rng(0)
    inputs = [(rng.random((20, 21, 22)) * 100).astype(np.float32) for _ in range(4)]
    jobs = [(a, rotation3(0.1 * (i + 1))) for i, a in enumerate(inputs)]
    expected = [mf.affine_transform(a, m, order=1, threads=1) for a, m in jobs]
    results = [None] * len(jobs)
    errors = []

    def run(i):
        try:
            a, m = jobs[i]
            for _ in range(5):
                results[i] = mf.affine_transform(a, m, order=1, threads=2)
                assert_same(results[i], expected[i])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors

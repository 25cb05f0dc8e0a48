"""The resampling core under hostile arguments and concurrency.

* Output arrays the kernels cannot write in place (read-only, byte-swapped,
  misaligned, elements sharing memory) and outputs sharing memory with the
  input, the coordinates or the offset: a clear error, or scipy's bytes.
* Arrays of more than 2**31 elements (a sparse memory-mapped file: 2 GiB of
  address space, a few pages of memory) and output rows longer than the
  kernels' row segment.
* Outputs too large to allocate, requested through broadcast coordinates.
* Many Python threads calling at once; calls in processes forked after the
  parent started OpenMP threads (GNU OpenMP would deadlock there) and in
  spawned processes; ``threads=`` capped at the available cores.
"""
import multiprocessing
import os
import threading
import warnings

import numpy as np
import pytest
import scipy.ndimage
from numpy.lib.stride_tricks import as_strided

import medfast
import medfast.ndimage as mf
from medfast import _threads
from strategies import assert_same

#: Seconds a child process gets before the test counts it as deadlocked.
CHILD_TIMEOUT = 30


def rotation3(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def in_plane(angle, z=1.0):
    """A rotation about the last axis: the kernels' aligned-row path."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, z]])


GENERAL = np.array([[0.9, 0.2, 0.1], [0.1, 1.1, 0.3], [0.2, 0.1, 0.8]])


@pytest.fixture
def native_only(monkeypatch):
    """Fail the test if a call is handed to scipy."""
    def refuse():
        raise AssertionError("the call was delegated to scipy")
    monkeypatch.setattr(mf, "_scipy", refuse)


@pytest.fixture
def many_cores(monkeypatch):
    """Pretend 8 cores are available, so that threads= up to 8 is not capped."""
    monkeypatch.setattr(_threads, "available_cores", lambda: 8)


# ---------------------------------------------------------------------------
# Output arrays the kernels cannot write directly
# ---------------------------------------------------------------------------
SHAPE = (5, 6, 7)
COORDS = np.random.default_rng(3).uniform(-1, 8, size=(3,) + SHAPE)

# (function, arguments after the input): every kernel path
FUNCTIONS = {
    "general": ("affine_transform", (GENERAL,), {"offset": 0.5}),
    "aligned": ("affine_transform", (in_plane(0.3),), {"offset": [0.5, -1, 2]}),
    "separable": ("affine_transform", (np.diag([0.8, 1.2, 0.7]),), {"offset": 0.25}),
    "coordinates": ("map_coordinates", (COORDS,), {}),
    "shift": ("shift", ([0.5, -1.25, 2.0],), {}),
}


def output_view(kind, dtype, shape=SHAPE):
    """(base bytes, a view of them of ``shape``) laid out as ``kind``; the
    base starts filled with 0xAB so that stray writes show."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    base = np.full(8 * n * dtype.itemsize + 64, 0xAB, np.uint8)
    if kind == "reversed":
        big = base[:8 * n * dtype.itemsize].view(dtype).reshape(2 * shape[0], shape[1], 4 * shape[2])
        return base, big[::-2, :, ::-4]
    if kind == "misaligned":
        return base, base[1:1 + n * dtype.itemsize].view(dtype).reshape(shape)
    if kind == "big-endian":
        return base, base[:n * dtype.itemsize].view(dtype.newbyteorder(">")).reshape(shape)
    if kind == "misaligned-big-endian-reversed":
        flat = base[3:3 + n * dtype.itemsize].view(dtype.newbyteorder(">"))
        return base, flat.reshape(shape)[::-1, :, ::-1]
    if kind == "zero-stride":  # every output plane is the same memory
        return base, as_strided(base.view(dtype), shape,
                                (0, shape[2] * dtype.itemsize, dtype.itemsize),
                                writeable=True)
    if kind == "interleaved":  # rows overlapping their neighbours
        return base, as_strided(base[16:].view(dtype), shape,
                                (3 * dtype.itemsize, 2 * dtype.itemsize, dtype.itemsize),
                                writeable=True)
    raise ValueError(kind)


OUTPUT_KINDS = ["reversed", "misaligned", "big-endian", "misaligned-big-endian-reversed",
                "zero-stride", "interleaved"]


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_awkward_output_arrays_get_scipys_bytes_natively(kind, order, dtype, native_only):
    """Byte-swapped, misaligned, reversed and self-overlapping output arrays:
    the native kernels run (through an aligned temporary where needed) and
    every byte of the memory around the output, untouched gaps and
    overlapping elements included, ends up as scipy leaves it (scipy writes
    elements in C order, so the last write wins where they share memory)."""
    a = (np.random.default_rng(0).random(SHAPE) * 300 - 100).astype(np.float32)
    for name, (fn, args, kwargs) in FUNCTIONS.items():
        base, out = output_view(kind, dtype)
        ref_base, ref_out = output_view(kind, dtype)
        assert getattr(mf, fn)(a, *args, output=out, order=order, **kwargs) is out
        getattr(scipy.ndimage, fn)(a, *args, output=ref_out, order=order, **kwargs)
        assert base.tobytes() == ref_base.tobytes(), f"{name}: bytes differ from scipy's"


@pytest.mark.parametrize("axis", [0, 1])
def test_self_overlapping_output_written_in_parallel(axis, many_cores):
    """Output rows sharing memory (a zero stride) with many rows and threads:
    scipy's bytes every time (the kernels' rows finish in any order, so
    writing them in place would leave whichever row came last)."""
    a = np.random.default_rng(1).random((80, 100, 40))
    shape, strides = [64, 65, 32], [65 * 32 * 8, 32 * 8, 8]
    strides[axis] = 0
    for _ in range(3):
        bases = np.zeros(65 * 64 * 32), np.zeros(65 * 64 * 32)
        outs = [as_strided(b, shape, strides, writeable=True) for b in bases]
        # every output voxel inside the input: rows differ everywhere
        mf.affine_transform(a, GENERAL / 2, output=outs[0], order=1, threads=4)
        scipy.ndimage.affine_transform(a, GENERAL / 2, output=outs[1], order=1)
        assert bases[0].tobytes() == bases[1].tobytes()


def test_misaligned_output_is_never_written_through_a_misaligned_pointer(monkeypatch):
    """The kernels receive an aligned native array whatever output is given."""
    from medfast import _kernels
    seen = []

    def spy(real):
        def kernel(*args):
            seen.extend(x for x in args if isinstance(x, np.ndarray) and x.ndim == 3)
            return real(*args)
        return kernel

    for name in ("affine", "coordinates", "separable"):
        monkeypatch.setattr(_kernels, name, spy(getattr(_kernels, name)))
    a = np.random.default_rng(0).random(SHAPE)
    for kind in OUTPUT_KINDS[1:]:
        _, out = output_view(kind, np.float64)
        _, misaligned_input = output_view("misaligned", np.float64)
        misaligned_input[...] = a
        for fn, args, kwargs in FUNCTIONS.values():
            getattr(mf, fn)(misaligned_input, *args, output=out, order=1, **kwargs)
    assert seen and all(x.flags.aligned and x.dtype.isnative for x in seen)


@pytest.mark.parametrize("order", [0, 3])
@pytest.mark.parametrize("kind", ["flag", "broadcast", "bytes", "memmap"])
def test_read_only_outputs_are_refused_and_untouched(kind, order, tmp_path):
    """Every function, native (order 0) or delegated (order 3): ValueError
    naming the output, and its memory unchanged."""
    if kind == "flag":
        out = np.full(SHAPE, 7.0)
        out.flags.writeable = False
    elif kind == "broadcast":
        out = np.broadcast_to(np.full(SHAPE[-1], 7.0), SHAPE)
    elif kind == "bytes":
        out = np.frombuffer(np.full(SHAPE, 7.0).tobytes()).reshape(SHAPE)
    else:
        np.full(SHAPE, 7.0).tofile(tmp_path / "out.raw")
        out = np.memmap(tmp_path / "out.raw", np.float64, "r", shape=SHAPE)
    a = np.random.default_rng(0).random(SHAPE)
    for fn, args, kwargs in FUNCTIONS.values():
        with pytest.raises(ValueError, match=r"^output: array is read-only$"):
            getattr(mf, fn)(a, *args, output=out, order=order, **kwargs)
    with pytest.raises(ValueError, match=r"^output: array is read-only$"):
        mf.zoom(a, 1.0, output=out, order=order)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("output", [[1, 2], "nonsense", 5, True, (3,), bytearray(8),
                                    memoryview(b"abcd"), {}, [("a", "f4")], "S4",
                                    "M8[s]"], ids=lambda v: type(v).__name__ + ":" + str(v)[:12])
def test_outputs_that_are_not_arrays_or_real_dtypes(output):
    with pytest.raises(TypeError, match=r"^output"):
        mf.affine_transform(np.ones(SHAPE), np.eye(3), output=output, order=1)


# ---------------------------------------------------------------------------
# Outputs sharing memory with what the kernels read
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("order", [0, 1])
def test_output_overlapping_the_input_by_part(order):
    """Input and output windows of one buffer, a few elements apart (and
    the output a differently typed view of the input's bytes): the result
    is the unaliased one (README: medfast reads a copy; scipy would read
    values it has already overwritten)."""
    n = int(np.prod(SHAPE))
    values = np.random.default_rng(1).random(n + 9) * 100
    for fn, args, kwargs in FUNCTIONS.values():
        buf = values.copy()
        a, out = buf[:n].reshape(SHAPE), buf[9:].reshape(SHAPE)
        expected = getattr(mf, fn)(a.copy(), *args, order=order, **kwargs)
        getattr(mf, fn)(a, *args, output=out, order=order, **kwargs)
        assert_same(out, expected)
        # the same bytes read as float64 and written as int64
        buf = values.copy()
        a = buf[:n].reshape(SHAPE)
        out = buf[:n].view(np.int64).reshape(SHAPE)
        expected = getattr(mf, fn)(a.copy(), *args, order=order, output=np.int64, **kwargs)
        getattr(mf, fn)(a, *args, output=out, order=order, **kwargs)
        assert_same(out, expected)


@pytest.mark.parametrize("order", [0, 1])
def test_output_overlapping_the_coordinates_or_the_offset(order, many_cores):
    """The kernels read coordinates (and the offset) while writing rows in
    parallel: an output over the same memory gets the unaliased result,
    whatever the thread count."""
    a = np.random.default_rng(2).random((9, 10, 11)) * 100
    coords = np.random.default_rng(4).uniform(-1, 11, size=(3, 40, 41, 42))
    expected = mf.map_coordinates(a, coords, order=order, threads=1)
    for threads in (1, 4):
        c = coords.copy()
        mf.map_coordinates(a, c, output=c[1], order=order, threads=threads)
        assert_same(c[1], expected)
        c = coords.copy()  # shifted by one row: each row overwrites the next's
        out = c.reshape(-1)[42:42 + expected.size].reshape(expected.shape)
        mf.map_coordinates(a, c, output=out, order=order, threads=threads)
        assert_same(out, expected)
    offset = np.array([0.5, -1.0, 2.0])
    expected = mf.affine_transform(a, GENERAL, offset, output_shape=(40, 41, 42),
                                   order=order)
    out = np.zeros((40, 41, 42))
    out[0, 0, :3] = offset
    mf.affine_transform(a, GENERAL, out[0, 0, :3], output=out, order=order, threads=4)
    assert_same(out, expected)


# ---------------------------------------------------------------------------
# Sizes: more than 2**31 elements, long rows, outputs too large to allocate
# ---------------------------------------------------------------------------
def sparse_array(path, shape, dtype, values):
    """A memory-mapped array over a sparse file (zeros, taking no disk or
    memory) with ``values`` ({index: value}) written in."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with open(path, "wb") as f:
        f.truncate(n)
    if os.stat(path).st_blocks * 512 > 2**20:
        pytest.skip(f"{path}: the filesystem does not support sparse files")
    a = np.memmap(path, dtype, "r+", shape=shape)
    for index, value in values.items():
        a[index] = value
    a.flush()
    return np.memmap(path, dtype, "r", shape=shape)


def test_inputs_of_more_than_2_31_elements(tmp_path):
    """Byte offsets beyond 2**31 (and 2**32) into the input: values far into
    a 2 GiB sparse input are read where scipy reads them, by every kernel
    path (nearest and linear, 3-D and 2-D); 32-bit index arithmetic would
    read the wrong place or crash."""
    shape = (2**11 + 3, 2**10, 2**10 + 1)                  # 2.0 GiB of uint8
    far = {(2**11 + 2, 1023, 1024): 10, (2**11 + 1, 5, 7): 11, (2**11, 1000, 3): 12,
           (2**11 + 2, 1022, 1024): 13, (2**11 + 1, 1023, 1024): 14}
    big = sparse_array(tmp_path / "big3.raw", shape, np.uint8, far)
    assert big.size > 2**31
    points = np.array(list(far), float).T
    for order in (0, 1):
        got = mf.map_coordinates(big, points, order=order)
        np.testing.assert_array_equal(got, list(far.values()))
        for c in (points + [[0.5], [0.25], [0]], points - [[0.5], [0], [0.75]]):
            assert_same(mf.map_coordinates(big, c, order=order),
                        scipy.ndimage.map_coordinates(big, c, order=order))
        corner = (2**11 - 1, 1019, 1019)
        for matrix in (np.eye(3), in_plane(0.01), np.eye(3) + 0.001):
            kwargs = dict(offset=corner, output_shape=(4, 5, 6), order=order)
            got = mf.affine_transform(big, matrix, **kwargs)
            assert_same(got, scipy.ndimage.affine_transform(big, matrix, **kwargs))
        assert mf.affine_transform(big, np.eye(3), **kwargs)[3, 4, 5] == 10
    shape2 = (46341, 46341)                                 # 2**31 + 4633 elements
    plane = sparse_array(tmp_path / "big2.raw", shape2, np.uint8,
                         {(46340, 46340): 20, (46339, 46340): 21, (46340, 1): 22})
    assert plane.size > 2**31
    for order in (0, 1):
        for matrix in (np.eye(2), np.array([[1.0, 0.01], [0.01, 1.0]])):
            kwargs = dict(offset=(46336, 46335), output_shape=(5, 6), order=order)
            assert_same(mf.affine_transform(plane, matrix, **kwargs),
                        scipy.ndimage.affine_transform(plane, matrix, **kwargs))
        c = np.array([[46340, 46339.5, 46340], [46340, 46340, 1.25]])
        assert_same(mf.map_coordinates(plane, c, order=order),
                    scipy.ndimage.map_coordinates(plane, c, order=order))


def test_output_far_into_a_large_mapping(tmp_path):
    """An output view whose elements lie up to 2**32 bytes and more from its
    first one (a sparse 6 GiB file): written in place, as scipy writes it."""
    path = tmp_path / "out.raw"
    with open(path, "wb") as f:
        f.truncate(3 * 2**31)
    if os.stat(path).st_blocks * 512 > 2**20:
        pytest.skip(f"{path}: the filesystem does not support sparse files")
    mapping = np.memmap(path, np.float32, "r+", shape=(3 * 2**29,))
    out = as_strided(mapping, (3, 4, 5), (2**31 + 4, 2**16, 2**12), writeable=True)
    a = np.random.default_rng(5).random((6, 7, 8)).astype(np.float32)
    calls = [("affine_transform", (m,), {"offset": 0.5, "output_shape": (3, 4, 5)})
             for m in (GENERAL, in_plane(0.3), np.diag([0.8, 1.2, 0.7]))]
    calls.append(("map_coordinates", (COORDS[:, :3, :4, :5],), {}))
    for fn, args, kwargs in calls:
        assert getattr(mf, fn)(a, *args, output=out, order=1, **kwargs) is out
        expected = getattr(scipy.ndimage, fn)(a, *args, order=1, **kwargs)
        assert_same(np.array(out), expected)
        out[...] = 0


@pytest.mark.parametrize("order", [0, 1])
def test_output_rows_longer_than_a_segment(order, many_cores):
    """Rows beyond the kernels' 4096-voxel segment (a 1-D output is one row):
    scipy's bytes for every path and thread count, the coordinates summed
    from each voxel's own index."""
    a = (np.random.default_rng(6).random((7, 8, 9)) * 1000).astype(np.float32)
    n = 3 * 4096 + 5
    line = np.array([[0.0005], [0.0003], [0.0007]])
    cases = [
        ("affine_transform", (line,), dict(offset=[0.2, 0.1, -0.3], output_shape=(n,))),
        ("affine_transform", (rotation3(0.2),), dict(offset=[0.5, 0.5, -4096.0],
                                                     output_shape=(3, 2, n))),
        ("affine_transform", (in_plane(0.2, 0.0009),), dict(offset=[0.5, 0.5, -2.0],
                                                           output_shape=(3, 2, n))),
        ("affine_transform", (np.diag([1.0, 1.0, 0.0007]),),
         dict(offset=0.3, output_shape=(2, 3, n))),
        ("map_coordinates", (np.random.default_rng(7).uniform(-1, 9, (3, n)),), {}),
        ("zoom", ([0.5, 0.5, n / 9],), {}),
    ]
    for fn, args, kwargs in cases:
        expected = getattr(scipy.ndimage, fn)(a, *args, order=order, mode="mirror", **kwargs)
        for threads in (1, 3):
            got = getattr(mf, fn)(a, *args, order=order, mode="mirror", threads=threads,
                                  **kwargs)
            assert_same(got, expected, context=f"{fn} threads={threads}")


def test_huge_output_through_broadcast_coordinates():
    """Coordinates that take no memory (a broadcast view) asking for a
    4096 TiB output: MemoryError before anything is allocated."""
    coords = np.broadcast_to(0.0, (3, 2**20, 2**20, 2**10))
    with pytest.raises(MemoryError, match=r"^output: a 1048576x1048576x1024 float32 "
                                          r"array needs 4096\.0 TiB"):
        mf.map_coordinates(np.ones((4, 5, 6), np.float32), coords, order=1)
    with pytest.raises(MemoryError, match=r"^output: .* needs"):
        mf.affine_transform(np.ones((4, 5, 6)), np.eye(3), order=1,
                            output_shape=(2**64, 1, 1))


# ---------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------
def mixed_calls():
    """Calls of every kernel path, dtype and order, with their threads=."""
    rng = np.random.default_rng(8)
    base = rng.random((30, 31, 32)) * 250
    coords = rng.uniform(-2, 33, size=(3, 20, 21, 22))
    calls = []
    for i, dtype in enumerate([np.uint8, np.int16, np.float32, np.float64] * 2):
        a = base.astype(dtype)
        order, threads = i % 2, (1, 2, 3, 5)[i % 4]
        fn, args, kwargs = [
            ("affine_transform", (rotation3(0.1 * i),), {}),
            ("affine_transform", (GENERAL,), {"offset": 0.5 * i}),
            ("map_coordinates", (coords,), {}),
            ("zoom", (0.7 + 0.1 * i,), {}),
            ("shift", ([0.5, -i, 0.25],), {"mode": "wrap"}),
        ][i % 5]
        if i == 7:
            a = np.asfortranarray(a)[::-1]
        calls.append((fn, a, args, dict(kwargs, order=order, threads=threads)))
    return calls


def test_many_python_threads_at_once(many_cores):
    """8 Python threads, each running every call 3 times from a common start,
    get the bytes of serial single-threaded calls."""
    calls = mixed_calls()
    expected = [getattr(mf, fn)(a, *args, **dict(kw, threads=1)) for fn, a, args, kw in calls]
    barrier = threading.Barrier(8)
    failures = []

    def worker(k):
        try:
            barrier.wait()
            for _ in range(3):
                for j in range(len(calls)):
                    fn, a, args, kw = calls[(j + k) % len(calls)]
                    got = getattr(mf, fn)(a, *args, **kw)
                    if got.tobytes() != expected[(j + k) % len(calls)].tobytes():
                        failures.append((k, fn, kw))
        except BaseException as e:  # reported below
            failures.append(e)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures


def child_results(_):
    """What a worker process computes (module level: picklable)."""
    out = [getattr(mf, fn)(a, *args, **kw).tobytes() for fn, a, args, kw in mixed_calls()]
    labels = np.random.default_rng(9).integers(0, 5, (24, 25, 26)).astype(np.int16)
    img = medfast.Image(labels, np.diag([1.0, 1.0, 1.0, 1.0]))
    out.append(medfast.resample(img, spacing=(0.7, 0.8, 0.9), order="label",
                                threads=2).array.tobytes())
    return out


def test_forked_children_after_the_parent_used_openmp(many_cores):
    """The parent runs multithreaded loops (GNU OpenMP starts its pool),
    then forks: the children's calls, label resampling included, finish
    with the parent's bytes (before: a deadlock in the first parallel loop;
    a timeout fails the test instead of hanging)."""
    expected = child_results(None)
    assert getattr(_threads._state, "pool", False)  # the parent's pool started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(child_results, range(2)).get(timeout=CHILD_TIMEOUT)
    assert all(r == expected for r in results)


def test_spawned_children():
    a = np.random.default_rng(10).random((20, 21, 22)).astype(np.float32)
    expected = mf.affine_transform(a, GENERAL, order=1, threads=2)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply_async(mf.affine_transform, (a, GENERAL),
                               {"order": 1, "threads": 2}).get(timeout=CHILD_TIMEOUT)
    assert_same(got, expected)


def test_numba_backend_refused_in_a_child_it_would_terminate(monkeypatch):
    """In a child forked after Numba's GNU OpenMP threads started, Numba
    kills the process at its next parallel loop: a clear error instead."""
    for name, value in (("_numba_pool_forked", False), ("_helper", None),
                        ("_helper_lock", threading.Lock()), ("_state", threading.local()),
                        ("_numba_gnu_openmp_started", lambda: True)):
        monkeypatch.setattr(_threads, name, value)  # restored after the test
    _threads._after_fork_in_child()  # what os.fork() runs in the child
    with pytest.raises(RuntimeError, match=r"backend='numba' cannot run in a process "
                                           r"forked .* 'spawn'"):
        mf.zoom(np.ones((4, 5, 6)), 1.5, order=1, backend="numba")
    mf.zoom(np.ones((4, 5, 6)), 1.5, order=1)  # the default backend runs


# ---------------------------------------------------------------------------
# threads=
# ---------------------------------------------------------------------------
def test_thread_count_is_capped_at_the_available_cores():
    """threads=10000 runs on the available cores: no more OS threads appear
    than cores (libgomp would otherwise try to start 10,000)."""
    cores = _threads.available_cores()
    assert _threads.resolve_threads(10_000) == cores
    medfast.set_num_threads(500)
    assert _threads.resolve_threads(None) == cores
    medfast.set_num_threads(None)
    a = np.random.default_rng(11).random((64, 64, 8)).astype(np.float32)
    before = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    got = mf.affine_transform(a, rotation3(0.2), order=1, threads=10_000)
    assert_same(got, mf.affine_transform(a, rotation3(0.2), order=1, threads=1))
    if before is not None:
        assert len(os.listdir("/proc/self/task")) - before < cores

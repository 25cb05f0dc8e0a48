#!/usr/bin/env python
"""Benchmark resampling a volume larger than a memory limit, chunk by
chunk: ``medfast.dask.affine_transform`` against
``dask_image.ndinterp.affine_transform``.

Run from the repository root: ``python benchmarks/bench_dask.py`` (options:
``--shape 640 640 512``, ``--chunks 64``, ``--limit-mib 512``, ``--threads
2``, ``--order 1``, ``--runs 3``, ``--json FILE``; ``--in-memory 256 256
180`` measures the computation alone, on a volume in memory; ``pip install
"medfast[dask]" dask-image`` first).

The input is a raw float32 file (a smooth phantom; 800 MiB at the default
shape) that no process ever holds whole: dask reads it chunk by chunk
(each read maps the file, copies the block and unmaps it, so file pages do
not count in the process's memory), and the result is stored chunk by
chunk into another raw file (``dask.array.store``, one row of output
chunks at a time, which bounds what dask holds to the input chunks that
row reads).  Transform: the
benchmark's 10 degree rotation about the last axis x 0.9 scaling, centred,
order 1, mode 'constant'; the time covers building the graph and
storing the result; dask's threaded scheduler with ``--threads``
threads, medfast's core on one thread per chunk; "copy" (storing the input
chunks unchanged) is the floor both tools share.  Each tool runs ``--runs``
times, interleaved, each run in a fresh child process; reported: the best
and median wall time of the store, and the peak RSS of the child
(``ru_maxrss``, MiB) against the limit (the volume is larger than the
limit; a tool above the limit is flagged).  Checked: the two results agree
within 1e-4 of the data range, and medfast's equals
``medfast.ndimage.affine_transform`` on a 96^3 corner of the problem.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)  # this checkout's medfast, as the children get it


class RawVolume:
    """A raw file as an array-like for ``dask.array.from_array``/``store``:
    each access maps the file, copies, and unmaps."""

    def __init__(self, path, shape, dtype=np.float32):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        mapped = np.memmap(self.path, self.dtype, "r", shape=self.shape)
        block = np.array(mapped[index])
        del mapped
        return block

    def __setitem__(self, index, value):
        mapped = np.memmap(self.path, self.dtype, "r+", shape=self.shape)
        mapped[index] = value  # written back by the system, not counted in the RSS
        del mapped


def _transform(shape):
    theta = np.deg2rad(10.0)
    c, s = np.cos(theta), np.sin(theta)
    matrix = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) * 0.9
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    return matrix, centre - matrix @ centre


def make_input(path, shape):
    """A smooth float32 phantom written slab by slab (never whole in memory)."""
    volume = RawVolume(path, shape)
    with open(path, "wb") as f:
        f.truncate(int(np.prod(shape)) * 4)
    grid = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    for start in range(0, shape[0], 32):
        x = grid[0][start:start + 32, None, None]
        volume[start:start + 32] = (np.cos(3 * x) * np.sin(4 * grid[1][None, :, None])
                                    + grid[2][None, None, :] ** 2).astype(np.float32)


def child(tool, src, dst, shape, chunks, threads, order):
    """One run in this (fresh) process: resample src into dst; print JSON."""
    import resource
    import dask
    import dask.array as da

    matrix, offset = _transform(shape)
    lazy = da.from_array(RawVolume(src, shape), chunks=chunks)
    start = time.perf_counter()
    if tool == "copy":  # the floor: reading and storing the chunks, no resampling
        out = lazy
    elif tool == "medfast":
        import medfast.dask as mdask
        out = mdask.affine_transform(lazy, matrix, offset, shape, output_chunks=chunks,
                                     order=order)
    else:
        from dask_image.ndinterp import affine_transform
        out = affine_transform(lazy, matrix, offset, shape, order=order,
                               output_chunks=chunks)
    graph = time.perf_counter() - start
    target = RawVolume(dst, shape)
    with dask.config.set(scheduler="threads", num_workers=threads):
        # One row of output chunks at a time: dask holds only the input
        # chunks that row reads (whole-volume stores keep far more in memory).
        for start_row in range(0, shape[0], chunks):
            rows = slice(start_row, min(start_row + chunks, shape[0]))
            da.store(out[rows], target, regions=(rows,), lock=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "graph_s": graph, "peak_mib": peak}))


def _run(tool, src, dst, args):
    command = [sys.executable, __file__, "--child", tool, src, dst, "--shape",
               *map(str, args.shape), "--chunks", str(args.chunks), "--threads",
               str(args.threads), "--order", str(args.order)]
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def in_memory(shape, chunks, threads, order, runs):
    """Compute only: a numpy volume as a dask array, the result computed
    into memory; best and median of interleaved runs in this process, and
    the in-memory medfast call for reference."""
    import dask
    import dask.array as da
    from dask_image.ndinterp import affine_transform as dask_image_affine
    import medfast.dask as mdask
    from medfast import ndimage

    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    matrix, offset = _transform(shape)
    lazy = da.from_array(volume, chunks=chunks)
    calls = {
        "medfast.dask": lambda: mdask.affine_transform(
            lazy, matrix, offset, shape, output_chunks=chunks, order=order).compute(),
        "dask_image": lambda: dask_image_affine(
            lazy, matrix, offset, shape, order=order, output_chunks=chunks).compute(),
        "medfast.ndimage in memory": lambda: ndimage.affine_transform(
            volume, matrix, offset, order=order, threads=threads)}
    times = {name: [] for name in calls}
    with dask.config.set(scheduler="threads", num_workers=threads):
        for _ in range(runs):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    print(f"\ncompute only: {'x'.join(map(str, shape))} float32 in memory, chunks {chunks}^3\n"
          "\n| | best | median |\n|---|---|---|")
    for name, measured in times.items():
        print(f"| {name} | {min(measured) * 1e3:.0f} ms | "
              f"{statistics.median(measured) * 1e3:.0f} ms |")


def _max_difference(a, b, shape):
    x, y = RawVolume(a, shape), RawVolume(b, shape)
    return max(float(np.abs(x[i:i + 32] - y[i:i + 32]).max()) for i in range(0, shape[0], 32))


def _check_corner(order):
    """medfast.dask equals the in-memory call on a 96^3 problem."""
    import dask.array as da
    import medfast.dask as mdask
    from medfast import ndimage

    rng = np.random.default_rng(0)
    small = rng.random((96, 96, 96)).astype(np.float32)
    matrix, offset = _transform(small.shape)
    expected = ndimage.affine_transform(small, matrix, offset, order=order)
    got = mdask.affine_transform(da.from_array(small, chunks=37), matrix, offset,
                                 order=order).compute()
    return expected.tobytes() == got.tobytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[640, 640, 512])
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--limit-mib", type=float, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--order", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--in-memory", type=int, nargs=3, metavar="N",
                        help="instead: compute only, on a volume of this shape in memory")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "SRC", "DST"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.child:
        child(*args.child, shape, args.chunks, args.threads, args.order)
        return 0
    if args.in_memory:
        in_memory(tuple(args.in_memory), args.chunks, args.threads, args.order, args.runs)
        return 0
    size_mib = np.prod(shape) * 4 / 2**20
    print(f"{cpu_model()}, {os.cpu_count()} cores; volume {'x'.join(map(str, shape))} "
          f"float32 ({size_mib:.0f} MiB), chunks {args.chunks}^3, memory limit "
          f"{args.limit_mib:.0f} MiB, {args.threads} dask threads, order {args.order}")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.raw")
        make_input(src, shape)
        outputs = {tool: os.path.join(tmp, f"{tool}.raw")
                   for tool in ("copy", "medfast", "dask_image")}
        for path in outputs.values():
            with open(path, "wb") as f:
                f.truncate(int(np.prod(shape)) * 4)
        runs = {tool: [] for tool in outputs}
        for _ in range(args.runs):
            for tool, dst in outputs.items():
                runs[tool].append(_run(tool, src, dst, args))
        difference = _max_difference(outputs["medfast"], outputs["dask_image"], shape)
    results = {}
    print(f"\n| | best | median | of which building the graph | peak RSS | within "
          f"{args.limit_mib:.0f} MiB |\n|---|---|---|---|---|---|")
    for tool, measured in runs.items():
        seconds = [r["seconds"] for r in measured]
        peak = max(r["peak_mib"] for r in measured)
        graph = statistics.median(r["graph_s"] for r in measured)
        results[tool] = {"best_s": min(seconds), "median_s": statistics.median(seconds),
                         "graph_s": graph, "peak_mib": peak}
        print(f"| {tool} | {min(seconds):.2f} s | {statistics.median(seconds):.2f} s | "
              f"{graph:.2f} s | {peak:.0f} MiB | {'yes' if peak <= args.limit_mib else 'NO'} |")
    ratio = results["dask_image"]["median_s"] / results["medfast"]["median_s"]
    floor = results["copy"]["median_s"]
    beyond = ((results["dask_image"]["median_s"] - floor)
              / max(1e-9, results["medfast"]["median_s"] - floor))
    identical = _check_corner(args.order)
    print(f"\nspeed-up (medians): {ratio:.1f}x, {beyond:.1f}x beyond the copy floor; max |medfast - dask_image| = {difference:.2e} "
          f"(data range 0-2); medfast equals the in-memory call on 96^3: {identical}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shape": shape, "chunks": args.chunks, "limit_mib": args.limit_mib,
                       "threads": args.threads, "order": args.order, "results": results,
                       "max_difference": difference, "identical_96": identical}, f, indent=2)
    return 0 if identical and difference < 2e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

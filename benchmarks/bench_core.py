#!/usr/bin/env python
"""Benchmark medfast's resampling core against scipy.ndimage and SimpleITK.

Run from the repository root::

    python benchmarks/bench_core.py              # full run (about 1-2 minutes)
    python benchmarks/bench_core.py --quick      # smaller N, large extras skipped (< ~60 s)
    python benchmarks/bench_core.py --markdown   # also print markdown tables
    python benchmarks/bench_core.py --threads 2  # threads for medfast and SimpleITK
    python benchmarks/bench_core.py --wait-idle 600  # wait for idle cores first
    python benchmarks/bench_core.py --cubic-only     # only the order-3 rows

Every timing is best-of-N of ``time.perf_counter`` around one call, all tools
measured in the same run (compare ratios, not absolute times, on a shared
machine).  Every medfast result is compared with scipy's for the same order
(``np.array_equal``); a difference prints a loud ``MISMATCH`` line and the
script exits with status 1.  See benchmarks/README.md for the cases.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np
import scipy
import scipy.ndimage as ndi

import medfast
import medfast.ndimage as mfn

try:
    import SimpleITK as sitk
except ImportError:  # pragma: no cover - SimpleITK is installed here
    sitk = None

try:
    import numba
except ImportError:  # pragma: no cover
    numba = None

NUMBA_NOTE = None
try:
    from medfast import _numba_kernels  # noqa: F401
    HAVE_NUMBA_BACKEND = True
except Exception as exc:  # ImportError, or a half-written module
    HAVE_NUMBA_BACKEND = False
    NUMBA_NOTE = f"numba backend skipped: medfast._numba_kernels import failed ({type(exc).__name__}: {exc})"

SHAPE = (256, 256, 180)
SMALL_IN = (174, 174, 50)
SMALL_OUT = (112, 112, 70)

MISMATCHES = []
NOTES = []
RESULTS = []          # rows of the main table
EXTRA = {}            # other figures (memory, small call, compile, ...)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def note(msg):
    NOTES.append(msg)
    print(f"  note: {msg}")


def check_equal(label, got, ref):
    """np.array_equal against scipy's output; loud MISMATCH if not."""
    if got.shape == ref.shape and got.dtype == ref.dtype and np.array_equal(got, ref):
        return "equal"
    if got.shape != ref.shape or got.dtype != ref.dtype:
        detail = f"shape/dtype {got.shape} {got.dtype} vs scipy {ref.shape} {ref.dtype}"
    else:
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        detail = (f"{np.count_nonzero(diff)} of {diff.size} voxels differ, "
                  f"max abs diff {diff.max():.6g}")
    msg = f"MISMATCH vs scipy: {label}: {detail}"
    MISMATCHES.append(msg)
    print("!" * 78)
    print(f"!!! {msg}")
    print("!" * 78)
    sys.stderr.write(f"MISMATCH vs scipy: {label}: {detail}\n")
    return "MISMATCH"


def add_row(case, tool, order, threads, output, best, median, n, nvox,
            scipy_key=None, sitk_key=None, check="", key=None, cpu=None):
    row = dict(case=case, tool=tool, order=order, threads=threads, output=output,
               best=best, median=median, n=n, nvox=nvox, scipy_key=scipy_key,
               sitk_key=sitk_key, check=check, key=key, cpu=cpu)
    RESULTS.append(row)
    extra = ""
    if scipy_key and scipy_key in TIMES:
        extra += f"  {TIMES[scipy_key] / best:6.1f}x scipy"
    if sitk_key and sitk_key in TIMES:
        extra += f"  {TIMES[sitk_key] / best:5.2f}x SimpleITK"
    cpu_txt = f", cpu/wall {cpu:.2f}" if cpu is not None else ""
    print(f"  {tool:<46s} order {order}  {best * 1e3:9.2f} ms "
          f"(median {median * 1e3:8.2f}, n={n}{cpu_txt}){extra}  {check}")
    if key:
        TIMES[key] = best
    return row


TIMES = {}


def phantom(shape, seed=12345, nblobs=24):
    """Deterministic smooth phantom: a sum of anisotropic Gaussian blobs, float32."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, dtype=np.float32)
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    for _ in range(nblobs):
        centre = [rng.uniform(0.1 * n, 0.9 * n) for n in shape]
        sigma = [rng.uniform(0.04 * n, 0.25 * n) for n in shape]
        amp = np.float32(rng.uniform(100.0, 1000.0))
        g = [np.exp(-0.5 * ((ax - c) / s) ** 2).astype(np.float32)
             for ax, c, s in zip(axes, centre, sigma)]
        out += amp * (g[0][:, None, None] * (g[1][:, None] * g[2][None, :])[None])
    return out


def rot_about_last(deg):
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0.0],
                     [np.sin(t), np.cos(t), 0.0],
                     [0.0, 0.0, 1.0]])


def rot_about_axis(axis, deg):
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    t = np.deg2rad(deg)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K


def centred_offset(matrix, in_shape, out_shape=None):
    """offset so the output centre samples the input centre: c_in - M @ c_out."""
    out_shape = in_shape if out_shape is None else out_shape
    c_in = (np.array(in_shape, dtype=np.float64) - 1) / 2
    c_out = (np.array(out_shape, dtype=np.float64) - 1) / 2
    return c_in - matrix @ c_out


def interior_mask(matrix, offset, in_shape, out_shape, margin=1.0):
    """Output voxels whose input coordinate M @ o + offset lies at least
    `margin` voxels inside the input (away from the edges, where SimpleITK
    differs from scipy by design)."""
    o = [np.arange(n, dtype=np.float64) for n in out_shape]
    mask = np.ones(out_shape, dtype=bool)
    for h in range(3):
        coord = (matrix[h, 0] * o[0][:, None, None] + matrix[h, 1] * o[1][None, :, None]
                 + matrix[h, 2] * o[2][None, None, :] + offset[h])
        mask &= (coord >= margin) & (coord <= in_shape[h] - 1 - margin)
    return mask


# --------------------------------------------------------------------------
# SimpleITK on the same transform
# --------------------------------------------------------------------------
def sitk_filter(matrix, offset, out_shape, order, threads, pixel_type):
    """A ResampleImageFilter doing what scipy's affine_transform does.

    SimpleITK's index order is reversed (x = last numpy axis).  With spacing
    1, origin 0 and identity direction, physical point == index, and Resample
    sets output(p) = input(T(p)).  scipy: output[o] = input[M @ o + offset]
    in numpy axis order.  With P the axis reversal, T(p) = (P M P) p + P offset,
    i.e. the matrix reversed on both axes and the offset reversed.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(matrix[::-1, ::-1].ravel().tolist())
    tx.SetTranslation(np.asarray(offset, dtype=np.float64)[::-1].tolist())
    tx.SetCenter((0.0, 0.0, 0.0))
    f = sitk.ResampleImageFilter()
    f.SetTransform(tx)
    f.SetInterpolator({0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear,
                       3: sitk.sitkBSpline}[order])
    f.SetSize([int(n) for n in out_shape[::-1]])
    f.SetOutputSpacing((1.0, 1.0, 1.0))
    f.SetOutputOrigin((0.0, 0.0, 0.0))
    f.SetOutputDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    f.SetDefaultPixelValue(0.0)
    f.SetOutputPixelType(pixel_type)
    f.SetNumberOfThreads(int(threads))
    return f


def sitk_execute(f, img, threads):
    """Run a ResampleImageFilter on `threads` threads.

    With SimpleITK 2.5.7 the filter's SetNumberOfThreads(1) alone does not
    stop ResampleImageFilter from using every core (measured: CPU time /
    wall time 1.9 with SetNumberOfThreads(1)); the global default number of
    threads does limit it, so set both, before every call.  The cpu/wall
    column of the table shows the threads actually used.
    """
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    return f.Execute(img)


def verify_sitk(label, got, ref, mask, order):
    """SimpleITK vs scipy inside the interior (edges differ by design)."""
    g = got[mask].astype(np.float64)
    r = ref[mask].astype(np.float64)
    d = np.abs(g - r)
    if order == 1:
        corr = float(np.corrcoef(g, r)[0, 1])
        ok = corr > 0.999 and np.median(d) < 1e-3 * (np.abs(r).max() + 1)
        msg = (f"SimpleITK check {label}: interior ({mask.mean() * 100:.0f}% of voxels) "
               f"corr {corr:.7f}, median |diff| {np.median(d):.3g}, max |diff| {d.max():.3g}")
    else:
        same = float(np.mean(d == 0))
        corr = float(np.corrcoef(g, r)[0, 1])
        ok = same > 0.99 and corr > 0.999
        msg = (f"SimpleITK check {label}: interior ({mask.mean() * 100:.0f}% of voxels) "
               f"{same * 100:.3f}% identical, corr {corr:.7f}")
    print(f"  {msg} -> {'OK' if ok else 'DISAGREES'}")
    if not ok:
        print("!!! WARNING: SimpleITK does not reproduce scipy's transform: the mapping is wrong")
        NOTES.append("WARNING " + msg)
    EXTRA.setdefault("sitk_checks", []).append((msg, ok))
    return ok


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------
def machine_load():
    """loadavg and per-core busy % over 1 s (other processes slow every ratio)."""
    txt = ""
    try:
        with open("/proc/loadavg") as fh:
            txt = "loadavg " + " ".join(fh.read().split()[:3])
    except OSError:
        pass
    try:
        import psutil
        busy = psutil.cpu_percent(interval=1.0, percpu=True)
        txt += "; cores busy " + ", ".join(f"{b:.0f}%" for b in busy)
        if max(busy) > 30:
            txt += "  <-- WARNING: another process is using the CPU, timings are contended"
    except ImportError:
        pass
    return txt


def wait_idle(limit):
    """Wait (at most `limit` s) until no core is more than 15% busy for 2 s."""
    try:
        import psutil
    except ImportError:
        print("--wait-idle: psutil is not installed; starting at once")
        return
    t0 = time.perf_counter()
    while True:
        busy = psutil.cpu_percent(interval=2.0, percpu=True)
        if max(busy) < 15:
            print(f"machine idle after {time.perf_counter() - t0:.0f} s of waiting")
            return
        if time.perf_counter() - t0 > limit:
            print(f"machine still busy after {limit:.0f} s ({busy}); starting anyway")
            return


def git_state():
    """HEAD commit and modified files of the checkout being measured."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--short", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True,
                               timeout=10).stdout.split("\n")
        dirty = [d.strip() for d in dirty if d.strip()]
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    return f"git {head or '?'}" + (f", modified: {', '.join(dirty)}" if dirty else ", clean")


def machine_facts(args):
    print("=" * 78)
    print("medfast core benchmark   " + datetime.datetime.now().isoformat(timespec="seconds"))
    print("command: python " + " ".join(sys.argv))
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            txt = fh.read()
        flags = "avx512f" if "avx512f" in txt else ("avx2" if "avx2" in txt else "")
    except OSError:
        pass
    facts = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "affinity": affinity, "simd": flags,
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__,
        "SimpleITK": sitk.Version_VersionString() if sitk else "not installed",
        "numba": numba.__version__ if numba else "not installed",
        "platform": platform.platform(),
    }
    EXTRA["facts"] = facts
    facts["load_start"] = machine_load()
    print(f"CPU            : {cpu} ({flags or 'no avx2/avx512 flag seen'})")
    print(f"os.cpu_count() : {os.cpu_count()}   sched_getaffinity: {affinity}")
    print(f"python {facts['python']}  numpy {facts['numpy']}  scipy {facts['scipy']}  "
          f"SimpleITK {facts['SimpleITK']}  numba {facts['numba']}")
    print(f"threads for medfast / SimpleITK: {args.threads};  N medfast = {args.n}, "
          f"N scipy = {args.n_scipy}, N SimpleITK = {args.n}{'  (--quick)' if args.quick else ''}")
    print(f"machine load at start: {facts['load_start']}")
    facts["git"] = git_state()
    print(f"source tree    : {facts['git']}")
    medfast.show_config()
    if NUMBA_NOTE:
        print("  " + NUMBA_NOTE)
    print("=" * 78)


class Entry:
    """One timed row of a race: fn() is called n times, interleaved with the
    other entries of the same race."""

    def __init__(self, key, tool, fn, n, order, threads, output, nvox, case,
                 scipy_key=None, sitk_key=None, check=None):
        self.key, self.tool, self.fn, self.n = key, tool, fn, n
        self.order, self.threads, self.output, self.nvox = order, threads, output, nvox
        self.case, self.scipy_key, self.sitk_key, self.check = case, scipy_key, sitk_key, check
        self.times, self.cpu, self.result = [], [], None


def race(entries):
    """Time the entries round-robin (forward, then backward, ...), so that
    load from other processes on this shared machine falls on every tool
    alike; best and median per entry.  Then check and print the rows in the
    given order (the references, scipy and SimpleITK, first)."""
    rounds = max(e.n for e in entries)
    for r in range(rounds):
        order = entries if r % 2 == 0 else entries[::-1]
        for e in order:
            if r >= e.n:
                continue
            e.result = None  # free a previous fresh output before the next call
            c0 = time.process_time()
            t0 = time.perf_counter()
            e.result = e.fn()
            e.times.append(time.perf_counter() - t0)
            e.cpu.append(time.process_time() - c0)
    rows = []
    for e in entries:
        chk = e.check(e.result) if e.check is not None else ""
        rows.append(add_row(e.case, e.tool, e.order, e.threads, e.output, min(e.times),
                            statistics.median(e.times), len(e.times), e.nvox,
                            e.scipy_key, e.sitk_key, chk, key=e.key,
                            cpu=sum(e.cpu) / sum(e.times)))
    for e in entries:
        e.result = None
    return rows


def equal_to(ref, label, out=None):
    """A check: the call's result (or the preallocated `out`) equals scipy's."""
    return lambda res: check_equal(label, res if out is None else out, ref)


def medfast_entries(case, data, matrix, offset, order, threads, backends, n, ref,
                    scipy_key, sitk_key, nvox, key_prefix, out_shape=None):
    """medfast with output=None and with a preallocated output, per backend
    (each warmed up first; numba's first call, JIT compile or cache load,
    timed and reported separately)."""
    out_shape = data.shape if out_shape is None else out_shape
    entries = []
    for backend in backends:
        if backend == "numba" and not HAVE_NUMBA_BACKEND:
            continue
        try:
            t0 = time.perf_counter()
            mfn.affine_transform(data, matrix, offset, output_shape=out_shape,
                                 order=order, threads=threads, backend=backend)
            first = time.perf_counter() - t0
            if backend == "numba":
                EXTRA.setdefault("numba_first", []).append(
                    (f"{case} order {order} {data.dtype}", first))
                print(f"  numba first call in this process ({case}, order {order}, "
                      f"{data.dtype}): {first * 1e3:.0f} ms (cache load or compile + run)")
        except Exception as exc:  # a backend still being written must not stop the run
            note(f"{case} medfast backend={backend} order {order} failed: "
                 f"{type(exc).__name__}: {exc}")
            continue
        entries.append(Entry(
            f"{key_prefix}_{backend}_none", f"medfast {backend}, {threads} thr, output=None",
            lambda b=backend: mfn.affine_transform(data, matrix, offset,
                                                   output_shape=out_shape, order=order,
                                                   threads=threads, backend=b),
            n, order, threads, "None", nvox, case, scipy_key, sitk_key,
            equal_to(ref, f"{case} medfast {backend} order {order} output=None")))
        out = np.empty(out_shape, dtype=ref.dtype)
        entries.append(Entry(
            f"{key_prefix}_{backend}_pre", f"medfast {backend}, {threads} thr, preallocated",
            lambda b=backend, out=out: mfn.affine_transform(data, matrix, offset, output=out,
                                                            order=order, threads=threads,
                                                            backend=b),
            n, order, threads, "prealloc", nvox, case, scipy_key, sitk_key,
            equal_to(ref, f"{case} medfast {backend} order {order} preallocated", out)))
    return entries


def sitk_entries(case, data, matrix, offset, order, thread_list, n, nvox, key_prefix,
                 scipy_key, with_copies_threads=None, out_shape=None):
    """SimpleITK Resample rows (no copies per thread count; with the
    numpy<->SimpleITK copies for `with_copies_threads`)."""
    if sitk is None:
        return [], None
    out_shape = data.shape if out_shape is None else out_shape
    img = sitk.GetImageFromArray(data)
    entries, probe = [], None
    for thr in thread_list:
        f = sitk_filter(matrix, offset, out_shape, order, thr, sitk.sitkFloat32)
        sitk_execute(f, img, thr)  # warm-up
        probe = f
        entries.append(Entry(f"{key_prefix}_{thr}", f"SimpleITK Resample, {thr} thr, no copies",
                             lambda f=f, thr=thr: sitk_execute(f, img, thr), n, order, thr,
                             "sitk", nvox, case, scipy_key))
    if with_copies_threads:
        f = sitk_filter(matrix, offset, out_shape, order, with_copies_threads,
                        sitk.sitkFloat32)
        entries.append(Entry(
            f"{key_prefix}c_{with_copies_threads}",
            f"SimpleITK Resample, {with_copies_threads} thr, with copies",
            lambda f=f: sitk.GetArrayFromImage(
                sitk_execute(f, sitk.GetImageFromArray(data), with_copies_threads)),
            n, order, with_copies_threads, "sitk+copies", nvox, case, scipy_key))
    return entries, sitk.GetArrayFromImage(sitk_execute(probe, img, thread_list[-1]))


def headline(args, data):
    print(f"\n[1] Headline: {SHAPE} float32, 10 deg rotation about the last axis x 0.9, "
          "centred (all rows of one order timed interleaved)")
    M = 0.9 * rot_about_last(10.0)
    off = centred_offset(M, SHAPE)
    nvox = int(np.prod(SHAPE))
    mask = interior_mask(M, off, SHAPE, SHAPE)
    for order in (1, 0):
        ref = ndi.affine_transform(data, M, off, order=order)
        if order == 1:
            EXTRA["h_ref1"] = ref
        sk_key = f"h_scipy_{order}"
        entries = [Entry(sk_key, "scipy.ndimage (1 thread)",
                         lambda: ndi.affine_transform(data, M, off, order=order),
                         args.n_scipy, order, 1, "None", nvox, "headline", sk_key)]
        threads = [args.threads]
        if order == 1 and not args.quick and args.threads != 1:
            threads = [1, args.threads]
        se, sres = sitk_entries("headline", data, M, off, order, threads, args.n, nvox,
                                f"h_sitk_{order}", sk_key, with_copies_threads=args.threads)
        entries += se
        if sres is not None:
            verify_sitk(f"headline order {order}", sres, ref, mask, order)
        entries += medfast_entries("headline", data, M, off, order, args.threads,
                                   ("cython", "numba"), args.n, ref, sk_key,
                                   f"h_sitk_{order}_{args.threads}", nvox, f"h_mf_{order}")
        race(entries)


def cubic(args, data):
    """Order 3, scipy's default (prefilter included in every tool's time),
    on the headline transform and on the oblique one of case [6];
    SimpleITK's sitkBSpline (its cubic B-spline) on the headline."""
    cases = [("headline order 3", "10 deg rotation about the last axis x 0.9",
              0.9 * rot_about_last(10.0), True),
             ("oblique order 3", "rotation about (1,1,1) by 10 deg x 0.9",
              0.9 * rot_about_axis((1.0, 1.0, 1.0), 10.0), False)]
    nvox = int(np.prod(SHAPE))
    for case, what, M, with_sitk in cases:
        print(f"\n[1b] {case} (scipy's default; B-spline prefilter included): "
              f"{SHAPE} float32, {what}")
        off = centred_offset(M, SHAPE)
        ref = ndi.affine_transform(data, M, off, order=3)
        key = case.split()[0][0]
        sk_key = f"{key}_scipy_3"
        entries = [Entry(sk_key, "scipy.ndimage (1 thread)",
                         lambda M=M, off=off: ndi.affine_transform(data, M, off, order=3),
                         args.n_scipy, 3, 1, "None", nvox, case, sk_key)]
        if with_sitk:
            se, _ = sitk_entries(case, data, M, off, 3, [args.threads], args.n, nvox,
                                 f"{key}_sitk_3", sk_key)
            entries += se
        for thr in sorted({1, args.threads}):
            entries += medfast_entries(case, data, M, off, 3, thr, ("cython",), args.n, ref,
                                       sk_key, f"{key}_sitk_3_{args.threads}", nvox,
                                       f"{key}_mf_3_{thr}")
        race(entries)


def int16_case(args, data, data16):
    print("\n[2] int16 -> int16 vs float32 -> float32, same case, medfast cython "
          "(timed interleaved)")
    M = 0.9 * rot_about_last(10.0)
    off = centred_offset(M, SHAPE)
    nvox = int(np.prod(SHAPE))
    EXTRA["int16_ratio"] = {}
    for order in (1, 0):
        entries = []
        for arr in (data, data16):
            name = arr.dtype.name
            ref = ndi.affine_transform(arr, M, off, order=order)
            mfn.affine_transform(arr, M, off, order=order, threads=args.threads)
            entries.append(Entry(
                f"dt_{name}_{order}_None", f"medfast cython {name}, {args.threads} thr, output=None",
                lambda arr=arr: mfn.affine_transform(arr, M, off, order=order,
                                                     threads=args.threads),
                args.n, order, args.threads, "None", nvox, f"{name}",
                check=equal_to(ref, f"{name} medfast order {order} output=None")))
            out = np.empty(SHAPE, dtype=arr.dtype)
            entries.append(Entry(
                f"dt_{name}_{order}_pre", f"medfast cython {name}, {args.threads} thr, preallocated",
                lambda arr=arr, out=out: mfn.affine_transform(arr, M, off, output=out,
                                                              order=order, threads=args.threads),
                args.n, order, args.threads, "prealloc", nvox, f"{name}",
                check=equal_to(ref, f"{name} medfast order {order} preallocated", out)))
        race(entries)
        for output in ("None", "pre"):
            f32, i16 = TIMES[f"dt_float32_{order}_{output}"], TIMES[f"dt_int16_{order}_{output}"]
            r = f32 / i16
            EXTRA["int16_ratio"][(order, "None" if output == "None" else "prealloc")] = r
            print(f"      order {order}, output={'None' if output == 'None' else 'preallocated'}: "
                  f"int16 runs at {r:.2f}x the float32 speed "
                  f"(int16 {i16 * 1e3:.2f} ms, float32 {f32 * 1e3:.2f} ms)")


def peak_memory(args, data, data16):
    print("\n[3] Peak memory of a medfast call with output=None (tracemalloc)")
    M = 0.9 * rot_about_last(10.0)
    off = centred_offset(M, SHAPE)
    S = np.diag([0.9, -1.1, 0.8])
    soff = centred_offset(S, SHAPE)
    cases = [("headline float32 order 1", data, M, off, 1),
             ("headline float32 order 0", data, M, off, 0),
             ("headline int16 order 1", data16, M, off, 1),
             ("separable float32 order 1", data, S, soff, 1)]
    EXTRA["memory"] = []
    for label, arr, mat, o, order in cases:
        mfn.affine_transform(arr, mat, o, order=order, threads=args.threads)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            res = mfn.affine_transform(arr, mat, o, order=order, threads=args.threads)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        ratio = peak / res.nbytes
        EXTRA["memory"].append((label, peak, res.nbytes, ratio))
        print(f"  {label:<28s} peak {peak / 2**20:8.2f} MiB, output {res.nbytes / 2**20:8.2f} MiB"
              f" -> {ratio:.4f}x output  [{'PASS' if ratio <= 1.05 else 'FAIL'} <= 1.05]")
        del res


def small_call(args):
    print(f"\n[4] Small call: {SMALL_IN} float32 -> {SMALL_OUT}, linear, per-call time "
          f"including Python overhead ({args.small_reps} calls, interleaved)")
    data = phantom(SMALL_IN, seed=7, nblobs=12)
    scale = np.diag((np.array(SMALL_IN) - 1.0) / (np.array(SMALL_OUT) - 1.0))
    variants = [("diagonal", scale, np.zeros(3)),
                ("rot5", rot_about_last(5.0) @ scale, None)]
    EXTRA["small"] = []
    nvox = int(np.prod(SMALL_OUT))
    reps = args.small_reps
    for name, M, off in variants:
        if off is None:
            off = centred_offset(M, SMALL_IN, SMALL_OUT)
        case = f"small {name}"
        sk_key = f"s_{name}_scipy"
        ref = ndi.affine_transform(data, M, off, output_shape=SMALL_OUT, order=1)
        entries = [Entry(sk_key, "scipy.ndimage (1 thread)",
                         lambda: ndi.affine_transform(data, M, off, output_shape=SMALL_OUT,
                                                      order=1),
                         max(5, reps // 5), 1, 1, "None", nvox, case, sk_key)]
        se, sres = sitk_entries(case, data, M, off, 1, [args.threads], reps, nvox,
                                f"s_{name}_sitk", sk_key, with_copies_threads=args.threads,
                                out_shape=SMALL_OUT)
        entries += se
        if sres is not None:
            verify_sitk(case, sres, ref, interior_mask(M, off, SMALL_IN, SMALL_OUT), 1)
        for t in sorted({args.threads, 1}, reverse=True):
            mfn.affine_transform(data, M, off, output_shape=SMALL_OUT, order=1, threads=t)
            entries.append(Entry(
                f"s_{name}_mf_{t}", f"medfast cython, {t} thr, output=None",
                lambda t=t: mfn.affine_transform(data, M, off, output_shape=SMALL_OUT,
                                                 order=1, threads=t),
                reps, 1, t, "None", nvox, case, sk_key, f"s_{name}_sitkc_{args.threads}",
                equal_to(ref, f"{case} medfast threads={t}")))
        rows = race(entries)
        for row in rows:
            EXTRA["small"].append((case, row["tool"], row["threads"], row["best"],
                                   row["median"]))
    try:
        import nibabel.processing  # noqa: F401
        note("nibabel is installed but its resample_from_to row is not implemented here")
    except ImportError:
        note("nibabel is not installed: nibabel.processing.resample_from_to row skipped")


def separable(args, data):
    print("\n[5] Separable fast path: diag(0.9, -1.1, 0.8), centred (timed interleaved)")
    S = np.diag([0.9, -1.1, 0.8])
    off = centred_offset(S, SHAPE)
    near = S.copy()
    near[0, 2] = 1e-9
    nvox = int(np.prod(SHAPE))
    mode_code = mfn.MODES["constant"]
    thr = args.threads
    EXTRA["separable"] = {}
    for order in (1, 0):
        sk_key = f"sep_scipy_{order}"
        ref = ndi.affine_transform(data, S, off, order=order)
        ref_near = ndi.affine_transform(data, near, off, order=order)
        out_sep = np.empty(SHAPE, dtype=np.float32)
        out_gen = np.empty(SHAPE, dtype=np.float32)
        out_near = np.empty(SHAPE, dtype=np.float32)
        fns = {
            "none": lambda: mfn.affine_transform(data, S, off, order=order, threads=thr),
            "sep": lambda: mfn.affine_transform(data, S, off, output=out_sep, order=order,
                                                threads=thr),
            "gen": lambda: mfn._run_affine(data, S, off, out_gen, order, mode_code, 0.0,
                                           thr, None),
            "near": lambda: mfn.affine_transform(data, near, off, output=out_near,
                                                 order=order, threads=thr),
        }
        for fn in fns.values():
            fn()  # warm-up
        entries = [
            Entry(sk_key, "scipy.ndimage (1 thread)",
                  lambda: ndi.affine_transform(data, S, off, order=order), args.n_scipy,
                  order, 1, "None", nvox, "separable", sk_key),
            Entry(f"sep_def_none_{order}", f"medfast default (separable), {thr} thr, output=None",
                  fns["none"], args.n, order, thr, "None", nvox, "separable", sk_key,
                  check=equal_to(ref, f"separable medfast order {order} output=None")),
            Entry(f"sep_def_{order}", f"medfast default (separable), {thr} thr, prealloc",
                  fns["sep"], args.n, order, thr, "prealloc", nvox, "separable", sk_key,
                  check=equal_to(ref, f"separable medfast order {order} preallocated", out_sep)),
            Entry(f"sep_gen_{order}", "medfast general driver forced (_run_affine), prealloc",
                  fns["gen"], args.n, order, thr, "prealloc", nvox, "separable", sk_key,
                  check=equal_to(ref, f"separable general-forced order {order}", out_gen)),
            Entry(f"sep_near_{order}", "medfast near-diagonal ([0,2]+=1e-9), prealloc",
                  fns["near"], args.n, order, thr, "prealloc", nvox, "separable", sk_key,
                  check=equal_to(ref_near, f"near-diagonal medfast order {order}", out_near)),
        ]
        race(entries)
        same = np.array_equal(out_sep, out_gen)
        print(f"      separable == general-forced (np.array_equal): {same}")
        if not same:
            msg = f"MISMATCH separable vs general-forced output, order {order}"
            MISMATCHES.append(msg)
            print("!!! " + msg)
        r_gen = TIMES[f"sep_gen_{order}"] / TIMES[f"sep_def_{order}"]
        r_near = TIMES[f"sep_near_{order}"] / TIMES[f"sep_def_{order}"]
        EXTRA["separable"][order] = (r_gen, r_near, same)
        print(f"      separable speed-up: {r_gen:.2f}x vs general-forced, "
              f"{r_near:.2f}x vs near-diagonal")


def oblique(args, data):
    print("\n[6] Oblique: rotation about (1,1,1) by 10 deg x 0.9, centred, order 1 "
          "(timed interleaved)")
    M = 0.9 * rot_about_axis((1, 1, 1), 10.0)
    off = centred_offset(M, SHAPE)
    nvox = int(np.prod(SHAPE))
    ref = ndi.affine_transform(data, M, off, order=1)
    entries = [Entry("ob_scipy", "scipy.ndimage (1 thread)",
                     lambda: ndi.affine_transform(data, M, off, order=1), args.n_scipy, 1, 1,
                     "None", nvox, "oblique", "ob_scipy")]
    se, sres = sitk_entries("oblique", data, M, off, 1, [args.threads], args.n, nvox,
                            "ob_sitk", "ob_scipy")
    entries += se
    if sres is not None:
        verify_sitk("oblique order 1", sres, ref, interior_mask(M, off, SHAPE, SHAPE), 1)
    backends = ("cython",) if args.quick else ("cython", "numba")
    entries += medfast_entries("oblique", data, M, off, 1, args.threads, backends, args.n,
                               ref, "ob_scipy", f"ob_sitk_{args.threads}", nvox, "ob_mf")
    race(entries)



COLD_COMPILE_SNIPPET = r"""
import time, numpy as np
import medfast.ndimage as mfn
a = np.random.default_rng(0).random((40, 40, 30)).astype(np.float32)
M = np.array([[0.9, -0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])
for order in (1, 0):
    t0 = time.perf_counter()
    mfn.affine_transform(a, M, 1.0, order=order, threads=2, backend="numba")
    t1 = time.perf_counter()
    mfn.affine_transform(a, M, 1.0, order=order, threads=2, backend="numba")
    t2 = time.perf_counter()
    print(f"COLD order {order}: first call {t1 - t0:.3f} s, second call {t2 - t1:.4f} s")
"""


def numba_cold_compile(args):
    """First-call cost of the numba backend in a fresh process with an empty
    NUMBA_CACHE_DIR (what a cold command line pays when no cache exists)."""
    import subprocess
    import tempfile
    print("\n[1b] numba cold compile: fresh process, empty NUMBA_CACHE_DIR, "
          "float32 3-D affine")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        try:
            p = subprocess.run([sys.executable, "-c", COLD_COMPILE_SNIPPET], env=env,
                               capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            note("numba cold compile timed out after 300 s")
            return
    if p.returncode != 0:
        note("numba cold compile failed: " + (p.stderr.strip().splitlines() or ["?"])[-1])
        return
    for line in p.stdout.splitlines():
        if line.startswith("COLD"):
            print("  " + line)
            EXTRA.setdefault("numba_cold", []).append(line[5:])


def threads_scaling(args, data):
    print("\n[7] Threads scaling: headline order 1, medfast cython, preallocated output "
          "(timed interleaved)")
    M = 0.9 * rot_about_last(10.0)
    off = centred_offset(M, SHAPE)
    nvox = int(np.prod(SHAPE))
    ref = EXTRA["h_ref1"]
    counts = sorted({1, 2, args.threads})
    EXTRA["threads"] = {}
    entries = []
    for t in counts:
        out = np.empty(SHAPE, dtype=np.float32)
        def fn(t=t, out=out):
            return mfn.affine_transform(data, M, off, output=out, order=1, threads=t)

        fn()
        entries.append(Entry(f"thr_{t}", f"medfast cython, {t} thr, preallocated", fn,
                             args.n, 1, t, "prealloc", nvox, "threads", "h_scipy_1",
                             check=equal_to(ref, f"threads={t} medfast order 1", out)))
    race(entries)
    for t in counts:
        EXTRA["threads"][t] = TIMES[f"thr_{t}"]
    for t in counts[1:]:
        print(f"      {t} threads: {EXTRA['threads'][1] / EXTRA['threads'][t]:.2f}x "
              f"the 1-thread speed")



# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def ratio(key, best):
    return f"{TIMES[key] / best:.1f}x" if key and key in TIMES else ""


def markdown(args):
    lines = ["| case | tool | order | best ms | median ms | N | CPU/wall | Mvox/s | vs scipy | vs SimpleITK | check |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in RESULTS:
        vs_scipy = ratio(r["scipy_key"], r["best"]) if r["scipy_key"] != r["key"] else "1.0x"
        vs_sitk = ""
        if r["sitk_key"] and r["sitk_key"] in TIMES:
            vs_sitk = f"{TIMES[r['sitk_key']] / r['best']:.2f}x"
        lines.append(
            f"| {r['case']} | {r['tool']} | {r['order']} | {r['best'] * 1e3:.2f} | "
            f"{r['median'] * 1e3:.2f} | {r['n']} | "
            f"{'' if r['cpu'] is None else format(r['cpu'], '.2f')} | "
            f"{r['nvox'] / r['best'] / 1e6:.0f} | "
            f"{vs_scipy} | {vs_sitk} | {r['check']} |")
    return "\n".join(lines)


def targets(args):
    """(target, measured, PASS/FAIL) for the issue's targets."""
    T = TIMES
    out = []

    def add(name, measured, ok):
        out.append((name, measured, "PASS" if ok else "FAIL"))

    for output, tag in (("None", "none"), ("preallocated", "pre")):
        k = f"h_mf_1_cython_{tag}"
        if k in T:
            s = T["h_scipy_1"] / T[k]
            add(f"order 1 >= 25x scipy (headline, output={output})", f"{s:.1f}x", s >= 25)
            sk = f"h_sitk_1_{args.threads}"
            if sk in T:
                s2 = T[sk] / T[k]
                add(f"order 1 >= 4x SimpleITK {args.threads} thr (output={output})",
                    f"{s2:.2f}x", s2 >= 4)
        k = f"h_mf_0_cython_{tag}"
        if k in T:
            s = T["h_scipy_0"] / T[k]
            add(f"order 0 >= 20x scipy (headline, output={output})", f"{s:.1f}x", s >= 20)
    for (order, output), r in sorted(EXTRA.get("int16_ratio", {}).items()):
        add(f"int16 >= float32 speed (order {order}, output={output})",
            f"{r:.2f}x float32 speed", r >= 1.0)
    for label, _peak, _nbytes, r in EXTRA.get("memory", []):
        add(f"peak memory <= output + 5% ({label})", f"{r:.4f}x output", r <= 1.05)
    for case, tool, thr, best, med in EXTRA.get("small", []):
        if tool.startswith("medfast"):
            add(f"small call < 5 ms ({case}, medfast {thr} thr, median of calls)",
                f"{med * 1e3:.2f} ms (best {best * 1e3:.2f} ms)", med < 5e-3)
    for order, (r_gen, r_near, _same) in sorted(EXTRA.get("separable", {}).items()):
        add(f"separable >= 2x general (order {order}, vs forced general driver)",
            f"{r_gen:.2f}x", r_gen >= 2)
        add(f"separable >= 2x general (order {order}, vs near-diagonal matrix)",
            f"{r_near:.2f}x", r_near >= 2)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller N; skips SimpleITK 1-thread and oblique numba rows")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for medfast and SimpleITK (default 2)")
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    p.add_argument("--n", type=int, default=None, help="best-of-N for medfast/SimpleITK (default 5, quick 3)")
    p.add_argument("--n-scipy", type=int, default=None, help="best-of-N for scipy (default 3, quick 1)")
    p.add_argument("--small-reps", type=int, default=None, help="calls for the small case (default 50, quick 20)")
    p.add_argument("--cubic-only", action="store_true",
                   help="only the order-3 rows (headline and oblique: scipy, SimpleITK "
                        "BSpline, medfast)")
    p.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                   help="first wait up to SECONDS for both cores to be idle "
                        "(a shared machine); default 0: start at once")
    args = p.parse_args(argv)
    args.n = args.n or (3 if args.quick else 5)
    args.n_scipy = args.n_scipy or (1 if args.quick else 3)
    args.small_reps = args.small_reps or (20 if args.quick else 50)

    if NUMBA_NOTE:
        NOTES.append(NUMBA_NOTE)
    if args.wait_idle > 0:
        wait_idle(args.wait_idle)
    t_start = time.perf_counter()
    machine_facts(args)
    t0 = time.perf_counter()
    data = phantom(SHAPE)
    data16 = np.round(data).astype(np.int16)
    print(f"phantom {SHAPE} float32 (range {data.min():.1f}..{data.max():.1f}) built in "
          f"{time.perf_counter() - t0:.2f} s; int16 copy = round(float32)")

    if args.cubic_only:
        cubic(args, data)
        return 1 if MISMATCHES else 0
    headline(args, data)
    cubic(args, data)
    if HAVE_NUMBA_BACKEND and not args.quick:
        numba_cold_compile(args)
    int16_case(args, data, data16)
    peak_memory(args, data, data16)
    small_call(args)
    separable(args, data)
    oblique(args, data)
    threads_scaling(args, data)

    print("\n" + "=" * 78)
    print("Targets")
    tg = targets(args)
    for name, measured, verdict in tg:
        print(f"  {verdict:4s}  {name:<70s} {measured}")
    if EXTRA.get("numba_first"):
        print("numba first calls in this process: " + "; ".join(
            f"{k}: {v * 1e3:.0f} ms" for k, v in EXTRA["numba_first"]))
    if EXTRA.get("numba_cold"):
        print("numba cold compile (fresh process, empty cache): "
              + "; ".join(EXTRA["numba_cold"]))
    for n in NOTES:
        print("note: " + n)
    if args.markdown:
        f = EXTRA["facts"]
        print("\n## Markdown\n")
        print(f"{datetime.date.today().isoformat()}, {f['cpu']}, os.cpu_count() "
              f"{f['cpu_count']}, affinity {f['affinity']}, threads {args.threads}, "
              f"numpy {f['numpy']}, scipy {f['scipy']}, SimpleITK {f['SimpleITK']}, "
              f"numba {f['numba']}, medfast {f['git']}, {f['load_start']} (at start). "
              f"Command: `python {' '.join(sys.argv)}`\n")
        print(markdown(args))
        print("\n| target | measured | verdict |\n|---|---|---|")
        for name, measured, verdict in tg:
            print(f"| {name} | {measured} | {verdict} |")
        if EXTRA.get("memory"):
            print("\n| peak memory (output=None) | peak MiB | output MiB | ratio |\n|---|---|---|---|")
            for label, peak, nbytes, r in EXTRA["memory"]:
                print(f"| {label} | {peak / 2**20:.2f} | {nbytes / 2**20:.2f} | {r:.4f} |")
        if EXTRA.get("numba_first"):
            print("\nnumba first call in this process (cache load or compile + run): "
                  + "; ".join(f"{k}: {v * 1e3:.0f} ms" for k, v in EXTRA["numba_first"]))
        if EXTRA.get("numba_cold"):
            print("\nnumba cold compile (fresh process, empty cache): "
                  + "; ".join(EXTRA["numba_cold"]))
        for n in NOTES:
            print(f"\n- {n}")
    print(f"\nmachine load at start: {EXTRA['facts']['load_start']}")
    print(f"machine load at end  : {machine_load()}")
    print(f"total run time {time.perf_counter() - t_start:.1f} s")
    if MISMATCHES:
        print("\n" + "!" * 78)
        print(f"!!! {len(MISMATCHES)} MISMATCH(ES) against scipy:")
        for m in MISMATCHES:
            print("!!!   " + m)
        print("!" * 78)
        return 1
    print("all medfast results identical to scipy's (np.array_equal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

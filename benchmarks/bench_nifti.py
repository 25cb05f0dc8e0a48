#!/usr/bin/env python
"""Benchmark medfast.load / medfast.save of .nii.gz against nibabel.

Run from the repository root::

    python benchmarks/bench_nifti.py            # best of 5 (about 1 minute)
    python benchmarks/bench_nifti.py --n 3      # best of 3
    python benchmarks/bench_nifti.py --markdown # also print a markdown table

Data: a Shepp-Logan phantom scaled to int16 (0..1000) plus Gaussian noise
(sigma 20, clipped at 0), like an MR volume: noise makes compression honest.
nibabel's default: ``np.asanyarray(nib.load(p).dataobj)`` and ``nib.save``
(gzip level 1).  Both tools are timed interleaved in the same run, best of N
of ``time.perf_counter``; every load is checked against the written data and
every file against nibabel's reader.  "load" reads the file each tool wrote
(medfast's is blocked gzip, decompressed two members at a time; the
"nibabel's file" row has medfast read nibabel's single-stream file, which
decompresses in one thread).  Targets (issue 3): load >= 2x nibabel,
save >= 3x nibabel, files <= 10% larger than nibabel's.
"""
import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

import medfast
from machine import cpu_model
from medfast.io import _gzip
from medfast.phantom import shepp_logan

CASES = [(256, 256, 180), (512, 512, 300)]


def volume(shape):
    rng = np.random.default_rng(0)
    data = shepp_logan(shape) * 1000 + rng.normal(0, 20, shape).astype(np.float32)
    return np.clip(data, 0, None).astype(np.int16)


def best(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="repeats, best of N")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpu {cpu_model()}, {os.cpu_count()} cpus, affinity {len(os.sched_getaffinity(0))}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"nibabel {nib.__version__}, isal "
          f"{'not installed' if _gzip.igzip is None else __import__('isal').__version__}")
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for shape in CASES:
            data = volume(shape)
            # Fortran order, as every loaded NIfTI array is (C-order arrays
            # are written slab by slab; see the c-order row).
            img = medfast.Image(np.asfortranarray(data), np.diag([1.0, 1.0, 1.2, 1.0]))
            nib_img = img.to_nibabel()
            p_nib = os.path.join(tmp, "nib.nii.gz")
            p_mf = os.path.join(tmp, "mf.nii.gz")
            nib.save(nib_img, p_nib)
            medfast.save(img, p_mf)
            # Correctness: each reads the other's file, same voxels.
            ok = (np.array_equal(np.asanyarray(nib.load(p_mf).dataobj), data)
                  and np.array_equal(medfast.load(p_nib).array, data)
                  and np.array_equal(medfast.load(p_mf).array, data))
            failed |= not ok
            # Interleaved: each round times both tools.  Loads and saves in
            # separate phases: a save just before a load can leave the file
            # half out of this container's small page cache (reads from disk
            # then swing the load times 3x, for either tool).
            t = {"nib_load": [], "mf_load": [], "nib_save": [], "mf_save": [],
                 "mf_load_nib": []}
            for _ in range(args.n):
                t["nib_save"].append(best(lambda: nib.save(nib_img, p_nib), 1))
                t["mf_save"].append(best(lambda: medfast.save(img, p_mf), 1))
            for _ in range(args.n):
                t["nib_load"].append(best(lambda: np.asanyarray(nib.load(p_nib).dataobj), 1))
                t["mf_load"].append(best(lambda: medfast.load(p_mf).array, 1))
                t["mf_load_nib"].append(best(lambda: medfast.load(p_nib).array, 1))
            t = {k: min(v) * 1000 for k, v in t.items()}
            size_nib, size_mf = os.path.getsize(p_nib), os.path.getsize(p_mf)
            rows.append((shape, t, size_nib, size_mf, ok))
    name = "x".join(map(str, rows[0][0]))
    print()
    header = ("| case | nibabel | medfast | speed-up | target |\n"
              "|---|---|---|---|---|")
    lines = []
    for shape, t, size_nib, size_mf, ok in rows:
        name = "x".join(map(str, shape)) + " int16"
        load_x, save_x = t["nib_load"] / t["mf_load"], t["nib_save"] / t["mf_save"]
        larger = 100 * (size_mf / size_nib - 1)
        lines.append(f"| load {name} | {t['nib_load']:.0f} ms | {t['mf_load']:.0f} ms | "
                     f"{load_x:.1f}x | >= 2x: {'pass' if load_x >= 2 else 'FAIL'} |")
        nib_x = t["nib_load"] / t["mf_load_nib"]
        lines.append(f"| load {name}, nibabel's file (one gzip stream) | {t['nib_load']:.0f} ms | "
                     f"{t['mf_load_nib']:.0f} ms | {nib_x:.1f}x | (information) |")
        lines.append(f"| save {name} | {t['nib_save']:.0f} ms | {t['mf_save']:.0f} ms | "
                     f"{save_x:.1f}x | >= 3x: {'pass' if save_x >= 3 else 'FAIL'} |")
        lines.append(f"| file {name} | {size_nib / 1e6:.2f} MB | {size_mf / 1e6:.2f} MB | "
                     f"{larger:+.1f}% | <= +10%: {'pass' if larger <= 10 else 'FAIL'} |")
        if not ok:
            lines.append(f"| MISMATCH {name} | | | | data differ |")
    print(header)
    print("\n".join(lines))
    if args.markdown:
        pass  # the table above is markdown already
    if failed:
        print("MISMATCH: a file did not read back identically", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

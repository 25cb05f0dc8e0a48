#!/usr/bin/env python
"""Time ``medfast.resample(..., order='label')`` against the number of labels.

Run from the repository root::

    python benchmarks/bench_labels.py              # 1 thread, best of 3
    python benchmarks/bench_labels.py --threads 2

Each map is resampled from 1 mm to ``spacing=0.7`` (identity affine): two
labels, a different float32 label in every voxel (the "float image passed by
mistake" case, whole numbers), and 1,000 random int16 labels (an atlas).  The
one-pass kernel's time should not depend on the count.  For the smallest map
the per-label reference (one linear pass per label, what ran before) is
timed too, and both answers are compared.
"""
import argparse
import importlib
import time

import numpy as np

from medfast import Image, resample

R = importlib.import_module("medfast.resample")


def best(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=3, help="best of N")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for shape in [(16, 16, 16), (64, 64, 40), (128, 128, 128)]:
        nvox = int(np.prod(shape))
        many = rng.permutation(nvox).reshape(shape).astype(np.float32)
        maps = [("2 labels (float32)", (many % 2).astype(np.float32)),
                (f"{nvox} labels (float32, one per voxel)", many),
                ("1000 random labels (int16)",
                 rng.integers(0, 1000, size=shape).astype(np.int16))]
        for name, data in maps:
            img = Image(data, np.eye(4))
            t = best(lambda: resample(img, spacing=0.7, order="label",
                                      threads=args.threads), args.n)
            print(f"{shape} {name:40s} one pass {t * 1e3:8.1f} ms")
            if nvox <= 4096:
                out = resample(img, spacing=0.7, order="label", threads=args.threads)
                ref = np.empty(out.shape, data.dtype)
                voxel = np.linalg.inv(img.affine) @ out.affine
                start = time.perf_counter()
                R._label_resample_reference(data, voxel[:3, :3], voxel[:3, 3], ref,
                                            "constant", 0.0, args.threads)
                t_ref = time.perf_counter() - start
                print(f"{'':12s} per-label reference {t_ref * 1e3:8.1f} ms, "
                      f"identical: {np.array_equal(out.array, ref)}")


if __name__ == "__main__":
    main()

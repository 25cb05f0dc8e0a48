#!/usr/bin/env python
"""Benchmark medfast.resample / resample_to against nibabel.processing and SimpleITK.

Run from the repository root (``pip install -e ".[compare]"`` first for
SimpleITK; its rows are skipped without it)::

    python benchmarks/bench_resample.py               # median of 5 (about 1-2 minutes)
    python benchmarks/bench_resample.py --repeat 3    # median of 3
    python benchmarks/bench_resample.py --threads 1   # threads for medfast and SimpleITK

Data: a 256x256x180 Shepp-Logan phantom (``medfast.phantom.shepp_logan``,
times 1000) as float32 and as int16, with 0.9 x 0.9 x 1.2 mm voxels (LAS,
the usual NIfTI storage order).  Two cases, each on the same output grid for
every tool:

* ``spacing=1.0``: ``medfast.resample(img, spacing=1.0)``; nibabel's
  ``resample_from_to`` onto medfast's grid; nibabel's
  ``resample_to_output(voxel_sizes=1.0)`` (its own RAS grid spanning the
  voxel centres: timed, not compared); SimpleITK ``Resample`` onto the same
  grid, without the copies (prebuilt images) and with them
  (``Image.from_sitk(sitk.Resample(img.to_sitk(), ...))``, what a numpy user
  pays).
* ``oblique 1.2 mm``: ``medfast.resample_to(img, ref)`` with a reference grid
  rotated 15 degrees about (1, 2, 3), 1.2 mm isotropic, centred on the image;
  nibabel's ``resample_from_to(img, ref)``; SimpleITK ``Resample(img, ref)``.

Each case also times medfast on a C-ordered copy of the input (the input
is Fortran-ordered, as loaded NIfTI arrays are), to show what the memory
layout costs.  All linear interpolation, ``cval`` 0.  The calls of one case
are timed interleaved (round robin), ``time.perf_counter`` around each; the
table gives medians.  Every answer is compared with nibabel's on the interior (output
voxels whose input coordinate lies at least 1 voxel inside the input; at the
edges SimpleITK extends the image by half a voxel): max abs difference, and
whether medfast's whole array is identical to nibabel's.  Only medfast's
public API is used.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import nibabel as nib
import nibabel.processing
import numpy as np

import medfast
from machine import cpu_model
from medfast.phantom import shepp_logan

try:
    import SimpleITK as sitk
except ImportError:  # pragma: no cover - the SimpleITK rows are skipped
    sitk = None

SHAPE = (256, 256, 180)
SPACING = (0.9, 0.9, 1.2)


def rotation(axis, degrees):
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def input_image(dtype):
    data = shepp_logan(SHAPE) * 1000
    affine = np.diag([-SPACING[0], SPACING[1], SPACING[2], 1.0])  # LAS
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2)  # centred on 0
    # Fortran order, as every NIfTI array loaded by nibabel or medfast is.
    return medfast.Image(np.asfortranarray(np.rint(data).astype(dtype)), affine)


def oblique_reference(img):
    """A 1.2 mm isotropic grid rotated 15 degrees, covering the image."""
    extent = np.array(img.spatial_shape) * img.spacing
    shape = tuple(int(n) for n in np.ceil(extent / 1.2))
    affine = np.eye(4)
    affine[:3, :3] = rotation([1, 2, 3], 15) * 1.2
    centre = img.affine @ np.r_[(np.array(img.spatial_shape) - 1) / 2, 1.0]
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    return medfast.Image(np.zeros(shape, np.uint8), affine)


def interior(img, shape, out_affine):
    """Output voxels whose input coordinate is at least 1 voxel inside."""
    voxel = np.linalg.inv(img.affine) @ out_affine
    mask = np.ones(shape, dtype=bool)
    o = [np.arange(n, dtype=np.float64) for n in shape]
    for h in range(3):
        coord = (voxel[h, 0] * o[0][:, None, None] + voxel[h, 1] * o[1][None, :, None]
                 + voxel[h, 2] * o[2][None, None, :] + voxel[h, 3])
        mask &= (coord >= 1) & (coord <= img.spatial_shape[h] - 2)
    return mask


def sitk_grid(shape, affine):
    """A SimpleITK image with the grid (size and LPS geometry) of a medfast grid."""
    geometry = medfast.Image(np.zeros((1, 1, 1), np.uint8), affine).to_sitk()
    grid = sitk.Image([int(n) for n in shape], sitk.sitkUInt8)
    grid.SetOrigin(geometry.GetOrigin())
    grid.SetSpacing(geometry.GetSpacing())
    grid.SetDirection(geometry.GetDirection())
    return grid


def race(calls, repeat):
    """Call each (name, fn) `repeat` times round robin (alternating
    direction); return {name: median seconds} and {name: last result}."""
    times = {name: [] for name, _ in calls}
    results = {}
    for r in range(repeat):
        for name, fn in (calls if r % 2 == 0 else calls[::-1]):
            results[name] = None  # free the previous output first
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}, results


def as_array(result):
    if isinstance(result, medfast.Image):
        return result.array
    if sitk is not None and isinstance(result, sitk.Image):
        return sitk.GetArrayFromImage(result).T
    return np.asanyarray(result.dataobj)


def run_case(label, img, shape, out_affine, medfast_call, repeat, extra_nib=None):
    """Time every tool on one case; `medfast_call(image)` is medfast's call."""
    nib_img = img.to_nibabel()
    img_c = img.replace(array=np.ascontiguousarray(img.array))
    calls = [("medfast", lambda: medfast_call(img)),
             ("medfast, C-order input", lambda: medfast_call(img_c)),
             ("nibabel", lambda: nibabel.processing.resample_from_to(
                 nib_img, (shape, out_affine), order=1, cval=0.0))]
    if extra_nib is not None:
        calls.append(("nibabel resample_to_output", lambda: extra_nib(nib_img)))
    if sitk is not None:
        sitk_img, grid = img.to_sitk(), sitk_grid(shape, out_affine)
        identity = sitk.Transform()
        calls.append(("SimpleITK", lambda: sitk.Resample(
            sitk_img, grid, identity, sitk.sitkLinear, 0.0)))
        calls.append(("SimpleITK + copies", lambda: medfast.Image.from_sitk(sitk.Resample(
            img.to_sitk(), grid, identity, sitk.sitkLinear, 0.0))))
    medfast_call(img)  # warm-up (and the first-use imports)
    times, results = race(calls, repeat)
    reference = as_array(results["nibabel"])
    mask = interior(img, shape, out_affine)
    rows = []
    for name, _ in calls:
        got = as_array(results[name])
        if name == "nibabel resample_to_output":
            diff, same = "other grid", ""
        else:
            d = np.abs(got[mask].astype(np.float64) - reference[mask])
            diff = f"{d.max():.3g}"
            same = ("identical" if got.dtype == reference.dtype
                    and np.array_equal(got, reference) else "")
        rows.append((label, str(img.dtype), name, times[name], diff, same))
    return rows, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="calls per tool, median")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for medfast and SimpleITK (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        medfast.set_num_threads(args.threads)
        if sitk is not None:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}")
    print("command: python " + " ".join(sys.argv))
    print(f"cpu {cpu_model()}, {os.cpu_count()} cpus, affinity "
          f"{len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.2f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, nibabel "
          f"{nib.__version__}, SimpleITK "
          f"{sitk.Version_VersionString() if sitk else 'not installed'}; threads: medfast "
          f"{medfast.get_num_threads()}, SimpleITK "
          f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() if sitk else '-'}")
    print(f"median of {args.repeat} calls per tool\n")

    rows, failed = [], False
    for dtype in (np.float32, np.int16):
        img = input_image(dtype)
        spaced = medfast.resample(img, spacing=1.0)
        case_rows, _ = run_case(
            f"spacing=1.0: {SHAPE} -> {spaced.spatial_shape}", img, spaced.spatial_shape,
            spaced.affine, lambda im: medfast.resample(im, spacing=1.0), args.repeat,
            extra_nib=lambda n: nibabel.processing.resample_to_output(
                n, voxel_sizes=1.0, order=1, cval=0.0))
        rows += case_rows
        ref = oblique_reference(img)
        case_rows, _ = run_case(
            f"oblique 1.2 mm: -> {ref.spatial_shape}", img, ref.spatial_shape, ref.affine,
            lambda im, ref=ref: medfast.resample_to(im, ref), args.repeat)
        rows += case_rows

    print("| case | dtype | tool | median | vs nibabel | vs SimpleITK | "
          "max abs diff vs nibabel (interior) |")
    print("|---|---|---|---|---|---|---|")
    for label, dtype, name, t, diff, same in rows:
        ref_nib = next(r[3] for r in rows if r[:2] == (label, dtype) and r[2] == "nibabel")
        ref_sitk = next((r[3] for r in rows if r[:2] == (label, dtype)
                         and r[2] == "SimpleITK"), None)
        vs_nib = f"{ref_nib / t:.1f}x" if name != "nibabel" else "1x"
        vs_sitk = f"{ref_sitk / t:.1f}x" if ref_sitk else "-"
        print(f"| {label} | {dtype} | {name} | {t * 1e3:.0f} ms | {vs_nib} | {vs_sitk} | "
              f"{diff}{' (' + same + ')' if same else ''} |")
        if name.startswith("medfast") and same != "identical":
            failed = True
    if failed:
        print("MISMATCH: a medfast result differs from nibabel's", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark reading annotations: RTSTRUCT and DICOM SEG onto their image.

Run from the repository root::

    python benchmarks/bench_annotations.py            # median of 5 runs
    python benchmarks/bench_annotations.py --n 3 --slices 60

What is timed, interleaved in one run (median of N, ``time.perf_counter``),
and how well each tool agrees with the truth (Dice per structure):

* RTSTRUCT, the issue's case: an oblique CT of 96 x 80 pixels at
  0.8 x 0.9 mm (2.5 mm slices, files shuffled) with three structures
  (a body ellipse, a ring with an island in its hole, a small lesion),
  written by the tests' own contour writer (``tests/dicom/annotation_synth.py``:
  marching squares between pixel centres, so the truth is known).
  ``medfast.load_rtstruct(rs, like=ct)`` against rt-utils
  (``RTStructBuilder.create_from(...).get_roi_mask_by_name``, the tool
  people use today), each mask compared with the truth.
* RTSTRUCT, large: an axial 512 x 512 CT, one structure of 100,000+
  contour points (a disc of radius 200 pixels with a square hole, on
  every slice): the rasteriser's speed.
* SEG: a BINARY SEG of 4 segments written with highdicom on the oblique
  CT; ``medfast.load_seg(seg, like=ct)`` against highdicom's own reading
  (``segread`` + ``get_pixels_by_source_instance``), which must agree
  voxel for voxel.

Times include reading the annotation file; the CT is loaded once
beforehand for medfast (``like=``), while rt-utils reads the series folder
itself (its only way).  rt-utils and highdicom are optional
(``pip install rt-utils highdicom``); a missing one is reported and
skipped.
"""
import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import medfast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dicom"))
from annotation_synth import (ORIENTATION, Series, truth_masks, write_ct,  # noqa: E402
                              write_rtstruct)
from machine import cpu_model  # noqa: E402


def median_time(fn, n):
    times, out = [], None
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def rt_utils_masks(ct_folder, rs_path, names, series):
    """rt-utils' masks, as (i, j, k) arrays in medfast's slice order.

    rt-utils fills ``mask[row, column, slice]`` (OpenCV's (y, x)) in an
    array it allocates as (Columns, Rows, slices): read in that sense, the
    part of the image it covers, the rest counted as empty (the most
    favourable reading of a non-square mask)."""
    from rt_utils import RTStructBuilder
    rt = RTStructBuilder.create_from(dicom_series_path=str(ct_folder), rt_struct_path=rs_path)
    order = [series.sop_uids.index(str(ds.SOPInstanceUID)) for ds in rt.series_data]
    rows, cols = int(series.datasets[0].Rows), int(series.datasets[0].Columns)
    out = {}
    for name in names:
        mask = rt.get_roi_mask_by_name(name)
        r, c = min(mask.shape[0], rows), min(mask.shape[1], cols)
        placed = np.zeros((cols, rows, len(order)), bool)
        placed[:c, :r, order] = mask[:r, :c].transpose(1, 0, 2)
        out[name] = placed
    return out


def bench_rtstruct(root, n, slices, report):
    series = write_ct(root / "ct", slices=slices, seed=1)
    masks = truth_masks(slices)
    rs = write_rtstruct(root / "rs.dcm", series, masks)
    ct = medfast.load_dicom(root / "ct")
    t_mf, labels = median_time(lambda: medfast.load_rtstruct(rs, ct, onehot=True), n)
    ours = {name: labels.array[..., c] for c, name in enumerate(masks)}
    row = {"case": f"RTSTRUCT oblique 96x80x{slices}, 3 ROIs", "medfast": t_mf,
           "medfast dice": [dice(ours[k], masks[k]) for k in masks]}
    try:
        t_rt, theirs = median_time(lambda: rt_utils_masks(root / "ct", rs, list(masks), series), n)
        row.update({"rt-utils": t_rt, "rt-utils dice": [dice(theirs[k], masks[k]) for k in masks]})
    except ImportError:
        row["rt-utils"] = None
    report.append(row)


def _large_ct(folder, slices):
    """An axial 512x512 series (pydicom); returns a :class:`Series`."""
    import pydicom
    from synthetic import AXIAL, lps_affine, stack_positions, write_series
    positions = stack_positions(slices, AXIAL, step=1.5, origin=(-200.0, -200.0, 0.0))
    stack = np.zeros((slices, 512, 512), np.int16)
    paths = write_series(folder, stack, positions, orientation=AXIAL,
                         pixel_spacing=(0.78, 0.78), modality="CT", seed=2)
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    lps = lps_affine(AXIAL, (0.78, 0.78), positions)
    return Series(paths, [str(d.SOPInstanceUID) for d in datasets], lps,
                  str(datasets[0].SeriesInstanceUID), str(datasets[0].StudyInstanceUID),
                  str(datasets[0].FrameOfReferenceUID), datasets)


def bench_large(root, n, slices, report):
    series = _large_ct(root / "big", slices)
    i, j = np.mgrid[0:512, 0:512]
    disc = np.hypot(i - 256, j - 250) <= 200
    disc &= ~((np.abs(i - 256) < 40) & (np.abs(j - 250) < 40))
    masks = {"body": np.repeat(disc[:, :, None], slices, axis=2)}
    rs = write_rtstruct(root / "big_rs.dcm", series, masks)
    import pydicom
    points = sum(int(c.NumberOfContourPoints)
                 for c in pydicom.dcmread(rs).ROIContourSequence[0].ContourSequence)
    ct = medfast.load_dicom(root / "big")
    t_mf, labels = median_time(lambda: medfast.load_rtstruct(rs, ct), n)
    row = {"case": f"RTSTRUCT axial 512x512x{slices}, 1 ROI of {points:,} points",
           "medfast": t_mf, "medfast dice": [dice(labels.array, masks["body"])]}
    try:
        t_rt, theirs = median_time(lambda: rt_utils_masks(root / "big", rs, ["body"], series), n)
        row.update({"rt-utils": t_rt, "rt-utils dice": [dice(theirs["body"], masks["body"])]})
    except ImportError:
        row["rt-utils"] = None
    report.append(row)


def bench_seg(root, n, slices, report):
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        report.append({"case": "SEG (highdicom missing: skipped)"})
        return
    series = write_ct(root / "seg_ct", slices=slices, seed=4)
    masks = truth_masks(slices)
    names = ["body", "ring", "lesion", "corner"]
    corner = np.zeros_like(masks["body"])
    corner[:12, :10, 2:5] = True
    pixels = np.stack([masks["body"], masks["ring"], masks["lesion"], corner], -1)
    frames = np.moveaxis(pixels, (0, 1, 2), (2, 1, 0)).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=series.datasets, pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[hd.seg.SegmentDescription(
            segment_number=k + 1, segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Organ,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
            for k, name in enumerate(names)],
        series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="bench", manufacturer_model_name="bench",
        software_versions="1", device_serial_number="1")
    path = root / "seg.dcm"
    seg.save_as(path)
    ct = medfast.load_dicom(root / "seg_ct")
    t_mf, ours = median_time(lambda: medfast.load_seg(path, like=ct, onehot=True), n)

    def highdicom_read():
        segmentation = hd.seg.segread(path)
        return segmentation.get_pixels_by_source_instance(series.sop_uids,
                                                          combine_segments=False)

    t_hd, theirs = median_time(highdicom_read, n)
    theirs = np.moveaxis(theirs, (0, 1, 2), (2, 1, 0))
    report.append({"case": f"SEG oblique 96x80x{slices}, 4 segments ({seg.NumberOfFrames} frames)",
                   "medfast": t_mf, "highdicom": t_hd,
                   "medfast dice": [dice(ours.array[..., c], pixels[..., c]) for c in range(4)],
                   "identical to highdicom": bool(np.array_equal(ours.array, theirs))})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5, help="runs per case (median)")
    parser.add_argument("--slices", type=int, default=40, help="slices of the oblique CT")
    parser.add_argument("--large-slices", type=int, default=60,
                        help="slices of the 512x512 CT")
    args = parser.parse_args()
    print(f"# bench_annotations {datetime.datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{medfast.get_num_threads()} medfast threads, oblique IOP "
          f"{tuple(round(float(v), 3) for v in ORIENTATION)}")
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_rtstruct(root, args.n, args.slices, report)
        bench_large(root, args.n, args.large_slices, report)
        bench_seg(root, args.n, args.slices, report)
    for row in report:
        print(f"\n{row['case']}")
        for key, value in row.items():
            if key == "case":
                continue
            if isinstance(value, float):
                value = f"{value * 1000:.1f} ms"
            elif isinstance(value, list):
                value = ", ".join(f"{v:.3f}" for v in value)
            elif value is None:
                value = "not installed"
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()

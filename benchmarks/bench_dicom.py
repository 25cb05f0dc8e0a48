#!/usr/bin/env python
"""Benchmark DICOM reading: header scans and series loads.

Run from the repository root::

    python benchmarks/bench_dicom.py               # QA data + synthetic series
    python benchmarks/bench_dicom.py --n 3 --no-synthetic

What is timed, interleaved in one run (best of N, ``time.perf_counter``):

* header scan: ``medfast.scan_dicom(folder)`` on every QA set (files/s);
* loading a series: ``medfast.load_dicom(folder)`` against ``dcm2niix -z n``
  (a subprocess writing an uncompressed NIfTI: what users run today) and
  SimpleITK's ``ImageSeriesReader`` (including the copy to numpy), on the
  largest QA series (150 GE EPI files) and on synthetic 180-slice MR
  (256x256) and 300-slice CT (512x512) series written with pydicom.
  Every medfast volume is checked against dcm2niix's output (closest
  canonical RAS: same shape, same values, affine within 0.05 mm).

Targets (issue 4): load <= 2x the wall time of ``dcm2niix -z n`` and faster
than SimpleITK.  The QA data come from ``../shared/data/dicom_qa``
(``MEDFAST_DICOM_QA`` overrides it).
"""
import argparse
import datetime
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import medfast

QA = Path(os.environ.get("MEDFAST_DICOM_QA",
                         Path(__file__).resolve().parents[1].parent / "shared/data/dicom_qa"))
SETS = ["bits12", "enhanced", "nih", "siemens_orientation", "transfer_syntax"]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def best(fn, n):
    return min(timed(fn)[0] for _ in range(n))


def synthetic_series(folder, shape, modality, rng):
    """Write a classic single-frame series with pydicom: (rows, cols, slices)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    rows, cols, n = shape
    series, study = generate_uid(), generate_uid()
    data = rng.integers(0, 4000, size=(n, rows, cols), dtype=np.uint16)
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" \
            else "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.Manufacturer = modality, "medfast-bench"
        ds.PatientName, ds.PatientID = "Bench^Mark", "0"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.SeriesDescription = ds.ProtocolName = f"synthetic {modality}"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-120.0, -110.0, 1.5 * k]
        ds.PixelSpacing = [0.9, 0.8]
        ds.SliceThickness = 1.5
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = data[k].tobytes()
        ds.save_as(os.path.join(folder, f"IM{k:04d}.dcm"), enforce_file_format=True)


def dcm2niix(folder, out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "%s", "-o", out, folder],
                   check=True, capture_output=True)


def sitk_load(folder):
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return sitk.GetArrayFromImage(reader.Execute())


def same_as_dcm2niix(img, out):
    def canonical(array, affine):
        c = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array), affine))
        return np.asanyarray(c.dataobj), c.affine
    ours = canonical(img.array, img.affine)
    for path in glob.glob(os.path.join(out, "*.nii")):
        ref = nib.load(path)
        theirs = canonical(np.asanyarray(ref.dataobj), ref.affine)
        if (ours[0].shape == theirs[0].shape and np.array_equal(ours[0], theirs[0])
                and np.abs(ours[1] - theirs[1]).max() < 0.05):
            return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="repeats, best of N")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="only the QA data (skip the 180- and 300-slice series)")
    args = parser.parse_args(argv)
    if not QA.is_dir():
        print(f"no DICOM QA data at {QA} (set MEDFAST_DICOM_QA)", file=sys.stderr)
        return 2
    has_sitk = True
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        has_sitk = False
    import pydicom
    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpus {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}; python "
          f"{platform.python_version()}, pydicom {pydicom.__version__}, "
          f"dcm2niix {subprocess.run(['dcm2niix', '-v'], capture_output=True, text=True).stdout.split()[-1]}")

    print("\n| header scan (scan_dicom) | files | time | files/s |\n|---|---|---|---|")
    for name in SETS:
        folder = str(QA / name / "In")
        files = sum(len(f) for _, _, f in os.walk(folder))
        t = best(lambda: medfast.scan_dicom(folder), args.n)
        print(f"| {name} | {files} | {t * 1e3:.0f} ms | {files / t:.0f} |")

    cases = [("150 GE EPI files 64x64 (QA nih mr_0004)",
              str(QA / "nih/In/20180918GE/mr_0004"))]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_synthetic:
            rng = np.random.default_rng(0)
            for label, shape, modality in (("180-slice MR 256x256", (256, 256, 180), "MR"),
                                           ("300-slice CT 512x512", (512, 512, 300), "CT")):
                folder = os.path.join(tmp, modality)
                synthetic_series(folder, shape, modality, rng)
                cases.append((label, folder))
        out = os.path.join(tmp, "dcm2niix_out")
        print("\n| load a series | medfast.load_dicom | dcm2niix -z n | SimpleITK "
              "| medfast / dcm2niix (target <= 2) | SimpleITK / medfast (target > 1) | "
              "same as dcm2niix |\n|---|---|---|---|---|---|---|")
        for label, folder in cases:
            t = {"mf": [], "d2n": [], "sitk": []}
            for _ in range(args.n):
                t["mf"].append(timed(lambda: medfast.load_dicom(folder))[0])
                t["d2n"].append(timed(lambda: dcm2niix(folder, out))[0])
                if has_sitk:
                    t["sitk"].append(timed(lambda: sitk_load(folder))[0])
            t = {k: min(v) * 1e3 if v else float("nan") for k, v in t.items()}
            ok = same_as_dcm2niix(medfast.load_dicom(folder), out)
            failed |= not ok
            print(f"| {label} | {t['mf']:.0f} ms | {t['d2n']:.0f} ms | {t['sitk']:.0f} ms | "
                  f"{t['mf'] / t['d2n']:.2f} | {t['sitk'] / t['mf']:.2f} | "
                  f"{'yes' if ok else 'NO'} |")
    if failed:
        print("MISMATCH: a medfast volume differs from dcm2niix's", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

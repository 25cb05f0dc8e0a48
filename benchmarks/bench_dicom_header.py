#!/usr/bin/env python
"""Benchmark DICOM header parsing: read_header_fast against pydicom.

Run from the repository root::

    python benchmarks/bench_dicom_header.py            # 9 rounds
    python benchmarks/bench_dicom_header.py --rounds 15

For each file set (the 150 GE EPI files of the NIH QA set; the enhanced
multi-frame files) the files are read into memory once, then each round
times, interleaved (alternating which goes first, so that load from other
processes falls on both alike):

* header: ``medfast.dicom.fastheader.read_header_fast(data)`` and
  ``pydicom.dcmread(BytesIO(data), stop_before_pixels=True)``, every file;
* access: then reading about 40 typical attributes from each data set (and,
  for multi-frame files, every frame's ImagePositionPatient from the
  per-frame functional groups), on data sets just parsed (values are decoded
  on first access, so each round parses afresh, untimed).

Prints the median over the rounds (files per second, microseconds per file)
and the speed-up.  The QA data come from ``../shared/data/dicom_qa``
(``MEDFAST_DICOM_QA`` overrides it).
"""
import argparse
import io
import os
import statistics
import time
from pathlib import Path

import pydicom

from medfast.dicom.fastheader import read_header_fast

QA = Path(os.environ.get("MEDFAST_DICOM_QA",
                         Path(__file__).resolve().parents[1].parent / "shared/data/dicom_qa"))
SETS = {
    "GE EPI (nih/20180918GE/mr_0004)": "nih/In/20180918GE/mr_0004/*.dcm",
    "enhanced multi-frame": "enhanced/In/**/*.dcm",
}
KEYWORDS = [
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate",
    "SeriesTime", "AcquisitionTime", "ContentTime", "Modality", "Manufacturer",
    "ManufacturerModelName", "SeriesDescription", "ProtocolName", "PatientPosition",
    "SliceThickness", "RepetitionTime", "EchoTime", "EchoNumbers", "MagneticFieldStrength",
    "SpacingBetweenSlices", "AcquisitionMatrix", "InPlanePhaseEncodingDirection",
    "FlipAngle", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "AcquisitionNumber", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "FrameOfReferenceUID", "SliceLocation", "SamplesPerPixel",
    "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns", "PixelSpacing",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept",
    "RescaleSlope",
]


def fast(data):
    return read_header_fast(data)[0]


def reference(data):
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)


def access(ds):
    """Typical attributes, plus each frame's position in multi-frame files."""
    values = [ds.get(keyword) for keyword in KEYWORDS]
    for frame in ds.get("PerFrameFunctionalGroupsSequence") or ():
        values.append(frame.PlanePositionSequence[0].ImagePositionPatient)
    return values


def timed(fn, items):
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def bench(files, rounds):
    datas = [path.read_bytes() for path in files]
    readers = {"read_header_fast": fast, "pydicom.dcmread": reference}
    for name, read in readers.items():  # warm-up, and the same answers
        assert [access(read(d)) for d in datas[:3]] == [access(reference(d)) for d in datas[:3]]
    times = {(name, part): [] for name in readers for part in ("header", "access")}
    for r in range(rounds):
        order = list(readers.items())
        for name, read in (order if r % 2 == 0 else order[::-1]):
            times[name, "header"].append(timed(read, datas))
            parsed = [read(d) for d in datas]
            times[name, "access"].append(timed(access, parsed))
    n = len(datas)
    result = {key: statistics.median(values) for key, values in times.items()}
    for part in ("header", "access"):
        for name in readers:
            t = result[name, part]
            print(f"  {part:6s} {name:17s} {n / t:9.0f} files/s  {t / n * 1e6:9.1f} us/file")
    for part in ("header", "access"):
        ratio = result["pydicom.dcmread", part] / result["read_header_fast", part]
        print(f"  {part} speed-up: {ratio:.2f}x")
    both = {name: result[name, "header"] + result[name, "access"] for name in readers}
    print(f"  header + access speed-up: {both['pydicom.dcmread'] / both['read_header_fast']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(f"pydicom {pydicom.__version__}, {args.rounds} rounds, medians")
    for label, pattern in SETS.items():
        files = sorted(QA.glob(pattern))
        if not files:
            print(f"{label}: no files under {QA} ({pattern}); set MEDFAST_DICOM_QA")
            continue
        print(f"{label}: {len(files)} files")
        bench(files, args.rounds)


if __name__ == "__main__":
    main()

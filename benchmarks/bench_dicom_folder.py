#!/usr/bin/env python
"""Benchmark DICOM folder -> NIfTI conversion: medfast against dcm2niix.

Run from the repository root: ``python benchmarks/bench_dicom_folder.py --n 3``
(options: ``--cases classic,enhanced,ct,ge``, ``--data DIR``, ``--json FILE``).

Each tool converts each case N times, interleaved, each run a child process
writing into a fresh empty folder: ``python -m medfast convert SRC -o OUT``
(gzipped NIfTI + JSON; its exit status 1, "some input skipped", is no
failure) and ``dcm2niix -z y -b y -f %p_%s -o OUT SRC``.  Reported: the best
wall time (``time.perf_counter`` around the child) and the first run; the max
peak RSS (the child's ``ru_maxrss`` from ``os.wait4``, MiB).  Linux counts
the RSS of the starting process in the child's ``ru_maxrss``, so the runs
start from a lean process (standard library only); a child running ``true``
gives the floor of the memory figures.  Checked: NIfTI file counts, and
medfast's volumes against dcm2niix's (closest canonical; same shape, values
allclose, affine within 0.05 mm; matched by content).

Cases (generated with pydicom, explicit VR little endian, cached in --data):
classic, 5,720 single-frame 80x80 MR files in one flat folder: 11 DTI series
of 40 slices x 13 volumes (b=0 + 12 directions); enhanced, 11 enhanced MR
files of 1,040 80x80 frames (40 slices x 26 volumes); ct, 300 512x512 int16
slices; ge, the 150-file GE EPI series of the DICOM QA data (MEDFAST_DICOM_QA,
default ../shared/data/dicom_qa; skipped when absent).

Targets, per case: medfast's time <= 1.0x dcm2niix's, its peak memory <= 2.0x.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QA = Path(os.environ.get("MEDFAST_DICOM_QA", ROOT.parent / "shared/data/dicom_qa"))
TOOLS = ("medfast", "dcm2niix")
GEN_VERSION = "1"  # bump when a generator changes: the cached data are written again
UID_ROOT = "1.2.826.0.1.3680043.8.498.7"
# case: (label, NIfTI files expected, shape of each of dcm2niix's volumes)
CASES = {"classic": ("classic DTI folder", 11, (80, 80, 40, 13)),
         "enhanced": ("enhanced MR folder", 11, (80, 80, 40, 26)),
         "ct": ("CT 300 x 512x512", 1, (512, 512, 300)),
         "ge": ("GE EPI QA (nih mr_0004)", 1, (64, 64, 15, 10))}
COMMON = dict(  # patient, study, series, equipment, image pixel modules
    SpecificCharacterSet="ISO_IR 100", StudyDate="20240115", SeriesDate="20240115",
    AcquisitionDate="20240115", ContentDate="20240115", StudyTime="090000",
    InstanceCreationDate="20240115", InstanceCreationTime="093000", AccessionNumber="A0001",
    InstitutionName="Bench Hospital", InstitutionAddress="1 Main St", StationName="SCANNER01",
    ReferringPhysicianName="Doe^John", StudyDescription="BENCH^HEAD", OperatorsName="Tech^A",
    InstitutionalDepartmentName="Radiology", PerformingPhysicianName="Roe^Jane",
    Manufacturer="BenchVendor", ManufacturerModelName="BenchScan", DeviceSerialNumber="12345",
    SoftwareVersions="VB1", PatientName="Bench^Mark", PatientID="BENCH0001",
    PatientBirthDate="19800101", PatientSex="O", PatientAge="044Y", PatientSize=1.75,
    PatientWeight=70, StudyID="1", PatientPosition="HFS", BodyPartExamined="HEAD",
    PositionReferenceIndicator="", PerformedProcedureStepStartDate="20240115",
    PerformedProcedureStepStartTime="090000", PerformedProcedureStepID="1",
    PerformedProcedureStepDescription="BENCH^HEAD", RequestedProcedureDescription="BENCH HEAD",
    BurnedInAnnotation="NO", LossyImageCompression="00", SamplesPerPixel=1, AcquisitionNumber=1,
    PhotometricInterpretation="MONOCHROME2", BitsAllocated=16, BitsStored=16, HighBit=15)
MR = dict(  # MR image module of a DTI scan
    ScanningSequence="EP", SequenceVariant=["SK", "SP"], ScanOptions=["PFP", "FS"],
    MRAcquisitionType="2D", SequenceName="ep_b1000", AngioFlag="N", SliceThickness=3.0,
    SpacingBetweenSlices=3.0, RepetitionTime=6500.0, EchoTime=89.0, NumberOfAverages=1,
    ImagingFrequency=123.25, ImagedNucleus="1H", EchoNumbers=1, MagneticFieldStrength=3,
    NumberOfPhaseEncodingSteps=80, EchoTrainLength=80, PercentSampling=100,
    PercentPhaseFieldOfView=100, PixelBandwidth=1860, ProtocolName="ep2d_diff_12dir",
    TransmitCoilName="Body", ReceiveCoilName="Head_32", AcquisitionMatrix=[0, 80, 80, 0],
    InPlanePhaseEncodingDirection="COL", FlipAngle=90, VariableFlipAngleFlag="N", SAR=0.12,
    dBdt=0, TriggerTime=0, ImageComments="synthetic", NumberOfTemporalPositions=13,
    DateOfLastCalibration="20240101", TimeOfLastCalibration="070000", ImagesInAcquisition=520,
    HeartRate=0, CardiacNumberOfImages=0, LowRRValue=0, HighRRValue=0, IntervalsAcquired=0,
    IntervalsRejected=0, PixelRepresentation=0, WindowCenter=600, WindowWidth=1200,
    RescaleIntercept=0, RescaleSlope=1, RescaleType="US", PixelSpacing=[3.0, 3.0])


def uid(*parts):
    """A deterministic UID under this benchmark's root."""
    return ".".join([UID_ROOT, *map(str, parts)])


def dicom_time(seconds, date=""):
    """`seconds` after midnight as DICOM TM (HHMMSS.ffffff), or DT after `date`."""
    hours, rest = divmod(seconds, 3600)
    return f"{date}{int(hours):02d}{int(rest // 60):02d}{rest % 60:09.6f}"


def item(**fields):
    """A pydicom Dataset holding `fields` (keyword=value)."""
    from pydicom import Dataset
    ds = Dataset()
    ds.update(fields)
    return ds


def new_dataset(fields, sop_class, modality, size, case_id):
    """A Dataset with file meta, COMMON and `fields`, and a private block of 5 elements."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds = item(**COMMON, **fields)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality, ds.Rows, ds.Columns = modality, size, size
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = uid(case_id, 0, 1), uid(case_id, 0, 2)
    block = ds.private_block(0x0029, "MEDFAST BENCH", create=True)
    for offset, (vr, value) in enumerate([("LO", "bench header"), ("US", 3), ("DS", "1.5"),
                                          ("FD", 2.25), ("OB", bytes(range(32)))]):
        block.add_new(offset, vr, value)
    return ds


def geometry(n_slices, n_pixels, spacing, tilt=(6.0, -3.0)):
    """ImageOrientationPatient and each slice's ImagePositionPatient, tilted a few degrees."""
    import numpy as np
    ax, ay = np.radians(tilt)
    rot = (np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
           @ np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]]))
    row, col, normal = rot.T
    corner = (np.array([0.0, -12.0, 20.0]) - (row + col) * spacing * (n_pixels - 1) / 2
              - normal * spacing * (n_slices - 1) / 2)
    positions = corner + np.outer(np.arange(n_slices) * spacing, normal)
    return np.round(rot.T[:2].ravel(), 6).tolist(), np.round(positions, 4).tolist()


def head_phantom(shape):
    """Smooth head-like signal (z, y, x) and an in-plane fibre angle for each voxel."""
    import numpy as np
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    r2 = (x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.95) ** 2
    tissue = 0.75 + 0.15 * np.cos(4 * x) * np.cos(3 * y + z) + 0.4 * (r2 < 0.08)
    return 1000 * tissue / (1 + np.exp((r2 - 1) * 25)), np.arctan2(y, x)


def dti_signal(rng, s0, angle, directions, b=1000.0):
    """uint16 signal (volume, z, y, x): b=0, then one volume per direction, with noise."""
    import numpy as np
    fibre = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)])
    vols = [s0] + [s0 * np.exp(-b * (0.4e-3 + 1.3e-3 * np.einsum("i,i...->...", g, fibre) ** 2))
                   for g in directions]
    signal = np.stack(vols) + rng.normal(0, 15, (len(vols), *s0.shape))
    return np.clip(np.abs(signal), 0, 65535).astype(np.uint16)


def write_classic(folder, n_series=11, n_slices=40, size=80, tr=6.5):
    """11 DTI series of 40 slices x 13 volumes, one flat folder of single-frame files."""
    import numpy as np
    rng = np.random.default_rng(1)
    ds = new_dataset(MR, "1.2.840.10008.5.1.4.1.1.4", "MR", size, 1)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.ImageOrientationPatient, positions = geometry(n_slices, size, 3.0)
    s0, angle = head_phantom((n_slices, size, size))
    k = np.arange(12) + 0.5  # 12 directions over a hemisphere (Fibonacci spiral)
    z, phi = 1 - k / 12, k * np.pi * (3 - np.sqrt(5))
    directions = np.round(np.stack([np.sqrt(1 - z * z) * np.cos(phi),
                                    np.sqrt(1 - z * z) * np.sin(phi), z], 1), 6).tolist()
    order = np.argsort([*range(0, n_slices, 2), *range(1, n_slices, 2)])  # interleaved
    for series in range(1, n_series + 1):
        start = 9 * 3600 + 120 * series
        ds.SeriesInstanceUID, ds.SeriesNumber = uid(1, series), series
        ds.SeriesDescription, ds.SeriesTime = f"DTI 12dir run {series}", dicom_time(start)
        signal = dti_signal(rng, s0, angle, directions)
        for volume in range(len(signal)):
            ds.DiffusionBValue = 1000.0 if volume else 0.0
            ds.DiffusionGradientOrientation = directions[volume - 1] if volume else [0.0] * 3
            ds.DiffusionDirectionality = "DIRECTIONAL" if volume else "NONE"
            ds.TemporalPositionIdentifier = volume + 1
            for s in range(n_slices):
                number = volume * n_slices + s + 1
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
                    uid(1, series, number)
                ds.InstanceNumber, ds.ImagePositionPatient = number, positions[s]
                ds.SliceLocation = positions[s][2]
                ds.AcquisitionTime = ds.ContentTime = dicom_time(
                    start + volume * tr + order[s] * tr / n_slices)
                ds.PixelData = signal[volume, s].tobytes()
                ds.save_as(folder / f"IM_{series:02d}_{number:04d}.dcm", enforce_file_format=True)


def enhanced_template(n_frames, size, iop, tr):
    """An enhanced MR Dataset with the top-level, shared and dimension modules."""
    ds = new_dataset(dict(
        ImageType=["ORIGINAL", "PRIMARY", "FMRI", "NONE"], ContentQualification="PRODUCT",
        NumberOfFrames=n_frames, PixelRepresentation=0, PixelPresentation="MONOCHROME",
        VolumetricProperties="VOLUME", VolumeBasedCalculationTechnique="NONE",
        ComplexImageComponent="MAGNITUDE", AcquisitionContrast="T2_STAR", ResonantNucleus="1H",
        KSpaceFiltering="NONE", MagneticFieldStrength=3, PulseSequenceName="epfid2d",
        MRAcquisitionType="2D", EchoPulseSequence="GRADIENT", EchoPlanarPulseSequence="YES",
        ProtocolName="bold_run", ImagingFrequency=123.25, InstanceNumber=1,
        DimensionOrganizationType="3D_TEMPORAL"), "1.2.840.10008.5.1.4.1.1.4.1", "MR", size, 2)
    ds.SharedFunctionalGroupsSequence = [item(
        PixelMeasuresSequence=[item(PixelSpacing=[3.0, 3.0], SliceThickness=3.0,
                                    SpacingBetweenSlices=3.0)],
        PlaneOrientationSequence=[item(ImageOrientationPatient=iop)],
        MRTimingAndRelatedParametersSequence=[item(
            RepetitionTime=tr * 1000, FlipAngle=75, EchoTrainLength=1, RFEchoTrainLength=1,
            GradientEchoTrainLength=80)],
        MREchoSequence=[item(EffectiveEchoTime=30.0)],
        PixelValueTransformationSequence=[item(RescaleIntercept=0, RescaleSlope=1,
                                               RescaleType="US")])]
    ds.DimensionOrganizationSequence = [item(DimensionOrganizationUID=uid(2, 0, 3))]
    ds.DimensionIndexSequence = [  # StackID, InStackPositionNumber, TemporalPositionIndex
        item(DimensionOrganizationUID=uid(2, 0, 3), DimensionIndexPointer=pointer,
             FunctionalGroupPointer=0x00209111) for pointer in (0x00209056, 0x00209057, 0x00209128)]
    return ds


def write_enhanced(folder, n_files=11, n_slices=40, n_volumes=26, size=80, tr=2.0):
    """11 enhanced MR files (one series each) of 40 slices x 26 volumes."""
    import numpy as np
    import pydicom
    rng = np.random.default_rng(2)
    iop, positions = geometry(n_slices, size, 3.0)
    ds = enhanced_template(n_slices * n_volumes, size, iop, tr)
    s0, _ = head_phantom((n_slices, size, size))
    wave = 1 + 0.03 * np.sin(2 * np.pi * np.arange(n_volumes) / 13)[:, None, None, None]
    order = np.argsort([*range(0, n_slices, 2), *range(1, n_slices, 2)])  # interleaved
    for series in range(1, n_files + 1):
        start = 10 * 3600 + 120 * series
        signal = s0 * wave + rng.normal(0, 10, (n_volumes, *s0.shape))
        ds.PixelData = np.clip(signal, 0, 65535).astype(np.uint16).tobytes()
        ds.SeriesInstanceUID, ds.SeriesNumber = uid(2, series), series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(2, series, 1)
        ds.SeriesDescription, ds.SeriesTime = f"BOLD run {series}", dicom_time(start)
        ds.AcquisitionDateTime = dicom_time(start, "20240115")
        ds.PerFrameFunctionalGroupsSequence = [item(
            FrameContentSequence=[item(
                FrameAcquisitionDateTime=dicom_time(start + v * tr + order[s] * tr / n_slices,
                                                    "20240115"),
                StackID="1", InStackPositionNumber=s + 1, TemporalPositionIndex=v + 1,
                DimensionIndexValues=[1, s + 1, v + 1])],
            PlanePositionSequence=[item(ImagePositionPatient=positions[s])])
            for v in range(n_volumes) for s in range(n_slices)]
        ds.save_as(folder / f"EMR_{series:02d}.dcm", enforce_file_format=True)
    for path in sorted(folder.glob("EMR_*.dcm")):  # pydicom reads them back
        frames = pydicom.dcmread(path).pixel_array
        assert frames.shape == (n_slices * n_volumes, size, size), f"{path}: {frames.shape}"


def write_ct(folder, n_slices=300, size=512):
    """300 axial int16 CT slices (RescaleIntercept -1024), one file per slice."""
    import numpy as np
    rng = np.random.default_rng(3)
    ds = new_dataset(dict(
        PixelRepresentation=1, KVP=120, SliceThickness=1.0, ConvolutionKernel="B30f",
        XRayTubeCurrent=200, ExposureTime=500, ReconstructionDiameter=358.4, GantryDetectorTilt=0,
        RescaleIntercept=-1024, RescaleSlope=1, RescaleType="HU", WindowCenter=40, WindowWidth=400,
        ImageType=["ORIGINAL", "PRIMARY", "AXIAL"], SeriesNumber=2, ProtocolName="CT chest",
        SeriesDescription="CT chest 1mm", SeriesInstanceUID=uid(3, 1), PixelSpacing=[0.7, 0.7],
        ImageOrientationPatient=[1, 0, 0, 0, 1, 0]), "1.2.840.10008.5.1.4.1.1.2", "CT", size, 3)
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    for k in range(n_slices):
        scale = 0.85 + 0.1 * np.sin(np.pi * k / n_slices)
        r2 = (x / (0.9 * scale)) ** 2 + (y / (0.65 * scale)) ** 2
        lung = (((np.abs(x) - 0.4 * scale) / 0.28) ** 2 + (y / 0.45) ** 2 < scale) & (r2 < 0.8)
        hu = np.where(r2 < 1, 40 + 20 * np.cos(6 * x) * np.sin(5 * y), -1000.0)
        hu = np.where(lung, -850.0, hu) + 900 * ((r2 > 0.85) & (r2 < 0.9))
        hu += rng.normal(0, 12, hu.shape)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(3, 1, k + 1)
        ds.InstanceNumber, ds.SliceLocation = k + 1, -150.0 + k
        ds.ImagePositionPatient = [-179.0, -179.0, -150.0 + k]
        ds.AcquisitionTime = ds.ContentTime = dicom_time(11 * 3600 + 0.05 * k)
        ds.PixelData = (np.round(hu) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"CT{k + 1:04d}.dcm", enforce_file_format=True)


def case_source(case, data):
    """The DICOM folder of `case`, generated under `data` when missing; None if unavailable."""
    if case == "ge":
        folder = QA / "nih/In/20180918GE/mr_0004"
        return folder if folder.is_dir() else None
    folder, done = data / case, data / case / ".complete"
    if done.is_file() and done.read_text() == GEN_VERSION:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    {"classic": write_classic, "enhanced": write_enhanced, "ct": write_ct}[case](folder)
    done.write_text(GEN_VERSION)
    print(f"generated {case} in {folder}: {time.perf_counter() - start:.1f} s")
    return folder


def run_child(cmd, out, log, timeout):
    """Run `cmd` once into the fresh empty folder `out`, its output into `log`.

    Returns
    -------
    tuple
        Wall seconds, the child's peak RSS in MiB, exit status (-9: killed after `timeout`).
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:  # reset our RSS high-water mark: Linux counts it in the child's ru_maxrss
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    with open(log, "wb") as f:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def measure(spec):
    """Run each case of `spec` ``n`` times per tool, interleaved (the lean child's job).

    Returns
    -------
    dict
        ``floor_mb`` (peak of ``true``) and ``runs``: case -> tool -> :func:`run_child` results.
    """
    work = Path(spec["work"])
    runs = {"floor_mb": run_child(["true"], work / "true", work / "true.log", 60)[1], "runs": {}}
    for case, src in spec["cases"].items():
        runs["runs"][case] = {tool: [] for tool in TOOLS}
        for i in range(spec["n"]):
            for tool in TOOLS if i % 2 == 0 else TOOLS[::-1]:
                out = work / case / tool
                cmd = [{"SRC": src, "OUT": str(out)}.get(a, a) for a in spec["commands"][tool]]
                runs["runs"][case][tool].append(
                    run_child(cmd, out, work / case / f"{tool}.log", spec["timeout"]))
    return runs


def commands():
    """The command line of each tool, with ``SRC`` and ``OUT`` placeholders."""
    medfast = [sys.executable, "-m", "medfast", "convert", "SRC", "-o", "OUT"]
    if subprocess.run(medfast[:4] + ["--help"], capture_output=True, cwd=ROOT).returncode:
        medfast = [sys.executable, "-c", "import sys, medfast; medfast.convert(*sys.argv[1:])",
                   "SRC", "OUT"]
    return {"medfast": medfast,
            "dcm2niix": [dcm2niix_path(), "-z", "y", "-b", "y", "-f", "%p_%s", "-o", "OUT", "SRC"]}


def load_volumes(folder):
    """Each NIfTI file in `folder` as (shape on disk, canonical data, canonical affine)."""
    import nibabel as nib
    import numpy as np
    volumes = []
    for path in sorted(Path(folder).glob("*.nii*")):
        img = nib.load(path)
        canonical = nib.as_closest_canonical(img)
        volumes.append((img.shape, np.asanyarray(canonical.dataobj), canonical.affine))
    return volumes


def same_volumes(ours, theirs):
    """True when each volume of `theirs` has its own one in `ours`: same shape and values,
    affine within 0.05 mm."""
    import numpy as np
    unused = list(range(len(ours)))
    for _, data, affine in theirs:
        match = [i for i in unused if ours[i][1].shape == data.shape
                 and np.abs(ours[i][2] - affine).max() < 0.05 and np.allclose(ours[i][1], data)]
        if not match:
            return False
        unused.remove(match[0])
    return bool(theirs) and not unused


def summarize(case, src, runs, work):
    """Every figure of one case, from its `runs` and the last outputs under `work`."""
    label, expected, shape = CASES[case]
    files = sum(p.is_file() and p.read_bytes()[128:132] == b"DICM" for p in Path(src).rglob("*"))
    row = {"name": case, "case": label, "files": files, "expected_nifti": expected}
    for tool in TOOLS:
        times, peaks, codes = zip(*runs[tool])
        nifti = len(list((work / case / tool).glob("*.nii.gz")))
        log = (work / case / f"{tool}.log").read_text(errors="replace")
        # medfast exits 1 when it skipped some input: a failure only when it wrote nothing
        ok = all(c in ((0, 1) if tool == "medfast" else (0,)) for c in codes) and nifti > 0 \
            and "Traceback (most recent call last)" not in log
        row[tool] = dict(ok=ok, best_s=min(times), first_s=times[0], times_s=times,
                         peak_mb=max(peaks), peaks_mb=peaks, exit_codes=codes, nifti=nifti,
                         log_tail=None if ok else log[-1500:])
    ours, theirs = (load_volumes(work / case / tool) for tool in TOOLS)
    row["dcm2niix_as_expected"] = len(theirs) == expected and all(s == shape for s, _, _ in theirs)
    row["same"] = row["medfast"]["ok"] and same_volumes(ours, theirs)
    return row


def dcm2niix_path():
    """dcm2niix on PATH, else next to this Python (a venv that is not activated)."""
    return shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")


def machine_facts():
    """Machine and software facts."""
    from importlib.metadata import version
    from machine import cpu_model
    medfast = subprocess.run([sys.executable, "-c", "import medfast; print(medfast.__version__)"],
                             capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dcm2niix = subprocess.run([dcm2niix_path(), "-v"], capture_output=True,
                              text=True).stdout.split()
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "medfast": medfast or "? (import failed)", "pydicom": version("pydicom"),
            "numpy": version("numpy"), "nibabel": version("nibabel"),
            "dcm2niix": dcm2niix[-1] if dcm2niix else "?",
            "pigz (used by dcm2niix -z y)": shutil.which("pigz") or "none"}


def table(rows, floor):
    """The Markdown report: the target table, then first runs, exit codes and file counts."""
    def cell(r, tool, key):
        if not r[tool]["ok"]:
            return f"FAILED (exit {r[tool]['exit_codes'][-1]})"
        value = r[tool][key]
        return f"{value:.2f} s" if key == "best_s" else f"{value:.0f}" + "*" * (value < floor + 1)

    def ratio(r, key):
        ok = r["medfast"]["ok"] and r["dcm2niix"]["ok"]
        return f"{r['medfast'][key] / r['dcm2niix'][key]:.2f}" if ok else "-"
    lines = ["| case | files | medfast time | dcm2niix time | time ratio (target <= 1.0) | "
             "medfast peak MB | dcm2niix peak MB | memory ratio (target <= 2.0) | same |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['files']} | {cell(r, 'medfast', 'best_s')} | "
              f"{cell(r, 'dcm2niix', 'best_s')} | {ratio(r, 'best_s')} | "
              f"{cell(r, 'medfast', 'peak_mb')} | {cell(r, 'dcm2niix', 'peak_mb')} | "
              f"{ratio(r, 'peak_mb')} | {'yes' if r['same'] else 'NO'} |" for r in rows]
    lines += ["", f"\\* at the floor ({floor:.0f} MB, a child running `true`): the true peak "
              "may be lower.", "", "| case | first run medfast | first run dcm2niix | "
              "exit codes medfast / dcm2niix | NIfTI files medfast / dcm2niix (expected) | "
              "dcm2niix volumes as expected |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['medfast']['first_s']:.2f} s | {r['dcm2niix']['first_s']:.2f} s"
              f" | {list(r['medfast']['exit_codes'])} / {list(r['dcm2niix']['exit_codes'])} | "
              f"{r['medfast']['nifti']} / {r['dcm2niix']['nifti']} ({r['expected_nifti']}) | "
              f"{'yes' if r['dcm2niix_as_expected'] else 'NO'} |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    """Generate the data when missing, time both tools, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="runs of each tool per case (default 3)")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks/results/dicom_data",
                        help="folder of the generated DICOM data (written when missing)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma list, default: %(default)s")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the lean child
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(Path(args.measure).read_text())
        (Path(spec["work"]) / "runs.json").write_text(json.dumps(measure(spec)))
        return 0
    facts = machine_facts()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()))
    start = time.perf_counter()
    sources = {case: case_source(case, args.data.resolve()) for case in args.cases.split(",")}
    print(f"data ready: {time.perf_counter() - start:.1f} s")
    for case in [c for c, src in sources.items() if src is None]:
        print(f"note: case {case} skipped: no QA data at {QA} (set MEDFAST_DICOM_QA)")
        del sources[case]
    with tempfile.TemporaryDirectory(prefix="bench_dicom_folder_") as tmp:
        spec = dict(cases={k: str(v) for k, v in sources.items()}, n=args.n, work=tmp,
                    timeout=args.timeout, commands=commands())
        print("medfast command: " + shlex.join(spec["commands"]["medfast"]))
        Path(tmp, "spec.json").write_text(json.dumps(spec))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--measure",
                        str(Path(tmp, "spec.json"))], check=True)
        print(f"runs: {time.perf_counter() - start:.1f} s ({args.n} x 2 tools x {len(sources)} "
              "cases)")
        result = json.loads(Path(tmp, "runs.json").read_text())
        rows = [summarize(case, src, result["runs"][case], Path(tmp))
                for case, src in sources.items()]
    shown = {}
    for row in [r for r in rows if not r["medfast"]["ok"] or not r["dcm2niix"]["ok"]]:
        for tool in [t for t in TOOLS if not row[t]["ok"]]:
            tail = row[tool]["log_tail"]
            print(f"\n{tool} FAILED on {row['name']}; end of its output:\n"
                  + (f"(the same as on {shown[tail]})" if tail in shown else tail))
            shown.setdefault(tail, row["name"])
    print(f"\nbest of {args.n} runs; peak MB: max ru_maxrss of the {args.n} runs (MiB)\n")
    print(table(rows, result["floor_mb"]))
    if args.json:
        args.json.write_text(json.dumps(dict(machine=facts, n=args.n, floor_mb=result["floor_mb"],
                                             cases=rows), indent=1))
    return 0 if all(r["same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

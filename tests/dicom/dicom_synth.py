"""Synthetic MR acquisitions for the sidecar and converter tests.

:func:`write_series` writes one classic (one file per slice) MR series with
chosen geometry, header values and per-volume diffusion fields, and
:func:`write_enhanced` the same as one enhanced multi-frame file, so that
the converter and the sidecar can be tested on inputs whose every value is
known.  Both start from :func:`synthetic.base_dataset`, like the assembly
tests' files.
"""
import os

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from synthetic import base_dataset, set_pixel_module


def rotation(axis, degrees):
    """A 3x3 rotation about x, y or z (right-handed)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    out = np.eye(3)
    out[i, i] = out[j, j] = c
    out[i, j], out[j, i] = -s, s
    return out


def oblique_orientation():
    """Row and column directions (LPS) of an oblique acquisition."""
    r = rotation("z", 20) @ rotation("x", -15) @ rotation("y", 10)
    return r[:, 0], r[:, 1]


def write_series(folder, *, rows=6, cols=5, slices=4, volumes=1, series_number=7,
                 row_dir=(1, 0, 0), col_dir=(0, 1, 0), spacing=(1.5, 1.25),
                 slice_gap=3.0, origin=(-10.0, 20.0, 5.0), header=None,
                 diffusion=None, slice_times=None, prefix="im", seed=0,
                 descending=False):
    """Write a classic MR series, one file per slice, and return its files.

    Parameters
    ----------
    folder : path
        Created if missing.
    rows, cols, slices, volumes : int
    row_dir, col_dir : 3 floats
        ImageOrientationPatient (LPS unit vectors).
    spacing : (between rows, between columns) in mm
    slice_gap : float
        Distance between slices along row x col.
    header : dict, optional
        Extra top-level keywords (e.g. ``ProtocolName``) for every file.
    diffusion : list of (bvalue, (gx, gy, gz) or None), optional
        One entry per volume: DiffusionBValue (0018,9087) and
        DiffusionGradientOrientation (0018,9089) (LPS).
    slice_times : list of float, optional
        Seconds after the first slice, one per slice position: written as
        AcquisitionTime relative to 10:00:00.
    descending : bool
        Number the files (InstanceNumber) from the last position down.

    Returns
    -------
    list of str
        The files written.  Pixel values: ``1000 * t + 100 * k + 10 * j + i``
        plus a small seeded noise-free pattern, so every voxel is known.
    """
    os.makedirs(folder, exist_ok=True)
    row_dir, col_dir = np.asarray(row_dir, float), np.asarray(col_dir, float)
    normal = np.cross(row_dir, col_dir)
    series_uid = generate_uid()
    study_uid = (header or {}).get("StudyInstanceUID", generate_uid())
    paths = []
    order = range(slices - 1, -1, -1) if descending else range(slices)
    instance = 0
    for t in range(volumes):
        for k in order:
            instance += 1
            ds = base_dataset(MRImageStorage, "MR", series_uid=series_uid,
                              study_uid=study_uid, patient=("Doe^Jane", "PID0001"))
            ds.Manufacturer = "ACME Imaging"
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "F"
            ds.StudyDate = "20240102"
            ds.StudyTime = "101112.5"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = instance
            ds.ProtocolName = "synthetic"
            ds.SeriesDescription = "synthetic series"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
            ds.EchoTime = "30"
            ds.RepetitionTime = "2000"
            ds.FlipAngle = "70"
            ds.MagneticFieldStrength = "3"
            ds.SliceThickness = str(slice_gap)
            ds.SpacingBetweenSlices = str(slice_gap)
            ds.EchoNumbers = "1"
            ds.AcquisitionNumber = t + 1
            ds.TemporalPositionIdentifier = t + 1
            ds.ImagePositionPatient = [f"{v:.6f}" for v in
                                       np.asarray(origin) + k * slice_gap * normal]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in
                                          np.concatenate([row_dir, col_dir])]
            ds.PixelSpacing = [str(spacing[0]), str(spacing[1])]
            set_pixel_module(ds, rows, cols, signed=True)
            if slice_times is not None:
                seconds = 36000.0 + 10 * t + slice_times[k]
                hh, rest = divmod(seconds, 3600)
                mm, ss = divmod(rest, 60)
                ds.AcquisitionTime = f"{int(hh):02d}{int(mm):02d}{ss:09.6f}"
            if diffusion is not None:
                bvalue, direction = diffusion[t]
                ds.DiffusionBValue = float(bvalue)
                if direction is not None:
                    ds.DiffusionGradientOrientation = [float(v) for v in direction]
            for key, value in (header or {}).items():
                setattr(ds, key, value)
            jj, ii = np.mgrid[0:rows, 0:cols]
            pixels = (1000 * t + 100 * k + 10 * jj + ii + seed).astype(np.int16)
            ds.PixelData = pixels.tobytes()
            path = os.path.join(os.fspath(folder), f"{prefix}{instance:04d}.dcm")
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


def _item(**fields):
    item = Dataset()
    for key, value in fields.items():
        setattr(item, key, value)
    return item


def write_enhanced(path, *, rows=6, cols=5, slices=4, volumes=1, series_number=21,
                   row_dir=(1, 0, 0), col_dir=(0, 1, 0), spacing=(1.5, 1.25),
                   slice_gap=3.0, origin=(-10.0, 20.0, 5.0), diffusion=None,
                   frame_times=None, header=None):
    """Write one enhanced MR file (one frame per slice and volume).

    Parameters are those of :func:`write_series`; ``diffusion`` goes to each
    frame's MRDiffusionSequence (``None`` direction: DiffusionDirectionality
    'NONE'), ``frame_times`` (seconds, per slice position) to each frame's
    FrameAcquisitionDateTime.  Frames are stored volume by volume.
    """
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    row_dir, col_dir = np.asarray(row_dir, float), np.asarray(col_dir, float)
    normal = np.cross(row_dir, col_dir)
    ds = base_dataset(ENHANCED_MR, "MR", patient=("Doe^John", "PID0002"))
    ds.Manufacturer = "Canon_MEC"
    ds.StudyDate, ds.StudyTime = "20240103", "090000"
    ds.AcquisitionDateTime = "20240103090102.250000"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.ProtocolName = "enhanced synthetic"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.MRAcquisitionType = "2D"
    set_pixel_module(ds, rows, cols, signed=True)
    ds.NumberOfFrames = slices * volumes
    ds.SharedFunctionalGroupsSequence = [_item(
        PixelMeasuresSequence=[_item(PixelSpacing=[str(spacing[0]), str(spacing[1])],
                                     SliceThickness=str(slice_gap),
                                     SpacingBetweenSlices=str(slice_gap))],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=[
            f"{v:.8f}" for v in np.concatenate([row_dir, col_dir])])],
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime="3000", FlipAngle="90")],
        MRFOVGeometrySequence=[_item(InPlanePhaseEncodingDirection="COLUMN")],
    )]
    frames, pixels = [], []
    for t in range(volumes):
        for k in range(slices):
            fields = dict(
                PlanePositionSequence=[_item(ImagePositionPatient=[
                    f"{v:.6f}" for v in np.asarray(origin) + k * slice_gap * normal])],
                MREchoSequence=[_item(EffectiveEchoTime=80.0)],
                MRImageFrameTypeSequence=[_item(FrameType=["ORIGINAL", "PRIMARY",
                                                           "DIFFUSION", "NONE"])],
            )
            content = _item(TemporalPositionIndex=t + 1)
            if frame_times is not None:
                seconds = 3600 * 9 + 62 + 3 * t + frame_times[k]
                hh, rest = divmod(seconds, 3600)
                mm, ss = divmod(rest, 60)
                content.FrameAcquisitionDateTime = f"20240103{int(hh):02d}{int(mm):02d}{ss:09.6f}"
            fields["FrameContentSequence"] = [content]
            if diffusion is not None:
                bvalue, direction = diffusion[t]
                item = _item(DiffusionBValue=float(bvalue),
                             DiffusionDirectionality="DIRECTIONAL" if direction else "NONE")
                if direction is not None:
                    item.DiffusionGradientDirectionSequence = [_item(
                        DiffusionGradientOrientation=[float(v) for v in direction])]
                fields["MRDiffusionSequence"] = [item]
            frames.append(_item(**fields))
            jj, ii = np.mgrid[0:rows, 0:cols]
            pixels.append((1000 * t + 100 * k + 10 * jj + ii).astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = frames
    for key, value in (header or {}).items():
        setattr(ds, key, value)
    ds.PixelData = np.stack(pixels).tobytes()
    ds.save_as(os.fspath(path), enforce_file_format=True)
    return os.fspath(path)

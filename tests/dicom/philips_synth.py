"""Synthetic Philips MR series for the Philips tests, written with pydicom.

:func:`write_classic` writes one file per slice and volume, :func:`write_enhanced`
one multi-frame file.  Each volume is described by a dict (see
:func:`write_classic`) so that a test can set any mix of public and private
diffusion, volume-order, ASL and scaling fields, and put the private creators
in any block.  Stored values tell every (volume, slice) apart:
``1000 * t + 100 * k + 10 * row + column``.  Independent of medfast.
"""
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from dicom_data import canonical
from synthetic import base_dataset, save, set_pixel_module

PHILIPS = "Philips Medical Systems"
MR_DD_001 = "Philips MR Imaging DD 001"
MR_DD_005 = "Philips MR Imaging DD 005"
MR_DD_006 = "Philips MR Imaging DD 006"
IMAGING_DD_001 = "Philips Imaging DD 001"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
#: Where each private creator is reserved by default: (group, block).
DEFAULT_BLOCKS = {IMAGING_DD_001: (0x2001, 0x10), MR_DD_001: (0x2005, 0x10),
                  MR_DD_005: (0x2005, 0x14), MR_DD_006: (0x2005, 0x15)}
# Private elements a volume dict may set: key -> (creator, element, VR).
_PRIVATE = {"private_b": (IMAGING_DD_001, 0x03, "FL"),
            "phase": (IMAGING_DD_001, 0x08, "IS"),
            "slice_number": (IMAGING_DD_001, 0x0A, "IS"),
            "ss": (MR_DD_001, 0x0E, "FL"),
            "dynamic": (MR_DD_001, 0x63, "SS"),
            "bnum": (MR_DD_005, 0x12, "IS"),
            "grad": (MR_DD_005, 0x13, "IS"),
            "label": (MR_DD_005, 0x29, "CS"),
            "diff_volume": (MR_DD_006, 0x96, "IS")}


def put_private(ds, creator, element, vr, value, blocks=None):
    """Private element `element` (low byte) of `creator`, reserving the
    creator in its block (``blocks`` overrides :data:`DEFAULT_BLOCKS`)."""
    group, block = {**DEFAULT_BLOCKS, **(blocks or {})}[creator]
    ds.add_new((group, block), "LO", creator)
    ds.add_new((group, (block << 8) | element), vr, value)


def _private_fields(ds, volume, blocks, public_diffusion):
    for key, (creator, element, vr) in _PRIVATE.items():
        if volume.get(key) is not None:
            value = volume[key]
            put_private(ds, creator, element, vr, float(value) if vr == "FL" else value, blocks)
    if volume.get("b") is not None and not public_diffusion:
        put_private(ds, IMAGING_DD_001, 0x03, "FL", float(volume["b"]), blocks)
        vector = volume.get("vector") or (0.0, 0.0, 0.0)
        for element, v in zip((0xB0, 0xB1, 0xB2), vector):
            put_private(ds, MR_DD_001, element, "FL", float(v), blocks)
    if volume.get("private_vector") is not None:
        for element, v in zip((0xB0, 0xB1, 0xB2), volume["private_vector"]):
            put_private(ds, MR_DD_001, element, "FL", float(v), blocks)


def _public_diffusion(item, volume):
    if volume.get("directionality") is not None:
        item.DiffusionDirectionality = volume["directionality"]
    if volume.get("b") is not None:
        item.DiffusionBValue = float(volume["b"])
        if volume.get("vector") is not None:
            item.DiffusionGradientOrientation = [float(v) for v in volume["vector"]]


def stored(t, k, rows, cols):
    """The stored values of volume t, slice k."""
    jj, ii = np.mgrid[0:rows, 0:cols]
    return (1000 * t + 100 * k + 10 * jj + ii + 1).astype(np.uint16)


def instance_numbers(n_volumes, n_slices, order, seed=0):
    """{(t, k): InstanceNumber}: 'volume' (volume by volume), 'slice' (slice
    by slice), 'shuffled' (a random permutation) or 'reverse-slices'
    (volume by volume, slices from the last down)."""
    cells = [(t, k) for t in range(n_volumes) for k in range(n_slices)]
    if order == "slice":
        cells = sorted(cells, key=lambda c: (c[1], c[0]))
    elif order == "shuffled":
        rng = np.random.default_rng(seed)
        cells = [cells[i] for i in rng.permutation(len(cells))]
    elif order == "reverse-slices":
        cells = sorted(cells, key=lambda c: (c[0], -c[1]))
    return {cell: i + 1 for i, cell in enumerate(cells)}


def write_classic(folder, volumes, *, slices=3, rows=4, cols=5, order="volume",
                  syntax=ExplicitVRLittleEndian, blocks=None, series_number=301,
                  public_diffusion=True, step=4.0, orientation=(1, 0, 0, 0, 1, 0),
                  header=None, seed=0):
    """Write a classic Philips MR series (one file per slice and volume).

    Parameters
    ----------
    volumes : list of dict
        Per volume, any of: ``b``, ``vector`` (LPS), ``directionality``
        ((0018,9075)), written as the public DiffusionBValue/-Orientation or,
        with ``public_diffusion=False``, as the private (2001,xx03) and
        (2005,xxB0-B2); ``private_b``/``private_vector`` (added as well);
        ``grad`` (2005,1413), ``bnum`` (2005,1412), ``phase`` (2001,1008),
        ``label`` (2005,1429), ``temporal`` (0020,0100), ``dynamic``
        (2005,1063), ``diff_volume`` (2005,1596), ``slice_number``
        (2001,100A); ``slope``/``intercept`` (RescaleSlope/Intercept),
        ``ss`` (MRScaleSlope (2005,xx0E)), ``rwv`` ((slope, intercept) of a
        RealWorldValueMappingSequence item), ``image_type``.
    order : str
        InstanceNumber order (:func:`instance_numbers`).
    blocks : dict, optional
        creator -> (group, block): where the private creators are reserved.

    Returns
    -------
    dict
        ``paths``, ``stored`` ((T, K, rows, cols) stored values), ``positions``.
    """
    os.makedirs(folder, exist_ok=True)
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    positions = [np.array([-20.0, -30.0, 10.0]) + k * step * normal for k in range(slices)]
    numbers = instance_numbers(len(volumes), slices, order, seed)
    series_uid, study_uid = generate_uid(), generate_uid()
    paths, values = [], np.zeros((len(volumes), slices, rows, cols), np.uint16)
    for t, volume in enumerate(volumes):
        for k in range(slices):
            ds = base_dataset(MRImageStorage, "MR", series_uid=series_uid, study_uid=study_uid)
            ds.Manufacturer = PHILIPS
            ds.SoftwareVersions = volume.get("software", "5.7.1")
            ds.StudyDate, ds.StudyTime = "20240105", "101010"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = numbers[(t, k)]
            ds.ProtocolName = "philips synthetic"
            ds.ImageType = volume.get("image_type",
                                      ["ORIGINAL", "PRIMARY", "M", "FFE", "M", "FFE"])
            ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = "30", "3000", "90"
            ds.EchoNumbers = "1"
            ds.SliceThickness = ds.SpacingBetweenSlices = str(step)
            ds.AcquisitionNumber = 1
            ds.AcquisitionTime = f"1010{10 + t:02d}.{k:02d}"
            if volume.get("temporal") is not None:
                ds.TemporalPositionIdentifier = volume["temporal"]
            if public_diffusion:
                _public_diffusion(ds, volume)
            elif volume.get("directionality") is not None:
                ds.DiffusionDirectionality = volume["directionality"]
            ds.ImagePositionPatient = [f"{v:.4f}" for v in positions[k]]
            ds.ImageOrientationPatient = [f"{v:.6f}" for v in o]
            ds.PixelSpacing = ["1.5", "1.25"]
            if volume.get("slope") is not None:
                ds.RescaleSlope = repr(float(volume["slope"]))
            if volume.get("intercept") is not None:
                ds.RescaleIntercept = repr(float(volume["intercept"]))
            if volume.get("rwv") is not None:
                item = Dataset()
                item.RealWorldValueIntercept = float(volume["rwv"][1])
                item.RealWorldValueSlope = float(volume["rwv"][0])
                ds.RealWorldValueMappingSequence = [item]
            set_pixel_module(ds, rows, cols, signed=False)
            for key, value in (header or {}).items():
                setattr(ds, key, value)
            _private_fields(ds, volume, blocks, public_diffusion)
            values[t, k] = stored(t, k, rows, cols)
            ds.PixelData = values[t, k].tobytes()
            paths.append(save(ds, os.path.join(os.fspath(folder), f"IM_{numbers[(t, k)]:05d}.dcm"),
                              syntax))
    return dict(paths=paths, stored=values, positions=positions)


def _item(**fields):
    item = Dataset()
    for key, value in fields.items():
        setattr(item, key, value)
    return item


IN_STACK = 0x00209057
STACK_ID = 0x00209056
TEMPORAL_INDEX = 0x00209128


def write_enhanced(path, volumes, *, slices=3, rows=4, cols=5, frame_order=None,
                   pointers=(STACK_ID, IN_STACK, 0x00209128), dimension=None,
                   syntax=ExplicitVRLittleEndian, blocks=None, manufacturer=PHILIPS,
                   software="5.7.1", step=4.0, private_frame=True, per_slice=None, header=None):
    """Write one enhanced (multi-frame) MR file of ``len(volumes)`` volumes.

    Parameters
    ----------
    volumes : list of dict
        As for :func:`write_classic`; the private fields go to each frame's
        private sequence (2005,xx0F) of "Philips MR Imaging DD 005" (with
        ``private_frame``), the scaling to its PixelValueTransformationSequence,
        the public diffusion to its MRDiffusionSequence; ``component``: the
        ComplexImageComponent.
    frame_order : list of (t, k), optional
        Frames in the order stored (default volume by volume).
    pointers : tuple of int
        DimensionIndexPointer of each DimensionIndexSequence item.
    dimension : callable, optional
        ``dimension(t, k, volume) -> list of int``: each frame's
        DimensionIndexValues (default: 1, k+1, t+1; None leaves them out).
    per_slice : list of dict, optional
        Per slice position, values that override the volume's (e.g. a
        RescaleSlope that varies within each volume).

    Returns
    -------
    dict
        ``path``, ``stored`` ((T, K, rows, cols)), ``frame_order``.
    """
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    if frame_order is None:
        frame_order = [(t, k) for t in range(len(volumes)) for k in range(slices)]
    if dimension is None:
        dimension = lambda t, k, volume: [1, k + 1, t + 1]  # noqa: E731
    ds = base_dataset(ENHANCED_MR, "MR")
    ds.Manufacturer = manufacturer
    ds.SoftwareVersions = software
    ds.StudyDate, ds.StudyTime = "20240105", "101010"
    ds.SeriesNumber = 401
    ds.InstanceNumber = 1
    ds.ProtocolName = "philips enhanced synthetic"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]
    set_pixel_module(ds, rows, cols, signed=False)
    ds.NumberOfFrames = len(frame_order)
    ds.DimensionIndexSequence = [_item(DimensionIndexPointer=p, FunctionalGroupPointer=0x00209111)
                                 for p in pointers]
    ds.SharedFunctionalGroupsSequence = [_item(
        PixelMeasuresSequence=[_item(PixelSpacing=["1.5", "1.25"], SliceThickness=str(step),
                                     SpacingBetweenSlices=str(step))],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=["1", "0", "0", "0", "1", "0"])],
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime="3000", FlipAngle="90")],
        MREchoSequence=[_item(EffectiveEchoTime=30.0)],
    )]
    frames, pixels = [], []
    values = np.zeros((len(volumes), slices, rows, cols), np.uint16)
    for t, k in frame_order:
        volume = dict(volumes[t], **(per_slice[k] if per_slice else {}))
        content = _item(StackID="1", InStackPositionNumber=k + 1)
        index_values = dimension(t, k, volume)
        if index_values is not None:
            content.DimensionIndexValues = list(index_values)
        if volume.get("temporal_index") is not None:
            content.TemporalPositionIndex = volume["temporal_index"]
        frame = _item(
            FrameContentSequence=[content],
            PlanePositionSequence=[_item(ImagePositionPatient=[
                "-20.0", "-30.0", f"{10.0 + k * step:.4f}"])],
            MRImageFrameTypeSequence=[_item(
                FrameType=volume.get("image_type", ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]),
                ComplexImageComponent=volume.get("component", "MAGNITUDE"))],
        )
        if volume.get("slope") is not None or volume.get("intercept") is not None:
            frame.PixelValueTransformationSequence = [_item(
                RescaleSlope=repr(float(volume.get("slope", 1.0))),
                RescaleIntercept=repr(float(volume.get("intercept", 0.0))), RescaleType="US")]
        if volume.get("b") is not None or volume.get("directionality") is not None:
            diffusion = _item()
            if volume.get("directionality") is not None:
                diffusion.DiffusionDirectionality = volume["directionality"]
            if volume.get("b") is not None:
                diffusion.DiffusionBValue = float(volume["b"])
            if volume.get("vector") is not None:
                diffusion.DiffusionGradientDirectionSequence = [_item(
                    DiffusionGradientOrientation=[float(v) for v in volume["vector"]])]
            frame.MRDiffusionSequence = [diffusion]
        if private_frame:
            inner = _item(EchoNumbers="1", ImageType=volume.get(
                "private_type", ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]))
            if volume.get("temporal") is not None:
                inner.TemporalPositionIdentifier = volume["temporal"]
            private = {key: value for key, value in volume.items()
                       if key in _PRIVATE or key == "private_vector"}
            if "slice_number" not in private:
                private["slice_number"] = k + 1
            _private_fields(inner, private, blocks, True)
            group, block = {**DEFAULT_BLOCKS, **(blocks or {})}[MR_DD_005]
            frame.add_new((group, block), "LO", MR_DD_005)
            frame.add_new((group, (block << 8) | 0x0F), "SQ", [inner])
        frames.append(frame)
        values[t, k] = stored(t, k, rows, cols)
        pixels.append(values[t, k])
    ds.PerFrameFunctionalGroupsSequence = frames
    for key, value in (header or {}).items():
        setattr(ds, key, value)
    ds.PixelData = np.stack(pixels).tobytes()
    save(ds, path, syntax)
    return dict(path=os.fspath(path), stored=values, frame_order=frame_order)


def run_dcm2niix(folder, out, *options):
    """dcm2niix on `folder`: ({file stem: (canonical data, canonical affine,
    nibabel image)}, stdout+stderr).  Returns None when dcm2niix is not
    installed."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        return None
    os.makedirs(out, exist_ok=True)
    run = subprocess.run([exe, "-z", "n", "-f", "%s_%p", *options, "-o", str(out), str(folder)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    found = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".nii"):
            img = nib.load(os.path.join(out, name))
            data, affine = canonical(np.asanyarray(img.dataobj), img.affine)
            found[name[:-4]] = (data, affine, img)
    return found, run.stdout + run.stderr

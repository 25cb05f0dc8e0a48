"""Synthetic DICOM series for the tests, written with pydicom.

Everything here is independent of medfast: the expected arrays and affines
are computed with numpy from what was written.

Conventions
-----------
* A *stack* is an array ``(slices, rows, cols)`` of **stored** values (what
  goes into Pixel Data, before rescaling), in the order the slices are
  written; slice ``k`` lies at ``positions[k]`` (ImagePositionPatient, LPS mm).
* medfast's array is indexed ``(i, j, k)`` = (column, row, slice), so the
  expected array is ``stack[order].transpose(2, 1, 0)`` where ``order`` sorts
  the slices along the slice normal (:func:`sort_order`).
* :func:`ras_affine` is the hand-built LPS matrix (columns: row direction
  times the column spacing, column direction times the row spacing, slice
  step, first position), flipped to RAS (x and y negated).
"""
import gzip
import os

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (CTImageStorage, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEG2000Lossless, MRImageStorage,
                         PositronEmissionTomographyImageStorage, RLELossless,
                         SecondaryCaptureImageStorage, generate_uid)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)

NATIVE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
COMPRESSED_SYNTAXES = (RLELossless, JPEG2000Lossless)

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage,
              "PT": PositronEmissionTomographyImageStorage,
              "OT": SecondaryCaptureImageStorage}
PHILIPS_CREATOR = "Philips MR Imaging DD 001"


# --------------------------------------------------------------------------
# geometry (numpy only)


def oblique(rx, ry, rz):
    """ImageOrientationPatient of the axial plane rotated by angles (degrees)
    about x, then y, then z."""
    a, b, c = np.radians([rx, ry, rz])
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_y = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rot_z = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    rot = rot_z @ rot_y @ rot_x
    return tuple(np.concatenate([rot[:, 0], rot[:, 1]]).round(10))


def normal(orientation):
    """The unit slice normal, row x column."""
    o = np.asarray(orientation, dtype=float)
    n = np.cross(o[:3], o[3:])
    return n / np.linalg.norm(n)


def stack_positions(n, orientation=AXIAL, step=2.0, origin=(-10.0, -20.0, 30.0),
                    shift=(0.0, 0.0, 0.0)):
    """`n` positions ``origin + k * (step * normal + shift)`` (LPS mm)."""
    direction = step * normal(orientation) + np.asarray(shift, dtype=float)
    return np.asarray(origin, dtype=float) + np.arange(n)[:, None] * direction


def sort_order(positions, orientation):
    """Indices sorting `positions` along the slice normal (ascending)."""
    return np.argsort(np.asarray(positions, dtype=float) @ normal(orientation), kind="stable")


def lps_affine(orientation, pixel_spacing, positions, slice_step=None):
    """Voxel (i, j, k) -> LPS mm, built by hand.  `positions` in stack order
    (sorted); the slice axis is the mean step, or ``normal * slice_step`` for
    one slice."""
    o = np.asarray(orientation, dtype=float)
    p = np.asarray(positions, dtype=float).reshape(-1, 3)
    out = np.eye(4)
    out[:3, 0] = o[:3] * pixel_spacing[1]
    out[:3, 1] = o[3:] * pixel_spacing[0]
    out[:3, 2] = ((p[-1] - p[0]) / (len(p) - 1) if len(p) > 1
                  else normal(o) * (slice_step or 1.0))
    out[:3, 3] = p[0]
    return out


def ras_affine(orientation, pixel_spacing, positions, slice_step=None):
    """:func:`lps_affine` with x and y negated (LPS -> RAS)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps_affine(orientation, pixel_spacing,
                                                         positions, slice_step)


def lps_to_ras(points):
    """LPS points (n, 3) -> RAS: x and y negated."""
    return np.asarray(points, dtype=float) * [-1.0, -1.0, 1.0]


def expected_array(stack, order=None):
    """(slices, rows, cols) stored/scaled values -> medfast's (cols, rows, slices)."""
    stack = np.asarray(stack)
    if order is not None:
        stack = stack[np.asarray(order)]
    return stack.transpose(2, 1, 0)


def ramp(n, rows=6, cols=8, dtype=np.int16, start=0, seed=None):
    """A (n, rows, cols) stack with every value distinct (or random with a
    seed), so a misplaced pixel or slice never goes unnoticed."""
    if seed is not None:
        rng = np.random.default_rng(seed)
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -3000), min(info.max, 3000)
        return rng.integers(lo, hi, size=(n, rows, cols), endpoint=True).astype(dtype)
    return (start + np.arange(n * rows * cols).reshape(n, rows, cols)).astype(dtype)


# --------------------------------------------------------------------------
# data sets and files


def base_dataset(sop_class, modality, *, series_uid=None, study_uid=None,
                 patient=("Synthetic^Phantom", "SYN001")):
    """A data set with its file meta (explicit VR little endian), SOP class
    and instance, modality, patient and study/series UIDs: what every
    synthetic file starts from."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName, ds.PatientID = patient
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    return ds


def set_pixel_module(ds, rows, cols, bits=16, signed=False, bits_stored=None):
    """The Image Pixel module of a greyscale image: matrix, bits, sign."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0


def image_dataset(pixels, *, position, orientation=AXIAL, pixel_spacing=(1.0, 1.0),
                  modality="CT", series_uid=None, study_uid=None, series_number=1,
                  instance_number=1, slope=None, intercept=None, bits_stored=None,
                  slice_thickness=2.0, description="synthetic", frame_of_reference=None,
                  **fields):
    """A classic single-frame image.

    Parameters
    ----------
    pixels : (rows, cols) integer ndarray
        Stored values exactly as they go into Pixel Data (junk above
        BitsStored included); its dtype sets BitsAllocated and
        PixelRepresentation.
    position, orientation, pixel_spacing :
        ImagePositionPatient, ImageOrientationPatient, PixelSpacing (None
        leaves the element out).
    slope, intercept : float, optional
        RescaleSlope / RescaleIntercept (left out when None).
    fields :
        Any other pydicom keyword -> value.
    """
    pixels = np.asarray(pixels)
    assert pixels.ndim == 2 and pixels.dtype.kind in "iu", pixels.dtype
    ds = base_dataset(_SOP_CLASS.get(modality, SecondaryCaptureImageStorage), modality,
                      series_uid=series_uid, study_uid=study_uid)
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.SeriesTime = "120000"
    ds.AcquisitionTime = f"1200{int(instance_number) % 60:02d}"
    ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SeriesDescription = description
    ds.Manufacturer = fields.pop("Manufacturer", "SyntheticCo")
    ds.ImageType = fields.pop("ImageType", ["ORIGINAL", "PRIMARY", "AXIAL"])
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if slice_thickness is not None:
        ds.SliceThickness = float(slice_thickness)
    if slope is not None:
        ds.RescaleSlope = repr(float(slope))
    if intercept is not None:
        ds.RescaleIntercept = repr(float(intercept))
    set_pixel_module(ds, *pixels.shape, bits=pixels.dtype.itemsize * 8,
                     signed=pixels.dtype.kind == "i", bits_stored=bits_stored)
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def add_philips_scale_slope(ds, scale_slope, block=0x10):
    """Philips private scale slope (2005,xx0E) with its private creator
    "Philips MR Imaging DD 001" at (2005,00xx)."""
    ds.Manufacturer = "Philips Medical Systems"
    ds.add_new((0x2005, block), "LO", PHILIPS_CREATOR)
    ds.add_new((0x2005, (block << 8) | 0x0E), "FL", float(scale_slope))
    return ds


def save(ds, path, syntax=ExplicitVRLittleEndian, gz=False):
    """Write `ds` as a Part 10 file in transfer syntax `syntax` (optionally
    gzipped: the file is ``path`` itself, name it ``*.dcm.gz``).  Returns the
    path."""
    ds = ds.copy()
    ds.file_meta = ds.file_meta.copy()
    if syntax in COMPRESSED_SYNTAXES:
        # Decode the little-endian words written by image_dataset, encode.
        dtype = np.dtype(f"<{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
        arr = np.frombuffer(ds.PixelData, dtype).reshape(ds.Rows, ds.Columns)
        ds.compress(syntax, arr.astype(dtype.newbyteorder("=")), generate_instance_uid=False)
    elif syntax == ExplicitVRBigEndian:
        dtype = np.dtype(f"<{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
        arr = np.frombuffer(ds.PixelData, dtype)
        ds.PixelData = arr.astype(dtype.newbyteorder(">")).tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    path = os.fspath(path)
    if gz:
        raw = path + ".tmp"
        pydicom.dcmwrite(raw, ds, enforce_file_format=True)
        with open(raw, "rb") as f:
            data = f.read()
        os.remove(raw)
        with open(path, "wb") as f:
            f.write(gzip.compress(data))
    else:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def random_names(n, rng, suffix=".dcm"):
    """`n` distinct random file names (hex), so listing order means nothing."""
    names = set()
    while len(names) < n:
        names.add(f"{int(rng.integers(0, 2**40)):010x}{suffix}")
    return list(names)


def write_series(folder, stack, positions, *, orientation=AXIAL, pixel_spacing=(1.0, 1.0),
                 series_uid=None, study_uid=None, instance_numbers=None, names=None,
                 syntax=ExplicitVRLittleEndian, gz=False, per_slice=None, seed=0,
                 **fields):
    """Write one file per slice of `stack` into `folder` (created).

    Parameters
    ----------
    stack : (n, rows, cols) ndarray of stored values
    positions : (n, 3) LPS positions, one per slice
    instance_numbers : list of int, optional
        Default ``1..n`` in stack order.
    names : list of str, optional
        File names; default random names (listing order is meaningless).
    per_slice : list of dict, optional
        Extra :func:`image_dataset` arguments per slice (e.g. ``slope``).
    fields :
        :func:`image_dataset` arguments shared by every slice.

    Returns
    -------
    list of str
        The paths, in stack order.
    """
    os.makedirs(folder, exist_ok=True)
    stack = np.asarray(stack)
    n = len(stack)
    rng = np.random.default_rng(seed)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    if instance_numbers is None:
        instance_numbers = range(1, n + 1)
    if names is None:
        names = random_names(n, rng, ".dcm.gz" if gz else ".dcm")
    paths = []
    for k in range(n):
        extra = dict(fields)
        extra.update(per_slice[k] if per_slice else {})
        scale_slope = extra.pop("philips_scale_slope", None)
        ds = image_dataset(stack[k], position=positions[k], orientation=orientation,
                           pixel_spacing=pixel_spacing, series_uid=series_uid,
                           study_uid=study_uid, instance_number=int(instance_numbers[k]),
                           **extra)
        if scale_slope is not None:
            add_philips_scale_slope(ds, scale_slope)
        paths.append(save(ds, os.path.join(folder, names[k]), syntax, gz))
    return paths


def non_image_dataset(modality, sop_class, series_uid=None, study_uid=None):
    """A header-only object (no Pixel Data): a structured report, an RT
    structure set..."""
    ds = base_dataset(sop_class, modality, series_uid=series_uid, study_uid=study_uid)
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    return ds


# --------------------------------------------------------------------------
# vendor private data


def csa2(tags):
    """A Siemens CSA2 ('SV10') header holding `tags`: {name: list of values}
    (numbers are written as text, as the scanner does)."""
    import struct

    out = [b"SV10", b"\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, values in tags.items():
        vr = b"FD" if values and not isinstance(values[0], str) else b"LO"
        out.append(struct.pack("<64si4s3i", name.encode(), len(values), vr, 0,
                               len(values), 77))
        for value in values:
            text = (value if isinstance(value, str) else repr(float(value))).encode() + b"\0"
            out.append(struct.pack("<4i", len(text), len(text), 77, len(text)))
            out.append(text + b"\0" * (-len(text) % 4))
    return b"".join(out)


def private_block(group, slot, creator, elements):
    """Data elements of one private block, creator first: `elements` maps
    an element's low byte to (VR, value)."""
    from pydicom.dataelem import DataElement

    out = [DataElement((group << 16) | slot, "LO", creator)]
    for low, (vr, value) in sorted(elements.items()):
        out.append(DataElement((group << 16) | (slot << 8) | low, vr, value))
    return out


def save_with_private_blocks(ds, path, blocks):
    """Write `ds` (explicit VR little endian) with the private `blocks`
    (lists of DataElement, see :func:`private_block`) written in the order
    given, after the elements of lower groups: a block may reserve a slot
    another block reserved before, as a PACS that renumbers private blocks
    leaves it (pydicom cannot hold such a data set)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import correct_ambiguous_vr, write_data_element

    group = min(element.tag.group for block in blocks for element in block)
    ds = correct_ambiguous_vr(ds.copy(), is_little_endian=True)
    before, after = ds.copy(), Dataset()
    for element in list(ds):
        if element.tag.group >= group:
            after.add(element)
            del before[element.tag]
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    for element in [e for block in blocks for e in block] + list(after):
        write_data_element(body, element)
    head = DicomBytesIO()
    pydicom.dcmwrite(head, before, enforce_file_format=True)
    with open(path, "wb") as f:
        f.write(head.getvalue() + body.getvalue())
    return os.fspath(path)

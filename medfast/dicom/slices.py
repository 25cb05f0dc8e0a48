"""From one file's header to its 2-D slices.

Every image a file holds becomes a :class:`Slice`: a classic file gives one,
an enhanced multi-frame file one per frame (its per-frame functional groups
override the shared ones), a Siemens or United Imaging mosaic one per tile.
A slice keeps only what assembly, pixel reading and the sidecar's per-slice
fields need (a few dozen numbers and strings, never the header), so a folder
of thousands of files stays small in memory.  After this step the assembly
no longer cares where a slice came from.
"""
from dataclasses import dataclass, field, replace
from functools import lru_cache
import math

import numpy as np

from .header import NATIVE_SYNTAXES
from .pixels import RLE_LOSSLESS
from .values import acquisition_seconds, datetime_seconds, floats, number, short_manufacturer
from .vendors import ge, philips, siemens, uih

# Modalities and SOP classes that never hold image volumes.
_NON_IMAGE_MODALITIES = {"SR", "RTPLAN", "RTRECORD", "RTDOSE", "PR", "KO",
                         "REG", "DOC", "RWV", "AU", "ECG", "PLAN", "FID", "HD"}
# Annotations: labels for another series' images, and the function reading them.
ANNOTATION_READERS = {"SEG": "medfast.load_seg", "RTSTRUCT": "medfast.load_rtstruct"}
_ANNOTATION_SOP = {"1.2.840.10008.5.1.4.1.1.66.4": "SEG",
                   "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT"}
_NON_IMAGE_SOP = {
    "1.2.840.10008.1.3.10": "DICOMDIR (a directory of files)",
    "1.2.840.10008.5.1.4.1.1.66": "raw data",
    "1.2.840.10008.5.1.4.1.1.4.2": "MR spectroscopy",
    "1.3.12.2.1107.5.9.1": "Siemens non-image data (e.g. spectroscopy, physiological log)",
}


class NotAVolume(ValueError):
    """The file holds no image that can be part of a volume (skipped)."""


class AnnotationObject(NotAVolume):
    """A DICOM SEG or RTSTRUCT: no volume of its own, labels for another
    series (:func:`medfast.load_seg`, :func:`medfast.load_rtstruct`).

    Attributes
    ----------
    modality : str
        'SEG' or 'RTSTRUCT'.
    """

    def __init__(self, modality):
        self.modality = modality
        super().__init__(f"not an image ({modality} object: labels for a series, read by "
                         f"{ANNOTATION_READERS[modality]})")


@dataclass(slots=True, eq=False)
class FileInfo:
    """What a file's header says about its pixel data, and where they are.

    Shared by the slices of one file (frames, mosaic tiles).
    """

    path: str
    transfer_syntax: str
    pixel_offset: object      # file offset of the raw pixel values, or None
    pixel_length: object      # bytes; -1 when encapsulated (compressed)
    little: bool
    rows: int
    columns: int
    frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples: int
    planar: int
    photometric: str
    floating: bool = False    # Float (32) or Double Float (64) Pixel Data
    header_bytes: int = 0     # where the header ends in the (inflated) file
    capacity: object = None   # the most bytes the file holds inflated (HeaderFile.capacity)
    four_d: bool = False      # a multi-frame file whose frames repeat positions
    stack_item: object = None  # which DimensionIndexValues item is the in-stack position

    @property
    def native(self):
        """The pixels can be read straight from the file (uncompressed,
        not gzipped, greyscale or colour of 8/16/32 bits)."""
        return (self.pixel_offset is not None and self.transfer_syntax in NATIVE_SYNTAXES
                and self.bits_allocated in (8, 16, 32))


@dataclass(slots=True, eq=False)
class Slice:
    """One 2-D image, where it lies and what assembly needs to know of it.

    Geometry is in DICOM patient coordinates (LPS, mm).  Times are seconds
    after midnight (of the study day).
    """

    file: FileInfo
    frame: int                   # frame in the file (0 for single-frame files)
    tile: object                 # tile of a mosaic, or None
    position: object             # (3,) ImagePositionPatient, or None (no geometry)
    orientation: np.ndarray      # (6,) row then column direction cosines
    normal: np.ndarray           # unit slice normal
    pixel_spacing: tuple         # (between rows, between columns) mm
    shape: tuple                 # (rows, columns)
    slope: float = 1.0
    intercept: float = 0.0
    scale_slope: object = None   # Philips private MRScaleSlope
    echo: object = None          # EchoNumbers
    echo_time: object = None     # ms
    repetition_time: object = None
    flip_angle: object = None
    image_type: tuple = ()
    derived: bool = False
    x_ray: bool = False          # dcm2niix's X-ray rule: Exposure given, no echo time
    complex_kind: str = ""       # '', 'phase', 'real', 'imaginary', 'fieldmaphz'
    acquisition: object = None
    temporal: object = None
    instance: object = None
    series_uid: str = ""
    series_number: object = None
    study_uid: str = ""
    study_time: object = None    # StudyDate/StudyTime as one number (never stacked across)
    protocol: str = ""
    description: str = ""        # SeriesDescription
    modality: str = ""
    manufacturer: str = ""       # dcm2niix's short vendor name ('Siemens', 'GE', ...)
    sop_uid: str = ""
    slice_spacing: object = None  # SpacingBetweenSlices or SliceThickness, mm
    time: object = None          # acquisition time of this slice
    trigger: object = None       # TriggerTime, ms
    bvalue: object = None        # diffusion b-value, s/mm^2
    gradient: object = None      # diffusion direction (LPS, unit) or None
    isotropic: bool = False      # a derived isotropic (trace/ADC) diffusion image
    dimension: tuple = ()        # DimensionIndexValues (enhanced)
    order: tuple = ()            # vendor order of volumes (e.g. Philips b-value/gradient numbers)
    split: tuple = ()            # vendor keys that keep volumes apart (hashable)
    flip_rows: bool = False      # stored with rows reversed (GE reverse-polarity EPI)
    stackable: bool = False      # may stack across series numbers (Siemens XA classic)
    xa10a: bool = False          # Siemens XA10-XA31 (dcm2niix's isXA10A)
    gradient_axes: str = "patient"  # 'logical' for GE (frequency, phase, slice)
    mosaic_times: object = None  # acquisition times of a mosaic's or grid's tiles (ms)
    mosaic_columns: int = 0      # tiles per row of a mosaic or grid image
    time_after_start: object = None  # Siemens XA TimeAfterStart (0021,xx04), ms
    problems: tuple = field(default=())  # what was odd in this file, reported with the volume


_AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@lru_cache(maxsize=1024)
def _plane(orientation):
    """(unit orientation, unit normal) of an ImageOrientationPatient tuple,
    or None when it is not two orthonormal vectors.  Cached: the slices of a
    series share a few orientations (and the arrays, read-only)."""
    o = np.array(orientation, dtype=float)
    row, col = o[:3], o[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 \
            or abs(np.dot(row, col)) > 1e-2:
        return None
    unit = np.concatenate([row / np.linalg.norm(row), col / np.linalg.norm(col)])
    normal = np.cross(unit[:3], unit[3:])
    unit.flags.writeable = normal.flags.writeable = False
    return unit, normal


# Distances (mm) beyond which header geometry is not believed: no patient
# coordinate or voxel size comes near a kilometre or a nanometre, and past
# them the affine's sums of squares and NIfTI's float32 fields overflow or
# vanish (an ImagePositionPatient of 1e308 stopped the scan of its folder).
MAX_MM = 1e6
MIN_MM = 1e-6


def _check_geometry(position, orientation, spacing, where):
    """Raise NotAVolume for geometry that cannot describe a plane."""
    if spacing is not None and (spacing[0] <= 0 or spacing[1] <= 0):
        raise NotAVolume(f"PixelSpacing is not positive{where}")
    if spacing is not None and not all(MIN_MM <= v <= MAX_MM for v in spacing):
        raise NotAVolume(f"PixelSpacing {spacing[0]:g}\\{spacing[1]:g} mm is out of range "
                         f"({MIN_MM:g} to {MAX_MM:g} mm){where}")
    if position is not None and np.abs(position).max() > MAX_MM:
        raise NotAVolume(f"ImagePositionPatient is more than {MAX_MM:g} mm from the "
                         f"origin{where}")
    if orientation is not None and _plane(tuple(orientation)) is None:
        raise NotAVolume(f"ImageOrientationPatient is not two orthonormal vectors{where}")


def _vector(value, n, keyword, where=""):
    """`n` finite numbers from a header value, None when it is absent;
    refused when present but not that (a NaN orientation is no axial
    plane, a NaN spacing no 1 mm)."""
    out = floats(value, n)
    if out is None and value is not None:
        raise NotAVolume(f"{keyword} is not {n} finite numbers{where}")
    return out


def _scaling(value, keyword, where=""):
    """A rescale value, None when absent; NaN or infinite is refused (taken
    as absent, it would rescale this slice unlike the others in silence)."""
    out = number(value)
    first = value[0] if isinstance(value, list) and value else value
    if out is None and isinstance(first, float):  # a number, but not finite
        raise NotAVolume(f"{keyword} is {first}{where}")
    return out


def _slice_spacing(*values):
    """The first of SpacingBetweenSlices, SliceThickness... that is a
    plausible distance (not 0, within the bounds above), else None: an
    absurd value is as good as absent."""
    for value in values:
        value = number(value)
        if value is not None and MIN_MM <= abs(value) <= MAX_MM:
            return value
    return None


def _list(value):
    return [] if value is None else value if isinstance(value, list) else [value]


def _derived(image_type, sop_class):
    """dcm2niix's isDerived: ImageType says DERIVED (or names a diffusion
    map), or the SOP class is a derived object."""
    text = "_" + "_".join(image_type) + "_"
    return ("DERIVED" in image_type or any(f"_{k}_" in text for k in ("ADC", "TRACEW", "TRACE",
                                                                       "FA"))
            or sop_class.startswith("1.3.46.670589.11.0.0.12"))


def _complex_kind(image_type, component):
    """Phase, real or imaginary (never stacked with other images), from
    ImageType or ComplexImageComponent; a real image whose ImageType names a
    B0 map is a field map in Hz (dcm2niix's rule)."""
    kinds = set(image_type) | {component}
    if kinds & {"P", "PHASE"}:
        return "phase"
    if kinds & {"I", "IMAGINARY"}:
        return "imaginary"
    if kinds & {"R", "REAL"}:
        text = "_".join(image_type)
        return "fieldmaphz" if "B0" in text and "MAP" in text else "real"
    return ""


_PIXEL_MODULE = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "NumberOfFrames",
                 "BitsStored", "PixelRepresentation", "PlanarConfiguration",
                 "PhotometricInterpretation")


def _file_info(hfile, top):
    (rows, cols, bits, samples, frames, stored, representation, planar,
     photometric) = top.values(*_PIXEL_MODULE)
    rows, cols = number(rows, int), number(cols, int)
    if not rows or not cols:
        raise NotAVolume("no image (Rows/Columns missing or 0)")
    bits = number(bits, int) or 16
    if bits != 1 and (bits % 8 or not 8 <= bits <= 64):
        raise NotAVolume(f"BitsAllocated {bits} (1, or a multiple of 8 up to 64)")
    stored = number(stored, int) or bits
    if not 0 < stored <= bits:
        raise NotAVolume(f"BitsStored {stored} with BitsAllocated {bits}")
    samples = number(samples, int) or 1
    frames = number(frames, int) or 1
    if frames < 1:
        raise NotAVolume(f"NumberOfFrames is {frames}")
    if hfile.pixel_tag is None:
        raise NotAVolume("no Pixel Data element (missing, or the file is cut short)")
    floating = hfile.pixel_tag in (0x7FE00008, 0x7FE00009)
    if floating:
        bits = 64 if hfile.pixel_tag == 0x7FE00009 else 32
    _check_frames(hfile, rows * cols * samples * frames * bits // 8, frames)
    return FileInfo(
        path=hfile.path, transfer_syntax=hfile.transfer_syntax,
        pixel_offset=hfile.pixel_offset, pixel_length=hfile.pixel_length,
        little=hfile.little, rows=rows, columns=cols, frames=frames, bits_allocated=bits,
        bits_stored=stored,
        signed=number(representation, int) == 1, samples=samples,
        planar=number(planar, int) or 0,
        photometric=str(photometric or "MONOCHROME2").upper(), floating=floating,
        header_bytes=len(hfile.table.data), capacity=hfile.capacity)


def _check_frames(hfile, needed, frames):
    """Refuse a header that declares more pixel data than its file holds,
    before any per-frame record is made: memory follows what the file
    holds (inflated, at most), never what its header claims."""
    length = hfile.pixel_length
    if length is not None and length >= 0 and needed > length:
        raise NotAVolume(f"truncated: {length} of the {needed} bytes of pixel data the "
                         f"header declares ({frames} frame(s))")
    room = hfile.capacity
    if room is None:
        return
    if frames * 8 > room:
        # Compressed: each frame is at least one fragment, an 8-byte item.
        raise NotAVolume(f"NumberOfFrames {frames} is more than the file's "
                         f"{_bytes(hfile)} can hold")
    native = length is not None and length >= 0
    if needed > (room if native else 64 * room if hfile.transfer_syntax == RLE_LOSSLESS
                 else math.inf):
        # Raw pixels are in the file (or the stream inflated from it); two
        # bytes of RLE expand to 128 at most (its decoder allocates what the
        # header declares); JPEG has no such bound.
        raise NotAVolume(f"truncated: the file's {_bytes(hfile)} cannot hold the "
                         f"{needed} bytes of pixel data the header declares")


def _bytes(hfile):
    """The file's size in words, for messages."""
    if hfile.capacity == hfile.size:
        return f"{hfile.size} bytes"
    return f"{hfile.capacity} bytes (inflated, at most)"


_COMMON = ("ImageType", "EchoNumbers", "Manufacturer", "StudyDate", "StudyTime",
           "SOPClassUID", "EchoTime", "RepetitionTime", "FlipAngle", "Exposure",
           "ComplexImageComponent", "AcquisitionNumber", "TemporalPositionIdentifier",
           "InstanceNumber", "SeriesInstanceUID", "SeriesNumber", "StudyInstanceUID",
           "ProtocolName", "SeriesDescription", "SequenceName", "Modality", "SOPInstanceUID",
           "SpacingBetweenSlices", "SliceThickness", "TriggerTime", "RescaleSlope",
           "RescaleIntercept")


def _common(top, info):
    """The fields a file's top level gives every slice it holds."""
    (image_type, echo, manufacturer, date, time, sop_class, echo_time, tr, flip, exposure,
     component, acquisition, temporal, instance, series_uid, series_number, study_uid,
     protocol, description, sequence, modality, sop_uid, between, thickness, trigger,
     slope, intercept) = top.values(*_COMMON)
    image_type = tuple(str(v).upper() for v in _list(image_type))
    echo = _list(echo)
    manufacturer = short_manufacturer(manufacturer)
    if philips.assumed(top):
        manufacturer = "Philips"
    study_time = None
    if date is not None or time is not None:
        study_time = datetime_seconds(date, time)
    sop_class = str(sop_class or "")
    return dict(
        echo=number(echo[0], int) if echo else None,
        echo_time=number(echo_time),
        repetition_time=number(tr),
        flip_angle=number(flip),
        image_type=image_type,
        derived=_derived(image_type, sop_class),
        x_ray=exposure is not None and not number(echo_time),
        complex_kind=_complex_kind(image_type, str(component or "")),
        acquisition=number(acquisition, int),
        temporal=number(temporal, int),
        instance=number(instance, int),
        series_uid=str(series_uid or ""),
        series_number=number(series_number, int),
        study_uid=str(study_uid or ""),
        study_time=study_time,
        protocol=str(protocol or description
                     or (sequence if manufacturer != "Siemens" else "") or ""),
        description=str(description or ""),
        modality=str(modality or "").upper(),
        manufacturer=manufacturer,
        sop_uid=str(sop_uid or ""),
        slice_spacing=_slice_spacing(between, thickness),
        time=acquisition_seconds(top),
        trigger=number(trigger),
        slope=_scaling(slope, "RescaleSlope") or 1.0,
        intercept=_scaling(intercept, "RescaleIntercept") or 0.0,
    )


def _diffusion(top):
    """(b-value, LPS direction or None) from the standard attributes."""
    bvalue = number(top.get("DiffusionBValue"))
    if bvalue is None:
        return None, None
    return bvalue, floats(top.get("DiffusionGradientOrientation"), 3)


def file_slices(hfile):
    """The slices of one file.

    Parameters
    ----------
    hfile : medfast.dicom.header.HeaderFile

    Returns
    -------
    list of Slice

    Raises
    ------
    NotAVolume
        For objects that hold no image that can be placed in a volume
        (structured reports, RT objects, spectroscopy, raw data...): the
        message says why, and the caller skips the file;
        :class:`AnnotationObject` for SEG and RTSTRUCT files.
    """
    top = hfile.top
    modality = str(top.get("Modality") or "").upper()
    sop_class = str(top.get("SOPClassUID") or top.get("MediaStorageSOPClassUID") or "")
    if modality in ANNOTATION_READERS or sop_class in _ANNOTATION_SOP:
        raise AnnotationObject(modality if modality in ANNOTATION_READERS
                               else _ANNOTATION_SOP[sop_class])
    if modality in _NON_IMAGE_MODALITIES:
        raise NotAVolume(f"not an image ({modality} object)")
    if sop_class in _NON_IMAGE_SOP:
        raise NotAVolume(f"not an image ({_NON_IMAGE_SOP[sop_class]})")
    if "DirectoryRecordSequence" in top:
        raise NotAVolume("not an image (DICOMDIR)")
    info = _file_info(hfile, top)
    if info.samples not in (1, 3):
        raise NotAVolume(f"SamplesPerPixel {info.samples} (only 1 and 3 are images)")
    if info.samples == 3 and info.bits_allocated != 8:
        raise NotAVolume(f"colour image of {info.bits_allocated} bits per sample "
                         "(NIfTI RGB holds 8)")
    if info.samples == 3 and info.planar not in (0, 1):
        raise NotAVolume(f"PlanarConfiguration {info.planar} (0 or 1)")
    common = _common(top, info)
    if "PerFrameFunctionalGroupsSequence" in top:
        return _enhanced_slices(hfile, info, common)
    base = _classic_slice(hfile, info, common)
    if common["manufacturer"] == "Siemens" and "MOSAIC" in common["image_type"]:
        return _mosaic_slices(hfile, base)
    if common["manufacturer"] == "UIH" and uih.is_grid(top):
        return uih.grid_slices(top, base)
    if info.frames > 1:
        return _frame_stack(base)
    return [base]


def _frame_stack(base):
    """The frames of a multi-frame file without functional groups (colour
    cine, secondary captures...), as dcm2niix reads them: a stack from the
    file's position, SpacingBetweenSlices (else SliceThickness, else 1 mm)
    apart along row x column, or against it when its components add up to
    less than 0 (dcm2niix's guess without a last position)."""
    step = base.slice_spacing or 1.0
    if base.position is None:
        return [replace(base, frame=f) for f in range(base.file.frames)]
    normal = base.normal if np.sum(base.normal) >= 0 else -base.normal
    return [replace(base, frame=f, normal=normal, position=base.position + f * step * normal)
            for f in range(base.file.frames)]


def _classic_slice(hfile, info, common):
    top = hfile.top
    position = floats(top.get("ImagePositionPatient"), 3)
    if position is None and "ImagePositionPatient" in top:
        raise NotAVolume("ImagePositionPatient is not three numbers (no image geometry)")
    orientation = _vector(top.get("ImageOrientationPatient"), 6, "ImageOrientationPatient")
    spacing = _vector(top.get("PixelSpacing"), 2, "PixelSpacing")
    _check_geometry(position, orientation, spacing, "")
    s = _make_slice(info, 0, position, orientation, spacing, common)
    s.bvalue, s.gradient = _diffusion(top)
    vendor = {"Philips": philips, "GE": ge, "Siemens": siemens, "UIH": uih}.get(s.manufacturer)
    if vendor is not None:
        vendor.classic_fields(top, s)
    return s


def _make_slice(info, frame, position, orientation, spacing, fields):
    # dcm2niix: a missing orientation is taken as axial.
    unit, normal = _plane(_AXIAL if orientation is None else tuple(orientation))
    return Slice(file=info, frame=frame, tile=None, position=position,
                 orientation=unit, normal=normal,
                 pixel_spacing=(1.0, 1.0) if spacing is None else tuple(spacing),
                 shape=(info.rows, info.columns), **fields)


def check_tiles(info, n, what):
    """Refuse an image tiled into more slices than its file has bytes / 8
    (as frames, :func:`_check_frames`), before a record is made per slice:
    a compressed 60000x60000 grid declaring 3.6e9 one-pixel slices hung the
    scan."""
    if info.capacity is not None and n * 8 > info.capacity:
        raise NotAVolume(f"{what} of {n:.6g} slices: more than the file can hold "
                         f"({info.capacity} bytes at most)")


def _mosaic_slices(hfile, base):
    csa = siemens.csa_image_header(hfile.top)
    try:
        n, tile, position, normal = siemens.mosaic_geometry(hfile.top, csa)
    except ValueError as exc:
        raise NotAVolume(str(exc)) from None
    check_tiles(base.file, n, "mosaic")
    step = base.slice_spacing or 1.0
    times = csa.get("MosaicRefAcqTimes")
    out = []
    for k in range(n):
        out.append(replace(base, tile=k, shape=tile, normal=normal,
                           position=position + k * step * normal,
                           mosaic_times=times, mosaic_columns=base.file.columns // tile[1]))
    return out


# --------------------------------------------------------------------------
# Enhanced (multi-frame) files
# --------------------------------------------------------------------------
_FRAME_TYPES = ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence",
                "PETFrameTypeSequence", "XAXRFFrameCharacteristicsSequence")
PER_FRAME = "PerFrameFunctionalGroupsSequence"


class FrameFields:
    """Values of the per-frame functional groups, with the shared group as
    the fallback: ``fields[path][frame]``."""

    def __init__(self, hfile):
        self.hfile = hfile
        self.top = hfile.top
        self.shared = self.top.item("SharedFunctionalGroupsSequence")
        self.count = len(self.top.sequence(PER_FRAME))

    def get(self, *path, vr=None):
        """One value per frame at `path` (nested sequence keys, then the
        element's key), per-frame first, then the shared group's."""
        values = self.hfile.item_values(self.top, (PER_FRAME,) + path, vr)
        values = values + [None] * (self.count - len(values))
        if self.shared is not None and any(v is None for v in values):
            item = self.shared
            for key in path[:-1]:
                item = item.item(key) if item is not None else None
            fallback = item.get(path[-1], vr) if item is not None else None
            values = [fallback if v is None else v for v in values]
        return values


def _enhanced_slices(hfile, info, common):
    frames = FrameFields(hfile)
    n = frames.count
    if n != info.frames:
        if n < info.frames:
            raise NotAVolume(f"{info.frames} frames but {n} per-frame functional groups")
        info.frames = min(n, info.frames)  # extra groups: only frames that exist
        n = info.frames
    positions = frames.get("PlanePositionSequence", "ImagePositionPatient")
    orientations = frames.get("PlaneOrientationSequence", "ImageOrientationPatient")
    spacings = frames.get("PixelMeasuresSequence", "PixelSpacing")
    thickness = frames.get("PixelMeasuresSequence", "SliceThickness")
    between = frames.get("PixelMeasuresSequence", "SpacingBetweenSlices")
    slopes = frames.get("PixelValueTransformationSequence", "RescaleSlope")
    intercepts = frames.get("PixelValueTransformationSequence", "RescaleIntercept")
    echo_times = frames.get("MREchoSequence", "EffectiveEchoTime")
    temporal = frames.get("FrameContentSequence", "TemporalPositionIndex")
    dimension = frames.get("FrameContentSequence", "DimensionIndexValues")
    stamps = frames.get("FrameContentSequence", "FrameAcquisitionDateTime")
    acq_numbers = frames.get("FrameContentSequence", "FrameAcquisitionNumber")
    bvalues = frames.get("MRDiffusionSequence", "DiffusionBValue")
    directionality = frames.get("MRDiffusionSequence", "DiffusionDirectionality")
    gradients = frames.get("MRDiffusionSequence", "DiffusionGradientDirectionSequence",
                           "DiffusionGradientOrientation")
    components = frames.get("MRImageFrameTypeSequence", "ComplexImageComponent")
    frame_types = [None] * n
    for key in _FRAME_TYPES:
        found = frames.get(key, "FrameType")
        frame_types = [a if a is not None else b for a, b in zip(frame_types, found)]
    vendor = {"Philips": philips, "Siemens": siemens}.get(common["manufacturer"])
    extra = vendor.frame_fields(frames) if vendor is not None else [{}] * n
    pointers = [item.get("DimensionIndexPointer")
                for item in hfile.top.sequence("DimensionIndexSequence")]
    stack = [i for i, p in enumerate(pointers) if p in (0x00209057, 0x00200032)]
    info.stack_item = stack[-1] if stack else None
    out = []
    shared = {}  # one object for the values frames repeat (memory: many frames)
    for index in range(n):
        where = f" in frame {index + 1}"
        position = floats(positions[index], 3)
        orientation = _vector(orientations[index], 6, "ImageOrientationPatient", where)
        spacing = _vector(spacings[index], 2, "PixelSpacing", where)
        _check_geometry(position, orientation, spacing, where)
        intercept = _scaling(intercepts[index], "RescaleIntercept", where)
        fields = dict(common)
        fields.update(
            slope=_scaling(slopes[index], "RescaleSlope", where) or common["slope"],
            intercept=common["intercept"] if intercept is None else intercept,
            temporal=number(temporal[index], int),
            time=datetime_seconds(stamps[index]) if stamps[index] else common["time"],
            slice_spacing=_slice_spacing(between[index], thickness[index])
            or common["slice_spacing"],
            dimension=tuple(_list(dimension[index])),
        )
        if number(acq_numbers[index], int) is not None:
            fields["acquisition"] = number(acq_numbers[index], int)
        if echo_times[index] is not None:
            fields["echo_time"] = number(echo_times[index])
        if frame_types[index]:
            image_type = tuple(str(v).upper() for v in _list(frame_types[index]))
            image_type = shared.setdefault(image_type, image_type)
            fields["image_type"] = image_type
            fields["derived"] = common["derived"] or "DERIVED" in image_type
        component = str(components[index] or "").upper()
        fields["complex_kind"] = _complex_kind(fields["image_type"], component) \
            or common["complex_kind"]
        s = _make_slice(info, index, position, orientation, spacing, fields)
        s.pixel_spacing = shared.setdefault(s.pixel_spacing, s.pixel_spacing)
        if bvalues[index] is not None:
            s.bvalue = number(bvalues[index])
            s.gradient = floats(gradients[index], 3)
            if str(directionality[index] or "").upper() == "ISOTROPIC":
                s.isotropic, s.gradient = True, None
        for key, value in extra[index].items():
            if key == "field_map":
                s.complex_kind = "fieldmaphz" if s.complex_kind == "real" else s.complex_kind
            elif key == "stack_item":
                info.stack_item = value  # a vendor key with the in-stack index elsewhere
            else:
                setattr(s, key, value)
        out.append(s)
    if all(s.position is not None for s in out):  # (within bounds: checked above)
        info.four_d = len({tuple(np.round(s.position, 2)) for s in out}) < n
    if info.four_d:
        # A 4-D file splits by echo time (dcm2niix numbers the echoes by
        # their distinct echo times, in frame order) and kind.
        times = list(dict.fromkeys(s.echo_time for s in out))
        if len(times) > 1:
            for s in out:
                s.echo = times.index(s.echo_time) + 1
    return out

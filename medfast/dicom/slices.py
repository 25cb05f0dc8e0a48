"""From one file's header to its 2-D slices.

Every image a file holds becomes a :class:`Slice`: a classic file gives one,
an enhanced multi-frame file one per frame (its per-frame functional groups
override the shared ones), a Siemens mosaic one per tile.  After this step
the assembly no longer cares where a slice came from.
"""
from dataclasses import dataclass

import numpy as np

from . import values
from .vendors import philips, siemens

# SOP classes that never hold image volumes.
_NON_IMAGE_MODALITIES = {"SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "PR", "KO",
                         "REG", "SEG", "DOC", "RWV", "AU", "ECG"}


class NotAVolume(ValueError):
    """The file holds no image that can be part of a volume (skipped)."""


@dataclass(eq=False)
class Slice:
    """One 2-D image and where it lies.

    Attributes
    ----------
    file : medfast.dicom.reader.DicomFile
    frame : int
        Frame index in the file (0 for single-frame files).
    tile : int or None
        Tile index in a Siemens mosaic.
    position : (3,) ndarray
        ImagePositionPatient (LPS, mm) of the first pixel.
    orientation : (6,) ndarray
        ImageOrientationPatient: row direction, then column direction.
    normal : (3,) ndarray
        Unit slice normal (for mosaics, the CSA SliceNormalVector's sign).
    pixel_spacing : (2,) tuple
        (between rows, between columns) in mm.
    shape : (rows, cols)
    slope, intercept : float
        RescaleSlope, RescaleIntercept.
    scale_slope : float or None
        Philips private scale slope.
    """

    file: object
    frame: int
    tile: object
    position: np.ndarray
    orientation: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple
    shape: tuple
    slope: float
    intercept: float
    scale_slope: object
    echo: object
    image_type: tuple
    acquisition: object
    temporal: object
    instance: object
    series_uid: str
    series_number: object
    slice_spacing: object  # SpacingBetweenSlices or SliceThickness, mm


def _floats(value, n):
    try:
        out = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and np.all(np.isfinite(out)) else None


def _number(value, kind=float):
    try:
        return kind(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _find(items, keyword, attribute):
    """The first `attribute` of `keyword`'s first item in `items` (per-frame
    group first, then shared group)."""
    for item in items:
        if item is None:
            continue
        seq = item.get(keyword)
        if seq:
            value = seq[0].get(attribute)
            if value is not None:
                return value
    return None


def _geometry_check(position, orientation, spacing, where):
    if position is None or orientation is None:
        raise NotAVolume(f"no image geometry{where} (ImagePositionPatient/"
                         "ImageOrientationPatient missing)")
    if spacing is None or np.any(spacing <= 0):
        raise NotAVolume(f"no valid PixelSpacing{where}")
    row, col = orientation[:3], orientation[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 \
            or abs(np.dot(row, col)) > 1e-2:
        raise NotAVolume(f"ImageOrientationPatient is not two orthonormal vectors{where}")


def _unit(orientation):
    row, col = orientation[:3], orientation[3:]
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    return np.concatenate([row, col])


def _list(value):
    return [] if value is None else value if isinstance(value, list) else [value]


def _common(ds):
    echo = _list(values.get(ds, "EchoNumbers"))
    return dict(
        echo=_number(echo[0], int) if echo else None,
        image_type=tuple(str(v).upper() for v in _list(values.get(ds, "ImageType"))),
        acquisition=_number(values.get(ds, "AcquisitionNumber"), int),
        temporal=_number(values.get(ds, "TemporalPositionIdentifier"), int),
        instance=_number(values.get(ds, "InstanceNumber"), int),
        series_uid=str(values.get(ds, "SeriesInstanceUID") or ""),
        series_number=_number(values.get(ds, "SeriesNumber"), int),
    )


def _slice_spacing(ds):
    return (_number(values.get(ds, "SpacingBetweenSlices")) or
            _number(values.get(ds, "SliceThickness")))


def file_slices(dfile):
    """The slices of one file.

    Parameters
    ----------
    dfile : medfast.dicom.reader.DicomFile

    Returns
    -------
    list of Slice

    Raises
    ------
    NotAVolume
        For objects that are not part of a volume (structured reports, RT
        objects, secondary captures without geometry, localizers...): the
        message says why, and the caller skips the file.
    """
    ds = dfile.dataset
    modality = str(values.get(ds, "Modality") or "").upper()
    if modality in _NON_IMAGE_MODALITIES:
        raise NotAVolume(f"not an image ({modality} object)")
    if values.get(ds, "Rows") is None or values.get(ds, "Columns") is None:
        raise NotAVolume("no image (Rows/Columns missing)")
    if (values.get(ds, "SamplesPerPixel") or 1) != 1:
        raise NotAVolume("colour image (SamplesPerPixel > 1)")
    image_type = [str(v).upper() for v in _list(values.get(ds, "ImageType"))]
    if "LOCALIZER" in image_type:
        raise NotAVolume("localizer (scout) image")
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_slices(dfile)
    if "MOSAIC" in image_type:
        return _mosaic_slices(dfile)
    return [_classic_slice(dfile)]


def _classic_slice(dfile):
    ds = dfile.dataset
    position = _floats(values.get(ds, "ImagePositionPatient"), 3)
    orientation = _floats(values.get(ds, "ImageOrientationPatient"), 6)
    spacing = _floats(values.get(ds, "PixelSpacing"), 2)
    _geometry_check(position, orientation, spacing, "")
    orientation = _unit(orientation)
    return Slice(
        file=dfile, frame=0, tile=None, position=position,
        orientation=orientation,
        normal=np.cross(orientation[:3], orientation[3:]),
        pixel_spacing=tuple(spacing),
        shape=(values.get(ds, "Rows"), values.get(ds, "Columns")),
        slope=_number(values.get(ds, "RescaleSlope")) or 1.0,
        intercept=_number(values.get(ds, "RescaleIntercept")) or 0.0,
        scale_slope=philips.scale_slope(ds) if _is_philips(ds) else None,
        slice_spacing=_slice_spacing(ds), **_common(ds))


def _is_philips(ds):
    return "PHILIPS" in str(values.get(ds, "Manufacturer") or "").upper()


def _mosaic_slices(dfile):
    ds = dfile.dataset
    base = _classic_slice(dfile)
    csa = siemens.csa_image_header(ds)
    try:
        n, tile, position, normal = siemens.mosaic_geometry(ds, csa)
    except ValueError as exc:
        raise NotAVolume(str(exc)) from None
    step = base.slice_spacing or 1.0
    out = []
    for k in range(n):
        s = Slice(**{**base.__dict__})
        s.tile = k
        s.shape = tile
        s.normal = normal
        s.position = position + k * step * normal
        out.append(s)
    return out


def _enhanced_slices(dfile):
    ds = dfile.dataset
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    common = _common(ds)
    philips_file = _is_philips(ds)
    out = []
    for index, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        groups = (frame, shared)
        where = f" in frame {index + 1}"
        position = _floats(_find(groups, "PlanePositionSequence", "ImagePositionPatient"), 3)
        orientation = _floats(_find(groups, "PlaneOrientationSequence",
                                    "ImageOrientationPatient"), 6)
        spacing = _floats(_find(groups, "PixelMeasuresSequence", "PixelSpacing"), 2)
        _geometry_check(position, orientation, spacing, where)
        orientation = _unit(orientation)
        frame_type = (_find(groups, "MRImageFrameTypeSequence", "FrameType")
                      or _find(groups, "CTImageFrameTypeSequence", "FrameType")
                      or _find(groups, "PETFrameTypeSequence", "FrameType"))
        echo_time = _find(groups, "MREchoSequence", "EffectiveEchoTime")
        content = frame.get("FrameContentSequence")
        content = content[0] if content else {}
        scale = None
        if philips_file:
            scale = philips.per_frame_scale_slope(frame) or philips.scale_slope(ds)
        fields = dict(common)
        if frame_type:
            fields["image_type"] = tuple(str(v).upper() for v in frame_type)
        # Echo: Philips repeats the classic EchoNumbers per frame in a
        # private item; otherwise the frame's effective echo time tells
        # echoes apart.
        private = frame.get((0x2005, 0x140F))
        private = private.value[0] if private is not None and private.value else None
        echo_number = _number(private.get("EchoNumbers"), int) if private is not None else None
        if echo_number is not None:
            fields["echo"] = echo_number
        elif echo_time is not None:
            fields["echo"] = _number(echo_time)
        fields["temporal"] = _number(content.get("TemporalPositionIndex"), int)
        fields["instance"] = index
        thickness = (_number(_find(groups, "PixelMeasuresSequence", "SpacingBetweenSlices"))
                     or _number(_find(groups, "PixelMeasuresSequence", "SliceThickness")))
        out.append(Slice(
            file=dfile, frame=index, tile=None, position=position,
            orientation=orientation,
            normal=np.cross(orientation[:3], orientation[3:]),
            pixel_spacing=tuple(spacing), shape=(int(ds.Rows), int(ds.Columns)),
            slope=_number(_find(groups, "PixelValueTransformationSequence", "RescaleSlope"))
            or _number(ds.get("RescaleSlope")) or 1.0,
            intercept=_number(_find(groups, "PixelValueTransformationSequence",
                                    "RescaleIntercept"))
            or _number(ds.get("RescaleIntercept")) or 0.0,
            scale_slope=scale, slice_spacing=thickness or _slice_spacing(ds), **fields))
    return out

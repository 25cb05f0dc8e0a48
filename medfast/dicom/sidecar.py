"""The BIDS sidecar of a volume: :func:`bids_sidecar`.

The fields dcm2niix writes to its JSON sidecar, under dcm2niix's key names
and in its units (times in seconds), computed from the DICOM headers
(classic, enhanced multi-frame and Siemens mosaic; Siemens CSA, GE and
Philips private fields where noted, their rules in :mod:`.vendors`).  Slice
timing comes from :mod:`.timing`, the diffusion table (``.bval``/``.bvec``)
from :mod:`.diffusion`.

Conventions that differ from a plain copy of the headers:

* **Voxel axes.**  medfast's voxel axes are i along a row (the column
  index), j down the rows, k from slice to slice in increasing position along
  the slice normal.  dcm2niix writes the rows in reverse order (its j axis
  points the other way) and may reverse the slices, so a direction such as
  ``PhaseEncodingDirection`` is ``'j'`` here where dcm2niix writes ``'j-'``
  for the same acquisition: both name the same direction in the patient.
  ``SliceTiming`` lists one time per slice in medfast's slice order.
* **AcquisitionTime** is written ``HH:MM:SS.ffffff`` (dcm2niix writes the
  seconds without a leading zero, e.g. ``12:30:2.285000``).
* Identifying fields (:data:`IDENTIFYING_FIELDS`) are included;
  :func:`anonymize` drops them, as dcm2niix's default ``-ba y`` does.
"""
import re

from . import values
from .timing import slice_timing
from .vendors import ge, philips, siemens
from .volume_header import VolumeHeader

__all__ = ["bids_sidecar", "anonymize", "IDENTIFYING_FIELDS"]

#: Sidecar keys that identify the patient or the study; dropped by
#: :func:`anonymize` (dcm2niix's ``-ba y`` drops the same ones).
IDENTIFYING_FIELDS = ("SeriesInstanceUID", "StudyInstanceUID", "ReferringPhysicianName",
                      "StudyID", "PatientName", "PatientID", "AccessionNumber",
                      "PatientBirthDate", "PatientSex", "PatientWeight", "PatientAge",
                      "AcquisitionDateTime")


def _image_type(volume, header):
    """ImageType as dcm2niix writes it: the file's ImageType split into its
    parts (dcm2niix also splits at '_'), plus what the volume holds when the
    values do not say it (MAGNITUDE, PHASE, REAL, IMAGINARY, FIELDMAPHZ)."""
    raw = header.top("ImageType")
    if not raw:
        return None
    words = [str(v).strip().upper() for v in (raw if not isinstance(raw, str) else [raw])]
    parts = [p for v in words for p in v.split("_") if p]
    frame_type = set(volume.first.image_type)  # FrameType for enhanced files
    component = str(header.in_groups("ComplexImageComponent") or "").upper()
    top_component = str(header.top("ComplexImageComponent") or "").upper()
    ge_kind = ge.image_kind(header) if header.manufacturer == "GE" else None
    fieldmap = "FIELD_MAP" in frame_type and bool(header.groups)
    phase = ("P" in frame_type or "PHASE" in frame_type or component == "PHASE"
             or ge_kind == 1)
    real = not fieldmap and ("R" in frame_type or "REAL" in frame_type
                             or component == "REAL" or ge_kind == 2)
    imaginary = ("I" in frame_type or "IMAGINARY" in frame_type
                 or component == "IMAGINARY" or ge_kind == 3)
    magnitude = not (phase or real or imaginary or fieldmap) and (
        "M" in words or "MAGNITUDE" in words or top_component == "MAGNITUDE"
        or ge_kind == 0)
    for flag, name in ((phase, "PHASE"), (real, "REAL"), (imaginary, "IMAGINARY")):
        if flag and (name not in parts or header.manufacturer == "GE"):
            parts.append(name)
    if fieldmap:
        parts.append("FIELDMAPHZ")
    if magnitude and "MAGNITUDE" not in parts:
        parts.append("MAGNITUDE")
    return parts


def _phase_encoding(header, out):
    """InPlanePhaseEncodingDirectionDICOM and PhaseEncodingDirection (or
    PhaseEncodingAxis when the polarity is unknown) in medfast's axes."""
    direction = values.text_of(header.get("InPlanePhaseEncodingDirection"))
    if header.manufacturer == "GE" and not direction:
        direction = values.text_of(header.private(0x0043, "GEMS_PARM_01", 0x8A, vr="CS"))
    direction = {"ROW": "ROW", "COL": "COL", "COLUMN": "COL"}.get((direction or "").upper())
    if direction is None:
        return None
    axis = "i" if direction == "ROW" else "j"
    positive = None
    if header.manufacturer == "Siemens":
        value = header.csa.get("PhaseEncodingDirectionPositive")
        positive = values.number(value[0]) if value else None
        if positive is None and header.groups:
            positive = values.number(siemens.xa_private(header, 0x1C))
    elif header.manufacturer == "GE":
        positive = ge.phase_positive(header)
    acquisition_3d = values.text_of(header.get("MRAcquisitionType")) == "3D"
    train = values.number(header.get("EchoTrainLength")) or 0
    if acquisition_3d and train <= 1:
        return direction  # dcm2niix skips the axis of 3-D non-EPI scans
    if positive in (0, 1):
        out["PhaseEncodingDirection"] = axis + ("" if positive == 1 else "-")
    else:
        out["PhaseEncodingAxis"] = axis
    return direction


def _bandwidth_per_pixel_phase_encode(header):
    value = None
    if header.manufacturer == "Siemens":
        value = values.number(header.private(0x0019, "SIEMENS MR HEADER", 0x28))
        if value is None and header.csa.get("BandwidthPerPixelPhaseEncode"):
            value = values.number(header.csa["BandwidthPerPixelPhaseEncode"][0])
        if value is None and header.groups:
            value = values.number(siemens.xa_private(header, 0x53))
    return value if value and value > 0 else None


def _multi_echo(volume, header):
    return bool(re.search(r"_e\d", volume.suffix or ""))


def _put(out, key, value):
    if value is not None and value != "" and value != []:
        out[key] = value


def _positive(value):
    """A number > 0 (dcm2niix omits zero and negative values), or None."""
    number = values.number(value)
    return values.json_number(number) if number is not None and number > 0 else None


def _acquisition_time(volume, header):
    """(date YYYYMMDD or None, seconds after midnight or None) at which the
    volume's acquisition started."""
    date, seconds = values.split_datetime(header.top("AcquisitionDateTime"))
    if seconds is not None:
        return date, seconds
    times = [s.time for s in volume.grid[0] if s.time is not None]
    if not times:
        return None, None
    start = min(times)
    return values.date_of(start) or values.text_of(header.top("AcquisitionDate")), start % 86400


def bids_sidecar(volume):
    """BIDS sidecar fields of a volume, as dcm2niix names them.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    dict
        JSON-serialisable (str, int, float, bool and lists of them), keys in
        the order dcm2niix writes them (:func:`medfast.convert` adds
        ``ConversionSoftware`` and its version when it writes the file).
        Times are in seconds.  Directions refer to medfast's voxel axes (see
        the module notes): for instance ``PhaseEncodingDirection`` ``'j'``
        where dcm2niix, whose rows are reversed, writes ``'j-'``.
        Identifying fields are included (see :func:`anonymize`).

    Notes
    -----
    Fields come from the header of the volume's first slice (for enhanced
    files the functional groups of its frame; for Siemens the CSA image
    header).  ``SliceTiming``: Siemens mosaics from the CSA
    ``MosaicRefAcqTimes``, GE EPI from the protocol block (interleaved or
    sequential, multiband) as dcm2niix computes it, Siemens XA from each
    image's TimeAfterStart (0021,xx04) as dcm2niix computes it, other
    enhanced files from each frame's FrameAcquisitionDateTime, other
    classic series from each slice's TriggerTime or AcquisitionTime;
    relative to the first slice acquired (Siemens XA: as dcm2niix has them),
    and omitted for 3-D acquisitions, CT/PET and when the times do not vary
    or span more than one TR.
    """
    header = VolumeHeader(volume.first)
    get = header.get
    out = {}
    _put(out, "Modality", values.text_of(get("Modality")))
    _put(out, "MagneticFieldStrength", _positive(get("MagneticFieldStrength")))
    frequency = _positive(get("ImagingFrequency") or get("TransmitterFrequency"))
    _put(out, "ImagingFrequency", frequency if frequency and frequency < 9e6 else None)
    _put(out, "Manufacturer", volume.first.manufacturer or None)
    for key, keyword in (("ManufacturersModelName", "ManufacturerModelName"),
                         ("InstitutionName", "InstitutionName"),
                         ("InstitutionalDepartmentName", "InstitutionalDepartmentName"),
                         ("InstitutionAddress", "InstitutionAddress"),
                         ("DeviceSerialNumber", "DeviceSerialNumber"),
                         ("StationName", "StationName"),
                         ("SeriesInstanceUID", "SeriesInstanceUID"),
                         ("StudyInstanceUID", "StudyInstanceUID"),
                         ("ReferringPhysicianName", "ReferringPhysicianName"),
                         ("StudyID", "StudyID"),
                         ("PatientName", "PatientName"),
                         ("PatientID", "PatientID"),
                         ("AccessionNumber", "AccessionNumber")):
        _put(out, key, values.text_of(get(keyword)))
    birth = values.text_of(get("PatientBirthDate"))
    if birth and re.fullmatch(r"\d{8}", birth):
        out["PatientBirthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    sex = values.text_of(get("PatientSex"))
    _put(out, "PatientSex", sex if sex in ("M", "F", "O") else None)
    _put(out, "PatientWeight", _positive(get("PatientWeight")))
    _put(out, "BodyPart", values.text_of(get("BodyPartExamined")))
    _put(out, "PatientPosition", values.text_of(get("PatientPosition")))
    _put(out, "ProcedureStepDescription", values.text_of(get("PerformedProcedureStepDescription")))
    _put(out, "SoftwareVersions", values.text_of(get("SoftwareVersions")))
    acquisition_type = values.text_of(get("MRAcquisitionType"))
    _put(out, "MRAcquisitionType", acquisition_type if acquisition_type in ("2D", "3D") else None)
    _put(out, "StudyDescription", values.text_of(get("StudyDescription")))
    _put(out, "SeriesDescription", values.text_of(get("SeriesDescription")))
    _put(out, "ProtocolName", values.text_of(get("ProtocolName")))
    xa = header.manufacturer == "Siemens" and header.groups
    for key, element in (("ScanningSequence", 0x5A), ("SequenceVariant", 0x5B),
                         ("ScanOptions", 0x5C)):
        value = get(key)
        if value is None and xa:
            value = siemens.xa_private(header, element, "SIEMENS MR SDS 01", shared=True)
        _put(out, key, values.text_of(value))
    sequence = get("SequenceName") or get("PulseSequenceName")
    if sequence is None and header.manufacturer == "GE":
        sequence = header.private(0x0019, "GEMS_ACQU_01", 0x9C, vr="LO")
    _put(out, "SequenceName", values.text_of(sequence))
    _put(out, "ImageType", _image_type(volume, header))
    # The slice's number: GE reversed-polarity volumes are series + 1000.
    number = volume.first.series_number
    if number is None:
        number = values.number(get("SeriesNumber"))
    _put(out, "SeriesNumber", int(number) if number is not None else None)
    date, seconds = _acquisition_time(volume, header)
    if seconds is not None:
        out["AcquisitionTime"] = values.clock(seconds)
        if date and re.fullmatch(r"\d{8}", date):
            out["AcquisitionDateTime"] = f"{date[:4]}-{date[4:6]}-{date[6:]}T{values.clock(seconds)}"
    acquisition = values.number(get("AcquisitionNumber"))
    _put(out, "AcquisitionNumber", int(acquisition) if acquisition and acquisition > 0 else None)
    _put(out, "ImageComments", values.text_of(get("ImageComments")))
    _put(out, "SliceThickness", _positive(get("SliceThickness")))
    _put(out, "SpacingBetweenSlices", _positive(get("SpacingBetweenSlices")))
    echo = header.slice.echo
    if echo is not None and (echo > 1 or _multi_echo(volume, header)):
        out["EchoNumber"] = echo
    echo_time = values.number(get("EchoTime"))
    if echo_time is None:
        echo_time = values.number(get("EffectiveEchoTime"))
    _put(out, "EchoTime", echo_time / 1000.0 if echo_time and echo_time > 0 else None)
    tr = values.number(get("RepetitionTime"))
    tr = tr / 1000.0 if tr and tr > 0 else None
    _put(out, "RepetitionTime", tr)
    inversion = values.number(get("InversionTime"))
    if inversion is None:  # enhanced files: MRModifierSequence (dcm2niix, issue 380)
        inversion = values.number(get("InversionTimes"))
    _put(out, "InversionTime", inversion / 1000.0 if inversion and inversion > 0 else None)
    _put(out, "FlipAngle", _positive(get("FlipAngle")))
    if header.manufacturer == "GE":
        polarity = ge.phase_positive(header)
        _put(out, "PhaseEncodingPolarityGE", {1: "Unflipped", 0: "Flipped"}.get(polarity))
    _put(out, "PercentPhaseFOV", _positive(get("PercentPhaseFieldOfView")))
    _put(out, "PercentSampling", _positive(get("PercentSampling")))
    train = values.number(get("EchoTrainLength"))
    _put(out, "EchoTrainLength", int(train) if train and train > 1 else None)
    _put(out, "BandwidthPerPixelPhaseEncode", _bandwidth_per_pixel_phase_encode(header))
    _put(out, "PixelBandwidth", _positive(get("PixelBandwidth")))
    direction = None
    if values.text_of(get("Modality")) == "MR":
        direction = _phase_encoding(header, out)
    times = slice_timing(volume, header, tr)
    if times is not None:
        out["SliceTiming"] = [round(t, 6) for t in times]
    out["ImageOrientationPatientDICOM"] = [
        values.json_number(round(float(v), 8)) for v in volume.first.orientation]
    _put(out, "InPlanePhaseEncodingDirectionDICOM", direction)
    if volume.first.manufacturer == "Philips":
        out.update(philips.sidecar_fields(volume, header.groups[0] if header.groups
                                          else header.ds))
    return out


def anonymize(sidecar):
    """The sidecar without :data:`IDENTIFYING_FIELDS`.

    Parameters
    ----------
    sidecar : dict

    Returns
    -------
    dict
        A new dict; `sidecar` is not changed.
    """
    return {k: v for k, v in sidecar.items() if k not in IDENTIFYING_FIELDS}

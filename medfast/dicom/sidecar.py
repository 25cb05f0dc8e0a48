"""Acquisition metadata: the BIDS sidecar and the diffusion table of a volume.

:func:`bids_sidecar` gives the fields dcm2niix writes to its JSON sidecar,
under dcm2niix's key names and in its units (times in seconds), computed
from the DICOM headers (classic, enhanced multi-frame and Siemens mosaic;
Siemens CSA, GE and Philips private fields where noted).
:func:`diffusion_table` gives the b-values and gradient directions of a
diffusion series in the FSL convention (``.bval``/``.bvec``).

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
import gzip
import math
import re
import struct

import numpy as np

from .header import read_header
from .values import clock as _clock, date_of, short_manufacturer, tm_seconds as _dicom_seconds
from .vendors import ge, philips, siemens

__all__ = ["bids_sidecar", "diffusion_table", "anonymize", "IDENTIFYING_FIELDS"]

#: Sidecar keys that identify the patient or the study; dropped by
#: :func:`anonymize` (dcm2niix's ``-ba y`` drops the same ones).
IDENTIFYING_FIELDS = ("SeriesInstanceUID", "StudyInstanceUID", "ReferringPhysicianName",
                      "StudyID", "PatientName", "PatientID", "AccessionNumber",
                      "PatientBirthDate", "PatientSex", "PatientWeight", "PatientAge",
                      "AcquisitionDateTime")

# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------
def _plain(value):
    """A JSON-ready scalar: int, float (finite) or str, or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 1e15 else value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "replace")
    text = str(value).strip().strip("\0").strip()
    if not text:
        return None
    return text


def _number(value):
    """A finite float from a DICOM value (first of several), or None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if not len(value):
            return None
        value = value[0]
    if isinstance(value, (bytes, bytearray)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_number(value):
    number = _number(value)
    if number is None:
        return None
    return int(number) if number.is_integer() and abs(number) < 1e15 else number


def _text(value):
    """A DICOM string value; several values joined with a backslash as
    dcm2niix writes them."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [str(v).strip() for v in value]
        text = "\\".join(parts)
    else:
        text = _plain(value)
        text = None if text is None else str(text)
    if text is None or not text.strip("\\ "):
        return None
    return text


def _split_datetime(value):
    """A DICOM DT value -> (YYYYMMDD, seconds after midnight) or (None, None)."""
    text = _text(value)
    if not text:
        return None, None
    text = re.split(r"[+-]", text, maxsplit=1)[0]  # drop a UTC offset
    if len(text) < 8 or not text[:8].isdigit():
        return None, None
    return text[:8], (_dicom_seconds(text[8:]) if len(text) > 8 else None)


# --------------------------------------------------------------------------
# Header access: top level, then the enhanced functional groups
# --------------------------------------------------------------------------
def _get(header, key, default=None):
    """``header.get(key)``, but a value that cannot be decoded reads as
    absent: a sidecar field is never worth failing a conversion."""
    try:
        value = header.get(key)
    except Exception:
        return default
    return default if value is None else value


def _in_groups(groups, keyword):
    """`keyword` in the functional groups (per-frame before shared): in the
    group itself or in the first item of one of its sequences, or None."""
    try:
        for group in groups:
            value = group.get(keyword)
            if value is not None and value != "":
                return value
            for _, items in group.sequences():
                if items:
                    value = items[0].get(keyword)
                    if value is not None and value != "":
                        return value
    except Exception:  # a corrupt element: as absent (see _get)
        return None
    return None


class _Header:
    """Look-ups on the header of a volume's first slice: its file's top
    level and, for enhanced files, its frame's functional groups.  The file
    is read again here (one file per volume): slices keep no headers."""

    def __init__(self, s):
        self.slice = s
        self.ds = read_header(s.file.path).top
        self.groups = []
        if s.file.frames > 1 or "PerFrameFunctionalGroupsSequence" in self.ds:
            frames = self.ds.sequence("PerFrameFunctionalGroupsSequence")
            if 0 <= s.frame < len(frames):
                self.groups.append(frames[s.frame])
            shared = self.ds.item("SharedFunctionalGroupsSequence")
            if shared is not None:
                self.groups.append(shared)
        self._csa = None  # parsed on first use

    def get(self, keyword):
        value = _get(self.ds, keyword)
        if value is not None and value != "":
            return value
        if self.groups:
            return _in_groups(self.groups, keyword)
        return None

    @property
    def csa(self):
        if self._csa is None:
            self._csa = _csa(self.ds) if self.manufacturer == "Siemens" else {}
        return self._csa

    @property
    def manufacturer(self):
        return _manufacturer(_get(self.ds, "Manufacturer"))

    def private(self, group, creator, element, vr=None):
        """A private element's value (found by its creator), or None."""
        try:
            return self.ds.private(group, creator, element, vr=vr)
        except Exception:  # corrupt
            return None


def _csa(ds):
    """The Siemens CSA image header, {} when absent or unreadable."""
    try:
        return siemens.csa_image_header(ds)
    except Exception:
        return {}


def _manufacturer(value):
    return short_manufacturer(value) or None


def _siemens_xa_private(header, element, creator="SIEMENS MR SDI 02", shared=False):
    """A Siemens XA (enhanced) private value: per frame, creator 'SIEMENS MR
    SDI 02', or in the shared group, creator 'SIEMENS MR SDS 01' (both in a
    private sequence of the functional group)."""
    groups = header.groups[-1:] if shared else header.groups[:1]
    if shared and len(header.groups) < 2:
        return None
    for group in groups:
        for tag, items in group.sequences():
            if not (tag >> 16) & 1 or not items:
                continue
            try:
                value = items[0].private(0x0021, creator, element)
            except Exception:  # corrupt
                value = None
            if value is not None:
                return value
    return None


# --------------------------------------------------------------------------
# Image type
# --------------------------------------------------------------------------
def _ge_image_kind(header):
    """GE private image type (0043,102F): 0 magnitude, 1 phase, 2 real,
    3 imaginary; None when absent."""
    value = header.private(0x0043, "GEMS_PARM_01", 0x2F, vr="SS")
    if isinstance(value, (bytes, bytearray)) and len(value) >= 2:
        value = struct.unpack("<h", bytes(value[:2]))[0]
    number = _number(value)
    return None if number is None else int(number)


def _image_type(volume, header):
    """ImageType as dcm2niix writes it: the file's ImageType split into its
    parts (dcm2niix also splits at '_'), plus what the volume holds when the
    values do not say it (MAGNITUDE, PHASE, REAL, IMAGINARY, FIELDMAPHZ)."""
    raw = _get(header.ds, "ImageType")
    if not raw:
        return None
    values = [str(v).strip().upper() for v in (raw if not isinstance(raw, str) else [raw])]
    parts = [p for v in values for p in v.split("_") if p]
    frame_type = set(volume.first.image_type)  # FrameType for enhanced files
    component = str(_in_groups(header.groups, "ComplexImageComponent") or "").upper() \
        if header.groups else ""
    top_component = str(_get(header.ds, "ComplexImageComponent") or "").upper()
    ge_kind = _ge_image_kind(header) if header.manufacturer == "GE" else None
    fieldmap = "FIELD_MAP" in frame_type and bool(header.groups)
    phase = ("P" in frame_type or "PHASE" in frame_type or component == "PHASE"
             or ge_kind == 1)
    real = not fieldmap and ("R" in frame_type or "REAL" in frame_type
                             or component == "REAL" or ge_kind == 2)
    imaginary = ("I" in frame_type or "IMAGINARY" in frame_type
                 or component == "IMAGINARY" or ge_kind == 3)
    magnitude = not (phase or real or imaginary or fieldmap) and (
        "M" in values or "MAGNITUDE" in values or top_component == "MAGNITUDE"
        or ge_kind == 0)
    for flag, name in ((phase, "PHASE"), (real, "REAL"), (imaginary, "IMAGINARY")):
        if flag and (name not in parts or header.manufacturer == "GE"):
            parts.append(name)
    if fieldmap:
        parts.append("FIELDMAPHZ")
    if magnitude and "MAGNITUDE" not in parts:
        parts.append("MAGNITUDE")
    return parts


# --------------------------------------------------------------------------
# Phase encoding
# --------------------------------------------------------------------------
def _ge_phase_positive(header):
    """GE phase-encoding polarity: 1 (unflipped), 0 (flipped) or None.

    From Rectilinear Phase Encode Reordering (0018,9034) where present
    (dcm2niix, issue 674: LINEAR is flipped, REVERSE_LINEAR unflipped),
    else from the EPI flags of the private user data (0043,102A), read at
    the offsets dcm2niix uses.  Reversed volumes of reverse-polarity EPI
    (their rows flipped back) have the other polarity.
    """
    positive = _ge_recorded_polarity(header)
    if positive is not None and header.slice.flip_rows:
        positive = 1 - positive
    return positive


def _ge_recorded_polarity(header):
    """The polarity the headers record (1 unflipped, 0 flipped, or None)."""
    reorder = (_text(header.get("RectilinearPhaseEncodeReordering")) or "").upper()
    if reorder[:1] in ("L", "R"):
        return 0 if reorder[0] == "L" else 1
    data = header.private(0x0043, "GEMS_PARM_01", 0x2A, vr="OB")
    if not isinstance(data, (bytes, bytearray)) or len(data) < 916:
        return None
    data = bytes(data)
    offset = struct.unpack_from("<H", data, 24)[0]
    if len(data) < offset + 916:
        return None
    version = struct.unpack_from("<f", data, offset)[0]
    if not 5.0 <= version <= 40.0:
        return None
    base, kydir = offset, 0x0394
    if version >= 25.002:
        base += 0x004C
        kydir -= 0x008C
    if base + kydir + 2 > len(data):
        return None
    if not struct.unpack_from("<h", data, base + 0x3A)[0] & 0x800:
        return None  # not EPI
    flipped = bool(struct.unpack_from("<h", data, base + 0x30)[0] & 0x0004)
    if struct.unpack_from("<h", data, base + kydir)[0] == 2:  # bottom-up ky order
        flipped = not flipped
    return 0 if flipped else 1


def _phase_encoding(header, out):
    """InPlanePhaseEncodingDirectionDICOM and PhaseEncodingDirection (or
    PhaseEncodingAxis when the polarity is unknown) in medfast's axes."""
    direction = _text(header.get("InPlanePhaseEncodingDirection"))
    if header.manufacturer == "GE" and not direction:
        direction = _text(header.private(0x0043, "GEMS_PARM_01", 0x8A, vr="CS"))
    direction = {"ROW": "ROW", "COL": "COL", "COLUMN": "COL"}.get((direction or "").upper())
    if direction is None:
        return None
    axis = "i" if direction == "ROW" else "j"
    positive = None
    if header.manufacturer == "Siemens":
        value = header.csa.get("PhaseEncodingDirectionPositive")
        positive = _number(value[0]) if value else None
        if positive is None and header.groups:
            positive = _number(_siemens_xa_private(header, 0x1C))
    elif header.manufacturer == "GE":
        positive = _ge_phase_positive(header)
    acquisition_3d = _text(header.get("MRAcquisitionType")) == "3D"
    train = _number(header.get("EchoTrainLength")) or 0
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
        value = _number(header.private(0x0019, "SIEMENS MR HEADER", 0x28))
        if value is None and header.csa.get("BandwidthPerPixelPhaseEncode"):
            value = _number(header.csa["BandwidthPerPixelPhaseEncode"][0])
        if value is None and header.groups:
            value = _number(_siemens_xa_private(header, 0x53))
    return value if value and value > 0 else None


# --------------------------------------------------------------------------
# Slice timing
# --------------------------------------------------------------------------
def _ge_protocol(header):
    """GE's gzipped protocol data block (0025,101B) as {KEY: value}."""
    raw = header.private(0x0025, "GEMS_SERS_01", 0x1B, vr="OB")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < 24:
        return {}
    raw = bytes(raw)
    start = raw.find(b"\x1f\x8b")
    if start < 0:
        return {}
    try:
        text = gzip.decompress(raw[start:]).decode("latin-1")
    except (OSError, EOFError, ValueError):
        return {}
    return dict(re.findall(r'^\s*(\w+)\s+"([^"]*)"', text, flags=re.MULTILINE))


def _ge_software_27r3(header):
    """True for GE software release 27.0 R03 or later."""
    text = _text(header.get("SoftwareVersions")) or ""
    match = re.search(r"(\d+)\.\d+_R(\d+)", text)
    if match:
        major, release = int(match.group(1)), int(match.group(2))
        return major > 27 or (major == 27 and release >= 3)
    match = re.search(r"[A-Z]{2}(\d+)\.\d+", text)
    return bool(match) and int(match.group(1)) > 27


def _ge_slice_times(volume, header, tr):
    """GE EPI slice times (seconds) from the protocol block, as dcm2niix
    computes them (its ``sliceTimeGE``): the excitation order is sequential
    or interleaved from the first prescribed slice (InstanceNumber order),
    multiband excitations share a time."""
    protocol = _ge_protocol(header)
    order = protocol.get("SLICEORDER")
    if order not in ("0", "1") or not tr:
        return None
    if "MPh" in protocol.get("IOPT", ""):
        return None  # multiphase: delays vary
    delay = _number(protocol.get("DELACQNOAV")) or 0.0
    if delay:
        return None  # group delay: its units are not documented
    slices = volume.grid[0]
    instances = [s.instance for s in slices]
    if any(i is None for i in instances) or len(set(instances)) != len(instances):
        return None
    mb = 1
    values = header.private(0x0043, "GEMS_PARM_01", 0xB6, vr="LO")
    if values:
        first = str(values[0] if not isinstance(values, str) else values.split("\\")[0])
        mb = max(1, int(_number(first) or 1))
    n = len(slices)
    excitations = math.ceil(n / mb)
    per_slice = tr / excitations
    if order == "0":
        times = [i * per_slice for i in range(excitations)]
    else:
        n_odd = (excitations - 1) // 2
        times = [(i // 2) * per_slice if i % 2 == 0 else (n_odd + (i + 1) // 2) * per_slice
                 for i in range(excitations)]
        if mb > 1 and _ge_software_27r3(header) and excitations > 2 and excitations % 2 == 0:
            times[-1], times[-3] = times[-3], times[-1]
    times = [times[i % excitations] for i in range(n)]
    rank = {instance: r for r, instance in enumerate(sorted(instances))}
    return [times[rank[s.instance]] for s in slices]


def _frame_times(volume):
    """Multi-frame files: FrameAcquisitionDateTime of each slice (seconds),
    None when they do not vary (e.g. frames without functional groups)."""
    times = [s.time for s in volume.grid[0]]
    return None if any(t is None for t in times) or len(set(times)) < 2 else times


def _classic_times(volume):
    """Classic files: TriggerTime (ms) where it varies between slices, else
    AcquisitionTime, of each slice (seconds)."""
    slices = volume.grid[0]
    triggers = [s.trigger for s in slices]
    if all(t is not None for t in triggers) and len(set(triggers)) > 1:
        return [t / 1000.0 for t in triggers]
    times = [s.time for s in slices]
    if all(t is not None for t in times) and len(set(times)) > 1:
        return times
    return None


def _siemens_protocol(ds):
    """The ASCCONV part of the Siemens CSA series header (0029,xx20) as
    {key: value text}."""
    try:
        raw = ds.private(0x0029, "SIEMENS CSA HEADER", 0x20, vr="OB")
    except Exception:  # corrupt
        return {}
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    text = bytes(raw).decode("latin-1")
    begin = text.find("### ASCCONV BEGIN")
    end = text.find("### ASCCONV END", begin)
    if begin < 0 or end < 0:
        return {}
    return dict(re.findall(r"^([\w.\[\]]+)\s*=\s*(\S+)", text[begin:end], flags=re.MULTILINE))


def _siemens_protocol_times(header, tiles):
    """Mosaic slice times from the protocol when the CSA image header has no
    MosaicRefAcqTimes: ascending, descending or interleaved excitation over
    TR minus the delay in TR, as dcm2niix computes them."""
    protocol = _siemens_protocol(header.ds)
    try:
        mode = int(protocol.get("sSliceArray.ucMode", ""), 0)
        tr = float(protocol.get("alTR[0]", "")) / 1e6
        delay = float(protocol.get("lDelayTimeInTR", "0")) / 1e6
        n = int(protocol.get("sSliceArray.lSize", ""))
    except ValueError:
        return None
    if int(protocol.get("sSliceAcceleration.lMultiBandFactor", "1") or 1) > 1:
        return None
    if n != max(tiles) + 1 or tr <= delay:
        return None
    if mode == 1:
        order = list(range(n))
    elif mode == 2:
        order = list(range(n - 1, -1, -1))
    elif mode == 4:  # interleaved: odd counts start with the first slice
        first = 0 if n % 2 else 1
        order = list(range(first, n, 2)) + list(range(1 - first, n, 2))
    else:
        return None
    step = (tr - delay) / n
    when = {tile: index * step for index, tile in enumerate(order)}
    return [when[t] for t in tiles]


def _mosaic_times(volume, header, tr):
    """Mosaic slice times from the CSA MosaicRefAcqTimes.  The second
    volume's are used when there is one (as dcm2niix does: the first volume
    of a multiband series may carry bogus times), else the first plausible
    volume's."""
    tiles = [s.tile for s in volume.grid[0]]
    candidates = list(range(len(volume.grid)))
    if len(candidates) > 1:
        candidates.insert(0, candidates.pop(1))
    for t in candidates:
        times = volume.grid[t][0].mosaic_times
        if not times or len(times) < max(tiles) + 1:
            continue
        try:
            values = [float(times[k]) / 1000.0 for k in tiles]
        except (TypeError, ValueError):
            continue
        low = min(values)
        values = [v - low for v in values] if low < 0 else values
        if tr and max(values) >= tr:
            continue  # bogus (e.g. the first volume of a multiband series)
        return values
    return _siemens_protocol_times(header, tiles) if header.manufacturer == "Siemens" else None


def _siemens_xa_times(volume, tr):
    """Siemens XA slice times from each image's TimeAfterStart (0021,xx04),
    as dcm2niix computes them (its sliceTimingXA and checkSliceTiming):

    * a 4-D series of several files (classic, or one enhanced file per
      volume): the second volume's times (the first may be bogus, issue
      875), from the earliest; none for derived images whose times span
      more than one TR;
    * one enhanced file holding a 3-D volume: the frames' times as stored
      while they end within one TR, else from the earliest when they span
      less than one TR, else none (one enhanced file holding a 4-D series:
      its first volume's, from the earliest);
    * a 3-D series of classic files: none (one time per file, dcm2niix
      writes no SliceTiming);
    * none when the times do not vary.
    """
    grid = volume.grid
    four_d = len(grid) > 1 and len(volume.files) > 1
    if not four_d and volume.first.file.frames == 1:
        return None
    times = [s.time_after_start / 1000.0 for s in grid[1 if four_d else 0]]
    low, high = min(times), max(times)
    if low == high:
        return None
    if four_d:
        if volume.first.derived and not high - low <= (tr or 0):
            return None
        return [t - low for t in times]
    if len(grid) > 1 or (tr is not None and high > tr and high - low <= tr):
        return [t - low for t in times]
    return times if tr is None or high <= tr else None


def _slice_timing(volume, header, tr):
    """One time per slice (seconds, medfast's slice order), or None."""
    if _text(header.get("Modality")) in ("CT", "PT"):
        return None
    if _text(header.get("MRAcquisitionType")) == "3D":
        return None
    first = volume.first
    if first.tile is not None:
        return _mosaic_times(volume, header, tr)
    if len(volume.grid[0]) < 2:
        return None
    if header.manufacturer == "GE":
        times = _ge_slice_times(volume, header, tr)
        if times is not None:
            return times
    if all(s.time_after_start is not None for row in volume.grid for s in row):
        return _siemens_xa_times(volume, tr)
    times = _frame_times(volume) if first.file.frames > 1 else _classic_times(volume)
    if times is None:
        return None
    low = min(times)
    times = [t - low for t in times]
    if tr and max(times) >= tr:
        return None  # not the slices of one TR: not slice timing
    return times


# --------------------------------------------------------------------------
# Echo
# --------------------------------------------------------------------------
def _echo_number(header):
    return header.slice.echo


def _multi_echo(volume, header):
    return bool(re.search(r"_e\d", volume.suffix or ""))


# --------------------------------------------------------------------------
# The sidecar
# --------------------------------------------------------------------------
def _put(out, key, value):
    if value is not None and value != "" and value != []:
        out[key] = value


def _positive(value):
    """A number > 0 (dcm2niix omits zero and negative values), or None."""
    number = _number(value)
    return _json_number(number) if number is not None and number > 0 else None


def _acquisition_time(volume, header):
    """(date YYYYMMDD or None, seconds after midnight or None) at which the
    volume's acquisition started."""
    date, seconds = _split_datetime(_get(header.ds, "AcquisitionDateTime"))
    if seconds is not None:
        return date, seconds
    times = [s.time for s in volume.grid[0] if s.time is not None]
    if not times:
        return None, None
    start = min(times)
    return date_of(start) or _text(_get(header.ds, "AcquisitionDate")), start % 86400


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
    header = _Header(volume.first)
    get = header.get
    out = {}
    _put(out, "Modality", _text(get("Modality")))
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
        _put(out, key, _text(get(keyword)))
    birth = _text(get("PatientBirthDate"))
    if birth and re.fullmatch(r"\d{8}", birth):
        out["PatientBirthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    sex = _text(get("PatientSex"))
    _put(out, "PatientSex", sex if sex in ("M", "F", "O") else None)
    _put(out, "PatientWeight", _positive(get("PatientWeight")))
    _put(out, "BodyPart", _text(get("BodyPartExamined")))
    _put(out, "PatientPosition", _text(get("PatientPosition")))
    _put(out, "ProcedureStepDescription", _text(get("PerformedProcedureStepDescription")))
    _put(out, "SoftwareVersions", _text(get("SoftwareVersions")))
    acquisition_type = _text(get("MRAcquisitionType"))
    _put(out, "MRAcquisitionType", acquisition_type if acquisition_type in ("2D", "3D") else None)
    _put(out, "StudyDescription", _text(get("StudyDescription")))
    _put(out, "SeriesDescription", _text(get("SeriesDescription")))
    _put(out, "ProtocolName", _text(get("ProtocolName")))
    xa = header.manufacturer == "Siemens" and header.groups
    for key, element in (("ScanningSequence", 0x5A), ("SequenceVariant", 0x5B),
                         ("ScanOptions", 0x5C)):
        value = get(key)
        if value is None and xa:
            value = _siemens_xa_private(header, element, "SIEMENS MR SDS 01", shared=True)
        _put(out, key, _text(value))
    sequence = get("SequenceName") or get("PulseSequenceName")
    if sequence is None and header.manufacturer == "GE":
        sequence = header.private(0x0019, "GEMS_ACQU_01", 0x9C, vr="LO")
    _put(out, "SequenceName", _text(sequence))
    _put(out, "ImageType", _image_type(volume, header))
    # The slice's number: GE reversed-polarity volumes are series + 1000.
    number = volume.first.series_number
    if number is None:
        number = _number(get("SeriesNumber"))
    _put(out, "SeriesNumber", int(number) if number is not None else None)
    date, seconds = _acquisition_time(volume, header)
    if seconds is not None:
        out["AcquisitionTime"] = _clock(seconds)
        if date and re.fullmatch(r"\d{8}", date):
            out["AcquisitionDateTime"] = f"{date[:4]}-{date[4:6]}-{date[6:]}T{_clock(seconds)}"
    acquisition = _number(get("AcquisitionNumber"))
    _put(out, "AcquisitionNumber", int(acquisition) if acquisition and acquisition > 0 else None)
    _put(out, "ImageComments", _text(get("ImageComments")))
    _put(out, "SliceThickness", _positive(get("SliceThickness")))
    _put(out, "SpacingBetweenSlices", _positive(get("SpacingBetweenSlices")))
    echo = _echo_number(header)
    if echo is not None and (echo > 1 or _multi_echo(volume, header)):
        out["EchoNumber"] = echo
    echo_time = _number(get("EchoTime"))
    if echo_time is None:
        echo_time = _number(get("EffectiveEchoTime"))
    _put(out, "EchoTime", echo_time / 1000.0 if echo_time and echo_time > 0 else None)
    tr = _number(get("RepetitionTime"))
    tr = tr / 1000.0 if tr and tr > 0 else None
    _put(out, "RepetitionTime", tr)
    inversion = _number(get("InversionTime"))
    if inversion is None:  # enhanced files: MRModifierSequence (dcm2niix, issue 380)
        inversion = _number(get("InversionTimes"))
    _put(out, "InversionTime", inversion / 1000.0 if inversion and inversion > 0 else None)
    _put(out, "FlipAngle", _positive(get("FlipAngle")))
    if header.manufacturer == "GE":
        polarity = _ge_phase_positive(header)
        _put(out, "PhaseEncodingPolarityGE", {1: "Unflipped", 0: "Flipped"}.get(polarity))
    _put(out, "PercentPhaseFOV", _positive(get("PercentPhaseFieldOfView")))
    _put(out, "PercentSampling", _positive(get("PercentSampling")))
    train = _number(get("EchoTrainLength"))
    _put(out, "EchoTrainLength", int(train) if train and train > 1 else None)
    _put(out, "BandwidthPerPixelPhaseEncode", _bandwidth_per_pixel_phase_encode(header))
    _put(out, "PixelBandwidth", _positive(get("PixelBandwidth")))
    direction = None
    if _text(get("Modality")) == "MR":
        direction = _phase_encoding(header, out)
    times = _slice_timing(volume, header, tr)
    if times is not None:
        out["SliceTiming"] = [round(t, 6) for t in times]
    out["ImageOrientationPatientDICOM"] = [
        _json_number(round(float(v), 8)) for v in volume.first.orientation]
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


# --------------------------------------------------------------------------
# Diffusion
# --------------------------------------------------------------------------
def _diffusion_of_slice(s):
    """(b-value, gradient direction or None) of one slice, or None: in
    the patient's axes (LPS), or GE's logical axes (see
    :func:`_ge_diffusion`)."""
    if s.bvalue is None:
        return None
    return s.bvalue, None if s.isotropic else s.gradient


def _ge_diffusion(volume, table):
    """GE logical directions to the patient's, as dcm2niix does (see
    :func:`.vendors.ge.patient_directions`); the phase-encoding axis from
    (0018,1312), else GE's private copy (0043,108A)."""
    header = _Header(volume.first)
    phase = _text(header.get("InPlanePhaseEncodingDirection")) or _text(
        header.private(0x0043, "GEMS_PARM_01", 0x8A, vr="CS"))
    phase = {"R": "ROW", "C": "COL"}.get((phase or "").upper()[:1])
    return ge.patient_directions(table, volume.first, phase, len(volume.grid[0]))


def _direction(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 24:
            return None
        value = struct.unpack("<3d", bytes(value))
    try:
        vector = np.array([float(v) for v in value][:3], dtype=float)
    except (TypeError, ValueError):
        return None
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        return None
    length = np.linalg.norm(vector)
    return vector / length if length > 1e-6 else None


def fsl_bvecs(directions_lps, affine):
    """Gradient directions (patient LPS) -> FSL bvecs for an image.

    Parameters
    ----------
    directions_lps : (n, 3) array_like
        Unit vectors in DICOM patient coordinates (LPS); zero rows stay zero.
    affine : (4, 4) array_like
        The image's voxel -> RAS+ affine.

    Returns
    -------
    (n, 3) ndarray
        Each direction in the image's voxel axes (the affine's normalised
        columns), with the first component negated when the affine's
        determinant is positive: FSL's convention, which dcm2niix follows.
    """
    g = np.asarray(directions_lps, dtype=float).reshape(-1, 3)
    ras = g * np.array([-1.0, -1.0, 1.0])
    m = np.asarray(affine, dtype=float)[:3, :3]
    axes = m / np.linalg.norm(m, axis=0)
    voxel = np.linalg.solve(axes, ras.T).T  # = axes.T @ ras for orthonormal axes
    norms = np.linalg.norm(voxel, axis=1, keepdims=True)
    voxel = np.where(norms > 0, voxel / np.where(norms > 0, norms, 1), 0.0)
    if np.linalg.det(m) > 0:
        voxel[:, 0] = -voxel[:, 0]
    return voxel


# dcm2niix (nii_saveDTI) writes no table for a single volume from a single
# file, nor for a single volume without a direction whose b-value is at
# most this (issue 352).
_SINGLE_VOLUME_MIN_B = {"Siemens": 50.0}


def diffusion_table(volume):
    """b-values and FSL bvecs of a diffusion volume, in volume order.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    (bvals, bvecs) or None
        ``bvals``: list of numbers (s/mm^2), one per volume (time point);
        ``bvecs``: list of ``[x, y, z]``, one per volume, in the voxel axes
        of ``volume.affine`` (FSL convention, see :func:`fsl_bvecs`;
        ``[0, 0, 0]`` for b = 0 and for volumes without a direction, such as
        isotropic trace images).  None when the series is not diffusion
        weighted: a volume without a b-value, or no b-value above 0; and,
        as dcm2niix, for a single volume held by one file, or without a
        direction and with a b-value of at most 50 (Siemens; 6 for others).

    Notes
    -----
    Sources: DiffusionBValue (0018,9087) and DiffusionGradientOrientation
    (0018,9089) of classic files, the MRDiffusionSequence of each frame of
    enhanced files, and for Siemens the CSA header's ``B_value`` and
    ``DiffusionGradientDirection`` (or the private (0019,100C)/(0019,100E)),
    for GE its private b-value and logical direction, converted as dcm2niix
    does (:func:`.vendors.ge.patient_directions`: b-values scaled by a short
    direction are rescaled, a b > 0 without a direction is b = 0 in a
    tensor series).
    """
    table = []
    for row in volume.grid:
        entry = _diffusion_of_slice(row[0])
        if entry is None or entry[0] is None:
            return None
        table.append(entry)
    if volume.first.gradient_axes == "logical":
        bvals, directions = _ge_diffusion(volume, table)
        bvals = [max(0.0, float(b)) for b in bvals]
    else:
        bvals = [max(0.0, float(b)) for b, _ in table]
        directions = np.zeros((len(table), 3))
        for t, (b, direction) in enumerate(table):
            vector = _direction(direction)
            if bvals[t] > 0 and vector is not None:
                directions[t] = vector
    if not any(b > 0 for b in bvals):
        return None
    if len(bvals) == 1 and (len(volume.files) == 1 or (
            bvals[0] <= _SINGLE_VOLUME_MIN_B.get(volume.first.manufacturer, 6.0)
            and not np.any(directions[0]))):
        return None
    bvecs = fsl_bvecs(directions, volume.affine)
    bvecs = np.round(bvecs, 6) + 0.0  # + 0.0 turns -0.0 into 0.0
    return ([_json_number(b) for b in bvals],
            [[float(v) for v in row] for row in bvecs])

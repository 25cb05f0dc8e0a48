"""GE: private image kinds, direct B0 field maps, reverse-polarity EPI and
diffusion fields.

Private elements are found through their private creator (GEMS_ACQU_01 in
group 0019, GEMS_RELA_01 in 0021, GEMS_PARM_01 in 0043), in whatever block
it was reserved; dcm2niix reads them at fixed element numbers, which gives
the same values for files as GE writes them.

* Complex images: (0043,xx2F) says 0 magnitude, 1 phase, 2 real,
  3 imaginary.
* Direct B0 field maps (pulse sequence (0019,xx9C) containing 'b0map', or
  internal name (0019,xx9E) 'B0map': 3db0map, B0map, B0rf) hold two images
  per slice position: the field map in Hz and the magnitude.  As dcm2niix
  does, the images numbered up to the number of slices ((0021,xx4F), times
  the slice interpolation factor) are the field map, when the images in
  acquisition (0020,1002) disagree with that count; otherwise (0043,xx30)
  tells them apart (0 field map, 2 magnitude).  The field map is written
  with the suffix '_fieldmaphz'.
* Reverse-polarity EPI ('epi_pepolar' in (0019,xx9C), unless the epiRT
  group delay (0043,xx7C) makes it epiRT, as in dcm2niix): the mode
  (0019,xxB3) says which volumes were acquired with reversed phase encoding
  (0 none, 1 all, 2 odd, 3 even temporal positions (0020,0100)).  GE
  stores them with their rows reversed; they are flipped back, and for
  modes 2 and 3 they become their own series, numbered + 1000, as dcm2niix
  does.
* Diffusion: the b-value is the first value of (0043,xx39) modulo 10^9
  (dcm2niix reads it whatever the sequence: its "epi2 only" rule decides
  the BIDS guess, not the .bval); the direction (0019,xxBB/BC/BD) is in
  GE's logical axes (frequency, phase, slice), converted to the patient's
  by :func:`patient_directions` as dcm2niix's ``geCorrectBvecs`` does.  A
  b > 0 without a direction is an isotropic (trace) image when the series
  is not a tensor acquisition (dcm2niix's ``isGEADC``), else a b = 0 image.
"""
import gzip
import math
import re
import struct

import numpy as np

from ..values import number, text_of

ACQU = "GEMS_ACQU_01"
PARM = "GEMS_PARM_01"
RELA = "GEMS_RELA_01"
_COMPLEX = {1: "phase", 2: "real", 3: "imaginary"}


def _text(value):
    return " ".join(str(v) for v in value) if isinstance(value, list) else str(value or "")


def _is_pepolar(header):
    """dcm2niix's ``epiVersionGE`` is pepolar: the pulse sequence name holds
    'epi_pepolar', and no epiRT group delay (0043,xx7C) is present (dcm2niix
    reads it last, and its presence makes any sequence epiRT)."""
    sequence = _text(header.private(0x0019, ACQU, 0x9C, vr="LO"))
    return "epi_pepolar" in sequence and header.private(0x0043, PARM, 0x7C, vr="FL") is None


def _is_field_map(header):
    sequence = _text(header.private(0x0019, ACQU, 0x9C, vr="LO"))
    internal = _text(header.private(0x0019, ACQU, 0x9E, vr="LO"))
    return "b0map" in sequence or internal.strip() == "B0map"


def _field_map_half(header, s):
    """Which half of a direct B0 map series this image is: True for the
    field map (Hz), False for the magnitude, None when nothing says; and
    whether dcm2niix's own rule decided (it then also clears 'real')."""
    images = number(header.get("ImagesInAcquisition"), int) or 0
    locations = number(header.private(0x0021, RELA, 0x4F, vr="SS"), int) or 0
    if images > 0 and locations > 0 and images != locations and s.instance is not None:
        thickness = number(header.get("SliceThickness")) or 0
        spacing = number(header.get("SpacingBetweenSlices")) or 0
        interpolation = round(thickness / spacing) if thickness and spacing else 1
        if interpolation > 1:
            locations *= interpolation
        return s.instance <= locations, True
    flag = number(header.private(0x0043, PARM, 0x30, vr="SS"), int)
    return {0: True, 2: False}.get(flag), False


def _pepolar(header, s):
    """Reverse-polarity EPI: flag the reversed volumes (rows flipped back,
    modes 2 and 3 split off as series + 1000)."""
    mode = number(header.private(0x0019, ACQU, 0xB3, vr="DS"))
    mode = round(mode) if mode is not None else 0
    volume = s.temporal or 0
    reversed_ = mode == 1 or (volume > 0 and ((mode == 2 and volume % 2 == 1)
                                               or (mode == 3 and volume % 2 == 0)))
    if reversed_:
        s.flip_rows = True
        s.split = s.split + (("reversed polarity", True),)
        if mode in (2, 3) and s.series_number is not None:
            s.series_number += 1000


def _not_tensor(header):
    """dcm2niix's ``numberOfDiffusionDirectionGE == 0``: the number of
    directions (0019,xxE0) is 0, or the image type (0043,xx30) or the
    series' diffusion direction (0021,xx5A) names a non-tensor image (not
    T2 14 or DTI 16)."""
    directions = number(header.private(0x0019, ACQU, 0xE0, vr="DS"))
    image = number(header.private(0x0043, PARM, 0x30, vr="SS"), int) or 0
    series = number(header.private(0x0021, RELA, 0x5A, vr="SL"), int) or 0
    return ((directions is not None and round(directions) == 0)
            or (image > 0 and image not in (14, 16)) or (series > 0 and series != 16))


def _diffusion(header, s):
    values = header.private(0x0043, PARM, 0x39, vr="IS")
    bvalue = number(values, int)
    if bvalue is None:
        return
    s.bvalue = float(bvalue % 1000000000)
    vector = [number(header.private(0x0019, ACQU, e, vr="DS")) for e in (0xBB, 0xBC, 0xBD)]
    # dcm2niix keeps no direction with a component above 1.5 (issue 769).
    if None in vector or max(vector) > 1.5:
        vector = (0.0, 0.0, 0.0)
    s.gradient = tuple(vector)
    s.gradient_axes = "logical"
    s.isotropic = s.bvalue > 0 and not any(vector) and _not_tensor(header)


def classic_fields(header, s):
    """Fill a GE slice's private fields (complex kind, field map half,
    reverse polarity, diffusion)."""
    kind = number(header.private(0x0043, PARM, 0x2F, vr="SS"), int)
    if kind in _COMPLEX:
        s.complex_kind = _COMPLEX[kind]
    if _is_field_map(header):
        hz, by_count = _field_map_half(header, s)
        if hz:
            s.complex_kind = "fieldmaphz"
        elif by_count and s.complex_kind == "real":
            s.complex_kind = ""  # dcm2niix: the magnitude half is not real
    if _is_pepolar(header):
        _pepolar(header, s)
    _diffusion(header, s)


def _slice_plane(normal, slices):
    """dcm2niix's ``sliceDir``: 0 sagittal, 1 coronal, 2 axial by the
    largest component of the slice normal (the later axis on ties), axial
    for a single slice."""
    if slices < 2:
        return 2
    a = np.abs(np.asarray(normal, dtype=float))
    if a[2] >= a[0] and a[2] >= a[1]:
        return 2
    if a[1] >= a[0] and a[1] >= a[2]:
        return 1
    return 0


def patient_directions(table, first, phase, slices):
    """GE b-values and logical gradient directions -> b-values and patient
    (LPS) directions, as dcm2niix's ``geCorrectBvecs`` computes them.

    Parameters
    ----------
    table : list of (b-value, (3,) logical direction or None)
        One entry per volume: (0043,xx39) and (0019,xxBB/BC/BD); None for
        an isotropic (trace) volume.
    first : medfast.dicom.slices.Slice
        The volume's first slice (its row, column and normal directions).
    phase : str or None
        In-plane phase encoding (0018,1312): 'ROW' or 'COL'.
    slices : int
        Slices per volume.

    Returns
    -------
    bvalues : list of float
    directions : (n, 3) ndarray
        Unit LPS directions, zero for b = 0 and isotropic volumes.

    Notes
    -----
    dcm2niix negates and swaps the logical components by slice plane and
    phase-encoding axis into the voxel axes of the image it writes (rows
    reversed: the row direction, the reversed column direction, the slice
    normal); here those axes take them back to the patient.  A b-value
    GE scaled by a direction shorter than 1 (0.03 to 0.97) is b * |g|^2,
    rounded to a multiple of 5, with the direction made unit (issues
    163/245).  Without a known phase-encoding axis dcm2niix leaves the
    components as they are, and so does this.
    """
    flips = {0: (1, 1, 0), 1: (0, 1, 1), 2: (0, 0, 1)}[_slice_plane(first.normal, slices)]
    row, col, normal = first.orientation[:3], first.orientation[3:], first.normal
    bvalues, directions = [], np.zeros((len(table), 3))
    for t, (bvalue, vector) in enumerate(table):
        if vector is None:
            bvalues.append(bvalue)
            continue
        v = np.asarray(vector, dtype=float)
        length = float(np.linalg.norm(v))
        if bvalue <= 0 or length <= 1e-7:
            # dcm2niix: b > 0 without a direction in a tensor series is b = 0
            bvalues.append(0.0)
            continue
        if phase in ("ROW", "COL"):
            if 0.03 < length < 0.97:
                scaled = bvalue * length * length
                bvalue = 5.0 if 0 < scaled < 5 else float(math.floor((scaled + 2.5) / 5) * 5)
            v = np.where(flips, -v, v)
            v[1] = -v[1]
            if phase == "ROW":
                v = np.array([-v[1], v[0], v[2]])
            v = -v
        bvalues.append(bvalue)
        if bvalue > 0:
            direction = v[0] * row - v[1] * col + v[2] * normal
            directions[t] = direction / np.linalg.norm(direction)
    return bvalues, directions


def image_kind(header):
    """GE private image type (0043,102F): 0 magnitude, 1 phase, 2 real,
    3 imaginary; None when absent."""
    value = header.private(0x0043, "GEMS_PARM_01", 0x2F, vr="SS")
    if isinstance(value, (bytes, bytearray)) and len(value) >= 2:
        value = struct.unpack("<h", bytes(value[:2]))[0]
    kind = number(value)
    return None if kind is None else int(kind)


def recorded_polarity(header):
    """The polarity the headers record (1 unflipped, 0 flipped, or None)."""
    reorder = (text_of(header.get("RectilinearPhaseEncodeReordering")) or "").upper()
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


def phase_positive(header):
    """GE phase-encoding polarity: 1 (unflipped), 0 (flipped) or None.

    From Rectilinear Phase Encode Reordering (0018,9034) where present
    (dcm2niix, issue 674: LINEAR is flipped, REVERSE_LINEAR unflipped),
    else from the EPI flags of the private user data (0043,102A), read at
    the offsets dcm2niix uses.  Reversed volumes of reverse-polarity EPI
    (their rows flipped back) have the other polarity.
    """
    positive = recorded_polarity(header)
    if positive is not None and header.slice.flip_rows:
        positive = 1 - positive
    return positive


def protocol_block(header):
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


def software_27r3(header):
    """True for GE software release 27.0 R03 or later."""
    text = text_of(header.get("SoftwareVersions")) or ""
    match = re.search(r"(\d+)\.\d+_R(\d+)", text)
    if match:
        major, release = int(match.group(1)), int(match.group(2))
        return major > 27 or (major == 27 and release >= 3)
    match = re.search(r"[A-Z]{2}(\d+)\.\d+", text)
    return bool(match) and int(match.group(1)) > 27


def slice_times(volume, header, tr):
    """GE EPI slice times (seconds) from the protocol block, as dcm2niix
    computes them (its ``sliceTimeGE``): the excitation order is sequential
    or interleaved from the first prescribed slice (InstanceNumber order),
    multiband excitations share a time."""
    protocol = protocol_block(header)
    order = protocol.get("SLICEORDER")
    if order not in ("0", "1") or not tr:
        return None
    if "MPh" in protocol.get("IOPT", ""):
        return None  # multiphase: delays vary
    delay = number(protocol.get("DELACQNOAV")) or 0.0
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
        mb = max(1, int(number(first) or 1))
    n = len(slices)
    excitations = math.ceil(n / mb)
    per_slice = tr / excitations
    if order == "0":
        times = [i * per_slice for i in range(excitations)]
    else:
        n_odd = (excitations - 1) // 2
        times = [(i // 2) * per_slice if i % 2 == 0 else (n_odd + (i + 1) // 2) * per_slice
                 for i in range(excitations)]
        if mb > 1 and software_27r3(header) and excitations > 2 and excitations % 2 == 0:
            times[-1], times[-3] = times[-3], times[-1]
    times = [times[i % excitations] for i in range(n)]
    rank = {instance: r for r, instance in enumerate(sorted(instances))}
    return [times[rank[s.instance]] for s in slices]

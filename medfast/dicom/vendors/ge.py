"""GE: private image kinds, direct B0 field maps, reverse-polarity EPI and
diffusion fields.

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
* Reverse-polarity EPI ('epi_pepolar' in (0019,xx9C)): the mode
  (0019,xxB3) says which volumes were acquired with reversed phase
  encoding (0 none, 1 all, 2 odd, 3 even temporal positions).  GE stores
  them with their rows reversed; they are flipped back, and for modes 2 and
  3 they become their own series, numbered + 1000, as dcm2niix does.
* Diffusion (epi2 sequences only): the b-value is the first value of
  (0043,xx39) modulo 10^9; the direction (0019,xxBB/BC/BD) is in GE's
  logical axes (frequency, phase, slice), not patient axes.
"""
from ..values import number

ACQU = "GEMS_ACQU_01"
PARM = "GEMS_PARM_01"
RELA = "GEMS_RELA_01"
_COMPLEX = {1: "phase", 2: "real", 3: "imaginary"}


def _text(value):
    return " ".join(str(v) for v in value) if isinstance(value, list) else str(value or "")


def _is_field_map(sequence, internal):
    return "b0map" in sequence or internal.strip() == "B0map"


def _is_field_map_hz(header, s):
    """Which half of a direct B0 map series this image is: True for the
    field map (Hz), False for the magnitude, None when nothing says."""
    images = number(header.get("ImagesInAcquisition"), int) or 0
    locations = number(header.private(0x0021, RELA, 0x4F, vr="SS"), int) or 0
    if images > 0 and locations > 0 and images != locations and s.instance is not None:
        thickness = number(header.get("SliceThickness")) or 0
        spacing = number(header.get("SpacingBetweenSlices")) or 0
        interpolation = round(thickness / spacing) if thickness and spacing else 1
        if interpolation > 1:
            locations *= interpolation
        return s.instance <= locations
    flag = number(header.private(0x0043, PARM, 0x30, vr="SS"), int)
    return {0: True, 2: False}.get(flag)


def classic_fields(header, s):
    """Fill a GE slice's private fields (complex kind, field map half,
    reverse polarity, diffusion)."""
    kind = number(header.private(0x0043, PARM, 0x2F, vr="SS"), int)
    if kind in _COMPLEX:
        s.complex_kind = _COMPLEX[kind]
    sequence = _text(header.private(0x0019, ACQU, 0x9C, vr="LO"))
    internal = _text(header.private(0x0019, ACQU, 0x9E, vr="LO"))
    if _is_field_map(sequence, internal) and _is_field_map_hz(header, s):
        s.complex_kind = "fieldmaphz"
    if "epi_pepolar" in sequence:
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
    if "epi2" in sequence or internal.strip() == "EPI2":
        values = header.private(0x0043, PARM, 0x39, vr="IS")
        bvalue = number(values, int)
        if bvalue is not None:
            s.bvalue = float(bvalue % 1000000000)
            vector = [number(header.private(0x0019, ACQU, e, vr="DS")) for e in (0xBB, 0xBC, 0xBD)]
            s.gradient = tuple(vector) if None not in vector else None
            s.gradient_axes = "logical"

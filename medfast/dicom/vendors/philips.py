"""Philips: private scaling, diffusion and volume-order fields.

Private elements are found through their private creator, in whatever
block it was reserved (a PACS may move "Philips MR Imaging DD 001" from
(2005,0010) to another slot, and its elements with it):

* ``DD 001`` in group 2005: MRScaleSlope (2005,xx0E) and the diffusion
  direction (2005,xxB0-B2);
* ``DD 005`` in group 2005: b-value number (xx12), gradient orientation
  number (xx13), ASL label type (xx29) and, per frame of enhanced files, a
  private sequence (xx0F) that repeats classic attributes (EchoNumbers, the
  scale slope);
* ``Philips Imaging DD 001`` in group 2001: b-value (xx03), phase number
  (xx08).

The precise floating-point value of a voxel is (SV * RS + RI) / (RS * SS)
with RS/RI the RescaleSlope/Intercept and SS the MRScaleSlope; dcm2niix uses
it by default (its ``-p y``), and so does medfast (:mod:`..pixels`).
"""
from ..values import floats, number

MR_DD_001 = "Philips MR Imaging DD 001"
MR_DD_005 = "Philips MR Imaging DD 005"
IMAGING_DD_001 = "Philips Imaging DD 001"


def scale_slope(header):
    """The private MRScaleSlope of a header or item, or None (0 and NaN
    read as None)."""
    slope = number(header.private(0x2005, MR_DD_001, 0x0E, vr="FL"))
    return slope if slope else None


def _diffusion(header, s):
    """Classic files: the public attributes win (read by the caller); else
    the private b-value and direction.  A b-value with a zero direction is
    an isotropic (trace/ADC) image, as is a non-directional one."""
    directional = str(header.get("DiffusionDirectionality") or "").upper()
    if s.bvalue is None:
        s.bvalue = number(header.private(0x2001, IMAGING_DD_001, 0x03, vr="FL"))
        if s.bvalue is not None:
            vector = [header.private(0x2005, MR_DD_001, e, vr="FL") for e in (0xB0, 0xB1, 0xB2)]
            s.gradient = floats(vector, 3) if None not in vector else None
    if directional and directional not in ("DIRECTIONAL", "BMATRIX"):
        s.gradient = None
        s.isotropic = bool(s.bvalue)
    elif s.bvalue and (s.gradient is None or not any(s.gradient)):
        s.isotropic = True


def classic_fields(header, s):
    """Fill a classic Philips slice's private fields (scale slope,
    diffusion, volume-order numbers)."""
    s.scale_slope = scale_slope(header)
    _diffusion(header, s)
    s.order = (number(header.private(0x2005, MR_DD_005, 0x13, vr="IS"), int),
               number(header.private(0x2005, MR_DD_005, 0x12, vr="SL"), int),
               number(header.private(0x2001, IMAGING_DD_001, 0x08, vr="IS"), int),
               str(header.private(0x2005, MR_DD_005, 0x29, vr="CS") or "").upper())


def frame_fields(frames):
    """Per frame of an enhanced Philips file: the scale slope and echo
    number of its private per-frame sequence, as Slice fields, and
    ``field_map`` when a frame's private ImageType names a B0 map (the
    file's real frames are then a field map in Hz, as dcm2niix reads it)."""
    first = frames.top.item("PerFrameFunctionalGroupsSequence")
    out = [{} for _ in range(frames.count)]
    file_slope = scale_slope(frames.top)
    seq = first.private_tag(0x2005, MR_DD_005, 0x0F) if first is not None else None
    inner = first.item(seq) if seq is not None else None
    slopes = echoes = [None] * frames.count
    if inner is not None:
        slope_tag = inner.private_tag(0x2005, MR_DD_001, 0x0E)
        if slope_tag is not None:
            slopes = frames.get(seq, slope_tag, vr="FL")
        echoes = frames.get(seq, "EchoNumbers")
        types = frames.get(seq, "ImageType")
        if any("B0" in text and "MAP" in text
               for text in ("_".join(t) if isinstance(t, list) else str(t or "") for t in types)):
            for fields in out:
                fields["field_map"] = True
    for fields, slope, echo in zip(out, slopes, echoes):
        slope = number(slope) or file_slope
        if slope:
            fields["scale_slope"] = slope
        if number(echo, int) is not None:
            fields["echo"] = number(echo, int)
    return out

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
import math

import numpy as np

from ..values import number

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

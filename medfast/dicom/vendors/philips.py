"""Philips: private scaling, diffusion and volume-order fields, as dcm2niix
reads them.

Private elements are found through their private creator (``Header.private``,
``Header.private_tag``), in whatever block it was reserved (a
PACS may move "Philips MR Imaging DD 001" from (2005,0010) to another slot, and
its elements with it; dcm2niix remaps DD 001-005 the same way):

* ``Philips MR Imaging DD 001`` in group 2005: MRScaleSlope (xx0E), fMRI
  volume number (xx63), diffusion direction RL/AP/FH (xxB0-B2);
* ``Philips MR Imaging DD 005``: b-value number (xx12), gradient orientation
  number (xx13), ASL label type (xx29) and, per frame of enhanced files, a
  private sequence (xx0F) that repeats the classic attributes;
* ``Philips MR Imaging DD 006``: diffusion volume number (xx96);
* ``Philips Imaging DD 001`` in group 2001: b-value (xx03), phase number
  (xx08), slice number (xx0A).

Scaling convention (dcm2niix's default ``-p y``, see :mod:`..pixels`): voxel
values are Philips' precise floating-point values ``SV / SS + RI / (RS * SS)``
(SV stored value, RS/RI RescaleSlope/Intercept, SS MRScaleSlope, of the first
slice), not the display values ``SV * RS + RI``.  Where RS/RI vary between
classic slices, ``(SV * RS_i + RI_i) / SS_1 + RI_1 / (RS_1 * SS_1)``; where
RS, RI or SS vary between the frames of an enhanced file, display values.
The sidecar records the first slice's RS, RI and SS (PhilipsRescaleSlope,
PhilipsRescaleIntercept, PhilipsScaleSlope, UsePhilipsFloatNotDisplayScaling
1; :func:`sidecar_fields`), as dcm2niix does.
"""
from ..values import floats, number

MR_DD_001 = "Philips MR Imaging DD 001"
MR_DD_005 = "Philips MR Imaging DD 005"
MR_DD_006 = "Philips MR Imaging DD 006"
IMAGING_DD_001 = "Philips Imaging DD 001"
FLT_EPSILON = 1.1920929e-07
#: dcm2niix's volume key of a derived (trace/ADC) file: kMaxDTI4D + 1.
DERIVED_VOLUME = 65536


#: The first letters by which dcm2niix knows a Manufacturer (0008,0070).
DCM2NIIX_VENDOR_PREFIXES = ("SI", "GE", "HI", "ME", "PH", "TO", "CA", "CP", "UI", "BR", "MR",
                            "HY", "LE")


def assumed(top):
    """Whether dcm2niix takes a file for Philips although its Manufacturer
    does not say so: a diffusion b-value (0018,9087), at the top level or in
    the first frame's functional groups, in a file whose Manufacturer is
    absent or unknown to dcm2niix ("Found 0018,9087 but manufacturer
    (0008,0070) unknown: assuming Philips")."""
    text = top.get("Manufacturer")
    text = str(text[0] if isinstance(text, list) else text or "").strip().upper()
    if text.startswith(DCM2NIIX_VENDOR_PREFIXES) or text.startswith("UNITED"):
        return False
    if top.get("DiffusionBValue") is not None:
        return True
    for key in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        group = top.item(key)
        diffusion = group.item("MRDiffusionSequence") if group is not None else None
        if diffusion is not None and diffusion.get("DiffusionBValue") is not None:
            return True
    return False


def software_major(value):
    """The leading integer of SoftwareVersions, as C's ``atoi`` reads it
    ('5.7.1' -> 5, '11.1' -> 11, 'R5.6' -> 0); -1 when absent."""
    if value is None:
        return -1
    text = str(value[0] if isinstance(value, list) else value).lstrip()
    digits = ""
    for i, char in enumerate(text):
        if char.isdigit() or (i == 0 and char in "+-"):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def scale_slope(header):
    """The private MRScaleSlope of a header or item, or None (0 and NaN
    read as None)."""
    slope = number(_private(header, 0x2005, MR_DD_001, 0x0E, "FL"))
    return slope if slope else None


def real_world_values(header):
    """(slope, intercept) of the RealWorldValueMappingSequence (0040,9096)
    of a header or item, the last item's where several give them; None for
    an absent value (a slope above 1e38 reads as absent, as in dcm2niix).
    Implicit VR files: (None, None), as dcm2niix does not know the element
    for a sequence there and steps over it."""
    slope = intercept = None
    if header.file.implicit:
        return slope, intercept
    for item in header.sequence("RealWorldValueMappingSequence"):
        value = number(item.get("RealWorldValueSlope"))
        if value is not None:
            slope = value if abs(value) <= 1e38 else None
        value = number(item.get("RealWorldValueIntercept"))
        if value is not None:
            intercept = value
    return slope, intercept


def with_real_world(slope, intercept, rwv_slope, rwv_intercept):
    """dcm2niix's choice of rescale values: the real-world slope replaces a
    RescaleSlope of 1, the real-world intercept a RescaleIntercept of 0."""
    if rwv_slope is not None and abs(slope - 1.0) <= FLT_EPSILON:
        slope = rwv_slope
    if rwv_intercept is not None and abs(intercept) <= FLT_EPSILON:
        intercept = rwv_intercept
    return slope, intercept


def _private(header, group, creator, element, vr):
    """A private element found through its creator, decoded by the VR the
    file gives it (explicit VR), else as `vr` (implicit VR, or UN): dcm2niix
    reads (2005,1412/1413) as IS, or as SL where the file says SL."""
    tag = header.private_tag(group, creator, element)
    if tag is None:
        return None
    given = header.vr(tag)
    return header.get(tag, vr=given if given and given != "UN" else vr)


def _private_int(header, group, creator, element):
    """A private integer (IS, or binary where the file's VR says so)."""
    return number(_private(header, group, creator, element, "IS"), int)


def _classic_diffusion(header, s):
    """b-value and direction of a classic file, replaying dcm2niix's
    diffusion state: the values in tag order, (0018,9075/9087/9089) before
    ImagePositionPatient arms the state, then the private (2001,xx03) b-value
    and (2005,xxB0-B2) direction; the first moment both a b-value and a full
    direction are known after the position decides.  A non-directional
    (0018,9075) zeroes the direction; a b-value never completed by a
    direction keeps a zero one.  A file with b != 0 and a zero direction is
    a derived isotropic (trace/ADC) image."""
    directionality = header.get("DiffusionDirectionality")
    b, vector, nondirectional = -1.0, [2.0, 2.0, 2.0], False
    if directionality is not None:
        text = str(directionality).strip().upper()
        nondirectional = not (text.startswith("DIRECTIONAL") or text.startswith("BMATRIX"))
        if nondirectional:
            vector = [0.0, 0.0, 0.0]
    public_b = number(header.get("DiffusionBValue"))
    if public_b is not None:
        b = public_b
    public_vector = floats(header.get("DiffusionGradientOrientation"), 3)
    if public_vector is not None:
        vector = [0.0, 0.0, 0.0] if nondirectional else [float(v) for v in public_vector]
    armed = header.get("ImagePositionPatient") is not None
    private_b = number(_private(header, 0x2001, IMAGING_DD_001, 0x03, "FL"))
    recorded = None

    def ready():
        return armed and b >= 0 and all(v <= 1.5 for v in vector)

    if ready():
        recorded = (b, vector)
    else:
        if private_b is not None:
            b = private_b
            if ready():
                recorded = (b, vector)
        if recorded is None:
            for axis, element in enumerate((0xB0, 0xB1, 0xB2)):
                value = number(_private(header, 0x2005, MR_DD_001, element, "FL"))
                if value is not None:
                    vector[axis] = value
                    if ready():
                        recorded = (b, vector)
                        break
    if recorded is None:
        last_b = private_b if private_b is not None else public_b
        if last_b is None or last_b < 0:
            s.bvalue, s.gradient, s.isotropic = None, None, False
            return
        recorded = (last_b, [0.0, 0.0, 0.0])
    b, vector = recorded
    s.bvalue = b
    zero = all(abs(v) <= FLT_EPSILON for v in vector)
    s.isotropic = abs(b) > FLT_EPSILON and zero
    s.gradient = None if zero else floats(vector, 3)


def _asl_label(value):
    """'LABEL' or 'CONTROL' from (2005,1429) (its first letter), else ''."""
    text = str(value or "").strip().upper()
    if len(text) < 2:
        return ""
    return {"L": "LABEL", "C": "CONTROL"}.get(text[0], "")


def classic_fields(header, s):
    """Fill a classic Philips slice's private fields: scale slope,
    real-world rescale values, diffusion, and ``order`` = (volume number,
    phase number, ASL label), dcm2niix's inputs to the volume order."""
    s.scale_slope = scale_slope(header)
    s.slope, s.intercept = with_real_world(s.slope, s.intercept, *real_world_values(header))
    _classic_diffusion(header, s)
    # dcm2niix's rawDataRunNumber: TemporalPositionIdentifier, else the fMRI
    # volume number (2005,1063), and the gradient orientation number.
    volume = number(header.get("TemporalPositionIdentifier"), int)
    if volume is None or volume <= 0:
        dynamic = number(_private(header, 0x2005, MR_DD_001, 0x63, "SS"), int)
        if dynamic is not None and dynamic > 0:
            volume = dynamic
    gradient = _private_int(header, 0x2005, MR_DD_005, 0x13)
    if s.isotropic:
        gradient = DERIVED_VOLUME
    raw = max(-1, volume if volume is not None else -1, gradient if gradient is not None else -1)
    dimension = header.get("DimensionIndexValues")
    if raw < 0 and isinstance(dimension, list) and len(dimension) > 1 and dimension[-1] > 0:
        raw = int(dimension[-1])  # enhanced files split into classic ones (dcuncat)
    phase = number(_private(header, 0x2001, IMAGING_DD_001, 0x08, "IS"), int)
    bvalue_number = _private_int(header, 0x2005, MR_DD_005, 0x12) or 0
    phase = max(phase if phase is not None else -1, bvalue_number)
    diffusion_volume = _private_int(header, 0x2005, MR_DD_006, 0x96)
    if diffusion_volume is not None and diffusion_volume > 0 \
            and software_major(header.get("SoftwareVersions")) < 11:
        raw, phase = diffusion_volume, 0
    s.order = (raw, phase, _asl_label(_private(header, 0x2005, MR_DD_005, 0x29, "CS")))
    if s.series_number is not None and s.series_number > 99999 and bvalue_number > 0:
        s.series_number += 1000 * bvalue_number  # dcm2niix splits these by b-value number


class _PrivateFrames:
    """Per-frame values of an enhanced Philips file's private per-frame
    sequence (2005,xx0F of "Philips MR Imaging DD 005"), its creators
    resolved in the first frame's item."""

    def __init__(self, frames):
        self.frames = frames
        first = frames.top.item("PerFrameFunctionalGroupsSequence")
        self.seq = first.private_tag(0x2005, MR_DD_005, 0x0F) if first is not None else None
        self.inner = first.item(self.seq) if self.seq is not None else None

    def get(self, key, vr=None):
        """One value per frame of a public keyword of the private item."""
        if self.inner is None:
            return [None] * self.frames.count
        return self.frames.get(self.seq, key, vr=vr)

    def private(self, group, creator, element, vr):
        """One value per frame of a private element (decoded as the file's
        VR says, else as `vr`)."""
        tag = self.inner.private_tag(group, creator, element) if self.inner is not None else None
        if tag is None:
            return [None] * self.frames.count
        given = self.inner.vr(tag)
        return self.frames.get(self.seq, tag, vr=given if given and given != "UN" else vr)

    def integers(self, group, creator, element):
        return [number(v, int) for v in self.private(group, creator, element, "IS")]


def _frame_diffusion(frames, private):
    """Per frame, (b, LPS direction or None, isotropic) as dcm2niix records
    an enhanced Philips frame, or None without a b-value: the last b-value of
    the frame item ((0018,9087), then the private (2001,xx03)), the last
    direction ((0018,9089), then (2005,xxB0-B2)), zero for b = 0 and for an
    ISOTROPIC frame; any b != 0 with a zero direction is isotropic."""
    public_b = frames.get("MRDiffusionSequence", "DiffusionBValue")
    public_vector = frames.get("MRDiffusionSequence", "DiffusionGradientDirectionSequence",
                               "DiffusionGradientOrientation")
    directionality = frames.get("MRDiffusionSequence", "DiffusionDirectionality")
    private_b = private.private(0x2001, IMAGING_DD_001, 0x03, "FL")
    private_vector = [private.private(0x2005, MR_DD_001, e, "FL") for e in (0xB0, 0xB1, 0xB2)]
    out = []
    for i in range(frames.count):
        b = number(private_b[i])
        if b is None:
            b = number(public_b[i])
        if b is None:
            out.append(None)
            continue
        vector = [0.0, 0.0, 0.0]
        given = floats(public_vector[i], 3)
        if given is not None:
            vector = [float(v) for v in given]
        for axis in range(3):
            value = number(private_vector[axis][i])
            if value is not None:
                vector[axis] = value
        if b == 0 or str(directionality[i] or "").strip().upper() == "ISOTROPIC":
            vector = [0.0, 0.0, 0.0]
        zero = all(abs(v) <= FLT_EPSILON for v in vector)
        out.append((b, None if zero else floats(vector, 3), abs(b) > FLT_EPSILON and zero))
    return out


def _image_type_numbers(frames):
    """Per frame, dcm2niix's image type number: 0 magnitude, 1 real,
    2 imaginary, 3 phase (ComplexImageComponent, else FrameType)."""
    components = frames.get("MRImageFrameTypeSequence", "ComplexImageComponent")
    types = frames.get("MRImageFrameTypeSequence", "FrameType")
    out = []
    for component, frame_type in zip(components, types):
        values = {str(v).strip().upper() for v in
                  (frame_type if isinstance(frame_type, list) else [frame_type])}
        values.add(str(component or "").strip().upper())
        code_of_frame = 0
        for names, code in ((("R", "REAL"), 1), (("I", "IMAGINARY"), 2), (("P", "PHASE"), 3)):
            if values & set(names):
                code_of_frame = code
        out.append(code_of_frame)
    return out


def _frame_dimension(frames, private):
    """Per frame, the key dcm2niix sorts enhanced Philips frames by when the
    file calls for one of its special keys, and the index of the in-stack
    position in it; (None, None) otherwise.

    * issue 809 (SoftwareVersions 11 or later, frames with in-stack
      positions and more than one DimensionIndexValues): [in-stack, phase,
      ASL label (1 for LABEL, 0 for CONTROL; without a label the third
      index), image type (0 magnitude, 1 real, 2 imaginary, 3 phase),
      b-value number, gradient number, the fourth index, temporal
      position], the in-stack position first;
    * issue 546 (a diffusion volume number (2005,1596) and a slice number
      (2001,100A) in every frame): [1, slice number, diffusion volume]."""
    dims = frames.get("FrameContentSequence", "DimensionIndexValues")
    in_stack = [number(v, int) for v in frames.get("FrameContentSequence",
                                                   "InStackPositionNumber")]
    lengths = [len(d) if isinstance(d, list) else (0 if d is None else 1) for d in dims]
    software = software_major(frames.top.get("SoftwareVersions"))
    if software > 10 and min(lengths) > 1 and all(v and v > 0 for v in in_stack):
        phase = private.integers(0x2001, IMAGING_DD_001, 0x08)
        bnum = private.integers(0x2005, MR_DD_005, 0x12)
        grad = private.integers(0x2005, MR_DD_005, 0x13)
        labels = private.private(0x2005, MR_DD_005, 0x29, "CS")
        temporal = private.get("TemporalPositionIdentifier")
        kinds = _image_type_numbers(frames)
        keys = []
        for i in range(frames.count):
            d = [int(v) for v in dims[i]] + [0] * 8
            label = _asl_label(labels[i])
            volume = number(temporal[i], int)
            keys.append((in_stack[i], max(phase[i] or 0, 0),
                         (1 if label == "LABEL" else 0) if label else d[2],
                         kinds[i], max(bnum[i] or 0, 0),
                         max(grad[i] or 0, 0), d[3], max(volume or 0, 0)))
        return keys, 0
    slice_numbers = private.integers(0x2001, IMAGING_DD_001, 0x0A)
    volumes = private.integers(0x2005, MR_DD_006, 0x96)
    if all(v and v > 0 for v in volumes) and all(n and n > 0 for n in slice_numbers):
        return [(1, n, v) for n, v in zip(slice_numbers, volumes)], None
    return None, None


def frame_fields(frames):
    """Per frame of an enhanced Philips file, Slice fields from its private
    per-frame sequence and the rules dcm2niix applies to them: the scale
    slope and echo number; the real-world rescale values; the diffusion
    b-value, direction and isotropic flag (private values included);
    ``dimension`` when dcm2niix sorts by one of its Philips keys
    (:func:`_frame_dimension`), with ``stack_item`` the in-stack index in
    it; ``field_map`` when a frame's private ImageType names a B0 map (the
    file's real frames are then a field map in Hz, as dcm2niix reads it).

    Parameters
    ----------
    frames : medfast.dicom.slices.FrameFields

    Returns
    -------
    list of dict
    """
    private = _PrivateFrames(frames)
    out = [{} for _ in range(frames.count)]
    file_slope = scale_slope(frames.top)
    slopes = private.private(0x2005, MR_DD_001, 0x0E, "FL")
    echoes = private.get("EchoNumbers")
    types = private.get("ImageType")
    if any("B0" in text and "MAP" in text
           for text in ("_".join(t) if isinstance(t, list) else str(t or "") for t in types)):
        for fields in out:
            fields["field_map"] = True
    diffusion = _frame_diffusion(frames, private)
    real_world = ([None] * frames.count,) * 2 if frames.hfile.implicit else (
        frames.get("RealWorldValueMappingSequence", "RealWorldValueSlope"),
        frames.get("RealWorldValueMappingSequence", "RealWorldValueIntercept"))
    rescale = (frames.get("PixelValueTransformationSequence", "RescaleSlope"),
               frames.get("PixelValueTransformationSequence", "RescaleIntercept")) + real_world
    dimension, stack_item = _frame_dimension(frames, private)
    for i, (fields, slope, echo) in enumerate(zip(out, slopes, echoes)):
        slope = number(slope) or file_slope
        if slope:
            fields["scale_slope"] = slope
        if number(echo, int) is not None:
            fields["echo"] = number(echo, int)
        rwv_slope, rwv_intercept = number(rescale[2][i]), number(rescale[3][i])
        if rwv_slope is not None and abs(rwv_slope) > 1e38:
            rwv_slope = None
        if rwv_slope is not None or rwv_intercept is not None:
            fields["slope"], fields["intercept"] = with_real_world(
                number(rescale[0][i]) or 1.0, number(rescale[1][i]) or 0.0,
                rwv_slope, rwv_intercept)
        if diffusion[i] is not None:
            fields["bvalue"], fields["gradient"], fields["isotropic"] = diffusion[i]
        if dimension is not None:
            fields["dimension"] = dimension[i]
            fields["stack_item"] = stack_item
    return out


def sidecar_fields(volume, header):
    """dcm2niix's Philips scaling fields of a volume's sidecar, from its
    first slice: PhilipsRWVSlope/Intercept (when a real-world slope is
    given), and PhilipsRescaleSlope/Intercept, PhilipsScaleSlope and
    UsePhilipsFloatNotDisplayScaling (1: the voxels hold the precise values)
    when the MRScaleSlope is known and, for enhanced files, the scaling is
    the same in every frame.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume
    header : medfast.dicom.header.Header
        The first slice's header: its file's top level (classic) or its
        frame's functional group (enhanced).
    """
    first = volume.first
    out = {}
    rwv_slope, rwv_intercept = real_world_values(header)
    if rwv_slope:
        out["PhilipsRWVSlope"] = _g(rwv_slope)
        out["PhilipsRWVIntercept"] = _g(rwv_intercept or 0.0)
    slices = [s for row in volume.grid for s in row]
    varies_per_frame = first.file.frames > 1 and len(
        {(s.slope, s.intercept, s.scale_slope) for s in slices}) > 1
    if first.scale_slope and not varies_per_frame:
        out["PhilipsRescaleSlope"] = _g(first.slope)
        out["PhilipsRescaleIntercept"] = _g(first.intercept)
        out["PhilipsScaleSlope"] = _g(first.scale_slope)
        out["UsePhilipsFloatNotDisplayScaling"] = 1
    return out


def _g(value):
    """A number as dcm2niix prints it (``%g``: 6 significant digits)."""
    value = float(f"{float(value):g}")
    return int(value) if value.is_integer() else value

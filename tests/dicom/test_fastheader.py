"""medfast.dicom.fastheader.read_header_fast gives pydicom's header, faster.

Every check compares with ``pydicom.dcmread(fp, stop_before_pixels=True)``
on the same bytes: the undecoded top-level elements (equal RawDataElement
tuples, same order), then every element value after pydicom decodes it
(nested sequences recursively), the file meta, the encoding state, and the
pixel data offset (where pydicom leaves the file after stopping).  Files that
the fast path must refuse raise FastPathUnavailable, never anything else.
"""
import io
import math
import struct

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings, strategies as st
from pydicom import uid
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from medfast.dicom.fastheader import FastPathUnavailable, read_header_fast

from dicom_data import DEFAULT_QA, qa_root

PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


# --------------------------------------------------------------------------
# comparison with pydicom


def pydicom_header(data):
    """pydicom's header of `data` and where it left the file."""
    fp = io.BytesIO(data)
    ds = pydicom.dcmread(fp, stop_before_pixels=True, force=data[128:132] != b"DICM")
    return ds, fp.tell()


def expected_pixel_offset(data, ref, tell):
    """pydicom stops with the file at the pixel data element's tag, or at
    the end when there is none: find which, from the bytes at `tell`."""
    order = "<" if ref.original_encoding[1] else ">"
    if len(data) - tell >= 4:
        group, elem = struct.unpack(order + "HH", data[tell:tell + 4])
        if (group << 16 | elem) in PIXEL_TAGS:
            return tell
    return None


def outcome(ds, tag):
    """The decoded element, or the kind of exception decoding it raises."""
    try:
        return ds[tag]
    except Exception as exc:  # the same failure is expected from both
        return type(exc)


def same_value(a, b):
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return math.isnan(a) and math.isnan(b)
    return repr(a) == repr(b)  # NaN inside multi-values


def assert_same_elements(fast, ref, where):
    """Same tags in the same order, same VR and value for each (decoding
    both), recursing into sequence items."""
    assert list(fast.keys()) == list(ref.keys()), where
    for tag in ref.keys():
        f, r = outcome(fast, tag), outcome(ref, tag)
        if isinstance(r, type):
            assert f is r, f"{where} {tag}: pydicom raises {r.__name__}, fast gives {f}"
            continue
        assert f.VR == r.VR, f"{where} {tag}"
        assert f.is_undefined_length == r.is_undefined_length, f"{where} {tag}"
        if r.VR == "SQ":
            assert len(f.value) == len(r.value), f"{where} {tag}"
            for i, (fi, ri) in enumerate(zip(f.value, r.value)):
                assert_same_elements(fi, ri, f"{where} {tag}[{i}]")
        else:
            assert same_value(f.value, r.value), f"{where} {tag}: {f.value!r} != {r.value!r}"


def assert_same_header(data, fast=None):
    """read_header_fast(data) is pydicom's header; returns it."""
    ds, offset = fast if fast is not None else read_header_fast(data)
    ref, tell = pydicom_header(data)
    # Undecoded first: pydicom decodes on access.  Exceptions: both readers
    # decode (0008,0005) Specific Character Set, and pydicom's reader decodes
    # undefined-length sequences at once.
    assert list(ds._dict) == list(ref._dict)
    for tag, raw in ref._dict.items():
        if tag == 0x00080005:
            continue
        if isinstance(raw, RawDataElement):
            assert type(ds._dict[tag]) is RawDataElement and ds._dict[tag] == raw, tag
        else:  # read now by both (implicit VR items) or raw in ours
            assert raw.is_undefined_length and raw.VR == "SQ", tag
            assert ds._dict[tag].VR == "SQ", tag
    assert list(ds.file_meta._dict) == list(ref.file_meta._dict)
    for tag, raw in ref.file_meta._dict.items():
        if isinstance(raw, RawDataElement) and isinstance(ds.file_meta._dict[tag], RawDataElement):
            assert ds.file_meta._dict[tag] == raw, tag
    assert type(ds) is type(ref) and type(ds.file_meta) is type(ref.file_meta)
    assert ds.preamble == ref.preamble
    assert ds.original_encoding == ref.original_encoding
    assert ds.original_character_set == ref.original_character_set
    assert (ds.is_implicit_VR, ds.is_little_endian) == (ref.is_implicit_VR, ref.is_little_endian)
    assert ds.file_meta.original_encoding == ref.file_meta.original_encoding
    assert_same_elements(ds.file_meta, ref.file_meta, "file_meta")
    assert_same_elements(ds, ref, "dataset")
    assert offset == expected_pixel_offset(data, ref, tell)
    if offset is not None:
        assert offset == tell
    return ds, offset


def fast_or_fallback(data):
    """The property for damaged input: read_header_fast either refuses with
    FastPathUnavailable or returns exactly pydicom's header."""
    try:
        result = read_header_fast(data)
    except FastPathUnavailable:
        return None
    assert_same_header(data, result)
    return result


# --------------------------------------------------------------------------
# synthetic files written by pydicom


def _item(**elements):
    ds = Dataset()
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def _undefined(ds, keyword):
    """Write the sequence `keyword` (and its items) with undefined lengths."""
    ds[keyword].is_undefined_length = True
    for item in ds[keyword].value:
        item.is_undefined_length_sequence_item = True


def make_dataset(*, undefined=False, pixels="PixelData", frames=1, private=True,
                 charset="ISO_IR 100"):
    """A header with the awkward parts: nested sequences (3 levels, empty
    ones, empty items), private elements and a private sequence, empty
    values, multi-values, binary VRs, ambiguous 'US or SS' elements and,
    for frames > 1, per-frame functional groups."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = uid.MRImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.2.1125.1.7"
    ds.StudyDate = "20240131"
    ds.AccessionNumber = ""  # empty
    ds.Modality = "MR"
    ds.PatientName = "Müller^Jürgen" if charset != "ISO_IR 6" else "Mueller^Juergen"
    ds.PatientID = "ABC"
    ds.PatientBirthDate = ""
    ds.PatientWeight = 71.5
    ds.SliceThickness = "2.5"
    ds.EchoTime = 30.0
    ds.FrameOfReferenceUID = "1.2.3.4.5"
    ds.SeriesInstanceUID = "1.2.3.4.6"
    ds.InstanceNumber = 7
    ds.ImagePositionPatient = [-120.5, -99.25, 33.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9998477, -0.0174524]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 4, 3
    ds.PixelSpacing = [0.9375, 0.9375]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 1
    ds.SmallestImagePixelValue = -3  # 'US or SS': decoded from PixelRepresentation
    ds.LargestImagePixelValue = 400
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1.5"
    ds.add_new(0x00280009, "AT", [0x00200032, 0x00280030])  # FrameIncrementPointer
    ds.add_new(0x00291010, "OB", b"\x01\x02\x03")  # odd length: padded by pydicom
    ds.ReferencedImageSequence = [
        _item(ReferencedSOPClassUID=uid.MRImageStorage, ReferencedSOPInstanceUID="1.2.3.9"),
        Dataset(),  # an empty item
        _item(ReferencedSOPInstanceUID="1.2.3.10",
              PurposeOfReferenceCodeSequence=[
                  _item(CodeValue="121311", CodingSchemeDesignator="DCM",
                        CodeMeaning="Localizer",
                        ConceptNameCodeSequence=[_item(CodeValue="x", CodeMeaning="ü")])]),
    ]
    ds.ReferencedStudySequence = []  # an empty sequence
    ds.RequestAttributesSequence = [_item(RequestedProcedureID="RP1",
                                          ScheduledProcedureStepID="")]
    # 'US or SS' inside an item: decoded with the Pixel Representation of
    # the data set above, except by pydicom's reader in an undefined-length
    # sequence of implicit VR items.
    ds.RealWorldValueMappingSequence = [_item(RealWorldValueSlope=2.0,
                                              RealWorldValueIntercept=-1.0,
                                              RealWorldValueFirstValueMapped=-5,
                                              RealWorldValueLastValueMapped=300,
                                              LUTLabel="rwv")]
    if private:
        block = ds.private_block(0x0019, "MEDFAST TEST", create=True)
        block.add_new(0x10, "LO", "private text")
        block.add_new(0x11, "US", [1, 2, 3])
        block.add_new(0x12, "DS", ["1.5", "-2"])
        block.add_new(0x13, "SQ", Sequence([_item(PatientID="in private sq")]))
        block.add_new(0x14, "UN", b"\x00\x01\x02\x03")
        block.add_new(0x15, "FD", [1.0, float("nan")])
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.SharedFunctionalGroupsSequence = [_item(
            PixelMeasuresSequence=[_item(PixelSpacing=[0.5, 0.5], SliceThickness=2.0)],
            PlaneOrientationSequence=[_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])])]
        ds.PerFrameFunctionalGroupsSequence = [
            _item(PlanePositionSequence=[_item(ImagePositionPatient=[0.0, 0.0, 2.0 * k])],
                  FrameContentSequence=[_item(InStackPositionNumber=k + 1,
                                              DimensionIndexValues=[1, k + 1])],
                  PixelValueTransformationSequence=[_item(RescaleSlope="2", RescaleIntercept="0",
                                                          RescaleType="US")])
            for k in range(frames)]
    if undefined:
        for keyword in ("ReferencedImageSequence", "ReferencedStudySequence",
                        "RequestAttributesSequence", "RealWorldValueMappingSequence",
                        "SharedFunctionalGroupsSequence",
                        "PerFrameFunctionalGroupsSequence"):
            if keyword in ds:
                _undefined(ds, keyword)
        _undefined(ds.ReferencedImageSequence[2], "PurposeOfReferenceCodeSequence")
        if frames > 1:
            for item in ds.PerFrameFunctionalGroupsSequence:
                _undefined(item, "PlanePositionSequence")
    count = 4 * 3 * frames
    if pixels == "PixelData":
        ds.PixelData = np.arange(count, dtype=np.int16).tobytes()
    elif pixels == "FloatPixelData":
        ds.FloatPixelData = np.arange(count, dtype=np.float32).tobytes()
    elif pixels == "DoubleFloatPixelData":
        ds.DoubleFloatPixelData = np.arange(count, dtype=np.float64).tobytes()
    return ds


def write(ds, syntax, *, preamble=True, meta=True):
    """Bytes of `ds` in transfer syntax `syntax`: Part 10 (preamble and
    file meta), file meta without preamble, or a raw data set."""
    fp = io.BytesIO()
    if meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        ds.preamble = b"\x00" * 128 if preamble else None
        ds.save_as(fp, enforce_file_format=preamble)
    else:
        syntax = uid.UID(syntax)
        ds.save_as(fp, implicit_vr=syntax.is_implicit_VR,
                   little_endian=syntax.is_little_endian, enforce_file_format=False)
    return fp.getvalue()


NATIVE = [uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.ExplicitVRBigEndian]
SYNTAX_IDS = {uid.ImplicitVRLittleEndian: "implicit-LE", uid.ExplicitVRLittleEndian: "explicit-LE",
              uid.ExplicitVRBigEndian: "explicit-BE"}


@pytest.mark.parametrize("syntax", NATIVE, ids=SYNTAX_IDS.get)
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
@pytest.mark.parametrize("frames", [1, 3], ids=["single", "multiframe"])
@pytest.mark.parametrize("layout", ["part10", "no-preamble", "raw"])
def test_synthetic_matches_pydicom(syntax, undefined, frames, layout):
    ds = make_dataset(undefined=undefined, frames=frames)
    data = write(ds, syntax, preamble=layout == "part10", meta=layout != "raw")
    if undefined:
        assert (b"\xfe\xff\xdd\xe0" in data) or (b"\xff\xfe\xe0\xdd" in data)
    fast, offset = assert_same_header(data)
    assert offset is not None and data[offset:offset + 4] in (b"\xe0\x7f\x10\x00",
                                                               b"\x7f\xe0\x00\x10")
    # spot checks of decoded values, independent of pydicom's reader
    assert fast.PatientName == ds.PatientName
    assert fast.ImagePositionPatient == [-120.5, -99.25, 33.0]
    assert fast.SmallestImagePixelValue == -3
    assert fast.ReferencedImageSequence[2].PurposeOfReferenceCodeSequence[0] \
        .ConceptNameCodeSequence[0].CodeMeaning == "ü"
    if frames > 1:
        assert [f.PlanePositionSequence[0].ImagePositionPatient[2]
                for f in fast.PerFrameFunctionalGroupsSequence] == [0.0, 2.0, 4.0]


@pytest.mark.parametrize("syntax", NATIVE, ids=SYNTAX_IDS.get)
@pytest.mark.parametrize("pixels", [None, "FloatPixelData", "DoubleFloatPixelData"])
def test_other_pixel_elements_and_none(syntax, pixels):
    data = write(make_dataset(pixels=pixels, undefined=True), syntax)
    fast, offset = assert_same_header(data)
    if pixels is None:
        assert offset is None
    else:
        assert offset is not None and offset > 132
        assert getattr(pydicom.dcmread(io.BytesIO(data)), pixels) == \
            getattr(make_dataset(pixels=pixels), pixels)


@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 6", "ISO_IR 100"])
def test_character_sets(charset):
    data = write(make_dataset(charset=charset, undefined=True), uid.ExplicitVRLittleEndian)
    fast, _ = assert_same_header(data)
    assert fast.original_character_set == pydicom.charset.convert_encodings(charset)


def test_compressed_syntax_stops_at_encapsulated_pixels():
    """JPEG/RLE files: explicit VR LE header, encapsulated (undefined
    length) Pixel Data, and an icon sequence whose item holds encapsulated
    pixel data too (an undefined-length OB inside an undefined-length item)."""
    from pydicom.encaps import encapsulate
    ds = make_dataset(pixels=None, undefined=True)
    icon = _item(Rows=2, Columns=2, BitsAllocated=8, SamplesPerPixel=1,
                 PhotometricInterpretation="MONOCHROME2")
    icon.add_new(0x7FE00010, "OB", encapsulate([b"\x01\x02\x03\x04"]))
    icon["PixelData"].is_undefined_length = True
    ds.IconImageSequence = [icon]
    _undefined(ds, "IconImageSequence")
    ds.add_new(0x7FE00010, "OB", encapsulate([b"frame one", b"frame two!"]))
    ds["PixelData"].is_undefined_length = True
    data = write(ds, uid.RLELossless)
    fast, offset = assert_same_header(data)
    assert data[offset:offset + 12] == b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
    assert fast.IconImageSequence[0].PixelData == icon.PixelData


def test_bytes_like_inputs_and_filename(tmp_path):
    data = write(make_dataset(undefined=True), uid.ExplicitVRLittleEndian)
    ref, ref_offset = read_header_fast(data)
    for other in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        ds, offset = read_header_fast(other)
        assert offset == ref_offset
        assert_same_elements(ds, ref, type(other).__name__)
    path = tmp_path / "x.dcm"
    path.write_bytes(data)
    ds, _ = read_header_fast(data, filename=str(path))
    with open(path, "rb") as fp:
        ref = pydicom.dcmread(fp, stop_before_pixels=True)
    assert vars(ds).keys() == vars(ref).keys()
    for name in ("filename", "timestamp", "fileobj_type", "buffer", "preamble"):
        assert getattr(ds, name) == getattr(ref, name), name
    assert_same_elements(ds, ref, "with filename")
    ds, _ = read_header_fast(data, filename=str(tmp_path / "gone.dcm"))
    assert ds.filename == str(tmp_path / "gone.dcm") and ds.timestamp is None


def test_deflated_falls_back():
    data = write(make_dataset(), uid.DeflatedExplicitVRLittleEndian)
    pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)  # pydicom reads it
    with pytest.raises(FastPathUnavailable, match="transfer syntax"):
        read_header_fast(data)


# --------------------------------------------------------------------------
# hand-encoded files: what pydicom's writer never produces


def element(tag, vr, value, encoding):
    """One element: encoding "ile" (implicit LE), "ele" or "ebe"; value may
    be None with vr "SQ"/"UN"... for an undefined length (value then holds
    the items and delimiter: pass bytes and length=None)."""
    order = ">" if encoding == "ebe" else "<"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    length = len(value)
    if encoding == "ile":
        return head + struct.pack(order + "L", length) + value
    if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"):
        return head + vr.encode() + b"\0\0" + struct.pack(order + "L", length) + value
    return head + vr.encode() + struct.pack(order + "H", length) + value


def undefined_element(tag, vr, items, encoding):
    """An undefined-length element holding `items` (already encoded) and
    the Sequence Delimitation Item."""
    order = ">" if encoding == "ebe" else "<"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if encoding == "ile":
        head += b"\xff\xff\xff\xff"
    else:
        head += vr.encode() + b"\0\0\xff\xff\xff\xff"
    return head + items + delimiter(0xFFFEE0DD, order)


def delimiter(tag, order="<"):
    return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, 0)


def item(content, order="<", undefined=False):
    if undefined:
        return struct.pack(order + "HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + content + \
            delimiter(0xFFFEE00D, order)
    return struct.pack(order + "HHL", 0xFFFE, 0xE000, len(content)) + content


def part10(dataset, syntax, *, preamble=True):
    """Preamble, 'DICM' and a file meta group (explicit VR LE) before `dataset`."""
    def ui(value):
        value = value.encode()
        return value + b"\0" * (len(value) % 2)
    meta = (element(0x00020001, "OB", b"\0\1", "ele")
            + element(0x00020002, "UI", ui(uid.MRImageStorage), "ele")
            + element(0x00020003, "UI", ui("1.2.3"), "ele")
            + element(0x00020010, "UI", ui(syntax), "ele"))
    meta = element(0x00020000, "UL", struct.pack("<L", len(meta)), "ele") + meta
    return (b"\0" * 128 + b"DICM" if preamble else b"") + meta + dataset


def test_odd_lengths_and_empty_values():
    ds = (element(0x00080005, "CS", b"ISO_IR 100", "ele")
          + element(0x00080020, "DA", b"", "ele")
          + element(0x00100010, "PN", b"Doe^Joh", "ele")  # odd length
          + element(0x00100020, "LO", b"X", "ele")
          + element(0x00181030, "LO", b"", "ele")
          + element(0x00280010, "US", b"\x04\x00", "ele")
          + element(0x00280030, "DS", b"0.5\\0.75", "ele")  # odd
          + element(0x00291001, "OB", b"\x01\x02\x03", "ele")
          + element(0x7FE00010, "OW", b"\0" * 8, "ele"))
    data = part10(ds, uid.ExplicitVRLittleEndian)
    fast, offset = assert_same_header(data)
    assert fast.PatientName == "Doe^Joh" and fast.PixelSpacing == [0.5, 0.75]
    assert offset == len(data) - 20


def test_un_undefined_length_with_implicit_items():
    """Explicit VR file, private UN element of undefined length whose items
    are implicit VR (PS3.5 6.2.2): pydicom reads it as a sequence."""
    inner = element(0x00100020, "LO", b"ID42", "ile") + element(0x00080060, "CS", b"MR", "ile")
    nested = undefined_element(0x00081140, "SQ", item(element(0x00081155, "UI", b"1.2\0", "ile"),
                                                      undefined=True), "ile")
    un = undefined_element(0x00291010, "UN",
                           item(inner, undefined=True) + item(inner + nested, undefined=True)
                           + item(inner), "ele")
    ds = (element(0x00080005, "CS", b"ISO_IR 100", "ele")
          + element(0x00290010, "LO", b"MEDFAST TEST", "ele") + un
          + element(0x00300010, "LO", b"after", "ele")
          + element(0x7FE00010, "OW", b"\0\0", "ele"))
    data = part10(ds, uid.ExplicitVRLittleEndian)
    fast, _ = assert_same_header(data)
    seq = fast[0x00291010].value
    assert [i.PatientID for i in seq] == ["ID42"] * 3
    assert seq[1].ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2"


@pytest.mark.parametrize("encoding", ["ile", "ele", "ebe"])
def test_private_undefined_length_sequences(encoding):
    """Unknown private tags of undefined length: a sequence when the value
    starts with an item (implicit VR: pydicom looks ahead)."""
    order = ">" if encoding == "ebe" else "<"
    deep = undefined_element(0x00091002, "SQ", item(element(0x00100010, "PN", b"Deep", encoding),
                                                    order, undefined=True), encoding)
    seq = undefined_element(0x00091001, "SQ",
                            item(element(0x00100020, "LO", b"P1", encoding) + deep, order,
                                 undefined=True)
                            + item(b"", order, undefined=True) + item(b"", order), encoding)
    ds = (element(0x00080005, "CS", b"ISO_IR 100", encoding)
          + element(0x00090010, "LO", b"SOME VENDOR ", encoding) + seq
          + element(0x00100010, "PN", b"Top ", encoding)
          + element(0x7FE00010, "OW", b"\0\0", encoding))
    syntax = {"ile": uid.ImplicitVRLittleEndian, "ele": uid.ExplicitVRLittleEndian,
              "ebe": uid.ExplicitVRBigEndian}[encoding]
    data = part10(ds, syntax)
    fast, _ = assert_same_header(data)
    assert fast[0x00091001].VR == "SQ"
    assert fast[0x00091001].value[0][0x00091002].value[0].PatientName == "Deep"


def test_undefined_length_that_pydicom_does_not_read_as_sequence_falls_back():
    # implicit VR, unknown private tag, empty: pydicom reads raw bytes, not SQ
    ds = (element(0x00100010, "PN", b"Doe ", "ile")
          + undefined_element(0x00091001, None, b"", "ile")
          + element(0x00100020, "LO", b"ID", "ile"))
    data = part10(ds, uid.ImplicitVRLittleEndian)
    pydicom_header(data)
    with pytest.raises(FastPathUnavailable, match="not a sequence"):
        read_header_fast(data)
    # explicit OB of undefined length outside Pixel Data
    ds = (element(0x00100010, "PN", b"Doe ", "ele")
          + undefined_element(0x00420011, "OB", item(b"abcd"), "ele"))
    with pytest.raises(FastPathUnavailable, match="not a sequence"):
        read_header_fast(part10(ds, uid.ExplicitVRLittleEndian))


def test_raw_data_set_guesses_encoding_like_pydicom():
    for encoding in ("ile", "ele", "ebe"):
        ds = (element(0x00080005, "CS", b"ISO_IR 100", encoding)
              + element(0x00080060, "CS", b"MR", encoding)
              + element(0x00100010, "PN", b"Raw^Data", encoding)
              + element(0x7FE00010, "OW", b"\0\0", encoding))
        fast, offset = assert_same_header(ds)
        assert fast.Modality == "MR" and offset == len(ds) - (10 if encoding == "ile" else 14)


def test_file_without_pixel_data_and_empty_data_set():
    data = part10(element(0x00100010, "PN", b"Doe ", "ele"), uid.ExplicitVRLittleEndian)
    assert_same_header(data)
    fast, offset = assert_same_header(part10(b"", uid.ExplicitVRLittleEndian))
    assert offset is None and len(fast) == 0 and len(fast.file_meta) == 5


@pytest.mark.parametrize("case", ["command set", "implicit data under explicit syntax",
                                  "explicit data under implicit syntax", "unknown VR",
                                  "lowercase VR", "item tag at top level", "item not an item",
                                  "sequence delimiter inside item", "empty", "only preamble",
                                  "trailing bytes", "deep nesting", "implicit file meta"])
def test_refusals(case):
    """Cases left to pydicom: FastPathUnavailable, nothing else."""
    ele = uid.ExplicitVRLittleEndian
    name = element(0x00100010, "PN", b"Doe ", "ele")
    data = {
        "command set": lambda: part10(element(0x00000002, "UI", b"1.2\0", "ile") + name, ele),
        "implicit data under explicit syntax": lambda: part10(
            element(0x00100010, "PN", b"Doe ", "ile"), ele),
        "explicit data under implicit syntax": lambda: part10(name, uid.ImplicitVRLittleEndian),
        "unknown VR": lambda: part10(name + element(0x00100020, "XX", b"ab", "ele"), ele),
        "lowercase VR": lambda: part10(name + element(0x00100020, "lo", b"ab", "ele"), ele),
        "item tag at top level": lambda: part10(name + item(b""), ele),
        "item not an item": lambda: part10(
            undefined_element(0x00081140, "SQ", name, "ele"), ele),
        "sequence delimiter inside item": lambda: part10(undefined_element(
            0x00081140, "SQ", item(name + delimiter(0xFFFEE0DD), undefined=True), "ele"), ele),
        "empty": lambda: b"",
        "only preamble": lambda: b"\0" * 128 + b"DICM",
        "trailing bytes": lambda: part10(name, ele) + b"\0\0\0",
        "deep nesting": lambda: part10(_nested(200), ele),
        "implicit file meta": lambda: b"\0" * 128 + b"DICM" + element(
            0x00020010, "UI", b"1.2.840.10008.1.2\0", "ile") + name,
    }[case]()
    with pytest.raises(FastPathUnavailable):
        read_header_fast(data)


def _nested(depth):
    """`depth` undefined-length sequences, each in an undefined-length item
    of the one above."""
    content = element(0x00100010, "PN", b"Doe ", "ele")
    for _ in range(depth):
        content = undefined_element(0x00081140, "SQ", item(content, undefined=True), "ele")
    return content


def test_moderate_nesting_is_read():
    assert_same_header(part10(_nested(20), uid.ExplicitVRLittleEndian))


def test_every_vr():
    """The scanner knows exactly pydicom's VRs, and which have 4-byte lengths
    (pydicom's EXPLICIT_VR_LENGTH_32, which the encoder here follows)."""
    from pydicom.valuerep import VR
    from medfast import _dicomscan
    names = sorted(name for name in _dicomscan.VR_NAMES if name is not None)
    assert names == sorted(str(vr) for vr in VR if len(vr) == 2)
    for encoding, syntax in (("ele", uid.ExplicitVRLittleEndian),
                             ("ebe", uid.ExplicitVRBigEndian)):
        ds = b"".join(element(0x00091000 + i, name, b"" if name == "SQ" else b"12345678",
                              encoding) for i, name in enumerate(names, 0x10))
        fast, _ = assert_same_header(part10(ds, syntax))
        assert [fast[0x00091000 + i].VR for i in range(0x10, 0x10 + len(names))] == names


@pytest.mark.parametrize("value", ["text", 12, None])
def test_non_bytes_input_falls_back(value):
    with pytest.raises(FastPathUnavailable):
        read_header_fast(value)


# --------------------------------------------------------------------------
# damaged input: refuse or agree, never crash or hang


def _fuzz_samples():
    samples = [write(make_dataset(undefined=True, frames=2), s) for s in NATIVE]
    samples.append(part10(_nested(3) + element(0x7FE00010, "OW", b"\0\0", "ele"),
                          uid.ExplicitVRLittleEndian))
    root = qa_root()
    if root is not None:
        for pattern in ("nih/In/20180918GE/mr_0004/*.dcm", "enhanced/In/Siemens/XA10/*.dcm"):
            found = sorted(root.glob(pattern))
            if found:  # the header and the start of the pixel data
                data = found[0].read_bytes()
                samples.append(data[:pydicom_header(data)[1] + 64])
    return samples


FUZZ = _fuzz_samples()
# Where each sample's header ends (pydicom stops there), pixel tag included.
FUZZ_HEADER = [min(pydicom_header(data)[1] + 12, len(data)) for data in FUZZ]
damaged = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's complaints


@damaged
@settings(max_examples=300)
@given(st.sampled_from(range(len(FUZZ))), st.floats(0, 1))
def test_truncated_files_refuse_or_agree(which, where):
    data = FUZZ[which]
    cut = int(where * len(data))
    fast_or_fallback(data[:cut])


@damaged
@settings(max_examples=300)
@given(st.sampled_from(range(len(FUZZ))), st.floats(0, 1), st.integers(0, 255),
       st.integers(1, 4))
def test_corrupted_header_bytes_refuse_or_agree(which, where, byte, count):
    data = bytearray(FUZZ[which])
    pos = int(where * (FUZZ_HEADER[which] - count))
    data[pos:pos + count] = bytes([byte]) * count
    fast_or_fallback(bytes(data))


@damaged
@settings(max_examples=300)
@given(st.binary(max_size=600), st.booleans())
def test_garbage_refuses_or_agrees(garbage, dicm):
    data = (b"\0" * 128 + b"DICM" + garbage) if dicm else garbage
    fast_or_fallback(data)


def test_random_bytes_are_refused():
    rng = np.random.default_rng(0)
    for size in (0, 7, 131, 132, 1000, 50000):
        for prefix in (b"", b"\0" * 128 + b"DICM"):
            data = prefix + rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            with pytest.raises(FastPathUnavailable):
                read_header_fast(data)


# --------------------------------------------------------------------------
# the real validation sets


def _qa_files():
    root = qa_root()
    if root is None:
        return []
    return sorted(p for p in root.glob("*/In/**/*") if p.is_file())


QA_FILES = _qa_files()
QA_FOLDERS = sorted({p.parent for p in QA_FILES})


def test_qa_data_present(dicom_qa):
    assert QA_FILES, f"no files under {dicom_qa}/*/In"


@pytest.mark.skipif(not QA_FOLDERS, reason="DICOM validation data not found: set "
                    f"MEDFAST_DICOM_QA to the dicom_qa folder (default {DEFAULT_QA})")
@pytest.mark.parametrize("folder", QA_FOLDERS,
                         ids=[str(f.relative_to(qa_root())) for f in QA_FOLDERS]
                         if QA_FOLDERS else None)
def test_qa_files_match_pydicom(folder):
    """Every Part 10 file pydicom reads: the fast path reads it and agrees.
    Other files (notes, NIfTI) must be refused with FastPathUnavailable."""
    checked = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        data = path.read_bytes()
        try:
            pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except Exception:
            fast_or_fallback(data)
            continue
        try:
            assert_same_header(data)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from exc
        checked += 1
    if any(p.suffix == ".dcm" for p in folder.iterdir()):
        assert checked

"""medfast.dicom.header.read_header (the native walk, medfast._dicomwalk)
reads the values pydicom reads.

Every check compares with ``pydicom.dcmread(stop_before_pixels=True)`` on
the same bytes: every element, in stream order, at every nesting level
(``Header.get``; private elements through their creator with
``Header.private``), the per-frame values of ``HeaderFile.item_values``
and where the pixel data lie.  Values are compared in medfast's form:
text stripped, multiple values as lists, DS/IS as numbers (a part that is
not a number is None), empty values as None.

Damaged input (cut anywhere, bytes changed, noise after 'DICM') must either
read exactly as pydicom reads it or raise ``NotDicomError``: never another
exception, never a hang.
"""
import gzip
import io
import math
import os
import struct
import time
import warnings
import zlib

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from pydicom.filereader import read_sequence

from medfast.dicom.header import Header, NotDicomError, read_header
from dicom_data import qa_root

PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)

# pydicom warns about the odd values some of these files hold on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --------------------------------------------------------------------------
# pydicom's values in medfast's form


def _plain(value, part=False):
    if isinstance(value, (list, MultiValue)):
        parts = [_plain(v, True) for v in value]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else parts
    if isinstance(value, PersonName):
        value = str(value)
    if isinstance(value, str):
        value = value.lstrip(" ")  # pydicom leaves leading spaces, medfast not
        return value if value or part else None
    if isinstance(value, bytes):
        return value or None
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return value


UNREADABLE = object()  # pydicom could not convert the value either


def expected(elem):
    """A pydicom element's value as medfast gives it."""
    value = _plain(elem.value)
    if elem.VR in ("DS", "IS"):
        parts = value if isinstance(value, list) else [value]
        if any(isinstance(p, str) for p in parts):
            return UNREADABLE  # medfast gives None for what is not a number
        if elem.VR == "IS":  # medfast truncates a fraction, as dcm2niix does
            parts = [None if p is None else int(p) for p in parts]
            return parts[0] if len(parts) == 1 else parts
    if elem.VR == "PN" and isinstance(value, str):
        return value.rstrip("=")  # pydicom leaves out empty trailing groups
    return value


def same(a, b):
    if a == [] and b is None:  # an empty sequence: nothing either way
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _ours(header, ds, tag):
    """medfast's value of `tag`: a private element through its creator."""
    group, element = tag >> 16, tag & 0xFFFF
    creator = ds.get((group, element >> 8)) if group & 1 and element >> 8 else None
    if creator is not None and isinstance(creator.value, str):
        value = header.private(group, creator.value, element & 0xFF)
    else:
        value = header.get(tag)
    if ds[tag].VR == "PN" and isinstance(value, str):
        value = value.rstrip("=")
    return value


def assert_same_level(header, ds, where=""):
    """Same tags in the same order, same value for each, recursing into
    sequence items."""
    ours = header.tags()
    if header.row == -1:
        ours = [t for t in ours if t not in PIXEL_TAGS]
    # A tag twice (a damaged file): pydicom keeps one element, where the
    # first was, with the last one's value; neither value is compared.
    twice = {t for t in ours if ours.count(t) > 1}
    ours = list(dict.fromkeys(ours))
    theirs = [int(t) for t in ds.keys()]
    # Stream order; pydicom moves a misplaced command group (a damaged file).
    if theirs == sorted(theirs):
        assert ours == theirs, where
    else:
        assert sorted(ours) == sorted(theirs), where
    for tag in (t for t in ours if t not in twice):
        try:
            elem = ds[tag]
        except Exception:  # pydicom has no value to compare with
            continue
        if elem.VR == "SQ":
            items = header.get(tag)
            if not elem.value:  # an empty sequence is as good as absent
                assert items in (None, []), f"{where} {tag:08x}"
                continue
            assert isinstance(items, list) and len(items) == len(elem.value), f"{where} {tag:08x}"
            for i, (item, ref) in enumerate(zip(items, elem.value)):
                assert_same_level(item, ref, f"{where} {tag:08x}[{i}]")
            continue
        got, want = _ours(header, ds, tag), expected(elem)
        if want is UNREADABLE:
            continue
        if isinstance(got, list) and got and isinstance(got[0], Header) \
                and elem.VR == "UN" and want[:4] in (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00"):
            # A private sequence pydicom leaves as bytes (implicit VR, not in
            # its dictionary): medfast reads the items; so does pydicom, asked.
            little = want[0] == 0xFE
            items = read_sequence(io.BytesIO(want), True, little, len(want), None)
            assert len(got) == len(items), f"{where} {tag:08x}"
            for i, (item, ref) in enumerate(zip(got, items)):
                assert_same_level(item, ref, f"{where} {tag:08x}[{i}]")
            continue
        assert same(got, want), f"{where} {tag:08x} {elem.VR}: {got!r:.100} != {want!r:.100}"


def pydicom_read(data):
    """pydicom's header of `data` (bytes) and where it stopped; a value of
    the wrong length for its VR is read as bytes (UN), not refused."""
    fp = io.BytesIO(data)
    lenient = pydicom.config.convert_wrong_length_to_UN
    pydicom.config.convert_wrong_length_to_UN = True
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    finally:
        pydicom.config.convert_wrong_length_to_UN = lenient
    return ds, fp.tell()


def pixel_value_offset(data, ds, tell):
    """Where the pixel data value starts, from where pydicom stopped (at the
    pixel data tag), or None when there is none."""
    if len(data) - tell < 8:
        return None
    little = ds.original_encoding[1] is not False
    group, element = struct.unpack(("<" if little else ">") + "HH", data[tell:tell + 4])
    if (group << 16 | element) not in PIXEL_TAGS:
        return None
    implicit = ds.original_encoding[0]
    return tell + (8 if implicit else 12)


def check_file(path, data=None):
    """read_header(path) gives pydicom's values; returns the HeaderFile."""
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
        if str(path).endswith(".gz"):
            data = gzip.decompress(data)
    hfile = read_header(str(path))
    ds, tell = pydicom_read(data)
    assert_same_level(hfile.top, ds)
    whole = pydicom.dcmread(io.BytesIO(data), force=True)
    assert hfile.pixel_tag == next((t for t in PIXEL_TAGS if t in whole), None), str(path)
    if hfile.pixel_offset is not None:  # where pydicom stopped, past the tag
        assert hfile.pixel_offset == pixel_value_offset(data, ds, tell)
    return hfile


def write(tmp_path, data, name="x.dcm"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


# --------------------------------------------------------------------------
# synthetic files written by pydicom


def _item(**elements):
    ds = Dataset()
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def _undefined(ds, keyword):
    """Write the sequence `keyword` and its items with undefined lengths."""
    ds[keyword].is_undefined_length = True
    for item in ds[keyword].value:
        item.is_undefined_length_sequence_item = True


def make_dataset(*, undefined=False, frames=1, charset="ISO_IR 100", name="Müller^Jürgen"):
    """A header with the awkward parts: nested sequences (3 levels, an empty
    one, an empty item), private elements in a block other than 0x10 and a
    private sequence, empty values, multi-values, binary VRs, an odd-length
    OB and, for frames > 1, per-frame functional groups."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = uid.MRImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.2.1125.1.7"
    ds.StudyDate = "20240131"
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.PatientName = name
    ds.PatientID = "ABC"
    ds.PatientBirthDate = ""
    ds.PatientWeight = 71.5
    ds.SliceThickness = "2.5"
    ds.EchoTime = 30.0
    ds.SeriesInstanceUID = "1.2.3.4.6"
    ds.InstanceNumber = 7
    ds.ImagePositionPatient = [-120.5, -99.25, 33.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9998477, -0.0174524]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 4, 3
    ds.PixelSpacing = [0.9375, 0.9375]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1.5"
    ds.add_new(0x00280009, "AT", [0x00200032, 0x00280030])  # FrameIncrementPointer
    ds.add_new(0x00180089, "IS", "")  # empty
    ds.ReferencedImageSequence = [
        _item(ReferencedSOPClassUID=uid.MRImageStorage, ReferencedSOPInstanceUID="1.2.3.9"),
        Dataset(),
        _item(ReferencedSOPInstanceUID="1.2.3.10",
              PurposeOfReferenceCodeSequence=[
                  _item(CodeValue="121311", CodingSchemeDesignator="DCM",
                        CodeMeaning="Localizer",
                        ConceptNameCodeSequence=[_item(CodeValue="x", CodeMeaning="ü")])]),
    ]
    ds.ReferencedStudySequence = []
    ds.RequestAttributesSequence = [_item(RequestedProcedureID="RP1",
                                          ScheduledProcedureStepID="")]
    block = ds.private_block(0x0019, "MEDFAST TEST", create=True)
    block.add_new(0x10, "LO", "private text")
    block.add_new(0x11, "US", [1, 2, 3])
    block.add_new(0x12, "DS", ["1.5", "-2"])
    block.add_new(0x13, "SQ", Sequence([_item(PatientID="in private sq")]))
    block.add_new(0x14, "UN", b"\x00\x01\x02\x03")
    block.add_new(0x15, "FD", [1.0, float("nan")])
    block.add_new(0x16, "OB", b"\x01\x02\x03")  # odd length: padded
    # A known vendor creator in another block: its VRs come from pydicom's
    # private dictionary in implicit VR files.
    ds.add_new(0x20050042, "LO", "Philips MR Imaging DD 001")
    ds.add_new(0x2005420E, "FL", 1.25)   # MRScaleSlope
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.SharedFunctionalGroupsSequence = [_item(
            PixelMeasuresSequence=[_item(PixelSpacing=[0.5, 0.5], SliceThickness=2.0)],
            PlaneOrientationSequence=[_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])])]
        ds.PerFrameFunctionalGroupsSequence = [
            _item(PlanePositionSequence=[_item(ImagePositionPatient=[0.0, 0.0, 2.0 * k])],
                  FrameContentSequence=[_item(InStackPositionNumber=k + 1,
                                              DimensionIndexValues=[1, k + 1])],
                  MREchoSequence=[_item(EffectiveEchoTime=10.0 * (k + 1))])
            for k in range(frames)]
    if undefined:
        for keyword in ("ReferencedImageSequence", "ReferencedStudySequence",
                        "RequestAttributesSequence", "SharedFunctionalGroupsSequence",
                        "PerFrameFunctionalGroupsSequence"):
            if keyword in ds:
                _undefined(ds, keyword)
        _undefined(ds.ReferencedImageSequence[2], "PurposeOfReferenceCodeSequence")
        if frames > 1:
            for item in ds.PerFrameFunctionalGroupsSequence:
                _undefined(item, "PlanePositionSequence")
    ds.PixelData = np.arange(4 * 3 * frames, dtype=np.uint16).tobytes()
    return ds


def to_bytes(ds, syntax, *, layout="part10"):
    """`ds` in `syntax`: Part 10 ('part10'), file meta without the preamble
    ('no-preamble'), or a bare data set ('raw')."""
    fp = io.BytesIO()
    if layout == "raw":
        syntax = uid.UID(syntax)
        ds.save_as(fp, implicit_vr=syntax.is_implicit_VR,
                   little_endian=syntax.is_little_endian, enforce_file_format=False)
        return fp.getvalue()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    ds.preamble = b"\0" * 128 if layout == "part10" else None
    ds.save_as(fp, enforce_file_format=layout == "part10")
    return fp.getvalue()


NATIVE = [uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.ExplicitVRBigEndian]
SYNTAX_IDS = {uid.ImplicitVRLittleEndian: "implicit-LE", uid.ExplicitVRLittleEndian: "explicit-LE",
              uid.ExplicitVRBigEndian: "explicit-BE",
              uid.DeflatedExplicitVRLittleEndian: "deflated"}
PER_FRAME = [("PerFrameFunctionalGroupsSequence", "PlanePositionSequence",
              "ImagePositionPatient"),
             ("PerFrameFunctionalGroupsSequence", "FrameContentSequence",
              "DimensionIndexValues"),
             ("PerFrameFunctionalGroupsSequence", "MREchoSequence", "EffectiveEchoTime")]


def pydicom_per_frame(ds, path):
    out = []
    for frame in ds[path[0]].value:
        item = frame
        for key in path[1:-1]:
            item = item[key].value[0] if key in item and len(item[key].value) else None
            if item is None:
                break
        out.append(expected(item[path[-1]]) if item is not None and path[-1] in item
                   else None)
    return out


@pytest.mark.parametrize("syntax", NATIVE + [uid.DeflatedExplicitVRLittleEndian],
                         ids=SYNTAX_IDS.get)
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
@pytest.mark.parametrize("frames", [1, 3], ids=["single", "multiframe"])
@pytest.mark.parametrize("layout", ["part10", "no-preamble", "raw", "gz"])
def test_synthetic_matches_pydicom(tmp_path, syntax, undefined, frames, layout):
    if layout == "raw" and syntax == uid.DeflatedExplicitVRLittleEndian:
        pytest.skip("a deflated data set needs its file meta")
    ds = make_dataset(undefined=undefined, frames=frames)
    data = to_bytes(ds, syntax, layout="part10" if layout == "gz" else layout)
    path = write(tmp_path, data, "x.dcm.gz" if layout == "gz" else "x.dcm")
    hfile = check_file(path, data)
    top = hfile.top
    # Spot checks, independent of pydicom's reader.
    assert top.get("PatientName") == "Müller^Jürgen"
    assert top.get("ImagePositionPatient") == [-120.5, -99.25, 33.0]
    assert top.get("ImageType") == ["ORIGINAL", "PRIMARY", "M", "ND"]
    assert top.get("InstanceNumber") == 7 and top.get("AccessionNumber") is None
    assert top.get("FrameIncrementPointer") == [0x00200032, 0x00280030]
    assert top.private(0x0019, "MEDFAST TEST", 0x12, vr="DS") == [1.5, -2.0]
    assert top.private(0x2005, "Philips MR Imaging DD 001", 0x0E) == 1.25
    assert top.sequence("ReferencedImageSequence")[2].item("PurposeOfReferenceCodeSequence") \
        .item("ConceptNameCodeSequence").get("CodeMeaning") == "ü"
    assert hfile.gz == (layout == "gz")
    direct = layout in ("part10", "no-preamble") and syntax in NATIVE
    assert (hfile.pixel_offset is not None) == direct
    if direct:
        assert data[hfile.pixel_offset:hfile.pixel_offset + hfile.pixel_length] == ds.PixelData
    if frames > 1:
        ref = pydicom.dcmread(io.BytesIO(data), force=True)
        for per_frame in PER_FRAME:
            assert hfile.item_values(top, per_frame) == pydicom_per_frame(ref, per_frame)
        assert hfile.item_values(top, PER_FRAME[0]) == [[0.0, 0.0, 2.0 * k] for k in range(3)]


@pytest.mark.parametrize("charset, name", [
    ("ISO_IR 192", "Gómez^José=山田^太郎"),
    ("ISO_IR 100", "Müller^Jürgen"),
    ("ISO_IR 144", "Иванов^Иван"),
    ("ISO_IR 6", "Doe^John"),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    (["ISO 2022 IR 100", "ISO 2022 IR 126"], "Müller^Ελληνικά"),
])
def test_character_sets(tmp_path, charset, name):
    ds = make_dataset(charset=charset, name=name, undefined=True)
    data = to_bytes(ds, uid.ExplicitVRLittleEndian)
    hfile = check_file(write(tmp_path, data), data)
    assert hfile.top.get("PatientName") == name


def test_encapsulated_pixel_data_and_icon(tmp_path):
    """A compressed file: encapsulated (undefined-length) Pixel Data, and an
    icon sequence whose item holds encapsulated pixel data too."""
    from pydicom.encaps import encapsulate
    ds = make_dataset(undefined=True)
    del ds.PixelData
    icon = _item(Rows=2, Columns=2, BitsAllocated=8, SamplesPerPixel=1,
                 PhotometricInterpretation="MONOCHROME2")
    icon.add_new(0x7FE00010, "OB", encapsulate([b"\x01\x02\x03\x04"]))
    icon["PixelData"].is_undefined_length = True
    ds.IconImageSequence = [icon]
    _undefined(ds, "IconImageSequence")
    ds.add_new(0x7FE00010, "OB", encapsulate([b"frame one", b"frame two!"]))
    ds["PixelData"].is_undefined_length = True
    data = to_bytes(ds, uid.RLELossless)
    hfile = check_file(write(tmp_path, data), data)
    assert hfile.pixel_length == -1
    assert data[hfile.pixel_offset:hfile.pixel_offset + 4] == b"\xfe\xff\x00\xe0"  # an item
    assert hfile.top.item("IconImageSequence").get("PixelData") == icon.PixelData


def test_header_larger_than_the_first_read(tmp_path):
    """A 300 KiB private element before the pixel data: the header is read
    on, the elements after it and the pixel offset are right."""
    ds = make_dataset()
    big = bytes(range(256)) * 1200
    ds.add_new(0x00430010, "LO", "GEMS_BIG_01")
    ds.add_new(0x00431010, "OB", big)
    ds.add_new(0x00431011, "LO", "after the big one")
    for syntax in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian):
        data = to_bytes(ds, syntax)
        assert len(data) > 4 * 65536
        for name in ("big.dcm", "big.dcm.gz"):
            hfile = check_file(write(tmp_path, data, name), data)
            assert hfile.top.private(0x0043, "GEMS_BIG_01", 0x10, vr="OB") == big
            assert hfile.top.private(0x0043, "GEMS_BIG_01", 0x11, vr="LO") == "after the big one"
            if name == "big.dcm":
                assert data[hfile.pixel_offset:] == ds.PixelData


def test_no_pixel_data_and_empty_data_set(tmp_path):
    ds = make_dataset()
    del ds.PixelData
    data = to_bytes(ds, uid.ExplicitVRLittleEndian)
    assert check_file(write(tmp_path, data), data).pixel_tag is None
    meta_only = part10(b"", uid.ExplicitVRLittleEndian)
    hfile = check_file(write(tmp_path, meta_only, "empty.dcm"), meta_only)
    assert hfile.top.tags() == [] and hfile.pixel_tag is None


# --------------------------------------------------------------------------
# hand-encoded files: what pydicom's writer never produces


def element(tag, vr, value, encoding):
    """One element; encoding "ile" (implicit LE), "ele" or "ebe"."""
    order = ">" if encoding == "ebe" else "<"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if encoding == "ile":
        return head + struct.pack(order + "L", len(value)) + value
    if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"):
        return head + vr.encode() + b"\0\0" + struct.pack(order + "L", len(value)) + value
    return head + vr.encode() + struct.pack(order + "H", len(value)) + value


def delimiter(tag, order="<"):
    return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, 0)


def undefined_element(tag, vr, items, encoding):
    """An undefined-length element holding `items` (encoded) and the
    Sequence Delimitation Item."""
    order = ">" if encoding == "ebe" else "<"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    head += b"\xff\xff\xff\xff" if encoding == "ile" else vr.encode() + b"\0\0\xff\xff\xff\xff"
    return head + items + delimiter(0xFFFEE0DD, order)


def item(content, order="<", undefined=False):
    if undefined:
        return (struct.pack(order + "HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + content
                + delimiter(0xFFFEE00D, order))
    return struct.pack(order + "HHL", 0xFFFE, 0xE000, len(content)) + content


def part10(dataset, syntax, *, preamble=True):
    """Preamble, 'DICM' and a file meta group before `dataset`."""
    def ui(value):
        value = value.encode()
        return value + b"\0" * (len(value) % 2)
    meta = (element(0x00020001, "OB", b"\0\1", "ele")
            + element(0x00020002, "UI", ui(uid.MRImageStorage), "ele")
            + element(0x00020003, "UI", ui("1.2.3"), "ele")
            + element(0x00020010, "UI", ui(syntax), "ele"))
    meta = element(0x00020000, "UL", struct.pack("<L", len(meta)), "ele") + meta
    return (b"\0" * 128 + b"DICM" if preamble else b"") + meta + dataset


def test_odd_lengths_and_empty_values(tmp_path):
    ds = (element(0x00080005, "CS", b"ISO_IR 100", "ele")
          + element(0x00080020, "DA", b"", "ele")
          + element(0x00100010, "PN", b"Doe^Joh", "ele")        # odd length
          + element(0x00100020, "LO", b"X", "ele")
          + element(0x00181030, "LO", b"", "ele")
          + element(0x00280010, "US", b"\x04\x00", "ele")
          + element(0x00280011, "US", b"", "ele")
          + element(0x00280030, "DS", b"0.5\\0.75", "ele")      # odd
          + element(0x00200037, "DS", b"1\\0\\\\0\\1\\0", "ele")  # an empty part
          + element(0x00291001, "OB", b"\x01\x02\x03", "ele")
          + element(0x7FE00010, "OW", b"\0" * 8, "ele"))
    data = part10(ds, uid.ExplicitVRLittleEndian)
    top = check_file(write(tmp_path, data), data).top
    assert top.get("PatientName") == "Doe^Joh" and top.get("PixelSpacing") == [0.5, 0.75]
    assert top.get("StudyDate") is None and top.get("Columns") is None
    assert top.get("ImageOrientationPatient") == [1.0, 0.0, None, 0.0, 1.0, 0.0]


def test_un_of_undefined_length_holds_implicit_items(tmp_path):
    """Explicit VR file, a private UN element of undefined length whose items
    are implicit VR (PS3.5 6.2.2), nested: pydicom reads a sequence."""
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
    top = check_file(write(tmp_path, data), data).top
    items = top.private(0x0029, "MEDFAST TEST", 0x10)
    assert [i.get("PatientID") for i in items] == ["ID42"] * 3
    assert items[1].item("ReferencedImageSequence").get("ReferencedSOPInstanceUID") == "1.2"
    assert top.get((0x0030, 0x0010)) == "after"


@pytest.mark.parametrize("encoding", ["ile", "ele", "ebe"])
def test_private_undefined_length_sequences(tmp_path, encoding):
    """Private sequences of undefined length, nested, with empty items
    (implicit VR: recognised by the item tag that starts the value)."""
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
    top = check_file(write(tmp_path, data), data).top
    items = top.get(0x00091001)
    assert len(items) == 3 and items[0].get(0x00091002)[0].get("PatientName") == "Deep"
    assert top.get("PatientName") == "Top"


@pytest.mark.parametrize("encoding", ["ile", "ele", "ebe"])
def test_raw_data_set_encoding_is_guessed_like_pydicom(tmp_path, encoding):
    ds = (element(0x00080005, "CS", b"ISO_IR 100", encoding)
          + element(0x00080060, "CS", b"MR", encoding)
          + element(0x00100010, "PN", b"Raw^Data", encoding)
          + element(0x7FE00010, "OW", b"\0\0", encoding))
    top = check_file(write(tmp_path, ds), ds).top
    assert top.get("Modality") == "MR" and top.get("PatientName") == "Raw^Data"


def _nested(depth):
    """`depth` undefined-length sequences, each in an undefined-length item
    of the one above."""
    content = element(0x00100010, "PN", b"Doe ", "ele")
    for _ in range(depth):
        content = undefined_element(0x00081140, "SQ", item(content, undefined=True), "ele")
    return content


def test_nested_sequences(tmp_path):
    data = part10(_nested(20) + element(0x7FE00010, "OW", b"\0\0", "ele"),
                  uid.ExplicitVRLittleEndian)
    header = check_file(write(tmp_path, data), data).top
    for _ in range(20):
        header = header.item("ReferencedImageSequence")
    assert header.get("PatientName") == "Doe"
    # Deeper than the walker follows: refused, not a crash.
    deep = part10(_nested(200), uid.ExplicitVRLittleEndian)
    with pytest.raises(NotDicomError, match="nested too deeply"):
        read_header(str(write(tmp_path, deep, "deep.dcm")))


@pytest.mark.parametrize("case", ["empty", "only preamble", "text", "unknown VR",
                                  "item tag at top level"])
def test_not_dicom_is_refused(tmp_path, case):
    name = element(0x00100010, "PN", b"Doe ", "ele")
    data = {
        "empty": b"",
        "only preamble": b"\0" * 128 + b"DICM",
        "text": b"this is not DICOM at all" * 10,
        "unknown VR": part10(name + element(0x00100020, "XX", b"ab", "ele"),
                             uid.ExplicitVRLittleEndian),
        "item tag at top level": part10(name + item(b""), uid.ExplicitVRLittleEndian),
    }[case]
    path = write(tmp_path, data)
    try:
        hfile = read_header(str(path))
    except NotDicomError as exc:
        assert str(exc)
        return
    # "only preamble": an empty data set, as pydicom reads it.
    assert case == "only preamble" and hfile.top.tags() == []


def test_data_set_encoded_against_its_transfer_syntax_is_read_as_written(tmp_path):
    """Implicit VR data under an explicit VR transfer syntax (some secondary
    captures): read as written, as pydicom (with a warning) and dcm2niix do."""
    path = write(tmp_path, part10(element(0x00100010, "PN", b"Doe ", "ile")
                                  + element(0x00100020, "LO", b"ID", "ile"),
                                  uid.ExplicitVRLittleEndian))
    hfile = read_header(str(path))
    assert hfile.implicit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(str(path), force=True)
    assert hfile.top.get("PatientName") == str(ds.PatientName) == "Doe"
    assert hfile.top.get("PatientID") == ds.PatientID == "ID"


def test_missing_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(NotDicomError, match="cannot read"):
        read_header(str(tmp_path / "missing.dcm"))
    with pytest.raises(NotDicomError):
        read_header(str(tmp_path))  # a folder
    (tmp_path / "bad.dcm.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(300))
    with pytest.raises(NotDicomError):
        read_header(str(tmp_path / "bad.dcm.gz"))


# --------------------------------------------------------------------------
# damaged input: agree with pydicom or refuse, never crash or hang


def _fuzz_samples():
    samples = [to_bytes(make_dataset(undefined=True, frames=2), s) for s in NATIVE]
    samples.append(to_bytes(make_dataset(frames=2), uid.ExplicitVRLittleEndian, layout="raw"))
    samples.append(part10(_nested(3) + element(0x7FE00010, "OW", b"\0\0", "ele"),
                          uid.ExplicitVRLittleEndian))
    root = qa_root()
    if root is not None:
        for pattern in ("nih/In/20180918GE/mr_0004/*.dcm", "enhanced/In/Siemens/XA10/*.dcm",
                        "transfer_syntax/In/2.dcm"):
            found = sorted(root.glob(pattern))
            if found:  # the header and the start of the pixel data
                data = found[0].read_bytes()
                samples.append(data[:pydicom_read(data)[1] + 64])
    return samples


FUZZ = _fuzz_samples()
# Where each sample's header ends (pydicom stops there), pixel tag included.
FUZZ_HEADER = [min(pydicom_read(data)[1] + 12, len(data)) for data in FUZZ]


def _decode_all(header):
    """Every value of a header, decoded (nothing may raise)."""
    for tag in header.tags():
        value = header.get(tag)
        if isinstance(value, list) and value and isinstance(value[0], Header):
            for item in value:
                _decode_all(item)


def agree_or_refuse(path, data):
    """The property for damaged input: NotDicomError, or pydicom's values
    (where pydicom itself fails, e.g. on a garbled character set, every
    value must at least decode)."""
    start = time.perf_counter()
    try:
        hfile = read_header(str(path))
    except NotDicomError:
        return None
    finally:
        assert time.perf_counter() - start < 2.0, "read_header took too long"
    try:
        ds, _ = pydicom_read(data)
    except Exception:
        _decode_all(hfile.top)
        return hfile
    assert_same_level(hfile.top, ds)
    return hfile


def test_cut_at_many_offsets(tmp_path):
    """Every sample cut at every byte of its first 200, at 100 random places
    and at the end of 20 top-level elements (a shorter header, which pydicom
    must read alike): the same values as pydicom, or a refusal."""
    path = tmp_path / "cut.dcm"
    rng = np.random.default_rng(1)
    outcomes = []
    for data in FUZZ:
        path.write_bytes(data)
        table = read_header(str(path)).table
        ends = sorted({table.row(r)[3] + table.row(r)[4] for r in table.children(-1)})
        ends = rng.choice(ends, min(20, len(ends)), replace=False).tolist()
        cuts = set(range(min(200, len(data)))) | set(rng.integers(0, len(data), 100).tolist())
        for cut in sorted(cuts | {e for e in ends if 0 < e < len(data)}):
            path.write_bytes(data[:cut])
            outcomes.append(agree_or_refuse(path, data[:cut]) is not None)
    assert sum(outcomes) > 100 and not all(outcomes)


damaged = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@damaged
@given(which=st.sampled_from(range(len(FUZZ))), where=st.floats(0, 1),
       byte=st.integers(0, 255), count=st.integers(1, 4))
def test_changed_header_bytes_agree_or_refuse(tmp_path, which, where, byte, count):
    data = bytearray(FUZZ[which])
    pos = int(where * (FUZZ_HEADER[which] - count))
    data[pos:pos + count] = bytes([byte]) * count
    agree_or_refuse(write(tmp_path, bytes(data), "changed.dcm"), bytes(data))


@damaged
@given(which=st.sampled_from(range(len(FUZZ))), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=8))
def test_flipped_bits_agree_or_refuse(tmp_path, which, flips):
    data = bytearray(FUZZ[which])
    for where, bit in flips:
        data[int(where * (FUZZ_HEADER[which] - 1))] ^= 1 << bit
    agree_or_refuse(write(tmp_path, bytes(data), "flipped.dcm"), bytes(data))


@damaged
@given(garbage=st.binary(max_size=600), dicm=st.booleans())
def test_noise_agrees_or_is_refused(tmp_path, garbage, dicm):
    data = (b"\0" * 128 + b"DICM" + garbage) if dicm else garbage
    agree_or_refuse(write(tmp_path, data, "noise.dcm"), data)


def test_random_bytes_after_dicm_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for size in (7, 131, 1000, 50000, 300000):
        for prefix in (b"", b"\0" * 128 + b"DICM"):
            data = prefix + rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            with pytest.raises(NotDicomError):
                read_header(str(write(tmp_path, data, f"r{size}.dcm")))


def test_deflated_stream_cut_short_is_refused(tmp_path):
    data = to_bytes(make_dataset(), uid.DeflatedExplicitVRLittleEndian)
    for cut in range(len(data) - 1, 300, -37):
        try:
            read_header(str(write(tmp_path, data[:cut], "deflated.dcm")))
        except NotDicomError:
            pass
    packed = bytearray(data)
    packed[400] ^= 0xFF  # corrupt the deflate stream
    try:
        agree_or_refuse(write(tmp_path, bytes(packed), "bad.dcm"), bytes(packed))
    except zlib.error:  # pydicom's inflate fails where ours refused
        pass


# --------------------------------------------------------------------------
# the real validation sets


def _qa_files():
    root = qa_root()
    if root is None:
        return []
    return sorted(p for p in root.glob("*/In/**/*") if p.is_file())


QA_FILES = _qa_files()
QA_FOLDERS = sorted({p.parent for p in QA_FILES})

KEYWORDS = ("SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate",
            "StudyTime", "Modality", "Manufacturer", "SeriesDescription", "PatientName",
            "PatientID", "ProtocolName", "SequenceName", "SliceThickness", "RepetitionTime",
            "EchoTime", "EchoNumbers", "FlipAngle", "MagneticFieldStrength",
            "SpacingBetweenSlices", "AcquisitionNumber", "InstanceNumber", "SeriesNumber",
            "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
            "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "RescaleSlope",
            "RescaleIntercept", "AcquisitionTime", "NumberOfFrames", "DiffusionBValue",
            "TemporalPositionIdentifier", "InPlanePhaseEncodingDirection",
            "SoftwareVersions", "ImageComments", "WindowCenter")
PRIVATE = ((0x2005, "Philips MR Imaging DD 001", 0x0E), (0x2001, "Philips Imaging DD 001", 0x03),
           (0x0029, "SIEMENS CSA HEADER", 0x10), (0x0019, "SIEMENS MR HEADER", 0x0A),
           (0x0043, "GEMS_PARM_01", 0x39), (0x0043, "GEMS_PARM_01", 0x2F),
           (0x0019, "GEMS_ACQU_01", 0x9C), (0x0021, "GEMS_RELA_01", 0x4F),
           (0x0065, "Uni-Imaging Medical Systems", 0x50))


# Files compared per folder (evenly spaced, the first and last included):
# pydicom takes up to 0.1 s per file.
QA_PER_FOLDER = 4


@pytest.mark.skipif(not QA_FOLDERS, reason="DICOM validation data not found")
@pytest.mark.parametrize("folder", QA_FOLDERS,
                         ids=[str(f.relative_to(qa_root())) for f in QA_FOLDERS]
                         if QA_FOLDERS else None)
def test_qa_files_match_pydicom(folder):
    """Every folder, up to 10 files: the keywords above and the vendors'
    private elements equal pydicom's; the first DICOM file: every element at
    every level, and per-frame values.  What pydicom cannot read as DICOM
    is refused."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    picked = sorted(set(np.linspace(0, len(files) - 1, QA_PER_FOLDER).round().astype(int)))
    checked = 0
    for path in (files[i] for i in picked):
        try:
            hfile = read_header(str(path))
        except NotDicomError:
            with pytest.raises(Exception):  # noqa: B017 - pydicom raises many types
                pydicom.dcmread(str(path), stop_before_pixels=True)
            continue
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        if not checked:
            assert_same_level(hfile.top, ds, str(path))
            if "PerFrameFunctionalGroupsSequence" in ds:
                for per_frame in PER_FRAME + [(
                        "PerFrameFunctionalGroupsSequence", "PixelValueTransformationSequence",
                        "RescaleSlope")]:
                    assert hfile.item_values(hfile.top, per_frame) == \
                        pydicom_per_frame(ds, per_frame), (path, per_frame)
        for keyword in KEYWORDS:
            want = expected(ds[keyword]) if keyword in ds else None
            assert want is UNREADABLE or same(hfile.top.get(keyword), want), (path, keyword)
        for group, creator, element in PRIVATE:
            try:
                block = ds.private_block(group, creator)
                want = expected(block[element]) if block.get_tag(element) in ds else None
            except KeyError:
                want = None
            assert want is UNREADABLE or same(hfile.top.private(group, creator, element), want), \
                (path, creator, element)
        checked += 1
    assert checked or not any(p.suffix == ".dcm" for p in folder.iterdir())

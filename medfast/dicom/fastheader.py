"""Read a DICOM header about ten times faster than pydicom, with the same result.

:func:`read_header_fast` returns what ``pydicom.dcmread(fp,
stop_before_pixels=True)`` returns: a ``FileDataset`` whose top-level
elements are undecoded ``RawDataElement`` tuples, which pydicom converts
when they are first accessed.  The element stream is walked by the compiled
``medfast._dicomscan`` (one flat loop, no Python call per element beyond
building the tuple); this module sets up the encoding exactly as pydicom's
``read_partial`` does and hands every unusual case back to pydicom by
raising :class:`FastPathUnavailable`.

The one difference from pydicom, invisible through element values: an
undefined-length sequence of explicit VR items is kept raw (its items'
bytes, without the final delimiter) and decoded on first access, as pydicom
does for defined-length sequences, where pydicom's reader decodes it at
once.  The element's ``is_undefined_length`` is True either way, but the
decoded ``Sequence.is_undefined_length`` attribute is False (pydicom's
writer does not use it).  Sequences with implicit VR items are decoded at
once, by pydicom, as pydicom's reader does (see ``_resolve_undefined``).
"""
import io
import os

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding, python_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filereader import read_sequence
import pydicom.uid as _uid
from pydicom.values import convert_string, converters

from medfast import _dicomscan

try:  # the dictionary lookup pydicom's own reader uses
    from pydicom.datadict import _dictionary_vr_fast as _dictionary_vr
except ImportError:  # pragma: no cover - other pydicom versions
    from pydicom.datadict import dictionary_VR as _dictionary_vr

__all__ = ["FastPathUnavailable", "read_header_fast"]

_IMPLICIT_LE = (True, True)
_ENCODINGS = {  # transfer syntax -> (is_implicit_VR, is_little_endian)
    _uid.ImplicitVRLittleEndian: (True, True),
    _uid.ExplicitVRLittleEndian: (False, True),
    _uid.ExplicitVRBigEndian: (False, False),
}
_CHARSET = 0x00080005
_TRANSFER_SYNTAX = 0x00020010
_ITEM_LE, _ITEM_BE = b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00"
_empties_cache = {}


class FastPathUnavailable(ValueError):
    """The fast reader does not handle this file: read it with pydicom.

    Raised for deflated or unknown encodings and for anything unusual
    (truncated data, lengths that overrun the file, unknown VRs, malformed
    items), so that pydicom's own reader decides what such a file means.
    """


def _constructor(cls, make):
    """A fast equivalent of ``make(elements)``, which builds a pydicom data
    set of class `cls`, or None.

    pydicom's ``__init__`` sends about 15 constant attributes through
    ``Dataset.__setattr__`` (a keyword lookup each), which costs as much as
    scanning 100 elements; instead copy the attributes of an instance built
    once, with fresh copies of its mutable containers.  Used only if that
    reproduces ``make(elements)`` exactly (checked once, here), so a pydicom
    that sets up its data sets differently keeps its own constructor.
    """
    try:
        reference = make({})
        template = dict(vars(reference))
        fresh = [k for k, v in template.items()
                 if isinstance(v, (dict, list, set)) and k != "_dict"]

        def build(elements):
            obj = cls.__new__(cls)
            attrs = obj.__dict__
            attrs.update(template)
            for key in fresh:
                attrs[key] = template[key].copy()
            attrs["_dict"] = elements
            return obj

        probe = build({})
        same = vars(probe).keys() == vars(reference).keys() and all(
            v == vars(reference)[k] for k, v in vars(probe).items())
        return build if same else None
    except Exception:  # pragma: no cover - an unexpected pydicom
        return None


_file_datasets = {}  # (implicit, little, named) -> fast FileDataset constructor


def _file_dataset(elements, preamble, file_meta, implicit, little, filename):
    """``FileDataset(filename, elements, preamble, file_meta, implicit,
    little)`` for a file name (str) or None, built quickly."""
    key = (implicit, little, filename is not None)
    if key not in _file_datasets:
        # "" stands for any name: FileDataset keeps it and, as it is empty,
        # leaves the timestamp to be set below.
        name = None if filename is None else ""
        _file_datasets[key] = _constructor(FileDataset, lambda elements: FileDataset(
            name, elements, None, None, implicit, little))
    build = _file_datasets[key]
    if build is None or not (filename is None or isinstance(filename, str)):
        return FileDataset(filename, elements, preamble, file_meta, implicit, little)
    ds = build(elements)
    attrs = ds.__dict__
    attrs["preamble"] = preamble
    attrs["file_meta"] = file_meta
    if filename:  # as FileDataset.__init__ does for a path
        attrs["filename"] = filename
        if os.path.exists(filename):
            attrs["timestamp"] = os.stat(filename).st_mtime
    return ds


def _file_meta_dataset(elements):
    """``FileMetaDataset(elements)`` (all of group 0x0002), built quickly."""
    global _file_meta_build
    if _file_meta_build is False:
        _file_meta_build = _constructor(FileMetaDataset, FileMetaDataset)
    if _file_meta_build is None:
        return FileMetaDataset(elements)
    return _file_meta_build(elements)


_file_meta_build = False


def _empties():
    """Raw value of an empty element for each VR index (as pydicom's reader
    stores it; depends on ``config.use_none_as_empty_text_VR_value``)."""
    key = config.use_none_as_empty_text_VR_value
    table = _empties_cache.get(key)
    if table is None:
        table = [empty_value_for_VR(vr, raw=True) for vr in _dicomscan.VR_NAMES]
        _empties_cache[key] = table
    return table


def _scan(data, pos, implicit, little, stop, empties):
    """Run the compiled scanner; return ({tag: raw}, end position, status)."""
    elements = {}
    status, end, undefined = _dicomscan.scan_elements(
        data, pos, implicit, little, stop, elements, empties, RawDataElement)
    if status < 0:
        raise FastPathUnavailable(
            f"{_dicomscan.STATUS[status]} at byte {end}")
    for tag, implicit_items in undefined:
        _resolve_undefined(elements, tag, implicit_items, data, little)
    return elements, end, status


def _resolve_undefined(elements, tag, implicit_items, data, little):
    """An undefined-length element is a sequence to pydicom when its VR is
    SQ, UN (``infer_sq_for_un_vr``) or, if implicit, the dictionary VR is SQ
    or, for an unknown tag, its value starts with an item; see pydicom's
    ``data_element_generator``.  Anything else (encapsulated data outside
    Pixel Data) goes back to pydicom.

    The sequence stays raw (decoded on access) unless some item is implicit
    VR: then pydicom's reader decodes it at once, which differs from a later
    decoding in one respect, the Pixel Representation used to resolve
    'US or SS' elements inside the items; so decode it now, the same way."""
    raw = elements[tag]
    vr = raw.VR
    if vr == "UN" and config.settings.infer_sq_for_un_vr:
        vr = "SQ"
    if vr is None or (vr == "UN" and config.replace_un_with_known_vr):
        try:
            vr = _dictionary_vr(tag)
        except KeyError:
            first = data[raw.value_tell:raw.value_tell + 4]
            if first == (_ITEM_LE if little else _ITEM_BE):
                vr = "SQ"
    if vr != "SQ":
        raise FastPathUnavailable(
            f"undefined-length element {tag} that is not a sequence")
    if not implicit_items:
        elements[tag] = raw._replace(VR="SQ")
        return
    try:
        # The encoding pydicom's generator holds at this element: from a
        # Specific Character Set read before it, else the default.
        encoding = default_encoding
        charset = elements.get(_CHARSET)
        if charset is not None and charset.value_tell < raw.value_tell:
            encoding = convert_encodings(convert_string(charset.value or b"", little))
        end = raw.value_tell + len(raw.value) + 8  # with the delimiter
        fp = io.BytesIO(data[:end])  # file positions as in the file
        fp.seek(raw.value_tell)
        seq = read_sequence(fp, raw.is_implicit_VR, little, 0xFFFFFFFF, encoding)
    except Exception as exc:  # pydicom's reader would fail the same way
        raise FastPathUnavailable(f"unreadable sequence {tag} ({exc})") from None
    elements[tag] = DataElement(tag, vr, seq, raw.value_tell, is_undefined_length=True)


def _guess_encoding(data, pos):
    """pydicom's guess for a data set without a Transfer Syntax UID: explicit
    VR when bytes 4-5 are a known VR, big endian when the first group then
    reads as >= 1024 in little endian."""
    if len(data) - pos < 6:
        raise FastPathUnavailable("too short to guess the encoding")
    vr = bytes(data[pos + 4:pos + 6]).decode(default_encoding, "replace")
    if vr not in converters:
        return True, True
    return False, int.from_bytes(data[pos:pos + 2], "little") < 1024


def read_header_fast(data, *, filename=None):
    """Parse a DICOM header from the file's bytes, stopping before the pixels.

    Returns the same data set as ``pydicom.dcmread(fp,
    stop_before_pixels=True, force=True)``: every element before Pixel Data
    (7FE0,0010), Float Pixel Data (7FE0,0008) or Double Float Pixel Data
    (7FE0,0009) as an undecoded ``RawDataElement`` that pydicom converts on
    access, the file meta group in ``.file_meta`` and the encoding state set
    as pydicom's ``read_partial`` sets it.

    Parameters
    ----------
    data : bytes-like
        The whole file (Part 10 with the 128-byte preamble and 'DICM', or a
        raw data set starting at byte 0), already read into memory.
    filename : str or os.PathLike, optional
        The file's path, kept as the data set's ``filename`` (with its
        modification time as ``timestamp``), as ``dcmread`` does for a path
        or an open file.

    Returns
    -------
    dataset : pydicom.dataset.FileDataset
        The header.
    pixel_offset : int or None
        Offset in `data` of the pixel data element's tag; None when the data
        set has no pixel data.

    Raises
    ------
    FastPathUnavailable
        When the file needs pydicom's reader: deflated or private transfer
        syntaxes, Command Set (0000,eeee) elements, an encoding that differs
        from the one declared, and any truncated or malformed data (bad
        lengths, unknown VRs, broken items).  Never any other exception.
    """
    try:
        mv = memoryview(data).cast("B")
    except TypeError as exc:
        raise FastPathUnavailable(f"not a bytes-like object ({exc})") from None
    empties = _empties()
    n = len(mv)
    if n >= 132 and mv[128:132] == b"DICM":
        preamble, pos = bytes(mv[:128]), 132
    else:  # pydicom with force=True: a raw data set from byte 0
        preamble, pos = None, 0

    # File meta: explicit VR little endian, every element of group 0x0002.
    meta, pos, _ = _scan(mv, pos, False, True, _dicomscan.STOP_GROUP_CHANGE, empties)
    file_meta = _file_meta_dataset(meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    if n - pos >= 8 and mv[pos] == 0 and mv[pos + 1] == 0:
        raise FastPathUnavailable("Command Set (group 0x0000) elements")

    syntax = _transfer_syntax(file_meta)
    if pos == n:
        implicit, little = _IMPLICIT_LE
    elif syntax is None:
        implicit, little = _guess_encoding(mv, pos)
    elif syntax in _ENCODINGS:
        implicit, little = _ENCODINGS[syntax]
    elif (syntax == _uid.DeflatedExplicitVRLittleEndian
          or syntax in _uid.PrivateTransferSyntaxes):
        raise FastPathUnavailable(f"transfer syntax {syntax} needs pydicom")
    else:  # encapsulated (JPEG, RLE, ...): explicit VR little endian header
        implicit, little = False, True
    if n - pos >= 6:
        # pydicom checks the first VR and switches encoding (with a warning)
        # when it does not match the transfer syntax: leave that to pydicom.
        looks_implicit = not (0x40 < mv[pos + 4] < 0x5B and 0x40 < mv[pos + 5] < 0x5B)
        if looks_implicit != implicit:
            raise FastPathUnavailable("encoding differs from the transfer syntax")

    elements, end, status = _scan(mv, pos, implicit, little,
                                  _dicomscan.STOP_PIXEL_DATA, empties)
    if not elements and not meta:
        raise FastPathUnavailable("no data elements")
    ds = _file_dataset(elements, preamble, file_meta, implicit, little, filename)
    ds.set_original_encoding(implicit, little, _original_charset(ds))
    return ds, (end if status == _dicomscan.STATUS_STOP else None)


def _transfer_syntax(file_meta):
    """``file_meta.get("TransferSyntaxUID")``, as read_partial asks for it;
    the common native syntaxes are recognised from the raw bytes (decoding
    the element costs as much as scanning 80 elements)."""
    raw = file_meta._dict.get(_TRANSFER_SYNTAX)
    if type(raw) is RawDataElement and raw.VR == "UI" and raw.value:
        # convert_UI and UID(): strip trailing NULs and spaces, then blanks
        text = raw.value.decode(default_encoding).rstrip("\0 ").strip()
        if text in _ENCODINGS:
            return text
    try:
        syntax = file_meta.get("TransferSyntaxUID")
    except Exception as exc:  # a malformed UID value: pydicom decides
        raise FastPathUnavailable(f"unreadable Transfer Syntax UID ({exc})") from None
    if syntax is not None and not isinstance(syntax, str):  # e.g. multi-valued
        raise FastPathUnavailable(f"odd Transfer Syntax UID {syntax!r}")
    return syntax


_charsets = {}  # (VR, raw value) of (0008,0005) -> pydicom's encodings


def _original_charset(ds):
    """``ds._character_set``, what read_partial stores as the original
    character set, from (0008,0005).  Computed by pydicom once per distinct
    raw value (decoding the element costs as much as scanning 60 elements)
    when every term is a known character set, so that pydicom still warns
    about unknown ones every time."""
    raw = ds._dict.get(_CHARSET)
    key = (raw.VR, raw.value) if type(raw) is RawDataElement else None
    cached = _charsets.get(key) if key is not None else None
    if cached is not None:
        return list(cached) if isinstance(cached, list) else cached
    try:
        charset = ds._character_set  # decodes (0008,0005) in place
    except Exception as exc:  # an unusable Specific Character Set
        raise FastPathUnavailable(f"unreadable Specific Character Set ({exc})") from None
    if key is not None and len(_charsets) < 256:
        value = ds._dict[_CHARSET].value
        names = [value] if isinstance(value, str) else list(value or ())
        if names and all(name in python_encoding for name in names):
            _charsets[key] = list(charset) if isinstance(charset, list) else charset
    return charset

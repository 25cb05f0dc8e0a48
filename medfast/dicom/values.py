"""Read header values straight from their raw bytes.

pydicom converts an element the first time it is read (value objects,
validation), which costs more than parsing the whole header when a series
has many small files.  The few values the assembly needs (numbers, strings)
are decoded here from the raw element; anything unusual goes through
pydicom's own conversion, so results are the same.
"""
from functools import lru_cache
import struct

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement

_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM",
             "UC", "UI", "UR", "UT"}
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


@lru_cache(maxsize=None)
def _tag_vr(keyword):
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag)


def _raw(ds, keyword):
    """(raw element or converted element, dictionary VR), or (None, VR)."""
    tag, vr = _tag_vr(keyword)
    try:
        elem = ds.get_item(tag)
    except KeyError:
        return None, vr
    return elem, vr


def _converted(ds, keyword):
    value = ds.get(keyword)
    return None if value is None or value == "" else value


def get(ds, keyword):
    """An element's value as plain Python: str, int, float, or a list of
    them for multi-valued elements; None when absent or empty.

    Parameters
    ----------
    ds : pydicom.Dataset
    keyword : str
        A standard DICOM keyword (e.g. ``'ImagePositionPatient'``).
    """
    elem, vr = _raw(ds, keyword)
    if elem is None:
        return None
    if not isinstance(elem, RawDataElement) or elem.value is None:
        return _plain(_converted(ds, keyword))
    raw = elem.value
    if not raw:
        return None
    vr = elem.VR or vr
    try:
        if vr in ("DS", "IS"):
            parts = [float(p) if vr == "DS" else int(p) for p in raw.split(b"\\")]
            return parts[0] if len(parts) == 1 else parts
        if vr in _TEXT_VRS:
            text = raw.decode("ascii").rstrip("\0 ").strip()
            if not text:
                return None
            parts = text.split("\\") if vr not in ("LT", "ST", "UT") else [text]
            return parts[0] if len(parts) == 1 else parts
        if vr in _BINARY:
            code = _BINARY[vr]
            count = len(raw) // struct.calcsize(code)
            parts = list(struct.unpack(("<" if elem.is_little_endian else ">")
                                       + code * count, raw[:count * struct.calcsize(code)]))
            return parts[0] if len(parts) == 1 else parts
    except (ValueError, UnicodeDecodeError, struct.error):
        pass  # unusual bytes (character sets, padding): pydicom decides
    return _plain(_converted(ds, keyword))


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        out = [_plain(v) for v in value]
        return out[0] if len(out) == 1 else out
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return str(value)

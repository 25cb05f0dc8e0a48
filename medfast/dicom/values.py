"""Small conversions of decoded header values (numbers, vectors, times,
vendor names), shared by the slices, vendors and sidecar modules.

Header values arrive as :meth:`medfast.dicom.header.Header.get` returns
them (str, int, float, bytes or lists of them); a value that does not
convert reads as None: a corrupt field is as good as absent.
"""
import datetime
import math
import re

import numpy as np

# Manufacturer (0008,0070) -> dcm2niix's name, by the first letters as
# dcm2niix matches them.
_MANUFACTURERS = (("SI", "Siemens"), ("GE", "GE"), ("HI", "Hitachi"), ("ME", "Mediso"),
                  ("PH", "Philips"), ("TO", "Toshiba"), ("CA", "Canon"), ("UI", "UIH"),
                  ("UNITED", "UIH"), ("BR", "Bruker"))


def number(value, kind=float):
    """A finite number from a value (the first of several), or None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None or isinstance(value, (bytes, bytearray)):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(out):
        return None
    if kind is int:
        return int(out) if out == int(out) else None
    return out


def floats(value, n):
    """An (n,) float array of finite values, or None."""
    if value is None:
        return None
    if not isinstance(value, list):
        value = [value]
    if len(value) != n:
        return None
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if not all(map(math.isfinite, values)):
        return None
    return np.array(values)


def short_manufacturer(value):
    """dcm2niix's vendor name ('Siemens', 'GE', 'Philips', 'Canon', 'UIH'...)
    from (0008,0070), the text itself when unknown, '' when absent."""
    text = str(value[0] if isinstance(value, list) else value or "").strip()
    upper = text.upper()
    for prefix, name in _MANUFACTURERS:
        if upper.startswith(prefix):
            return name
    return text


def tm_seconds(value):
    """A DICOM TM value (HHMMSS.frac, or HH:MM:SS) in seconds after
    midnight, or None."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).replace(":", "").strip()
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d*)?", text)
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    total = int(hours) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    if fraction and len(fraction) > 1:
        total += float(fraction)
    return float(total)


_EPOCH = datetime.date(1970, 1, 1).toordinal()


def _day(date):
    """Days since 1970-01-01 of a DA value (YYYYMMDD), or None."""
    text = str(date or "").strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8])).toordinal() - _EPOCH
    except ValueError:
        return None


def datetime_seconds(date_or_dt, time=None):
    """Seconds since 1970-01-01 of a DT value, or of a DA and a TM value;
    seconds after midnight when the date is missing; None when the time is
    missing or malformed."""
    if time is None and date_or_dt is not None:
        text = re.split(r"[+-]", str(date_or_dt).strip(), maxsplit=1)[0]  # UTC offset
        date_or_dt, time = text[:8], text[8:] or "000000"
    seconds = tm_seconds(time)
    if seconds is None:
        return None
    day = _day(date_or_dt)
    return seconds if day is None else day * 86400.0 + seconds


def acquisition_seconds(header):
    """When an image was acquired: AcquisitionDateTime, else AcquisitionDate
    and AcquisitionTime (seconds, see :func:`datetime_seconds`), or None."""
    stamp = header.get("AcquisitionDateTime")
    if stamp is not None:
        out = datetime_seconds(stamp)
        if out is not None:
            return out
    time = header.get("AcquisitionTime")
    return None if time is None else datetime_seconds(header.get("AcquisitionDate"), time)


def date_of(seconds):
    """The YYYYMMDD date of seconds since 1970-01-01 (None for seconds
    after midnight of an unknown day)."""
    if seconds < 86400:
        return None
    return datetime.date.fromordinal(int(seconds // 86400) + _EPOCH).strftime("%Y%m%d")


def clock(seconds):
    """Seconds (after midnight, or since 1970-01-01) -> 'HH:MM:SS.ffffff'."""
    micro = int(round((seconds % 86400) * 1e6))
    hours, micro = divmod(micro, 3600 * 10**6)
    minutes, micro = divmod(micro, 60 * 10**6)
    return f"{hours:02d}:{minutes:02d}:{micro / 1e6:09.6f}"


def json_number(value):
    found = number(value)
    if found is None:
        return None
    return int(found) if found.is_integer() and abs(found) < 1e15 else found


def text_of(value):
    """A DICOM string value; several values joined with a backslash as
    dcm2niix writes them."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [str(v).strip() for v in value]
        text = "\\".join(parts)
    else:
        text = plain(value)
        text = None if text is None else str(text)
    if text is None or not text.strip("\\ "):
        return None
    return text


def split_datetime(value):
    """A DICOM DT value -> (YYYYMMDD, seconds after midnight) or (None, None)."""
    text = text_of(value)
    if not text:
        return None, None
    text = re.split(r"[+-]", text, maxsplit=1)[0]  # drop a UTC offset
    if len(text) < 8 or not text[:8].isdigit():
        return None, None
    return text[:8], (tm_seconds(text[8:]) if len(text) > 8 else None)


def plain(value):
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

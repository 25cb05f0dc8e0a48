"""Philips: private floating-point scaling.

Philips stores, besides RescaleSlope/RescaleIntercept (display values), a
private scale slope SS (2005,100E, "MRScaleSlope").  The precise
floating-point value is (stored * RS + RI) / (RS * SS); dcm2niix uses it by
default (its ``-p y``), and so does medfast.
"""
import struct

_CREATOR = "Philips MR Imaging DD 001"


def _float(value):
    if isinstance(value, (bytes, bytearray)):
        # Implicit VR files: the FL value arrives as raw bytes.
        return struct.unpack("<f", bytes(value[:4]))[0] if len(value) >= 4 else None
    try:
        return float(value[0] if isinstance(value, (list, tuple)) else value)
    except (TypeError, ValueError, IndexError):
        return None


def scale_slope(ds):
    """The private scale slope of a Philips header or per-frame item, or None."""
    try:
        value = ds.private_block(0x2005, _CREATOR)[0x0E].value
    except (KeyError, ValueError):
        value = ds.get((0x2005, 0x100E))
        value = getattr(value, "value", None)
    slope = _float(value) if value is not None else None
    return slope if slope and slope == slope else None  # drop 0 and NaN


def per_frame_scale_slope(frame_item):
    """The scale slope in a per-frame functional group item's private
    Philips sequence (2005,140F), or None."""
    seq = frame_item.get((0x2005, 0x140F))
    if seq is None or not getattr(seq, "value", None):
        return None
    try:
        return scale_slope(seq.value[0])
    except (TypeError, IndexError, AttributeError):
        return None

"""Slices at unequal distances -> an equidistant copy, as dcm2niix's '_Eq'.

A 3-D stack whose gaps vary by more than 0.2 mm (a missing slice, a
localizer, a CT of several slice thicknesses) cannot be described by one
affine.  dcm2niix then writes the stack as it is (the affine takes the
first step) and a second file, ``_Eq``, resampled along the slice axis
onto equal steps by linear interpolation between the two nearest slices;
medfast gives the same second volume, with dcm2niix's arithmetic (float32
weights, integers rounded half away from zero), so that both match.
"""
import math

import numpy as np

# dcm2niix equalizes only these stored types (and RGB).
_TYPES = (np.dtype(np.int16), np.dtype(np.uint8), np.dtype(np.float32))


def plan(distances):
    """(number of slices, spacing in mm) of the equidistant copy of slices
    at `distances` from the first (ascending), or None when dcm2niix makes
    none (fewer than 3 slices in or out, or slices out of order)."""
    distances = np.asarray(distances, dtype=np.float32)
    if len(distances) < 3:
        return None
    gaps = np.diff(distances)
    positive = gaps[np.abs(gaps) > 1e-6]
    step = float(positive.min()) if positive.size else 0.0
    if step <= 0 or distances[-1] <= 0:
        return None
    count = min(int(math.ceil(float(distances[-1]) / step)) + 1, 2 * len(distances))
    if count < 3:
        return None
    return count, float(np.float32(distances[-1]) / np.float32(count - 1))


def eligible(dtype, rgb):
    """Whether dcm2niix writes an equidistant copy for stored values of
    `dtype` (int16, uint8, float32 and RGB; not uint16 or 32-bit integers)."""
    return rgb or np.dtype(dtype) in _TYPES


def _round_half_away(values):
    return np.sign(values) * np.floor(np.abs(values) + np.float32(0.5))


def equalize(array, distances, count, spacing):
    """Resample the slice axis (axis 2) onto `count` slices `spacing` mm
    apart, from slices at `distances` mm from the first.

    Parameters
    ----------
    array : ndarray, shape (i, j, k)
    distances : (k,) array_like
        Ascending distances of the slices from the first (mm).
    count : int
    spacing : float

    Returns
    -------
    ndarray, shape (i, j, count), of `array`'s dtype
    """
    distances = np.asarray(distances, dtype=np.float32)
    n = len(distances)
    out = np.empty(array.shape[:2] + (count,) + array.shape[3:], array.dtype)
    integer = array.dtype.kind in "iu"
    for s in range(count):
        mm = np.float32(s * spacing)
        low = 0
        while low < n - 2 and distances[low + 1] < mm:
            low += 1
        high = low + 1
        if mm <= distances[0]:
            low = high = 0
        elif mm >= distances[-1]:
            low = high = n - 1
        low_weight, high_weight = np.float32(1), np.float32(0)
        if low != high:
            fraction = (mm - distances[low]) / (distances[high] - distances[low])
            low_weight, high_weight = np.float32(1) - fraction, fraction
        value = (array[:, :, low].astype(np.float32) * low_weight
                 + array[:, :, high].astype(np.float32) * high_weight)
        out[:, :, s] = _round_half_away(value) if integer else value
    return out

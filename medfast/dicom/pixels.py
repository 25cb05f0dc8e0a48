"""Pixels of a volume: decode each file once, place its slices, rescale.

Rescaling (RescaleSlope/RescaleIntercept, e.g. CT Hounsfield units) keeps
an integer dtype when every scaled value fits one, float32 otherwise;
Philips private scaling gives float32 precise values as dcm2niix does.
"""
import numpy as np

from .reader import read_pixels
from .vendors import siemens

_INTEGER_CANDIDATES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)


def _stored(volume):
    """(T, K, rows, cols) stored values of a volume."""
    grid = volume.grid
    place = {}
    for t, row in enumerate(grid):
        for k, s in enumerate(row):
            place.setdefault(s.file.path, []).append((s, t, k))
    rows, cols = volume.first.shape
    out = None
    for path, items in place.items():
        dfile = items[0][0].file
        try:
            pixels = read_pixels(dfile)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        first = items[0][0]
        if first.tile is not None:
            n = max(s.tile for s, _, _ in items) + 1
            pixels = siemens.mosaic_tiles(pixels, n, first.shape)
        if out is None:
            out = np.empty((len(grid), len(grid[0]), rows, cols), pixels.dtype)
        elif pixels.dtype != out.dtype:
            out = out.astype(np.result_type(out.dtype, pixels.dtype))
        for s, t, k in items:
            image = pixels[s.frame, s.tile] if s.tile is not None else pixels[s.frame]
            if image.shape != (rows, cols):
                raise ValueError(f"{path}: image of {image.shape[0]}x{image.shape[1]} "
                                 f"pixels where {rows}x{cols} was expected")
            out[t, k] = image
    return out


def _fits(dtype, lo, hi):
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _integer_dtype(stored, lo, hi):
    if _fits(stored, lo, hi):
        return stored
    for dtype in _INTEGER_CANDIDATES:
        if np.dtype(dtype).itemsize >= stored.itemsize and _fits(dtype, lo, hi):
            return np.dtype(dtype)
    return None


def volume_pixels(volume):
    """The volume's voxel values, rescaled.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    array : ndarray
        Shape (columns, rows, slices[, volumes]) (a transposed view of the
        decoded buffer, no copy).
    scaling : str
        How values were scaled: 'none', 'rescale' or 'philips'.
    """
    raw = _stored(volume)
    grid = volume.grid
    slope = np.array([[s.slope for s in row] for row in grid], dtype=float)
    inter = np.array([[s.intercept for s in row] for row in grid], dtype=float)
    scale = [[s.scale_slope for s in row] for row in grid]
    scaling = "none"
    if any(v is not None for row in scale for v in row):
        ss = np.array([[v or 1.0 for v in row] for row in scale], dtype=float)
        # dcm2niix's precise Philips value: (SV * RS + RI) / (RS * SS).
        factor = (1.0 / ss)[..., None, None]
        out = ((raw * slope[..., None, None] + inter[..., None, None])
               / slope[..., None, None] * factor).astype(np.float32)
        scaling = "philips"
    elif np.all(slope == 1) and np.all(inter == np.round(inter)):
        if np.any(inter != 0) and raw.dtype.kind in "iu":
            lo = int(raw.min()) + int(inter.min())
            hi = int(raw.max()) + int(inter.max())
            dtype = _integer_dtype(raw.dtype, lo, hi)
            if dtype is None:
                out = raw.astype(np.float64) + inter[..., None, None]
                out = out.astype(np.float32)
            else:
                out = raw.astype(dtype, copy=False)
                out += inter.astype(dtype)[..., None, None]
            scaling = "rescale"
        else:
            out = raw
    else:
        out = (raw * slope[..., None, None] + inter[..., None, None]).astype(np.float32)
        scaling = "rescale"
    array = out.transpose(3, 2, 1, 0)
    if array.shape[3] == 1:
        array = array[..., 0]
    return array, scaling

"""Pixels of a volume: decode each file once, place its slices, rescale.

Rescaling (RescaleSlope/RescaleIntercept, e.g. CT Hounsfield units) keeps
an integer dtype when every scaled value fits one, float32 otherwise;
Philips private scaling gives float32 precise values as dcm2niix does.
The output dtype is chosen before decoding where the header allows it
(from BitsStored), so each slice is scaled as it is copied into place:
one pass over the data.
"""
import numpy as np

from . import values
from .reader import read_pixels
from .vendors import siemens

_INTEGER_CANDIDATES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)


def _fits(dtype, lo, hi):
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _integer_dtype(stored, lo, hi):
    """The stored dtype if [lo, hi] fits it, else the smallest integer dtype
    at least as wide that holds it, else None."""
    if _fits(stored, lo, hi):
        return np.dtype(stored)
    for dtype in _INTEGER_CANDIDATES:
        if np.dtype(dtype).itemsize >= np.dtype(stored).itemsize and _fits(dtype, lo, hi):
            return np.dtype(dtype)
    return None


def _stored_range(ds):
    """(dtype, lo, hi) of the stored values a header allows, or None when
    it does not say (the data decide then)."""
    bits = values.get(ds, "BitsAllocated")
    stored = values.get(ds, "BitsStored") or bits
    if bits not in (8, 16, 32) or not stored or stored > bits:
        return None
    if values.get(ds, "PixelRepresentation") == 1:
        return np.dtype(f"i{bits // 8}"), -(1 << (stored - 1)), (1 << (stored - 1)) - 1
    return np.dtype(f"u{bits // 8}"), 0, (1 << stored) - 1


class _Scaling:
    """How stored values become voxel values, per slice (t, k)."""

    def __init__(self, volume):
        grid = volume.grid
        self.slope = np.array([[s.slope for s in row] for row in grid], dtype=float)
        self.inter = np.array([[s.intercept for s in row] for row in grid], dtype=float)
        ss = [[s.scale_slope for s in row] for row in grid]
        self.dtype = None  # None: decided from the data after decoding
        if any(v is not None for row in ss for v in row):
            # dcm2niix's precise Philips value: (SV * RS + RI) / (RS * SS).
            ss = np.array([[v or 1.0 for v in row] for row in ss], dtype=float)
            self.inter = self.inter / (self.slope * ss)
            self.slope = 1.0 / ss
            self.kind, self.dtype = "philips", np.dtype(np.float32)
        elif np.all(self.slope == 1) and np.all(self.inter == np.round(self.inter)):
            if np.all(self.inter == 0):
                self.kind = "none"
            else:
                self.kind = "rescale"
                # Fix: the range came from the first file's header only; a
                # later file with more BitsStored (or another
                # PixelRepresentation) then overflowed silently.  Use every
                # file's; mixed stored types leave the choice to the data.
                files = {id(s.file): s.file for row in grid for s in row}.values()
                try:
                    allowed = [_stored_range(f.dataset) for f in files]
                except Exception:  # a corrupt element: decoding reports it
                    allowed = [None]
                if None not in allowed and len({a[0] for a in allowed}) == 1:
                    stored = allowed[0][0]
                    lo = min(a[1] for a in allowed)
                    hi = max(a[2] for a in allowed)
                    dtype = _integer_dtype(stored, lo + self.inter.min(),
                                           hi + self.inter.max())
                    # Only when no wider type is needed: 16-bit signed CT
                    # with intercept -1024 would be int32 by the header's
                    # range, but its data nearly always fit int16 (the data
                    # decide then, one more pass).
                    if dtype is not None and dtype.itemsize == stored.itemsize:
                        self.dtype = dtype
        else:
            self.kind, self.dtype = "rescale", np.dtype(np.float32)

    def put(self, out, t, k, image):
        """Write slice (t, k) of stored values `image` into `out`."""
        if self.kind == "none" or out.dtype == image.dtype and self.inter[t, k] == 0 \
                and self.slope[t, k] == 1:
            out[t, k] = image
        elif out.dtype.kind == "f":
            np.multiply(image, self.slope[t, k], out=out[t, k], casting="unsafe")
            out[t, k] += self.inter[t, k]
        else:
            np.add(image, out.dtype.type(self.inter[t, k]), out=out[t, k], casting="unsafe")


def _decode(volume, scaling):
    """(T, K, rows, cols) values of a volume, scaled as `scaling` says when
    its dtype is known, else stored values."""
    grid = volume.grid
    place = {}
    for t, row in enumerate(grid):
        for k, s in enumerate(row):
            place.setdefault(s.file.path, []).append((s, t, k))
    rows, cols = volume.first.shape
    out = None
    for path, items in place.items():
        first = items[0][0]
        try:
            pixels = read_pixels(first.file)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:
            # Fix: a corrupt header element (pydicom converts lazily) or a
            # decoder failure escaped as TypeError/NotImplementedError, or as
            # pylibjpeg-rle's Rust PanicException (a BaseException), from
            # deep inside; report it as this file's error.
            raise ValueError(f"{path}: cannot read pixel data ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
        if first.tile is not None:
            n = max(s.tile for s, _, _ in items) + 1
            pixels = siemens.mosaic_tiles(pixels, n, first.shape)
        if out is None:
            out = np.empty((len(grid), len(grid[0]), rows, cols),
                           scaling.dtype or pixels.dtype)
        elif scaling.dtype is None and pixels.dtype != out.dtype:
            out = out.astype(np.result_type(out.dtype, pixels.dtype))
        for s, t, k in items:
            image = pixels[s.frame, s.tile] if s.tile is not None else pixels[s.frame]
            if image.shape != (rows, cols):
                raise ValueError(f"{path}: image of {image.shape[0]}x{image.shape[1]} "
                                 f"pixels where {rows}x{cols} was expected")
            if scaling.dtype is None:
                out[t, k] = image  # stored values; scaled below
            else:
                scaling.put(out, t, k, image)
    return out


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
    scaling = _Scaling(volume)
    out = _decode(volume, scaling)
    if scaling.dtype is None and scaling.kind == "rescale":
        # Integer intercepts on data whose range the header does not bound:
        # the decoded values decide the integer type.
        lo = int(out.min()) + int(scaling.inter.min())
        hi = int(out.max()) + int(scaling.inter.max())
        dtype = _integer_dtype(out.dtype, lo, hi) if out.dtype.kind in "iu" else None
        target = np.empty(out.shape, dtype or np.float32)
        np.add(out, scaling.inter[..., None, None], out=target, casting="unsafe")
        out = target
    array = out.transpose(3, 2, 1, 0)
    if array.shape[3] == 1:
        array = array[..., 0]
    return array, scaling.kind

"""Pixels of a volume: read each slice straight into its place, rescale.

Uncompressed pixel data are read from the file into the output volume's
memory (one ``readinto`` per frame: no intermediate copy of the file or of
the volume); compressed, gzipped or deflated files go through pydicom's
pixel-data plugins (pylibjpeg's JPEG, JPEG-LS, JPEG 2000 and RLE decoders),
one frame at a time.  Either way the memory used is the output volume plus
one frame.

Rescaling (RescaleSlope/RescaleIntercept, e.g. CT Hounsfield units) keeps
an integer dtype when every scaled value fits one, float32 otherwise; the
dtype is chosen from the header (BitsStored) before any pixel is read, so
each slice is scaled as it is placed.  Philips scaling follows dcm2niix
(its default ``-p y``): the precise floating-point value
``SV / SS + RI / (RS * SS)`` (SV stored value, RS/RI RescaleSlope and
Intercept, SS the private MRScaleSlope, all of the first slice); when RS or
RI vary between the slices of a classic series, ``(SV * RS_i + RI_i) / SS_1
+ RI_1 / (RS_1 * SS_1)``, the value dcm2niix's output holds; when they vary
between the frames of an enhanced file, the display value ``SV * RS_i +
RI_i``.

Colour pixels (8 bits, three samples) become RGB24 voxels, one (R, G, B)
triplet each, as dcm2niix writes them: planar files (PlanarConfiguration
1) are interleaved, and YBR_FULL is turned into RGB with dcm2niix's
formula (except RLE, whose YCbCr values dcm2niix keeps as they are).
"""
import io

import numpy as np

from .._memory import check_allocation
from ..image import RGB24
from .header import DEFLATED_LE, EXPLICIT_LE, NotDicomError, unpacked

RLE_LOSSLESS = "1.2.840.10008.1.2.5"


class PixelDataError(ValueError):
    """One file's pixel data cannot be read or decoded (truncated, corrupt,
    an unsupported encoding); ``path`` names the file, ``reason`` says why."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


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


def stored_dtype(info):
    """The numpy dtype of a file's stored values (native byte order):
    float for Float/Double Float Pixel Data (parametric maps)."""
    if info.floating:
        return np.dtype(np.float64 if info.bits_allocated == 64 else np.float32)
    size = {8: 1, 16: 2, 32: 4, 64: 8}.get(info.bits_allocated, 2)
    return np.dtype(f"{'i' if info.signed else 'u'}{size}")


def _stored_range(info):
    """(dtype, lo, hi) of the stored values a header allows, or None."""
    if info.floating or info.bits_allocated not in (8, 16, 32) \
            or not 0 < info.bits_stored <= info.bits_allocated:
        return None
    stored = info.bits_stored
    if info.signed:
        return stored_dtype(info), -(1 << (stored - 1)), (1 << (stored - 1)) - 1
    return stored_dtype(info), 0, (1 << stored) - 1


class Scaling:
    """How stored values become voxel values, per slice (t, k).

    Attributes
    ----------
    kind : str
        'none', 'rescale', 'philips' or 'rgb'.
    dtype : numpy.dtype or None
        The output dtype; None when the data must decide (an integer
        intercept on values whose range the header does not bound).
    """

    def __init__(self, volume):
        grid = volume.grid
        if volume.rgb:
            self.kind, self.dtype = "rgb", np.dtype(np.uint8)
            return
        self.slope = np.array([[s.slope for s in row] for row in grid], dtype=float)
        self.inter = np.array([[s.intercept for s in row] for row in grid], dtype=float)
        ss = [[s.scale_slope for s in row] for row in grid]
        self.dtype = None
        if any(v is not None for row in ss for v in row):
            self._philips(volume, ss)
        elif np.all(self.slope == 1) and np.all(self.inter == np.round(self.inter)):
            self.kind = "none" if np.all(self.inter == 0) else "rescale"
            if self.kind == "rescale":
                self.dtype = self._integer_rescale_dtype(grid)
        else:
            self.kind, self.dtype = "rescale", np.dtype(np.float32)

    def _philips(self, volume, ss):
        first = volume.first
        self.kind, self.dtype = "philips", np.dtype(np.float32)
        if first.file.frames > 1 and (np.ptp(self.slope) > 0 or np.ptp(self.inter) > 0
                                      or len({v for row in ss for v in row}) > 1):
            return  # display values SV * RS_i + RI_i, as dcm2niix writes them
        if first.scale_slope is None:
            return
        # The first slice's precise scaling, (SV * RS + RI) / (RS * SS), as
        # dcm2niix computes its scl_slope/scl_inter: in float32, from the
        # values for SV = 0 and 1 (the rescale values where they agree).
        rs, ri, ss1 = (np.float32(v) for v in (first.slope, first.intercept, first.scale_slope))
        denominator = rs * ss1
        l0 = ri / denominator if denominator else np.float32(0)
        l1 = (rs + ri) / denominator if denominator else np.float32(0)
        slope, inter = (l1 - l0, l0) if l0 != l1 else (rs, ri)
        if np.ptp(self.slope) > 0 or np.ptp(self.inter) > 0:
            # Classic slices rescaled differently: dcm2niix stores display
            # values SV * RS_i + RI_i and keeps the first slice's precise
            # scaling on top of them.
            self.inter = self.inter * float(slope) + float(inter)
            self.slope = self.slope * float(slope)
        else:
            self.slope = np.full_like(self.slope, float(slope))
            self.inter = np.full_like(self.inter, float(inter))

    def _integer_rescale_dtype(self, grid):
        """The integer dtype the header's stored range allows after the
        intercepts, when no wider type is needed; else None (data decide)."""
        files = {id(s.file): s.file for row in grid for s in row}.values()
        allowed = [_stored_range(f) for f in files]
        if None in allowed or len({a[0] for a in allowed}) != 1:
            return None
        stored = allowed[0][0]
        dtype = _integer_dtype(stored, min(a[1] for a in allowed) + self.inter.min(),
                               max(a[2] for a in allowed) + self.inter.max())
        # Only when no wider type is needed: 16-bit signed CT with intercept
        # -1024 would be int32 by the header's range, but its data nearly
        # always fit int16 (the data decide then).
        if dtype is not None and dtype.itemsize == stored.itemsize:
            return dtype
        return None

    def put(self, out, t, k, image):
        """Write slice (t, k) of stored values `image` into `out`."""
        target = out[t, k]
        if self.kind in ("none", "rgb") or self.dtype is None:
            if target is not image:
                target[...] = image
        elif out.dtype.kind == "f":
            np.multiply(image, self.slope[t, k], out=target, casting="unsafe")
            target += self.inter[t, k]
        else:
            np.add(image, out.dtype.type(self.inter[t, k]), out=target, casting="unsafe")

    def in_place(self, t, k, stored):
        """Whether slice (t, k) can be read straight into the output."""
        return self.kind in ("none", "rgb") or self.dtype is None or (
            self.dtype == stored and self.slope[t, k] == 1 and self.inter[t, k] == 0)


def _mask_stored_bits(array, info):
    """Clear the bits above BitsStored (some scanners leave junk there) and
    sign-extend signed values, as pydicom and dcm2niix do."""
    shift = info.bits_allocated - info.bits_stored
    if shift <= 0 or array.dtype.kind not in "iu" or array.dtype.itemsize * 8 != \
            info.bits_allocated:
        return array
    if info.signed:
        array <<= shift
        array >>= shift  # arithmetic shift: sign extension
    else:
        array &= (1 << info.bits_stored) - 1
    return array


class _NativeReader:
    """Frames of an uncompressed file, read with one seek each."""

    def __init__(self, info):
        self.info = info
        self.dtype = stored_dtype(info).newbyteorder("<" if info.little else ">")
        samples = info.samples
        self.frame_shape = (info.rows, info.columns) + ((3,) if samples == 3 else ())
        self.frame_bytes = info.rows * info.columns * samples * self.dtype.itemsize
        needed = self.frame_bytes * info.frames
        if info.pixel_length is not None and 0 <= info.pixel_length < needed:
            raise ValueError(f"pixel data truncated ({info.pixel_length} of {needed} bytes)")
        self.file = open(info.path, "rb")

    def close(self):
        self.file.close()

    def read_into(self, frame, target):
        """Read frame `frame` into `target` (contiguous, stored dtype)."""
        self.file.seek(self.info.pixel_offset + frame * self.frame_bytes)
        view = memoryview(target).cast("B")
        got = self.file.readinto(view)
        if got != self.frame_bytes:
            raise ValueError(f"pixel data truncated (frame {frame + 1} has {got} of "
                             f"{self.frame_bytes} bytes)")
        if not self.dtype.isnative:
            target.byteswap(inplace=True)
        if self.info.samples == 3 and self.info.planar == 1:
            # Planar (RRR...GGG...BBB...) to interleaved, as NIfTI RGB24 stores.
            target[...] = target.reshape(3, self.info.rows, self.info.columns).transpose(1, 2, 0)
        if _converts_ybr(self.info):
            target[...] = _ybr_to_rgb(target)
        return _mask_stored_bits(target, self.info)

    def frame(self, frame):
        """Frame `frame` as a new array of native stored values."""
        target = np.empty(self.frame_shape, self.dtype.newbyteorder("="))
        return self.read_into(frame, target)


def _inflate_limit(info):
    """How far a gzipped file or a deflated data set is inflated to decode
    its pixels: the header and room for the pixel data it declares, never
    the rest (a small image followed by 2 GiB of gzipped zeros took 7.8 s
    and 4.3 GB to load).  Compressed pixel data of noise measure 1.01-1.15 times their
    raw size (RLE, JPEG 2000) plus under 1 KiB of codec header per frame;
    real data (the QA set's JPEG, JPEG-LS, JPEG 2000, RLE) 0.43-0.63 times:
    four times the raw size, 2 KiB per frame and 1 MiB leave room."""
    declared = (info.rows * info.columns * info.samples * info.frames
                * info.bits_allocated + 7) // 8
    return info.header_bytes + 4 * declared + 2048 * info.frames + (1 << 20)


class _DecodedReader:
    """Frames decoded by pydicom (compressed, gzipped, deflated, odd
    layouts), one at a time."""

    def __init__(self, info):
        self.info = info
        self.frames = None

    def close(self):
        self.frames = None

    def _iterate(self):
        from pydicom.pixels import iter_pixels
        info = self.info
        deflated = info.transfer_syntax == DEFLATED_LE
        if not (deflated or info.path.lower().endswith(".gz")):
            return iter_pixels(info.path, raw=True)
        try:
            data = unpacked(info.path, _inflate_limit(info))
        except NotDicomError as exc:
            raise ValueError(f"cannot read pixel data ({exc})") from None
        # The inflated data set is explicit VR little endian.
        options = {"transfer_syntax_uid": EXPLICIT_LE} if deflated else {}
        return iter_pixels(io.BytesIO(data), raw=True, **options)

    def frame(self, frame):
        if self.frames is None or frame < self.next:
            self.frames, self.next = self._iterate(), 0
        try:
            for _ in range(frame - self.next):
                next(self.frames)
            array = next(self.frames)
        except StopIteration:
            raise ValueError(f"pixel data hold fewer than {frame + 1} frames") from None
        except ValueError:
            raise
        except Exception as exc:  # decoder plugins raise their own kinds
            detail = " ".join(str(exc).split())[:200]
            raise ValueError(f"cannot decode pixel data ({self.info.transfer_syntax}): "
                             f"{type(exc).__name__}: {detail}") from None
        self.next = frame + 1
        if _converts_ybr(self.info):
            array = _ybr_to_rgb(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return np.asarray(array)


def _converts_ybr(info):
    """Whether a file's colour pixels are YCbCr to be turned into RGB.

    As dcm2niix: YBR_FULL and YBR_FULL_422, uncompressed or decoded, but
    not RLE (dcm2niix writes RLE's YCbCr values as they are); the JPEG
    decoders return the stored components, so JPEG YCbCr is converted here
    too (other YBR kinds, such as JPEG 2000's YBR_ICT/YBR_RCT, are returned
    as RGB by the decoder)."""
    return (info.samples == 3 and info.photometric.startswith("YBR_FULL")
            and info.transfer_syntax != RLE_LOSSLESS)


def _ybr_to_rgb(array):
    """YBR_FULL -> RGB with dcm2niix's formula (float32, rounded, clipped)."""
    y, cb, cr = (array[..., i].astype(np.float32) for i in range(3))
    r = y + np.float32(1.402) * (cr - 128)
    g = y - np.float32(0.344136) * (cb - 128) - np.float32(0.714136) * (cr - 128)
    b = y + np.float32(1.772) * (cb - 128)
    out = np.stack([r, g, b], axis=-1) + np.float32(0.5)
    return np.clip(np.trunc(out), 0, 255).astype(np.uint8)


def _tile(image, s):
    """The tile of a mosaic or grid image that slice `s` is (tiles run
    left to right, then top to bottom)."""
    rows, cols = s.shape
    r, c = divmod(s.tile, s.mosaic_columns)
    return image[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols]


def _reader(info):
    """A frame reader for a file: straight from the file when its pixels
    are raw, else through pydicom's decoders."""
    simple = info.native and (info.samples == 1 or info.bits_allocated == 8)
    return _NativeReader(info) if simple else _DecodedReader(info)


def _decode(volume, scaling):
    """(T, K, rows, cols[, 3]) values of a volume, scaled as `scaling` says
    when its dtype is known, else stored values."""
    grid = volume.grid
    place = {}
    for t, row in enumerate(grid):
        for k, s in enumerate(row):
            place.setdefault(s.file.path, []).append((s, t, k))
    rows, cols = volume.first.shape
    extra = (3,) if volume.rgb else ()
    # Files stored with different types (8 and 16 bits...): one that holds all.
    dtype = scaling.dtype or np.result_type(*{stored_dtype(items[0][0].file)
                                              for items in place.values()})
    shape = (len(grid), len(grid[0]), rows, cols) + extra
    # Before, not during, the reads.
    check_allocation(shape, dtype, f"{volume.first.file.path}: DICOM volume")
    out = np.empty(shape, dtype)
    for path, items in place.items():
        info = items[0][0].file
        try:
            reader = _reader(info)
        except OSError as exc:
            raise PixelDataError(path, f"cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise PixelDataError(path, str(exc)) from None
        try:
            _place(reader, items, out, scaling, volume)
        except ValueError as exc:
            raise PixelDataError(path, str(exc)) from None
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:
            # A decoder failure may escape as any exception, even pylibjpeg-
            # rle's Rust PanicException (a BaseException): report it as this
            # file's error.
            raise PixelDataError(path, f"cannot read pixel data ({type(exc).__name__}: "
                                       f"{str(exc)[:200]})") from None
        finally:
            reader.close()
    return out


def _place(reader, items, out, scaling, volume):
    rows, cols = volume.first.shape
    stored = stored_dtype(items[0][0].file)
    tiled = items[0][0].tile is not None
    items = sorted(items, key=lambda item: (item[0].frame, item[0].tile or 0))
    frame_image, frame_index = None, None
    for s, t, k in items:
        direct = (not tiled and isinstance(reader, _NativeReader)
                  and scaling.in_place(t, k, stored) and out.dtype == stored)
        if direct:
            image = reader.read_into(s.frame, out[t, k])
        else:
            if frame_index != s.frame:
                frame_image, frame_index = reader.frame(s.frame), s.frame
            image = _tile(frame_image, s) if tiled else frame_image
        if image.shape[:2] != (rows, cols):
            raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} pixels where "
                             f"{rows}x{cols} was expected")
        if not direct:
            scaling.put(out, t, k, image)
        if s.flip_rows:
            out[t, k] = out[t, k][::-1].copy()


def volume_pixels(volume):
    """The volume's voxel values, rescaled.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    array : ndarray
        Shape (columns, rows, slices[, volumes]) (a transposed view of the
        decoded buffer, no copy); colour volumes have the structured dtype
        :data:`RGB24`.
    scaling : str
        How values were scaled: 'none', 'rescale', 'philips' or 'rgb'.
    """
    scaling = Scaling(volume)
    out = _decode(volume, scaling)
    if scaling.dtype is None and scaling.kind == "rescale":
        # Integer intercepts on data whose range the header does not bound:
        # the decoded values decide the integer type (in place when it is
        # the stored one).
        lo = int(out.min()) + int(scaling.inter.min())
        hi = int(out.max()) + int(scaling.inter.max())
        dtype = _integer_dtype(out.dtype, lo, hi) if out.dtype.kind in "iu" else None
        inter = scaling.inter[..., None, None]
        if dtype == out.dtype:
            np.add(out, inter.astype(out.dtype), out=out, casting="unsafe")
        else:
            target = np.empty(out.shape, dtype or np.float32)
            np.add(out, inter, out=target, casting="unsafe")
            out = target
    if scaling.kind == "rgb":
        out = np.ascontiguousarray(out).view(RGB24)[..., 0]
    array = out.transpose(3, 2, 1, 0)
    if array.shape[3] == 1:
        array = array[..., 0]
    return array, scaling.kind

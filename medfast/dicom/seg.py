"""DICOM Segmentation objects (SEG) as label volumes: :func:`load_seg`.

A SEG holds 2-D frames, each with its own plane position (and orientation,
per frame or shared), and, for BINARY and FRACTIONAL segmentations, the
segment it belongs to.  Frames are placed by those positions, never by
their order: on the grid of the image passed as ``like=`` when each frame
falls exactly on one of its slices (a signed permutation of axes with
whole-voxel offsets, within 0.01 voxel), else on the SEG's own frame grid
(its first frame's plane, slices along the plane normal from the lowest
position to the highest), which is then resampled onto ``like`` with
``order='label'``.  Slices that no frame covers are empty.
"""
import os

import numpy as np

from ..image import Image
from ..orientation import LPS_TO_RAS
from .rtstruct import OverlapError, read_dataset

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_EXACT = 1e-2           # voxels: a frame this close to a grid's slice is on it
_MAX_VOXELS = 2 ** 31   # the SEG's own grid: larger means absurd positions


def _code(item, sequence):
    codes = item.get(sequence)
    if not codes:
        return None
    code = codes[0]
    return {"value": str(code.get("CodeValue", "")),
            "scheme": str(code.get("CodingSchemeDesignator", "")),
            "meaning": str(code.get("CodeMeaning", ""))}


def segment_descriptions(ds):
    """{SegmentNumber: {'label', 'category', 'type', 'algorithm'}} of a SEG
    (category and type as coded: value, scheme, meaning)."""
    out = {}
    for item in ds.get("SegmentSequence", []):
        number = int(item.SegmentNumber)
        out[number] = {
            "label": str(item.get("SegmentLabel", "") or f"segment {number}"),
            "category": _code(item, "SegmentedPropertyCategoryCodeSequence"),
            "type": _code(item, "SegmentedPropertyTypeCodeSequence"),
            "algorithm": str(item.get("SegmentAlgorithmType", "")),
        }
    return out


def _functional(frame_items, shared, frame, name, keyword, path):
    """A frame's value of `keyword` in functional group `name`: per frame,
    else shared; a missing one raises naming it."""
    for groups in (frame_items[frame] if frame_items else None, shared):
        if groups is not None and name in groups and groups[name]:
            item = groups[name][0]
            if keyword in item:
                return item[keyword].value
    raise ValueError(f"{path}: frame {frame + 1} has no {keyword} ({name}, per frame or shared)")


class _Frame:
    """Where one frame lies (LPS) and which segment it holds."""

    __slots__ = ("segment", "position", "row", "col", "spacing")

    def __init__(self, segment, position, orientation, spacing):
        self.segment = segment
        self.position = np.asarray(position, dtype=float)
        self.row = np.asarray(orientation[:3], dtype=float)
        self.col = np.asarray(orientation[3:], dtype=float)
        self.spacing = (float(spacing[0]), float(spacing[1]))  # between rows, columns


def _check_frame(frame, number, path):
    """Raise for geometry no grid can hold (one line naming the frame)."""
    where = f"{path}: frame {number}"
    if (frame.position.shape != (3,) or not np.isfinite(frame.position).all()
            or np.abs(frame.position).max() > 1e6):
        raise ValueError(f"{where}: ImagePositionPatient is not three finite numbers "
                         "within 1 km")
    if (frame.row.shape != (3,) or frame.col.shape != (3,)
            or abs(np.linalg.norm(frame.row) - 1) > 1e-3
            or abs(np.linalg.norm(frame.col) - 1) > 1e-3 or abs(frame.row @ frame.col) > 1e-3):
        raise ValueError(f"{where}: ImageOrientationPatient is not two orthonormal vectors")
    if not (np.isfinite(frame.spacing).all() and min(frame.spacing) > 0):
        raise ValueError(f"{where}: PixelSpacing is not positive")


def _frames(ds, path, n_frames):
    """Every frame's :class:`_Frame`, from the per-frame functional groups
    (else the shared ones)."""
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence", []))
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    if per_frame and len(per_frame) != n_frames:
        raise ValueError(f"{path}: {n_frames} frames but {len(per_frame)} per-frame "
                         "functional groups")
    labelmap = str(ds.get("SegmentationType", "")).upper() == "LABELMAP"
    frames = []
    for f in range(n_frames):
        def value(name, keyword, f=f):
            return _functional(per_frame, shared, f, name, keyword, path)
        segment = None if labelmap else int(value("SegmentIdentificationSequence",
                                                  "ReferencedSegmentNumber"))
        frame = _Frame(segment, value("PlanePositionSequence", "ImagePositionPatient"),
                       value("PlaneOrientationSequence", "ImageOrientationPatient"),
                       value("PixelMeasuresSequence", "PixelSpacing"))
        _check_frame(frame, f + 1, path)
        frames.append(frame)
    return frames


def _frame_pixels(ds, path):
    """All frames as (frames, rows, columns): BINARY unpacked to 0/1 (bits
    in little-endian order, through pydicom's pixel handlers, which also
    decode compressed frames)."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise ValueError(f"{path}: cannot decode the segmentation frames "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return pixels.reshape(-1, int(ds.Rows), int(ds.Columns))


def _placement(frame, rows, cols, world_to_voxel, shape):
    """Index arrays placing a (rows, cols) frame on a grid exactly, as
    ``(target index tuple, source (row, col) index tuple, pixels outside,
    whether the column axis comes first in the grid)``, or None when the
    frame is not on one of its slices."""
    linear = world_to_voxel[:3, :3]
    origin = linear @ frame.position + world_to_voxel[:3, 3]
    along_row = linear @ (frame.row * frame.spacing[1])   # one column further
    along_col = linear @ (frame.col * frame.spacing[0])   # one row further
    steps = []
    for vector in (along_row, along_col):
        axis = int(np.argmax(np.abs(vector)))
        unit = np.zeros(3)
        unit[axis] = np.sign(vector[axis])
        if np.abs(vector - unit).max() > _EXACT / max(rows, cols, 1):
            return None
        steps.append((axis, int(unit[axis])))
    if steps[0][0] == steps[1][0] or np.abs(origin - np.round(origin)).max() > _EXACT:
        return None
    start = np.round(origin).astype(int)
    (x_axis, x_step), (y_axis, y_step) = steps
    slice_axis = 3 - x_axis - y_axis
    x = start[x_axis] + x_step * np.arange(cols)
    y = start[y_axis] + y_step * np.arange(rows)
    keep_x = (x >= 0) & (x < shape[x_axis])
    keep_y = (y >= 0) & (y < shape[y_axis])
    k = start[slice_axis]
    if not 0 <= k < shape[slice_axis]:
        keep_x[:] = False
    outside = rows * cols - int(keep_x.sum()) * int(keep_y.sum())
    target = [None, None, None]
    target[x_axis], target[y_axis], target[slice_axis] = x[keep_x], y[keep_y], np.array([k])
    source = np.ix_(np.flatnonzero(keep_y), np.flatnonzero(keep_x))
    return np.ix_(*target), source, outside, x_axis < y_axis


def _place(frame_pixels, placement):
    """The frame's values shaped for ``out[target]``."""
    target, source, _, columns_first = placement
    values = frame_pixels[source]          # (rows kept, columns kept)
    values = values.T if columns_first else values
    # The slice axis has length 1: inserting it keeps the order.
    return values.reshape([t.size for t in target])


def _own_grid(frames, rows, cols, ds, path):
    """The SEG's own grid: (voxel -> LPS affine, shape)."""
    first = frames[0]
    for f, frame in enumerate(frames):
        if (np.abs(frame.row - first.row).max() > 1e-4 or np.abs(frame.col - first.col).max() > 1e-4
                or np.abs(np.subtract(frame.spacing, first.spacing)).max() > 1e-4):
            raise ValueError(f"{path}: frame {f + 1} has another orientation or pixel spacing "
                             "than frame 1 (pass like= to place the frames on an image grid)")
    normal = np.cross(first.row, first.col)
    positions = np.array([frame.position for frame in frames])
    depth = positions @ normal
    levels = np.unique(np.round(depth, 2))
    if len(levels) > 1:
        step = float(np.diff(levels).min())  # missing slices are multiples of it
    else:
        shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
        measures = shared.get("PixelMeasuresSequence", [None])[0] if shared else None
        step = float((measures.get("SpacingBetweenSlices") or measures.get("SliceThickness")
                      or 1.0) if measures else 1.0)
    dr, dc = first.spacing
    u = (positions - first.position) @ first.row / dc
    w = (positions - first.position) @ first.col / dr
    u0, w0, d0 = np.round(u.min()), np.round(w.min()), depth.min()
    origin = (first.position + u0 * dc * first.row + w0 * dr * first.col
              + (d0 - first.position @ normal) * normal)
    shape = (int(np.round(u.max() - u0)) + cols, int(np.round(w.max() - w0)) + rows,
             int(np.round((depth.max() - d0) / step)) + 1)
    if np.prod(shape, dtype=float) > _MAX_VOXELS:
        raise ValueError(f"{path}: the frames' positions span {shape} voxels (absurd positions?)")
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = dc * first.row, dr * first.col, step * normal
    affine[:3, 3] = origin
    return affine, shape


def _fill(frames, pixels, placements, shape, kind, segments, channels, onehot,
          probability, max_value, path):
    """The output array from placed frames: a label map, or one channel per
    segment (0/1, or probabilities)."""
    if onehot or probability:
        dtype = np.float32 if probability else np.uint8
        out = np.zeros(tuple(shape) + (len(channels),), dtype=dtype, order="F")
    else:
        dtype = np.uint8 if max(segments, default=0) < 256 else np.uint16
        out = np.zeros(tuple(shape), dtype=dtype, order="F")
    index = {number: c for c, number in enumerate(channels)}
    overlaps = {}
    for frame, values, placement in zip(frames, pixels, placements):
        placed = _place(values, placement)
        target = placement[0]
        if kind == "LABELMAP":
            if onehot:
                for number, c in index.items():
                    channel = out[..., c]
                    channel[target] = np.maximum(channel[target], placed == number)
            else:
                region = out[target]
                out[target] = np.where(placed != 0, placed, region)
            continue
        if frame.segment not in index:
            raise ValueError(f"{path}: a frame refers to segment {frame.segment}, "
                             "which SegmentSequence does not describe")
        if probability:
            channel = out[..., index[frame.segment]]
            channel[target] = np.maximum(channel[target], placed / np.float32(max_value))
            continue
        inside = placed >= max_value / 2.0 if kind == "FRACTIONAL" else placed != 0
        if onehot:
            channel = out[..., index[frame.segment]]
            channel[target] = channel[target] | inside
            continue
        region = out[target]
        clash = region[inside]
        clash = clash[(clash != 0) & (clash != frame.segment)]
        for other in np.unique(clash):
            pair = tuple(sorted((int(other), frame.segment)))
            overlaps[pair] = overlaps.get(pair, 0) + int(np.count_nonzero(clash == other))
        out[target] = np.where(inside, frame.segment, region)
    if overlaps:
        (a, b), count = next(iter(overlaps.items()))
        more = f" (and {len(overlaps) - 1} more pair(s))" if len(overlaps) > 1 else ""
        raise OverlapError(f"{path}: segments {a} ('{segments[a]['label']}') and {b} "
                         f"('{segments[b]['label']}') overlap in {count} voxel(s){more}; a label "
                         "map holds one label per voxel: pass onehot=True")
    return out


def load_seg(path, like=None, *, onehot=False, fractional="threshold"):
    """Read a DICOM Segmentation as an :class:`Image` of labels.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file.
    like : Image, optional
        The grid to return the labels on (e.g. :func:`medfast.load_dicom`
        of the referenced series): frames are placed exactly when they lie
        on its slices, else the SEG's own grid is resampled onto it
        (``order='label'``; probabilities linearly).  Default: the SEG's
        own frame grid.
    onehot : bool, optional
        Return a 4-D ``uint8`` image with one channel per segment (in
        segment-number order) instead of a label map; needed when segments
        overlap.
    fractional : {'threshold', 'probability'}, optional
        FRACTIONAL segmentations: a segment covers a pixel whose value is
        at least half the MaximumFractionalValue (``'threshold'``), or
        ``'probability'``: float32 values in [0, 1], one channel per
        segment (3-D for a single segment).

    Returns
    -------
    Image
        A label map (``uint8``, ``uint16`` beyond segment 255; 0 where no
        segment is) or the channels.  ``meta['labels']`` maps segment
        number -> SegmentLabel, ``meta['segments']`` holds the coded
        category and type, ``meta['channels']`` the segment number of each
        channel of a 4-D result, ``meta['problems']`` what was odd (frames
        outside ``like``).

    Raises
    ------
    ValueError
        Not a SEG, a frame without position, an unknown `fractional`;
        (:class:`medfast.dicom.rtstruct.OverlapError`) overlapping segments
        in a label map, naming them.

    Examples
    --------
    >>> ct = medfast.load_dicom("exam/ct")                       # doctest: +SKIP
    >>> seg = medfast.load_seg("exam/seg.dcm", like=ct)          # doctest: +SKIP
    >>> seg.meta["labels"]                                       # doctest: +SKIP
    {1: 'Liver', 2: 'Tumour'}
    """
    if fractional not in ("threshold", "probability"):
        raise ValueError(f"fractional must be 'threshold' or 'probability', not {fractional!r}")
    path = os.fspath(path)
    ds = read_dataset(path, "SEG", SEG_SOP_CLASS)
    kind = str(ds.get("SegmentationType", "")).upper()
    if kind not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise ValueError(f"{path}: SegmentationType {kind or 'missing'} "
                         "(BINARY, FRACTIONAL or LABELMAP)")
    segments = segment_descriptions(ds)
    pixels = _frame_pixels(ds, path)
    rows, cols = pixels.shape[1:]
    frames = _frames(ds, path, len(pixels))
    probability = kind == "FRACTIONAL" and fractional == "probability"
    max_value = float(ds.get("MaximumFractionalValue", 255) or 255)
    channels = sorted(n for n in segments if n > 0)
    problems = []

    placements = None
    if like is not None:
        to_voxel = np.linalg.inv(LPS_TO_RAS @ like.affine)
        placements = [_placement(f, rows, cols, to_voxel, like.spatial_shape) for f in frames]
        if any(p is None for p in placements):
            placements = None
    if placements is not None:
        affine, shape = like.affine, like.spatial_shape
    else:
        lps, shape = _own_grid(frames, rows, cols, ds, path) if frames else (np.eye(4), (cols, rows, 1))
        affine = LPS_TO_RAS @ lps
        to_voxel = np.linalg.inv(lps)
        placements = [_placement(f, rows, cols, to_voxel, shape) for f in frames]
        for f, p in enumerate(placements):
            if p is None:
                raise ValueError(f"{path}: frame {f + 1} lies between the slices of the frames' "
                                 "grid (uneven spacing); pass like= to resample onto an image")
    lost = sum(p[2] for p in placements)
    if lost:
        problems.append(f"{lost} segmentation pixel(s) lie outside the image grid; left out")
    array = _fill(frames, pixels, placements, shape, kind, segments, channels, onehot,
                  probability, max_value, path)
    if probability and not onehot and array.shape[-1] == 1:
        array = array[..., 0]
    meta = {"labels": {n: s["label"] for n, s in segments.items()}, "segments": segments,
            "SegmentationType": kind, "Modality": "SEG", "source": path, "problems": problems}
    if array.ndim == 4:
        meta["channels"] = channels
    if like is not None:
        meta["annotation_of"] = like.meta.get("dicom_series")
    image = Image(array, affine, meta)
    if like is not None and not np.array_equal(affine, like.affine):
        from ..resample import resample
        order = "linear" if probability else "label"
        image = resample(image, shape=like.spatial_shape, affine=like.affine, order=order)
    return image

"""Radiotherapy structure sets (RTSTRUCT) as label volumes:
:func:`load_rtstruct`.

Each ROI is a set of closed planar contours in patient coordinates (LPS
mm).  The contours are taken to the voxel grid of the image they annotate
(``inv(affine)``, so oblique, non-square and anisotropic grids in any slice
order are one case), each is given a slice, and the compiled kernel
(``src/_raster.pyx``) fills every slice's polygons by the even-odd rule:
a pixel belongs to the ROI when its centre lies inside an odd number of
the ROI's contours on that slice, so holes drawn as separate contours and
islands inside them come out right.

A contour's slice is the one its ContourImageSequence names (the image's
``meta['dicom_instances']`` knows where each referenced image lies), else
the slice plane its points lie in.  Contours more than ``tolerance`` from
that plane, outside the grid, open, or of fewer than 3 points are left out
and reported in ``meta['problems']`` (and in one warning): nothing is
dropped silently.
"""
import os
import warnings

import numpy as np

from .._threads import resolve_threads, run_kernel
from ..image import Image
from ..orientation import lps_to_ras_points

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
# Contour points per rasterising thread: one thread fills about 40 million
# points a second, while waking a team on a busy machine can cost
# milliseconds, so smaller structures run on one thread.
_POINTS_PER_THREAD = 100_000


class OverlapError(ValueError):
    """Labels that overlap cannot share one label map (use ``onehot=True``)."""


def read_dataset(path, kind, sop_class):
    """The pydicom data set of an annotation file, checked to be `kind`
    (a modality such as 'RTSTRUCT' or 'SEG').

    Raises
    ------
    FileNotFoundError, ValueError
        One line naming the file.
    """
    import pydicom

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable DICOM file ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    modality = str(ds.get("Modality", "")).upper()
    if modality != kind and str(ds.get("SOPClassUID", "")) != sop_class:
        raise ValueError(f"{path}: not a DICOM {kind} object (Modality "
                         f"{modality or 'missing'})")
    return ds


def referenced_series(ds):
    """SeriesInstanceUIDs an RTSTRUCT's contours were drawn on (from
    ReferencedFrameOfReferenceSequence), in order."""
    found = []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = str(series.get("SeriesInstanceUID", ""))
                if uid and uid not in found:
                    found.append(uid)
    return found


def roi_names(ds):
    """{ROINumber: ROIName} of a structure set, in file order."""
    return {int(item.ROINumber): str(item.get("ROIName", "") or f"ROI {item.ROINumber}")
            for item in ds.get("StructureSetROISequence", [])}


def _like_image(like, ds, path):
    """`like` as an :class:`Image`: itself, or the series it names in a
    folder (the referenced series when the folder holds several)."""
    if isinstance(like, Image):
        return like
    from .load import load_dicom

    folder = os.fspath(like)
    for uid in referenced_series(ds):
        try:
            return load_dicom(folder, series=uid)
        except ValueError:
            continue
    try:
        return load_dicom(folder)
    except ValueError as exc:
        raise ValueError(f"{path}: the series it references was not found in {folder} "
                         f"({str(exc).splitlines()[0]})") from None


def _contour_points(item):
    """ContourData of one contour item as (n, 3) float64 LPS points; the
    text is split in one call, not converted value by value."""
    element = item.get_item("ContourData")
    if element is None:
        return np.empty((0, 3))
    raw = element.value
    if isinstance(raw, bytes):
        text = raw.decode("ascii", "replace").strip(" \x00")
        values = np.array(text.split("\\"), dtype=np.float64) if text else np.empty(0)
    else:
        values = np.asarray(raw if raw is not None else [], dtype=np.float64).ravel()
    if values.size % 3:
        raise ValueError(f"ContourData holds {values.size} numbers (not x, y, z triplets)")
    return values.reshape(-1, 3)


def _referenced_uid(item):
    images = item.get("ContourImageSequence")
    if images:
        return str(images[0].get("ReferencedSOPInstanceUID", "")) or None
    return None


class _Grid:
    """The image grid contours are drawn on: world -> voxel, which axis is
    the slice axis, and the layout the kernel fills."""

    def __init__(self, image):
        self.shape = tuple(image.spatial_shape)
        self.world_to_voxel = np.linalg.inv(image.affine)
        self.spacing = np.sqrt((image.affine[:3, :3] ** 2).sum(axis=0))
        self.slice_axis = 2
        self.instances = image.meta.get("dicom_instances") or {}

    def voxels(self, lps_points):
        ras = lps_to_ras_points(lps_points)
        return ras @ self.world_to_voxel[:3, :3].T + self.world_to_voxel[:3, 3]

    def choose_slice_axis(self, contours):
        """The voxel axis the contours are flattest along (the slice axis
        of the grid they were drawn on, whatever the array's axis order)."""
        if contours:
            spread = sum(np.ptp(v, axis=0) * self.spacing for v in contours)
            self.slice_axis = int(np.argmin(spread))

    @property
    def plane_axes(self):
        """(x, y) axes of a slice: x along the kernel's contiguous axis."""
        return [a for a in range(3) if a != self.slice_axis]

    @property
    def buffer_shape(self):
        x, y = self.plane_axes
        return (self.shape[self.slice_axis], self.shape[y], self.shape[x])

    def to_array_order(self, buffer):
        """A (slices, rows, columns) buffer as an (i, j, k) view."""
        x, y = self.plane_axes
        layout = [self.slice_axis, y, x]
        return buffer.transpose([layout.index(d) for d in range(3)])

    def referenced_slice(self, uid):
        position = self.instances.get(uid) if uid else None
        if position is None:
            return None
        return float((self.world_to_voxel[:3, :3] @ position
                      + self.world_to_voxel[:3, 3])[self.slice_axis])


def _place_contours(contours, grid, tolerance, name, problems):
    """Slice index and in-plane points of each contour that can be placed;
    the others reported in `problems`."""
    placed = []
    step = grid.spacing[grid.slice_axis]
    n_slices = grid.shape[grid.slice_axis]
    x, y = grid.plane_axes
    for number, (voxels, uid) in enumerate(contours, 1):
        where = f"ROI '{name}' contour {number}"
        if not np.isfinite(voxels).all() or np.abs(voxels).max() > 1e9:
            problems.append(f"{where}: points absurdly far from the image; left out")
            continue
        along = voxels[:, grid.slice_axis]
        plane = float(along.mean())
        if np.ptp(along) * step > 2 * tolerance:
            problems.append(f"{where}: not in one slice plane of the image grid "
                            f"({np.ptp(along) * step:.3g} mm deep); left out")
            continue
        referenced = grid.referenced_slice(uid)
        k = int(round(referenced if referenced is not None else plane))
        offset = abs(plane - k) * step
        if referenced is None and offset > tolerance:
            problems.append(f"{where}: {offset:.3g} mm from the nearest slice plane "
                            f"(tolerance {tolerance:.3g} mm); left out")
            continue
        if not 0 <= k < n_slices:
            problems.append(f"{where}: outside the image (slice {k} of {n_slices}); left out")
            continue
        if referenced is not None and offset > tolerance:
            problems.append(f"{where}: {offset:.3g} mm from the slice its "
                            "ContourImageSequence names; drawn on that slice")
        placed.append((k, np.ascontiguousarray(voxels[:, [x, y]])))
    return placed


def _rasterise(placed, grid, threads):
    """One ROI's mask in the kernel's (slices, rows, columns) layout."""
    from .. import _raster

    mask = np.zeros(grid.buffer_shape, dtype=np.uint8)
    if not placed:
        return mask
    placed = sorted(placed, key=lambda item: item[0])
    slices = np.array([k for k, _ in placed], dtype=np.int64)
    xy = np.concatenate([points for _, points in placed])
    starts = np.concatenate([[0], np.cumsum([len(p) for _, p in placed])]).astype(np.int64)
    first = np.flatnonzero(np.r_[True, slices[1:] != slices[:-1]])
    group_starts = np.append(first, len(placed)).astype(np.int64)
    threads = min(resolve_threads(threads), 1 + len(xy) // _POINTS_PER_THREAD, len(first))
    run_kernel(_raster.fill_polygons, xy, starts, group_starts, slices[first], mask,
               threads=threads)
    return mask


def _roi_contours(ds, path, selected, problems):
    """{ROINumber: [(lps points, referenced SOP UID), ...]} of the selected
    ROIs' closed planar contours; other kinds reported."""
    names = roi_names(ds)
    contours = {number: [] for number in selected}
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.get("ReferencedROINumber", -1))
        if number not in contours:
            continue
        for index, item in enumerate(roi.get("ContourSequence", []), 1):
            where = f"ROI '{names.get(number, number)}' contour {index}"
            kind = str(item.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            try:
                points = _contour_points(item)
            except ValueError as exc:
                problems.append(f"{where}: {exc}; left out")
                continue
            if kind != "CLOSED_PLANAR":
                problems.append(f"{where}: {kind} (not an area); left out")
            elif len(points) < 3:
                problems.append(f"{where}: {len(points)} point(s) (not an area); left out")
            elif not np.isfinite(points).all():
                problems.append(f"{where}: ContourData is not finite; left out")
            else:
                contours[number].append((points, _referenced_uid(item)))
    return contours


def _select(names, rois, path):
    """ROINumbers to load, in label order."""
    if rois is None:
        return list(names)
    wanted = [rois] if isinstance(rois, str) else list(rois)
    by_name = {name: number for number, name in reversed(list(names.items()))}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise ValueError(f"{path}: no ROI named {', '.join(map(repr, missing))}; "
                         f"it holds {', '.join(map(repr, names.values())) or 'none'}")
    return [by_name[name] for name in wanted]


def load_rtstruct(path, like, *, rois=None, onehot=False, tolerance=None, threads=None):
    """Rasterise an RT structure set onto the grid of the image it annotates.

    Parameters
    ----------
    path : str or os.PathLike
        The RTSTRUCT file.
    like : Image or str or os.PathLike
        The grid: an :class:`Image` (e.g. from :func:`medfast.load_dicom`
        of the referenced series; any orientation, reoriented views
        included), or a DICOM folder holding the referenced series.
    rois : str or list of str, optional
        ROI names to load, in label order (default: all, in file order).
    onehot : bool, optional
        Return a 4-D ``uint8`` image, one channel per ROI (needed when ROIs
        overlap).  Default: a label map.
    tolerance : float, optional
        How far (mm) a contour may lie from the slice plane it is drawn on
        (default: a quarter of the slice spacing).
    threads : int, optional
        Most threads of the rasteriser (one slice per task; one thread per
        100,000 contour points of a ROI at most).

    Returns
    -------
    Image
        On ``like``'s grid (its affine): a label map (``uint8``, or
        ``uint16`` beyond 255 ROIs; 0 outside every ROI), or the one-hot
        channels.  ``meta['labels']`` maps label number -> ROI name (and
        ``meta['channels']`` gives each channel's label number, channel
        ``c`` being label ``c + 1``), ``meta['roi_numbers']`` label ->
        ROINumber,
        ``meta['problems']`` lists the contours left out and why.

    Raises
    ------
    ValueError
        Not an RTSTRUCT, an unknown ROI name, or (:class:`OverlapError`)
        ROIs that overlap in a label map (the message names them and the
        voxel count).

    Examples
    --------
    >>> ct = medfast.load_dicom("exam/ct")                        # doctest: +SKIP
    >>> labels = medfast.load_rtstruct("exam/rs.dcm", like=ct)    # doctest: +SKIP
    >>> labels.meta["labels"]                                     # doctest: +SKIP
    {1: 'BODY', 2: 'PTV', 3: 'Lung_L'}
    """
    path = os.fspath(path)
    ds = read_dataset(path, "RTSTRUCT", RTSTRUCT_SOP_CLASS)
    like = _like_image(like, ds, path)
    names = roi_names(ds)
    selected = _select(names, rois, path)
    problems = []
    contours = _roi_contours(ds, path, selected, problems)
    grid = _Grid(like)
    for number in selected:
        contours[number] = [(grid.voxels(points), uid) for points, uid in contours[number]]
    grid.choose_slice_axis([v for items in contours.values() for v, _ in items])
    if tolerance is None:
        tolerance = 0.25 * grid.spacing[grid.slice_axis]
    masks = []
    for number in selected:
        name = names.get(number, str(number))
        if not contours[number]:
            problems.append(f"ROI '{name}': no closed planar contour")
        placed = _place_contours(contours[number], grid, tolerance, name, problems)
        masks.append(_rasterise(placed, grid, threads))
    labels = {label: names.get(number, str(number)) for label, number in enumerate(selected, 1)}
    if onehot:
        if not masks:
            raise ValueError(f"{path}: no ROI to load (the structure set is empty)")
        array = np.stack([grid.to_array_order(m) for m in masks], axis=-1)
    else:
        array = grid.to_array_order(_label_map(masks, labels, grid.buffer_shape, path))
    if problems:
        dropped = sum("left out" in p for p in problems)
        warnings.warn(f"{path}: {len(problems)} problem(s), {dropped} contour(s) left out: "
                      f"{problems[0]}" + (" ..." if len(problems) > 1 else ""), stacklevel=2)
    meta = {"labels": labels, "roi_numbers": dict(zip(labels, selected)),
            "Modality": "RTSTRUCT", "source": path, "problems": problems,
            "annotation_of": like.meta.get("dicom_series")}
    if onehot:
        meta["channels"] = list(labels)
    return Image(array, like.affine, meta)


def _label_map(masks, labels, shape, path):
    """One label map from the ROI masks; overlapping ROIs raise."""
    dtype = np.uint8 if len(masks) < 256 else np.uint16
    out = np.zeros(shape, dtype=dtype)
    for label, mask in enumerate(masks, 1):
        inside = mask.view(bool)
        clash = out[inside]
        if clash.any():
            other = int(clash[clash != 0][0])
            count = int(np.count_nonzero(clash == other))
            raise OverlapError(f"{path}: ROIs '{labels[other]}' and '{labels[label]}' overlap "
                             f"in {count} voxel(s); a label map holds one label per voxel: "
                             "pass onehot=True")
        out[inside] = label
    return out

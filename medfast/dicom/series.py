"""Slices -> volumes: grouping, splitting, slice order, 4-D.

The rules are dcm2niix's (its ``isSameSet``), so that a folder gives the
volumes dcm2niix writes:

* slices are first bucketed by series (SeriesInstanceUID; Siemens XA
  classic images by SeriesTime, see :mod:`.vendors.siemens`);
* within a bucket, slices stack only when they agree on manufacturer,
  modality, derived or original, series number, study date and time,
  matrix, phase/real/imaginary kind, TR, flip angle, echo time and number,
  protocol name, vendor keys (a GE field map's two halves, reverse-polarity
  volumes) and orientation (within 1e-4); CT is stacked whatever its echo,
  kind and orientation (dcm2niix's automatic merge for X-ray);
* within a stack, slices are ordered by their position along the slice
  normal (never by InstanceNumber alone); positions that repeat the same
  number of times make a 4-D series, volumes ordered by series number and
  InstanceNumber (dimension indices for enhanced files, the vendor order for
  Philips), and incomplete volumes are dropped and reported;
* volumes split from one series get dcm2niix's suffixes: ``_e2`` (echo),
  ``_i00007`` (orientation), ``_ph``, ``_real``, ``_imaginary``,
  ``_fieldmaphz``, and a diffusion series with derived isotropic volumes
  gives a second output, ``_ADC``, holding them all.
"""
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..orientation import lps_to_ras_affine
from .geometry import POSITION_TOLERANCE, affine_and_checks, slice_distances

ORIENTATION_TOLERANCE = 1e-4    # dcm2niix: ImageOrientationPatient components
_SUFFIX = {"phase": "_ph", "real": "_real", "imaginary": "_imaginary",
           "fieldmaphz": "_fieldmaphz"}


@dataclass(eq=False)
class Volume:
    """The slices of one 3-D or 4-D volume, in order.

    Attributes
    ----------
    grid : list of list of Slice
        ``grid[t][k]``: volume (time point) t, slice k.
    affine : (4, 4) ndarray
        Voxel -> RAS+ mm.
    problems : list of str
        What was found and how it was handled.
    tilt : float
        Gantry tilt in degrees (0 when none).
    suffix : str
        dcm2niix-style suffix telling volumes of a series apart ('', '_e2',
        '_ph', '_i00007', '_ADC'...).
    dropped : list of (Slice, str)
        Slices of the series left out of this volume, and why.
    """

    grid: list
    affine: np.ndarray
    problems: list = field(default_factory=list)
    tilt: float = 0.0
    suffix: str = ""
    name: str = ""
    dropped: list = field(default_factory=list)

    @property
    def first(self):
        """The first slice (its header stands for the volume's)."""
        return self.grid[0][0]

    @property
    def shape(self):
        """(columns, rows, slices[, volumes]): the array's shape."""
        rows, cols = self.first.shape
        shape = (cols, rows, len(self.grid[0]))
        if len(self.grid) > 1:
            shape += (len(self.grid),)
        return shape

    @property
    def rgb(self):
        """Colour (RGB) voxels."""
        return self.first.file.samples == 3

    @property
    def series_number(self):
        """The lowest series number of the volume's slices (dcm2niix names
        a merged series after it)."""
        numbers = [s.series_number for s in self.grid[0] if s.series_number is not None]
        return min(numbers) if numbers else None

    @property
    def files(self):
        """The distinct files, in order of first use."""
        return list(dict.fromkeys(s.file.path for row in self.grid for s in row))


# --------------------------------------------------------------------------
# Which slices stack
# --------------------------------------------------------------------------
def _x_ray(s):
    """dcm2niix stacks X-ray images whatever their echo, kind and
    orientation: when (0018,1152) Exposure is given without an echo time."""
    return s.x_ray


def _protocol(s):
    return s.protocol


def _study(s):
    if s.xa_classic:
        return s.study_uid  # dcm2niix (issue 236): XA study times may differ
    return None if s.study_time is None else round(s.study_time, 3)


def _same_set_key(s):
    """Everything that must be equal for two slices of one bucket to stack
    (all but the orientation, compared with a tolerance)."""
    key = (s.manufacturer, s.modality, s.derived,
           None if s.stackable else s.series_number, _study(s), s.shape,
           # Not in dcm2niix (which uses the first slice's spacing for all):
           # a stack of several pixel spacings has no one affine.
           tuple(np.round(s.pixel_spacing, 4)),
           s.file.frames if s.tile is None else 1, s.file.samples, s.split)
    if _x_ray(s):
        return key
    return key + (s.complex_kind, s.repetition_time, s.flip_angle, s.echo_time, s.echo,
                  _protocol(s))


def _echo_part(key):
    return key[-5:-1] if len(key) > 10 else ()


def _orientation_groups(slices):
    """Split slices whose orientations differ by more than the tolerance;
    each group is compared with its first slice (as dcm2niix does)."""
    groups = []
    for s in slices:
        for group in groups:
            if np.max(np.abs(group[0].orientation - s.orientation)) <= ORIENTATION_TOLERANCE:
                group.append(s)
                break
        else:
            groups.append([s])
    return groups


def _file_order(s):
    """The order of images in time: series number (series split per volume
    stack in its order), the temporal index where there is one, instance
    number (dcm2niix's order), dimension indices; ties by file and frame."""
    big = float("inf")
    return (s.series_number if s.series_number is not None else big,
            s.temporal if s.temporal is not None else big,
            s.instance if s.instance is not None else big,
            s.dimension, s.acquisition if s.acquisition is not None else big,
            s.time if s.time is not None else big, s.file.path, s.frame,
            s.tile if s.tile is not None else 0)


# --------------------------------------------------------------------------
# Stacking one group
# --------------------------------------------------------------------------
def _positions(slices):
    """Cluster slices by position along the normal: a list of lists, in
    increasing distance."""
    normal = slices[0].normal
    d = slice_distances([s.position for s in slices], normal)
    order = np.argsort(d, kind="stable")
    clusters = [[slices[order[0]]]]
    last = d[order[0]]
    for i in order[1:]:
        if d[i] - last > POSITION_TOLERANCE:
            clusters.append([])
        clusters[-1].append(slices[i])
        last = d[i]
    return clusters


def _volume_order(slices):
    """A key ordering the slices of one position in time: the vendor's
    volume order where it has one, else dcm2niix's file order."""
    keys = {id(s): _file_order(s) for s in slices}
    enhanced = [s for s in slices if s.file.frames > 1 and s.dimension]
    if enhanced and len(enhanced) == len(slices) and len({s.file.path for s in slices}) == 1:
        rank = _dimension_rank(slices)
        if rank is not None:
            return lambda s: (rank[id(s)], keys[id(s)])
    if slices[0].manufacturer == "Philips" and all(s.order for s in slices):
        rank = _philips_rank(slices)
        if rank is not None:
            return lambda s: (rank[id(s)], keys[id(s)])
    return lambda s: keys[id(s)]


def _dimension_rank(slices):
    """Frames of one enhanced file ranked by DimensionIndexValues, for the
    vendors dcm2niix sorts (Philips, Canon, Bruker, unknown): the indices
    that vary, the last one most significant when the in-stack position
    comes before it, else the first."""
    if slices[0].manufacturer in ("Siemens", "GE", "UIH", "Hitachi", "Toshiba"):
        return None
    lengths = {len(s.dimension) for s in slices}
    if len(lengths) != 1:
        return None
    values = np.array([s.dimension for s in slices], dtype=float)
    varying = [j for j in range(values.shape[1]) if values[:, j].min() != values[:, j].max()]
    if not varying:
        return None
    stack_item = slices[0].file.stack_item
    reverse = stack_item is not None and stack_item < max(varying)
    keys = [tuple(reversed(row)) if reverse else tuple(row) for row in values.tolist()]
    return {id(s): k for s, k in zip(slices, keys)}


def _philips_rank(slices):
    """dcm2niix's volume key of classic Philips series: gradient number,
    b-value number, phase, ASL label; derived (isotropic) volumes last."""
    gradient = [s.order[0] or s.temporal or 0 for s in slices]
    phase = [max(1, s.order[2] or 0, s.order[1] or 0) for s in slices]
    asl = any(s.order[3] for s in slices)
    max_vol, max_phase = max(gradient), max(phase)
    out = {}
    for s, vol, ph in zip(slices, gradient, phase):
        if s.isotropic:
            key = (1, 0)
        elif asl:
            label = max_phase if s.order[3] == "LABEL" else 0
            key = (0, ph + label + (vol - 1) * 2 * max_phase)
        elif min(gradient) < max_vol and max_phase > 1:
            key = (0, vol + ph * max_vol)
        elif max_phase > 1:
            key = (0, ph)
        else:
            key = (0, vol)
        out[id(s)] = key
    if len(set(out.values())) == 1:
        return None
    return out


def _stack(slices):
    """One group of compatible slices -> list of (grid, problems, dropped)."""
    clusters = _positions(slices)
    counts = {len(c) for c in clusters}
    order = _volume_order(slices)
    for c in clusters:
        c.sort(key=order)
    if len(counts) == 1:
        n = counts.pop()
        return [([[c[t] for c in clusters] for t in range(n)], [], [])]
    # Positions repeat unevenly: separate acquisitions (e.g. two CT runs in
    # one series) may each form a volume ('_a1', '_a2' in acquisition order),
    # unless they are the time points of a series that lost images (two or
    # more acquisitions cover every position: one volume each, numbered).
    acquisitions = defaultdict(list)
    for s in slices:
        acquisitions[s.acquisition].append(s)
    where = {id(s): p for p, c in enumerate(clusters) for s in c}
    complete = sum(len({where[id(s)] for s in group}) == len(clusters)
                   for group in acquisitions.values())
    if len(acquisitions) > 1 and complete < 2:
        groups = [acquisitions[a] for a in sorted(
            acquisitions, key=lambda a: (a is None, a if a is not None else 0))]
        if all(len({len(c) for c in _positions(group)}) == 1 for group in groups):
            return [stack for group in groups for stack in _stack(group)]
    n = min(len(c) for c in clusters)
    grid = [[c[t] for c in clusters] for t in range(n)]
    # Without a slice missing from a volume's middle, the time points
    # present at every position are whole volumes; find them by the volume
    # key of each slice where slices carry one (temporal index), else by
    # rank in time.
    labels = [[s.temporal for s in c] for c in clusters]
    if all(None not in row and len(set(row)) == len(row) for row in labels):
        kept = sorted(set(labels[0]).intersection(*labels[1:]))
        if kept:
            grid = [[c[row.index(t)] for c, row in zip(clusters, labels)] for t in kept]
            n = len(grid)
    else:
        runs, current = [], {}
        for s in sorted(slices, key=order):
            if where[id(s)] in current:
                runs.append(current)
                current = {}
            current[where[id(s)]] = s
        runs.append(current)
        whole = [run for run in runs if len(run) == len(clusters)]
        if len(whole) == n:
            grid = [[run[p] for p in range(len(clusters))] for run in whole]
    used = {id(s) for row in grid for s in row}
    dropped = [s for s in slices if id(s) not in used]
    problem = (f"slice count differs between positions ({min(len(c) for c in clusters)}"
               f" to {max(len(c) for c in clusters)} per position): kept {n} "
               f"complete volume(s), dropped {len(dropped)} slice(s)")
    reason = f"incomplete volume: {problem}"
    return [(grid, [problem], [(s, reason) for s in dropped])]


def _no_geometry_stack(slices):
    """Slices without ImagePositionPatient: stacked in file order (dcm2niix
    does the same, with a placeholder geometry)."""
    ordered = sorted(slices, key=_file_order)
    return [([ordered], ["no ImagePositionPatient: slices stacked in instance order, "
                         "the affine is a placeholder"], [])]


def _split_isotropic(volume):
    """A diffusion series with derived isotropic (trace/ADC) volumes: the
    series without them, and the whole series (derived volumes last) as
    '_ADC', as dcm2niix does; None when nothing is to be split."""
    flags = [row[0].isotropic for row in volume.grid]
    kept = [row for row, iso in zip(volume.grid, flags) if not iso]
    if not any(flags) or len(kept) < 2 or volume.first.manufacturer not in ("Philips", "GE"):
        return None
    derived = [row for row, iso in zip(volume.grid, flags) if iso]
    main = Volume(kept, volume.affine, list(volume.problems), volume.tilt, volume.suffix,
                  dropped=volume.dropped)
    adc = Volume(kept + derived, volume.affine, list(volume.problems), volume.tilt,
                 volume.suffix + "_ADC")
    main.problems.append(f"{len(derived)} derived isotropic (trace/ADC) volume(s) left out "
                         f"(the whole series is written as '_ADC')")
    return [main, adc]


def _make_volumes(grid, problems, dropped, suffix):
    if grid[0][0].position is None:
        affine, more, tilt = _placeholder_affine(grid[0]), [], 0.0
    else:
        positions = np.array([s.position for s in grid[0]])
        affine, more, tilt = affine_and_checks(grid[0][0], positions, grid[0][0].slice_spacing)
    volume = Volume(grid, affine, problems + more, tilt, suffix, dropped=dropped)
    return _split_isotropic(volume) or [volume]


def _placeholder_affine(slices):
    """Voxel sizes only (no position): the orientation of the first slice
    and its pixel spacing, at the origin."""
    first = slices[0]
    lps = np.eye(4)
    lps[:3, 0] = first.orientation[:3] * first.pixel_spacing[1]
    lps[:3, 1] = first.orientation[3:] * first.pixel_spacing[0]
    lps[:3, 2] = first.normal * (first.slice_spacing or 1.0)
    return lps_to_ras_affine(lps)


def assemble(slices):
    """Group slices into volumes.

    Parameters
    ----------
    slices : list of Slice

    Returns
    -------
    list of Volume
    """
    buckets = defaultdict(list)
    for s in sorted(slices, key=lambda s: (s.file.path, s.frame, s.tile or 0)):
        buckets[s.series_uid or f"series {s.series_number}"].append(s)
    volumes = []
    for bucket in buckets.values():
        sets = defaultdict(list)
        for s in bucket:
            key = _same_set_key(s)
            if s.file.four_d:
                # A 4-D file is converted on its own, split where the
                # rescaling differs (dcm2niix).
                key += (s.file.path, s.slope, s.intercept)
            sets[key].append(s)
        multi_echo = len({_echo_part(k) for k in sets}) > 1
        groups, unplaced = [], []
        for key, members in list(sets.items()):
            placed = [s for s in members if s.position is not None]
            if placed and len(placed) < len(members):
                # Slices without a position among slices with one cannot be
                # placed: left out, and reported.
                unplaced.extend(s for s in members if s.position is None)
                members = sets[key] = placed
            if _x_ray(members[0]) or members[0].position is None:
                groups.append(members)
            else:
                groups.extend(_orientation_groups(members))
        non_parallel = len({id(g) for g in groups}) > len(sets)
        for members in groups:
            first = min(members, key=_file_order)
            suffix = ""
            if first.echo is not None and (multi_echo or first.echo > 1):
                suffix += f"_e{first.echo}"
            if non_parallel:
                suffix += f"_i{first.instance or 0:05d}"
            suffix += _SUFFIX.get(first.complex_kind, "")
            stacks = (_no_geometry_stack(members) if any(s.position is None for s in members)
                      else _stack(members))
            for index, (grid, problems, dropped) in enumerate(stacks):
                extra = f"_a{index + 1}" if len(stacks) > 1 else ""
                if unplaced and index == 0:
                    dropped = dropped + [(s, "no ImagePositionPatient (the other images of "
                                             "its series have one)") for s in unplaced]
                    unplaced = []
                volumes.extend(_make_volumes(grid, problems, dropped, suffix + extra))
    return volumes


def without_files(volume, paths):
    """The volume assembled again without the images of some files (their
    pixel data turned out unreadable): a gap in a 3-D volume, the time
    points that lose an image dropped from a 4-D one, as when those files'
    headers are unreadable.

    Parameters
    ----------
    volume : Volume
    paths : set of str

    Returns
    -------
    Volume
        With the name and suffix of `volume`; ``dropped`` adds the images
        of other files that the volumes left out had.

    Raises
    ------
    ValueError
        When no image is left, or the rest no longer forms one volume.
    """
    kept = [s for row in volume.grid for s in row if s.file.path not in paths]
    adc = volume.suffix.endswith("_ADC")
    rebuilt = [v for v in assemble(kept) if v.suffix.endswith("_ADC") == adc] if kept else []
    if len(rebuilt) != 1:
        raise ValueError(f"{len(kept)} image(s) left, which do not form one volume")
    new = rebuilt[0]
    new.suffix, new.name = volume.suffix, volume.name
    new.dropped = list(volume.dropped) + new.dropped
    return new

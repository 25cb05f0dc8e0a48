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
  kind and orientation (dcm2niix's automatic merge for X-ray); a localizer
  (ImageType LOCALIZER) never stacks with the images it plans (dcm2niix
  stacks one that shares their series and orientation);
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

from . import equalize
from .geometry import POSITION_TOLERANCE, affine_and_checks, slice_distances
from .pixels import stored_dtype
from .vendors.philips import DCM2NIIX_VENDOR_PREFIXES

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
    variant : bool
        Another rendering of a volume of the same series: its equidistant
        copy ('_Eq') or the whole diffusion series with its derived volumes
        ('_ADC').  ``load_dicom`` does not count variants as more volumes.
    equalize : tuple or None
        For an '_Eq' copy: the slices' distances, count and spacing the
        pixels are resampled to.
    """

    grid: list
    affine: np.ndarray
    problems: list = field(default_factory=list)
    tilt: float = 0.0
    suffix: str = ""
    name: str = ""
    dropped: list = field(default_factory=list)
    variant: bool = False      # another rendering of a volume ('_Eq', '_ADC')
    equalize: object = None    # (distances, count, spacing) of an '_Eq' copy

    @property
    def first(self):
        """The first slice (its header stands for the volume's)."""
        return self.grid[0][0]

    @property
    def shape(self):
        """(columns, rows, slices[, volumes]): the array's shape."""
        rows, cols = self.first.shape
        slices = self.equalize[1] if self.equalize is not None else len(self.grid[0])
        shape = (cols, rows, slices)
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
    if s.xa10a and len(s.study_uid) > 1:
        return s.study_uid  # dcm2niix (issue 236): XA10-XA31 study times may differ
    return None if s.study_time is None else round(s.study_time, 3)


def _series(s):
    """The series number as dcm2niix compares it: not at all for series
    that may stack across numbers, by thousands for XA10-XA31 numbers above
    1000 (their split series 5001, 5002...)."""
    if s.stackable:
        return None
    if s.xa10a and s.series_number is not None and s.series_number > 1000:
        return ("thousands", s.series_number // 1000)
    return s.series_number


def is_localizer(s):
    """A scout image (ImageType LOCALIZER)."""
    return "LOCALIZER" in s.image_type


def _same_set_key(s):
    """Everything that must be equal for two slices of one bucket to stack
    (all but the orientation, compared with a tolerance)."""
    key = (s.manufacturer, s.modality, s.derived, _series(s), _study(s), s.shape,
           # Not in dcm2niix (which uses the first slice's spacing for all):
           # a stack of several pixel spacings has no one affine.
           tuple(np.round(s.pixel_spacing, 4)),
           s.file.frames if s.tile is None else 1, s.file.samples,
           # Not in dcm2niix either: a localizer in the series it plans, in
           # the same orientation, would be stacked as one more slice.
           s.split + (is_localizer(s),))
    if _x_ray(s):
        return key
    return key + (s.complex_kind, s.repetition_time, s.flip_angle, s.echo_time, s.echo,
                  _protocol(s))


def _multi_echo(sets):
    """dcm2niix's isMultiEcho for the sets of one bucket: two sets that
    agree on everything its isSameSet compares before the echo (the
    phase/real/imaginary kind included) but differ in TR, flip angle, echo
    time or number; or a 4-D file split by echo time."""
    echoes = defaultdict(set)
    for key, members in sets.items():
        # _same_set_key: ten common values, the kind, TR, flip angle, echo
        # time and number (X-ray keys stop after the ten).
        if len(key) > 10:
            echoes[key[:11]].add(key[11:15])
        if members[0].file.four_d:
            echoes[members[0].file.path].add(members[0].echo)
    return any(len(found) > 1 for found in echoes.values())


def _echo_suffix(s, multi_echo):
    """dcm2niix's '_e' suffix: the echo number for a multi-echo series or
    an echo above 1; without an echo number (Siemens XA may leave it out,
    issue 568), the echo time, as C's '%g' writes it."""
    echo = s.echo or 0
    if not multi_echo and echo <= 1:
        return ""
    if echo < 1 and s.echo_time and s.echo_time > 0:
        return f"_e{s.echo_time:g}"
    return f"_e{echo}"


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


# dcm2niix sorts the frames of an enhanced file by DimensionIndexValues only
# for these vendors and for those it does not know.
_DIMENSION_VENDORS = ("Philips", "Canon", "Bruker", "Mediso")


def _sorts_dimension_indices(manufacturer):
    return manufacturer in _DIMENSION_VENDORS or \
        not manufacturer.upper().startswith(DCM2NIIX_VENDOR_PREFIXES)


def _dimension_rank(slices):
    """Frames of one enhanced file ranked as dcm2niix orders them.

    Philips, Canon, Bruker, Mediso and unknown vendors: by DimensionIndexValues,
    the last index most significant when the in-stack position's index
    (``file.stack_item``, 0 without one) comes before the last index that
    varies (Philips), else the first (Canon, Bruker).  Canon files in which
    a single index varies although positions repeat get a volume index
    counted from the frames at in-stack position 1, in file order.  Other
    vendors (Siemens, GE, UIH, Hitachi, Toshiba) and frames without indices:
    the order stored."""
    first = slices[0]
    stored = {id(s): (s.frame,) for s in slices}
    if not _sorts_dimension_indices(first.manufacturer) or any(not s.dimension for s in slices):
        return stored
    values = np.zeros((len(slices), 8), dtype=np.int64)
    for row, s in zip(values, slices):
        dims = [int(v) for v in s.dimension[:8]]
        row[:len(dims)] = dims
    varying = [j for j in range(8) if values[:, j].min() != values[:, j].max()]
    if not varying:
        return stored
    last_varying = max(varying)
    stack_item = first.file.stack_item or 0
    if first.manufacturer == "Canon" and len(varying) == 1 and first.file.four_d \
            and stack_item < values.shape[1]:
        time_item = 1 if stack_item == 0 else 0
        last_varying = max(last_varying, time_item)
        volume = 0
        for i in sorted(range(len(slices)), key=lambda i: slices[i].frame):
            volume += values[i, stack_item] == 1
            values[i, time_item] = volume
    reverse = stack_item < last_varying
    keys = [tuple(row[::-1]) if reverse else tuple(row) for row in values.tolist()]
    return {id(s): k for s, k in zip(slices, keys)}


def _philips_file_order(s):
    """dcm2niix's first order of a series' files: series number, instance
    number, dimension indices."""
    big = float("inf")
    return (s.series_number if s.series_number is not None else big,
            s.instance if s.instance is not None else big, s.dimension, s.file.path, s.frame)


def _signed_distance(a, b):
    """dcm2niix's intersliceDistanceSigned: |b - a|, negative when b lies
    behind a along a's slice normal."""
    step = np.asarray(b.position) - np.asarray(a.position)
    length = float(np.linalg.norm(step))
    if length <= 1.1920929e-07:
        return 0.0
    return -length if float(np.dot(a.normal, step)) < 0 else length


def _spatially_sequential(ordered, per_volume):
    """dcm2niix's check (ensureSequentialSlicePositions) that files in order
    step through space evenly within each run of `per_volume` files."""
    if per_volume < 3:
        return True
    i = 0
    for _ in range(len(ordered) // per_volume):
        dx = _signed_distance(ordered[i], ordered[i + 1])
        for z in range(per_volume):
            if z > 0 and abs(dx - _signed_distance(ordered[i - 1], ordered[i])) > 0.2:
                return False
            i += 1
    return True


def _philips_rank(slices):
    """The volume order dcm2niix gives a classic Philips series.

    Files are first in InstanceNumber order.  When that order steps evenly
    through space in every run of one volume's worth of files (volume by
    volume, or slice by slice with as many volumes as slices), it stays.
    Otherwise the files are re-sorted, stably, by dcm2niix's volume key
    from ``Slice.order`` = (volume number, phase, ASL label), where the
    volume number is the TemporalPositionIdentifier, the fMRI volume number
    or the gradient orientation number (a derived trace/ADC file: 65536,
    so last), and the phase the larger of the phase number and the b-value
    number:

    * volume numbers do not vary, one phase, instance numbers do: the
      instance number;
    * no ASL, volume numbers do not vary, several phases: the phase;
    * no ASL, both vary: volume + phase * max volume (b-value number major,
      gradient minor);
    * ASL (label type on the first file): phase fastest, then control
      before label, then repeat (the volume number);
    * a key above 65535 (derived): max volume + 1.
    """
    ordered = sorted(slices, key=_philips_file_order)
    index = {id(s): i for i, s in enumerate(ordered)}
    per_volume = len(_positions(slices))
    volumes = len(slices) // per_volume
    if _spatially_sequential(ordered, per_volume):
        return {id(s): (0, index[id(s)]) for s in slices}
    raw = [s.order[0] for s in ordered]
    max_volume = max(raw)
    below_derived = [v for v in raw if v < 65535]
    instances = [s.instance if s.instance is not None else 0 for s in ordered]
    max_phase = max([1] + [s.order[1] for s in ordered])
    asl = bool(ordered[0].order[2])
    by_instance = volumes > 1 and max_phase == 1 and below_derived \
        and min(raw) == max(below_derived) and min(instances) < max(instances)
    by_phase = not asl and min(raw) == max_volume and max_phase > 1
    phase_and_volume = not asl and min(raw) < max_volume and max_phase > 1
    out = {}
    for s, instance in zip(ordered, instances):
        volume, phase = s.order[0], max(1, s.order[1])
        key = volume
        if by_phase:
            key = phase
        if phase_and_volume:
            key += phase * max_volume
        if asl:
            key = phase + (max_phase if s.order[2] == "LABEL" else 0) \
                + (volume - 1) * 2 * max_phase
        if by_instance:
            key = instance
        if key > 65535:
            key = max_volume + 1
        out[id(s)] = (key, index[id(s)])
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
    """Slices without ImagePositionPatient, stacked as dcm2niix does (with
    a placeholder geometry): in file order, a tiled file's tiles making one
    volume; the slice order is reversed when row x column points against
    (1, 1, 1), dcm2niix's guess at the slice direction."""
    ordered = sorted(slices, key=_file_order)
    if ordered[0].tile is not None:
        files = defaultdict(list)
        for s in ordered:
            files[s.file.path].append(s)
        grid = list(files.values())
    else:
        grid = [ordered]
    if np.sum(ordered[0].normal) < 0:
        grid = [row[::-1] for row in grid]
    return [(grid, ["no ImagePositionPatient: slices stacked in instance order, "
                    "the affine is a placeholder"], [])]


def _adc_order(derived):
    """The volume order of dcm2niix's '_ADC' file: its volume index puts the
    other volumes first and leaves the rest of its slots as they were, and
    its in-place swap loop (reorderVolumes) then places the derived
    volumes; replayed here, as its order is not simply 'derived last'."""
    n = len(derived)
    kept = [i for i in range(n) if not derived[i]]
    wanted = kept + list(range(len(kept), n))
    order, where = list(range(n)), list(range(n))
    for o in range(n):
        i = where[wanted[o]]
        if i != o:
            order[o], order[i] = order[i], order[o]
            where[o] = i
    return order


def _split_isotropic(volume):
    """A diffusion series with derived isotropic (trace/ADC) volumes (b != 0
    with a zero direction, Philips and GE as dcm2niix): the series without
    them, and the whole series (derived volumes moved to the end) as
    '_ADC'.  None when nothing is to be split: no derived volume, fewer
    than two others (b=0 plus one trace, or a trace-only series), another
    vendor."""
    derived = [row[0].isotropic for row in volume.grid]
    kept = [row for row, iso in zip(volume.grid, derived) if not iso]
    if not any(derived) or len(kept) < 2 or volume.first.manufacturer not in ("Philips", "GE"):
        return None
    main = Volume(kept, volume.affine, list(volume.problems), volume.tilt, volume.suffix,
                  dropped=volume.dropped)
    adc = Volume([volume.grid[i] for i in _adc_order(derived)], volume.affine,
                 list(volume.problems), volume.tilt, volume.suffix + "_ADC", variant=True)
    main.problems.append(f"{sum(derived)} derived isotropic (trace/ADC) volume(s) left out "
                         f"(the whole series is written as '_ADC')")
    return [main, adc]


def _make_volumes(grid, problems, dropped, suffix):
    distances = None
    if grid[0][0].position is None:
        affine, more, tilt = _placeholder_affine(grid), [], 0.0
        for row in grid:
            for s in row:
                s.flip_rows = True  # dcm2niix's row order, for its placeholder
    else:
        positions = np.array([s.position for s in grid[0]])
        affine, more, tilt, distances = affine_and_checks(grid[0][0], positions,
                                                          grid[0][0].slice_spacing)
    volume = Volume(grid, affine, problems + more, tilt, suffix, dropped=dropped)
    return (_split_isotropic(volume) or [volume]) + _equidistant(volume, distances)


def _equidistant(volume, distances):
    """dcm2niix's '_Eq' copy of a 3-D stack with unequal gaps (see
    :mod:`.equalize`): [] or [Volume]."""
    if distances is None or len(volume.grid) > 1 or volume.tilt:
        return []
    info = volume.first.file
    if not equalize.eligible(stored_dtype(info), info.samples == 3):
        return []
    plan = equalize.plan(distances)
    if plan is None:
        return []
    count, spacing = plan
    affine = volume.affine.copy()
    affine[:3, 2] *= spacing / np.linalg.norm(affine[:3, 2])
    copy = Volume(volume.grid, affine, [f"slices resampled to {count} equidistant slices "
                                        f"{spacing:.4g} mm apart (dcm2niix's '_Eq')"],
                  0.0, volume.suffix + "_Eq", variant=True)
    copy.equalize = (distances, count, spacing)
    return [copy]


def _placeholder_affine(grid):
    """Images without a position have no place in the patient: the voxel
    sizes alone, as NIfTI (and nibabel) read a file whose qform and sform
    codes are 0 (x flipped, centred), which is what dcm2niix writes for
    them (with the rows in its order: ``Slice.flip_rows``)."""
    first = grid[0][0]
    shape = np.array([first.shape[1], first.shape[0], len(grid[0])], dtype=float)
    zooms = np.array([-first.pixel_spacing[1], first.pixel_spacing[0],
                      first.slice_spacing or 1.0])
    affine = np.eye(4)
    affine[:3, :3] = np.diag(zooms)
    affine[:3, 3] = -(shape - 1) / 2.0 * zooms
    return affine


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
        kinds = defaultdict(set)
        for s in bucket:
            if s.file.four_d:
                kinds[s.file.path].add((s.echo_time, s.complex_kind))
        for s in bucket:
            key = _same_set_key(s)
            if s.file.four_d:
                # A 4-D file is converted on its own; when its echo times or
                # kinds vary it is also split where the rescaling differs
                # (dcm2niix), else varying rescaling gives display values.
                key += (s.file.path,)
                if len(kinds[s.file.path]) > 1:
                    key += (s.slope, s.intercept)
            sets[key].append(s)
        multi_echo = _multi_echo(sets)
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
        scouts_apart = any(is_localizer(s) for s in bucket) and not all(
            is_localizer(s) for s in bucket)
        for members in groups:
            first = min(members, key=_file_order)
            suffix = _echo_suffix(first, multi_echo)
            if non_parallel or (scouts_apart and is_localizer(first)):
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

    def kind(v):  # the volume itself, or which of its renderings
        return (v.suffix.endswith("_ADC"), v.equalize is not None)

    rebuilt = [v for v in assemble(kept) if kind(v) == kind(volume)] if kept else []
    if len(rebuilt) != 1:
        raise ValueError(f"{len(kept)} image(s) left, which do not form one volume")
    new = rebuilt[0]
    new.suffix, new.name = volume.suffix, volume.name
    new.dropped = list(volume.dropped) + new.dropped
    return new

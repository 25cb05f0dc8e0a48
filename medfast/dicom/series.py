"""Slices -> volumes: grouping, splitting, slice order, 4-D.

Slices are grouped by series and split wherever one volume cannot be formed
(different matrix, orientation, pixel spacing, echo or image type, e.g.
magnitude and phase).  Within a group, slices are ordered by their position
projected on the slice normal (never by InstanceNumber alone); positions
that repeat the same number of times make a 4-D series (time, diffusion),
ordered in time by the temporal index, then InstanceNumber.
"""
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .geometry import POSITION_TOLERANCE, affine_and_checks, slice_distances


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
        dcm2niix-style suffix telling split volumes of a series apart
        ('', '_e2', '_ph', '_a3', ...).
    """

    grid: list
    affine: np.ndarray
    problems: list = field(default_factory=list)
    tilt: float = 0.0
    suffix: str = ""
    name: str = ""

    @property
    def first(self):
        """The first slice (its header stands for the volume's)."""
        return self.grid[0][0]

    @property
    def shape(self):
        """(columns, rows, slices[, volumes]): the array's shape."""
        rows, cols = self.first.shape
        shape = (cols, rows, len(self.grid[0]))
        return shape + (len(self.grid),) if len(self.grid) > 1 else shape

    @property
    def files(self):
        """The distinct files, in order of first use."""
        return list(dict.fromkeys(s.file.path for row in self.grid for s in row))


def _split_key(s):
    return (s.series_uid, s.series_number, s.shape, tuple(np.round(s.orientation, 4)),
            tuple(np.round(s.pixel_spacing, 4)), s.echo, s.image_type)


def _time_key(s):
    big = float("inf")
    return (s.temporal if s.temporal is not None else big,
            s.instance if s.instance is not None else big,
            s.acquisition if s.acquisition is not None else big,
            s.file.path, s.frame)


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


def _stack(slices):
    """One group of compatible slices -> list of (grid, problems)."""
    clusters = _positions(slices)
    counts = {len(c) for c in clusters}
    if len(counts) == 1:
        n = counts.pop()
        for c in clusters:
            c.sort(key=_time_key)
        return [([[c[t] for c in clusters] for t in range(n)], [])]
    # Positions repeat unevenly: separate acquisitions (e.g. two CT runs in
    # one series) may each form a volume.
    acquisitions = defaultdict(list)
    for s in slices:
        acquisitions[s.acquisition].append(s)
    if len(acquisitions) > 1:
        # Fix: in acquisition-number order (was the order the files were
        # listed in, so '_a1' could name either run depending on file names).
        groups = [acquisitions[a] for a in sorted(
            acquisitions, key=lambda a: (a is None, a if a is not None else 0))]
        parts = [_positions(group) for group in groups]
        if all(len({len(c) for c in p}) == 1 for p in parts):
            out = []
            for group in groups:
                out.extend(_stack(group))
            return out
    n = min(len(c) for c in clusters)
    for c in clusters:
        c.sort(key=_time_key)
    grid = [[c[t] for c in clusters] for t in range(n)]
    # Fix: taking the first n slices of every position stitched volumes
    # from different time points when a slice was missing from one volume
    # (its position then holds the next time point's slice at that rank).
    # When every slice has a temporal index, unique per position, keep the
    # time points present at every position, each whole.
    labels = [[s.temporal for s in c] for c in clusters]
    if all(None not in row and len(set(row)) == len(row) for row in labels):
        kept = sorted(set(labels[0]).intersection(*labels[1:]))
        if kept:
            grid = [[c[row.index(t)] for c, row in zip(clusters, labels)] for t in kept]
            n = len(grid)
    else:
        # Without temporal indices: in time order (InstanceNumber), a new
        # volume starts where a position repeats; runs holding every
        # position once are whole volumes.  Used when they account for as
        # many volumes as there are complete positions (time-major
        # numbering); otherwise the ranks above are all there is to go on.
        where = {id(s): p for p, c in enumerate(clusters) for s in c}
        runs, current = [], {}
        for s in sorted(slices, key=_time_key):
            if where[id(s)] in current:
                runs.append(current)
                current = {}
            current[where[id(s)]] = s
        runs.append(current)
        whole = [run for run in runs if len(run) == len(clusters)]
        if len(whole) == n:
            grid = [[run[p] for p in range(len(clusters))] for run in whole]
    problem = (f"slice count differs between positions ({min(len(c) for c in clusters)}"
               f" to {max(len(c) for c in clusters)} per position); kept {n} "
               f"complete volume(s), {len(slices) - n * len(clusters)} slice(s) dropped")
    return [(grid, [problem])]


def _suffixes(keys):
    """dcm2niix-like suffixes for the volumes split from one series."""
    echoes = sorted({k[5] for k in keys if k[5] is not None})
    out = []
    for k in keys:
        suffix = ""
        if len(echoes) > 1:
            suffix += f"_e{echoes.index(k[5]) + 1}"
        image_type = k[6]
        if "P" in image_type or "PHASE" in image_type:
            suffix += "_ph"
        elif "FIELD_MAP" in image_type:
            suffix += "_fieldmaphz"
        elif "REAL" in image_type:
            suffix += "_real"
        elif "IMAGINARY" in image_type:
            suffix += "_imaginary"
        out.append(suffix)
    return out


def assemble(slices):
    """Group slices into volumes.

    Parameters
    ----------
    slices : list of Slice

    Returns
    -------
    list of Volume
        In order of series number, then split order.
    """
    groups = defaultdict(list)
    for s in slices:
        groups[_split_key(s)].append(s)
    by_series = defaultdict(list)
    for key in groups:
        by_series[key[:2]].append(key)
    volumes = []
    for keys in by_series.values():
        keys.sort(key=lambda k: (k[5] if k[5] is not None else -1, k[6], k[2], k[3], k[4]))
        for key, suffix in zip(keys, _suffixes(keys)):
            stacks = _stack(groups[key])
            for index, (grid, problems) in enumerate(stacks):
                positions = np.array([s.position for s in grid[0]])
                affine, more, tilt = affine_and_checks(
                    grid[0][0], positions, grid[0][0].slice_spacing)
                extra = f"_a{index + 1}" if len(stacks) > 1 else ""
                volumes.append(Volume(grid, affine, problems + more, tilt,
                                      suffix + extra))
    return volumes

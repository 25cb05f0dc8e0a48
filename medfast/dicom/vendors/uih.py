"""United Imaging (UIH): grids of slices in one image, and diffusion.

A UIH "grid" (ImageType VFRAME) tiles the slices of one volume in a single
2-D image, like a Siemens mosaic.  As in dcm2niix, the number of slices,
(0065,xx50) of the private creator 'Image Private Header', is what makes
an image a grid (VFRAME alone does not); the tiles fill ceil(sqrt(n))
columns row by row (ceil(n / columns) rows, where a Siemens mosaic is
square), and the private sequence (0065,xx51) holds each slice's position
and acquisition time.

Geometry follows dcm2niix, which treats a grid as an ordinary stack: the
first position in the file (the top-level ImagePositionPatient, else the
first slice's), slices SpacingBetweenSlices (else SliceThickness) apart
along row x column, and the last slice's position only to tell whether the
slices run the other way (else dcm2niix's guess: against row x column when
its components add up to less than 0).

Diffusion: b-value (0065,xx09) and gradient (0065,xx37), the gradient in
the image's axes (row, column, row x column); (0018,9089) is ignored for
UIH, as dcm2niix ignores it.
"""
import math
from dataclasses import replace

import numpy as np

from ..values import floats, number, tm_seconds

CREATOR = "Image Private Header"
_SAME = 1.1920929e-07  # dcm2niix's FLT_EPSILON: positions compared as equal


def is_grid(header):
    """A grid of more than one slice."""
    n = number(header.private(0x0065, CREATOR, 0x50, vr="DS"))
    return n is not None and n > 1


def grid_layout(n, rows, cols):
    """(tile rows, tile cols, grid columns) of a grid of `n` slices."""
    across = math.ceil(math.sqrt(n))
    down = math.ceil(n / across)
    return rows // down, cols // across, across


def _against_normal(first, last, normal, span):
    """dcm2niix's verify_slice_dir for a grid: whether its slices run
    against `normal`, judged on the axis the normal is closest to, from
    the last slice's position; `span` = (n - 1) * spacing."""
    size = np.abs(normal)
    axis = 0
    if size[1] >= size[0] and size[1] >= size[2]:
        axis = 1
    if size[2] >= size[0] and size[2] >= size[1]:
        axis = 2
    if last is not None and abs(last[axis] - first[axis]) > _SAME:
        projected = first[axis] + span * normal[axis]
        return (last[axis] > first[axis]) != (projected > first[axis])
    return float(np.sum(normal)) < 0


def grid_slices(header, base):
    """The slices of a grid image, one per tile, in tile order.

    Parameters
    ----------
    header : medfast.dicom.header.Header
    base : medfast.dicom.slices.Slice
        The image as one slice (its top-level fields).

    Returns
    -------
    list of Slice
        Without a position when the file has none (the tiles are then
        stacked with a placeholder geometry, see
        :func:`medfast.dicom.series.assemble`).
    """
    from ..slices import MAX_MM, NotAVolume, check_tiles

    n = int(number(header.private(0x0065, CREATOR, 0x50, vr="DS")))
    tile_rows, tile_cols, across = grid_layout(n, base.file.rows, base.file.columns)
    if tile_rows < 1 or tile_cols < 1:
        raise NotAVolume(f"UIH grid of {base.file.rows}x{base.file.columns} cannot hold "
                         f"{n:.6g} slices")
    check_tiles(base.file, n, "UIH grid")
    items = header.private(0x0065, CREATOR, 0x51)
    items = items if isinstance(items, list) else []
    positions = [p for p in (floats(item.get("ImagePositionPatient"), 3) for item in items)
                 if p is not None and np.abs(p).max() <= MAX_MM]
    first = base.position if base.position is not None else (
        positions[0] if positions else None)
    last = positions[-1] if positions else None
    step = base.slice_spacing or 1.0
    normal = base.normal
    if first is not None and _against_normal(first, last, normal, (n - 1) * step):
        normal = -normal
    times = [tm_seconds(item.get("AcquisitionTime")) for item in items]
    tile_times = None
    if len(times) == n and None not in times:
        earliest = min(times)
        tile_times = [(t - earliest) * 1000.0 for t in times]
    out = []
    for k in range(n):
        position = None if first is None else first + k * step * normal
        time = times[k] if tile_times is not None else base.time
        out.append(replace(base, tile=k, shape=(tile_rows, tile_cols), normal=normal,
                           position=position, time=time, mosaic_times=tile_times,
                           mosaic_columns=across))
    return out


def classic_fields(header, s):
    """Fill a UIH slice's diffusion fields: the b-value (0065,xx09), else
    DiffusionBValue, and the gradient (0065,xx37) turned from the image's
    axes into the patient's (LPS)."""
    s.gradient = None  # dcm2niix ignores (0018,9089) for UIH
    bvalue = number(header.private(0x0065, CREATOR, 0x09, vr="FD"))
    if bvalue is not None:
        s.bvalue = bvalue
    vector = floats(header.private(0x0065, CREATOR, 0x37, vr="FD"), 3)
    if vector is not None:
        s.gradient = (vector[0] * s.orientation[:3] + vector[1] * s.orientation[3:]
                      + vector[2] * s.normal)

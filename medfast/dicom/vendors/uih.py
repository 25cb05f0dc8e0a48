"""United Imaging (UIH): grids of slices in one image, and diffusion.

A UIH "grid" (ImageType VFRAME) tiles the slices of one volume in a single
2-D image, like a Siemens mosaic: the number of slices is (0065,xx50) of
the private creator 'Image Private Header', the tiles fill a grid of
ceil(sqrt(n)) columns row by row, and each slice's position is in the
private sequence (0065,xx51) (items with ImagePositionPatient).  Unlike a
Siemens mosaic, the top-level ImagePositionPatient is the first slice's.
Diffusion: b-value (0065,xx09), direction (0065,xx37).
"""
import math
from dataclasses import replace

import numpy as np

from ..values import floats, number

CREATOR = "Image Private Header"


def is_grid(header):
    """A grid of more than one slice."""
    n = number(header.private(0x0065, CREATOR, 0x50, vr="DS"))
    return n is not None and n > 1


def grid_layout(n, rows, cols):
    """(tile rows, tile cols, grid columns) of a grid of `n` slices."""
    across = math.ceil(math.sqrt(n))
    down = math.ceil(n / across)
    return rows // down, cols // across, across


def grid_slices(header, base):
    """The slices of a grid image: one per tile, placed by the private
    per-slice positions (else stepped along the normal from the first)."""
    n = int(number(header.private(0x0065, CREATOR, 0x50, vr="DS")))
    tile_rows, tile_cols, across = grid_layout(n, base.file.rows, base.file.columns)
    if tile_rows < 1 or tile_cols < 1:
        from ..slices import NotAVolume
        raise NotAVolume(f"UIH grid of {base.file.rows}x{base.file.columns} cannot hold "
                         f"{n} slices")
    seq = header.private_tag(0x0065, CREATOR, 0x51)
    items = header.sequence(seq) if seq is not None else []
    positions = [floats(item.get("ImagePositionPatient"), 3) for item in items]
    times = [item.get("AcquisitionTime") for item in items]
    first = base.position if base.position is not None else (positions[0] if positions else None)
    if first is None:
        from ..slices import NotAVolume
        raise NotAVolume("UIH grid without image geometry")
    step = base.slice_spacing or 1.0
    normal = base.normal
    if len(positions) == n and positions[-1] is not None and n > 1:
        if np.dot(positions[-1] - first, normal) < 0:
            normal = -normal
    out = []
    from ..values import tm_seconds
    for k in range(n):
        position = positions[k] if len(positions) == n and positions[k] is not None \
            else first + k * step * normal
        time = tm_seconds(times[k]) if len(times) == n else base.time
        out.append(replace(base, tile=k, shape=(tile_rows, tile_cols), normal=normal,
                           position=position, time=time, mosaic_columns=across))
    return out


def classic_fields(header, s):
    """Fill a UIH slice's diffusion fields."""
    bvalue = number(header.private(0x0065, CREATOR, 0x09, vr="FD"))
    if bvalue is not None:
        s.bvalue = bvalue
        s.gradient = floats(header.private(0x0065, CREATOR, 0x37, vr="FD"), 3)

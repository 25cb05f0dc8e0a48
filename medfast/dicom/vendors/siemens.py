"""Siemens: the CSA private header and mosaic images.

A mosaic stores all slices of one volume tiled in a single 2-D image
(ImageType contains 'MOSAIC').  Its ImagePositionPatient is that of the
whole tiled image, not of the first slice, and the slice direction comes
from the CSA header's SliceNormalVector (it may point against the cross
product of the row and column directions).  Parsing the CSA header is left
to nibabel's ``nicom.csareader``.
"""
import math
import struct
import warnings

import numpy as np


def _csareader():
    with warnings.catch_warnings():
        # nibabel.nicom warns that its DICOM *wrappers* are experimental;
        # only the CSA parser, which is stable, is used here.
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader
    return csareader


def csa_image_header(ds):
    """The CSA image header (0029,xx10) as {name: list of values}, or {}."""
    try:
        block = ds.private_block(0x0029, "SIEMENS CSA HEADER")
        raw = block[0x10].value
    except (KeyError, ValueError):
        return {}
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    try:
        tags = _csareader().read(bytes(raw))["tags"]
    except Exception:  # a malformed private header is not fatal
        return {}
    return {name: tag["items"] for name, tag in tags.items() if tag["items"]}


def _private_int(ds, creator, element):
    try:
        value = ds.private_block(0x0019, creator)[element].value
    except (KeyError, ValueError):
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) in (2, 4):  # implicit VR: raw US/UL
            return struct.unpack("<H" if len(value) == 2 else "<I", value)[0]
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def mosaic_geometry(ds, csa):
    """Number of tiles, tile shape, first-slice position and slice normal.

    Parameters
    ----------
    ds : pydicom.Dataset
        A mosaic image's header.
    csa : dict
        Its CSA image header (:func:`csa_image_header`).

    Returns
    -------
    n_slices : int
    tile : (rows, cols)
    position : (3,) ndarray
        ImagePositionPatient of the first slice (LPS, mm).
    normal : (3,) ndarray
        Unit vector from one slice to the next.

    Raises
    ------
    ValueError
        When the number of slices is missing or does not fit the image.
    """
    n = _private_int(ds, "SIEMENS MR HEADER", 0x0A)
    if not n and csa.get("NumberOfImagesInMosaic"):
        n = int(csa["NumberOfImagesInMosaic"][0])
    if not n:
        raise ValueError("mosaic without NumberOfImagesInMosaic")
    grid = math.ceil(math.sqrt(n))
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows % grid or cols % grid:
        raise ValueError(f"mosaic of {rows}x{cols} cannot hold {n} tiles")
    tile = (rows // grid, cols // grid)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    # The position refers to the tiled image's corner: move it to the
    # corner of one tile (centre the tile in the mosaic).
    shift = (iop[:3] * col_spacing * (cols - tile[1]) / 2
             + iop[3:] * row_spacing * (rows - tile[0]) / 2)
    position = np.array([float(v) for v in ds.ImagePositionPatient]) + shift
    normal = np.cross(iop[:3], iop[3:])
    if csa.get("SliceNormalVector"):
        csa_normal = np.array([float(v) for v in csa["SliceNormalVector"][:3]])
        if np.dot(csa_normal, normal) < 0:
            normal = -normal
    return n, tile, position, normal


def mosaic_tiles(array, n_slices, tile):
    """Split (rows, cols) mosaic images into their tiles.

    Parameters
    ----------
    array : ndarray, shape (frames, rows, cols)
    n_slices : int
    tile : (rows, cols)

    Returns
    -------
    ndarray, shape (frames, n_slices, tile_rows, tile_cols)
    """
    frames, rows, cols = array.shape
    grid_r, grid_c = rows // tile[0], cols // tile[1]
    tiles = array.reshape(frames, grid_r, tile[0], grid_c, tile[1]).swapaxes(2, 3)
    return tiles.reshape(frames, grid_r * grid_c, tile[0], tile[1])[:, :n_slices]

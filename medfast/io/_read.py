"""What every image reader does with an untrusted file: bounded inflation,
allocation checked before it happens, and the :class:`Image` it returns."""
import os

import numpy as np

from .._memory import check_allocation
from ..image import Image
from . import _gzip


def inflate(f, path, size, tail=_gzip.TAIL_BYTES):
    """Up to `size` decompressed bytes of the gzip file `f` (see
    :func:`medfast.io._gzip.read`); a corrupt stream is a ``ValueError``
    naming `path`."""
    try:
        return _gzip.read(f, size, tail)
    except _gzip.CorruptGzipError as error:
        raise ValueError(f"{path}: {error}") from None


def reserve(f, path, nbytes, shape, dtype):
    """Refuse, before allocating, a gzip file's image that its compressed
    size cannot hold or the memory available cannot fit."""
    size = os.fstat(f.fileno()).st_size
    if nbytes > size * _gzip.MAX_RATIO:
        raise ValueError(f"{path}: truncated: the header describes {nbytes} bytes "
                         f"(shape {shape}, {dtype}), more than {size} bytes of gzip "
                         f"data can hold")
    check_allocation(shape, dtype, what=path)


def as_image(array, affine, meta, path):
    """An :class:`Image` of a file's array: 2-D files get a slice axis and
    trailing singleton axes are dropped (writers pad ``dim[]`` with ones);
    an error is one line naming `path`."""
    while array.ndim > 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    try:
        return Image(array, affine, meta)
    except (TypeError, ValueError) as error:
        # One line (Image prints a bad affine as a matrix).
        raise type(error)(f"{path}: {' '.join(str(error).split())}") from None

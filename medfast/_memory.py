"""Refusing allocations that cannot fit, before they are attempted."""
import math
import os

import numpy as np


def available_bytes():
    """Memory this process can still allocate without swapping.

    Returns
    -------
    int or None
        ``MemAvailable`` from ``/proc/meminfo`` (Linux), the free physical
        pages elsewhere where the platform reports them, or None if unknown.
    """
    # Called before every allocation of an output, small calls included:
    # one raw read and a byte search, no text decoding or line splitting.
    try:
        fd = os.open("/proc/meminfo", os.O_RDONLY)
        try:
            text = os.read(fd, 8192)
        finally:
            os.close(fd)
        at = text.find(b"MemAvailable:")
        if at >= 0:
            return int(text[at + 13:text.index(b"kB", at)]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n):
    """``n`` bytes as a short human-readable string (e.g. ``'1.5 GiB'``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_allocation(shape, dtype, what="output"):
    """Raise MemoryError if an array of ``shape`` and ``dtype`` cannot fit.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array about to be allocated.
    dtype : numpy.dtype
        Its dtype.
    what : str
        Name of the argument or result, used in the message.

    Raises
    ------
    MemoryError
        If the array needs more bytes than :func:`available_bytes` reports.
    """
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize  # exact
    free = available_bytes()
    if free is not None and nbytes > free:
        raise MemoryError(
            f"{what}: a {'x'.join(map(str, shape))} {np.dtype(dtype).name} array "
            f"needs {format_bytes(nbytes)} but only {format_bytes(free)} of "
            f"memory is available"
        )

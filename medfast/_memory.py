"""Refusing allocations that cannot fit, before they are attempted."""
import numpy as np


def available_bytes():
    """Memory this process can still allocate without swapping.

    Returns
    -------
    int or None
        ``MemAvailable`` from ``/proc/meminfo`` (Linux), the free physical
        pages elsewhere where the platform reports them, or None if unknown.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os
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
    nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    free = available_bytes()
    if free is not None and nbytes > free:
        raise MemoryError(
            f"{what}: a {'x'.join(map(str, shape))} {np.dtype(dtype).name} array "
            f"needs {format_bytes(nbytes)} but only {format_bytes(free)} of "
            f"memory is available"
        )

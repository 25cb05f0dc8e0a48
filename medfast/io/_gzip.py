"""gzip streams, fast: ISA-L's igzip when installed, else the standard library.

Whole-file reads and writes of NIfTI/MGH data are dominated by (de)compression;
``isal`` (PyPI package ``isal``) does both 2-4x faster than zlib and writes a
standard gzip stream (RFC 1952) that zlib, nibabel, FSL and dcm2niix read.
Set the module attributes ``igzip`` / ``igzip_threaded`` to None to force the
standard-library path (the tests do).
"""
import gzip
import io
import os
import zlib

import numpy as np

try:  # optional at import time; a runtime dependency in pyproject.toml
    from isal import igzip, igzip_threaded
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - exercised by monkeypatching instead
    igzip = igzip_threaded = None
    _isal_error = zlib.error

#: gzip level for writing.  Level 1 is nibabel's default too; with igzip it
#: is 4x faster than zlib's level 1 for files only ~3% larger (ANCHORS.md).
COMPRESSLEVEL = 1
#: Uncompressed sizes from which two threads compress (igzip_threaded; 1 MiB
#: blocks): 256x256x180 int16 (24 MB) takes 35 ms with two, 57 ms with one.
THREADED_MIN_BYTES = 4 * 2**20
THREADS = 2 if (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1) >= 2 else 1

GZIP_MAGIC = b"\x1f\x8b"
# What a corrupt or truncated stream raises, in either implementation.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, _isal_error, ValueError)


class CorruptGzipError(ValueError):
    """The gzip stream is damaged or truncated."""


def is_gzip(head):
    """Whether `head` (the first bytes of a file) starts a gzip stream."""
    return bytes(head[:2]) == GZIP_MAGIC


def decompress(data):
    """Decompress a whole gzip file (all members) into a writeable buffer.

    Parameters
    ----------
    data : bytes-like
        The compressed file.

    Returns
    -------
    ndarray of uint8
        The uncompressed bytes, writeable (arrays built on it are writeable,
        as nibabel's are), filled in place: no copy after decompression.

    Raises
    ------
    CorruptGzipError
        If the stream is damaged, truncated or fails its CRC check.
    """
    opener = igzip.IGzipFile if igzip is not None else gzip.GzipFile
    # The trailer's ISIZE is the size modulo 2**32 of the last member: a hint
    # to allocate once; the loop below copes when it is not the whole size.
    hint = int.from_bytes(bytes(data[-4:]), "little") if len(data) >= 18 else 0
    out = np.empty(max(hint, 1), np.uint8)
    try:
        with opener(fileobj=io.BytesIO(data), mode="rb") as stream:
            filled = 0
            view = memoryview(out)
            while filled < len(out):
                n = stream.readinto(view[filled:])
                if not n:
                    break
                filled += n
            rest = stream.read() if filled == len(out) else b""
    except _STREAM_ERRORS as error:
        raise CorruptGzipError(f"corrupt or truncated gzip data ({error})") from None
    if rest:  # larger than the hint (> 4 GiB, or several members)
        out = np.concatenate([out, np.frombuffer(rest, np.uint8)])
        filled = len(out)
    return out[:filled]


def open_writer(fileobj, nbytes):
    """A gzip writer on `fileobj` (left open when the writer is closed).

    Parameters
    ----------
    fileobj : binary file
        Where the compressed stream goes.
    nbytes : int
        Uncompressed size about to be written: large data use two threads.

    Returns
    -------
    file-like
        Write the uncompressed bytes to it, then close it.
    """
    if igzip is None:
        return gzip.GzipFile(fileobj=fileobj, mode="wb",
                             compresslevel=COMPRESSLEVEL, mtime=0)
    if nbytes >= THREADED_MIN_BYTES and THREADS > 1 and igzip_threaded is not None:
        return igzip_threaded.open(fileobj, "wb", compresslevel=COMPRESSLEVEL,
                                   threads=THREADS)
    return igzip.IGzipFile(fileobj=fileobj, mode="wb",
                           compresslevel=COMPRESSLEVEL, mtime=0)

"""gzip streams, fast: ISA-L's igzip when installed, else the standard library.

Whole-file reads and writes of NIfTI/MGH data are dominated by (de)compression;
``isal`` (PyPI package ``isal``) does both 2-4x faster than zlib and writes a
standard gzip stream (RFC 1952) that zlib, nibabel, FSL and dcm2niix read.
Set the module attribute ``igzip`` to None to force the standard-library
path (the tests do).

With isal, files are written as a series of gzip *members* of
:data:`MEMBER_BYTES` uncompressed bytes each (RFC 1952 allows any number;
zlib's gzread, Python's gzip, nibabel and FSL read them as one stream), each
member's header carrying its compressed size in an extra subfield ``MF``,
as htslib's BGZF carries ``BC``.  Members are compressed, and such files
decompressed, two at a time in threads (ISA-L releases the GIL); any other
gzip file is decompressed in one call.
"""
from concurrent.futures import ThreadPoolExecutor
import gzip
import io
import os
import struct
import zlib

import numpy as np

try:  # optional at import time; a runtime dependency in pyproject.toml
    from isal import igzip, isal_zlib
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - exercised by monkeypatching instead
    igzip = isal_zlib = None
    _isal_error = zlib.error

#: gzip level for writing.  Level 1 is nibabel's default too; with igzip it
#: is 4x faster than zlib's level 1 for files only ~3% larger (ANCHORS.md).
COMPRESSLEVEL = 1
#: Threads that (de)compress members of blocked files.
THREADS = 2 if (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1) >= 2 else 1

GZIP_MAGIC = b"\x1f\x8b"
#: Uncompressed bytes per member of a blocked file (4 MiB: compression is as
#: good as in one stream, and a 24 MB volume still splits into 6 members).
MEMBER_BYTES = 4 * 2**20
# Member header: magic, deflate, FEXTRA, mtime 0, xfl 0, OS unknown (255),
# XLEN 8, then the subfield 'MF', 4 bytes: the compressed size.
_MEMBER_HEAD = struct.Struct("<4sIBBH2sHI")
_MEMBER_FIXED = (b"\x1f\x8b\x08\x04", 0, 0, 255, 8, b"MF", 4)
# What a corrupt or truncated stream raises, in either implementation.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, _isal_error, ValueError)


class CorruptGzipError(ValueError):
    """The gzip stream is damaged or truncated."""


def is_gzip(head):
    """Whether `head` (the first bytes of a file) starts a gzip stream."""
    return bytes(head[:2]) == GZIP_MAGIC


def _members(data):
    """[(start, end, size)] of the deflate data of every member of a blocked
    file (``MF`` subfields), or None when `data` is not one."""
    out, pos, n = [], 0, len(data)
    while pos < n:
        if n - pos < _MEMBER_HEAD.size + 8:
            return None
        head = _MEMBER_HEAD.unpack_from(data, pos)
        if (head[0], head[2:7]) != (_MEMBER_FIXED[0], _MEMBER_FIXED[2:]):
            return None
        start = pos + _MEMBER_HEAD.size
        end = start + head[7]
        if end + 8 > n:
            return None
        out.append((start, end, struct.unpack_from("<I", data, end + 4)[0]))
        pos = end + 8
    return out or None


def _inflate_member(data, start, end, out, offset):
    """Decompress one member (its header starts before `start`) straight
    into out[offset:]; igzip's reader checks the CRC and size."""
    size = struct.unpack_from("<I", data, end + 4)[0]
    member = data[start - _MEMBER_HEAD.size:end + 8]
    target = memoryview(out)[offset:offset + size]
    with igzip.IGzipFile(fileobj=io.BytesIO(member), mode="rb") as reader:
        filled = 0
        while filled < size:
            n = reader.readinto(target[filled:])
            if not n:
                break
            filled += n
        # Reading on to the end makes the reader check the trailer.
        if filled != size or reader.read(1):
            raise CorruptGzipError("corrupt gzip data (member size mismatch)")


def _decompress_blocked(data, members):
    offsets = np.cumsum([0] + [size for _, _, size in members])
    out = np.empty(int(offsets[-1]), np.uint8)
    view = memoryview(data).cast("B")
    jobs = [(view, start, end, out, int(offset))
            for (start, end, _), offset in zip(members, offsets)]
    try:
        if THREADS > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(lambda job: _inflate_member(*job), jobs))
        else:
            for job in jobs:
                _inflate_member(*job)
    except _STREAM_ERRORS as error:
        raise CorruptGzipError(f"corrupt or truncated gzip data ({error})") from None
    return out


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
    if igzip is not None and isal_zlib is not None:
        members = _members(data)
        if members is not None:  # a blocked file: members in parallel
            return _decompress_blocked(data, members)
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


def _deflate_member(chunk):
    comp = isal_zlib.compress(chunk, COMPRESSLEVEL, wbits=-15)
    head = _MEMBER_HEAD.pack(*_MEMBER_FIXED, len(comp))
    return head + comp + struct.pack("<II", isal_zlib.crc32(chunk), len(chunk) & 0xFFFFFFFF)


def _chunks(parts):
    """The bytes of `parts`, in order, cut into MEMBER_BYTES pieces."""
    pending, size, emitted = [], 0, False
    for part in parts:
        view = memoryview(part).cast("B")
        while len(view):
            take = view[:MEMBER_BYTES - size]
            pending.append(take)
            size += len(take)
            view = view[len(take):]
            if size == MEMBER_BYTES:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending, size, emitted = [], 0, True
    if size or not emitted:  # the rest; an empty file is one empty member
        yield b"".join(pending)


def write(fileobj, parts):
    """Write `parts` (bytes-like, in order) to `fileobj` as one gzip file.

    With isal: blocked members (see the module docstring), compressed two
    at a time; without: one stream through the standard library.

    Parameters
    ----------
    fileobj : binary file
    parts : list of bytes-like
    """
    if igzip is None or isal_zlib is None:
        with gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=COMPRESSLEVEL,
                           mtime=0) as writer:
            for part in parts:
                writer.write(part)
        return
    chunks = _chunks(parts)
    if THREADS > 1:
        with ThreadPoolExecutor(THREADS) as pool:
            # Bounded look-ahead: at most two batches of members in memory.
            batch = []
            for chunk in chunks:
                batch.append(chunk)
                if len(batch) == 2 * THREADS:
                    for member in pool.map(_deflate_member, batch):
                        fileobj.write(member)
                    batch = []
            for member in pool.map(_deflate_member, batch):
                fileobj.write(member)
    else:
        for chunk in chunks:
            fileobj.write(_deflate_member(chunk))

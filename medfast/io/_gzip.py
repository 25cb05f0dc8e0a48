"""gzip streams, fast and bounded: ISA-L's igzip when installed, else the standard library.

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
gzip file is decompressed as one stream.

Reading is bounded (:func:`read`): the caller says how many bytes it needs
(a NIfTI header says it), and no more than that and :data:`TAIL_BYTES` is
ever decompressed, so a small image followed by gigabytes of zeros (a gzip
bomb) costs what the image costs.
"""
import collections
from concurrent.futures import ThreadPoolExecutor
import gzip
import os
import struct
from typing import NamedTuple, Optional
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
#: Decompressed bytes :func:`read` looks at past those asked for: enough to
#: reach the end of an ordinary stream (and so check its CRC) when a little
#: or nothing follows; a stream that goes on further is left there.
TAIL_BYTES = 2**20
#: Most bytes one byte of deflate data can decompress to (a 258-byte match
#: in 2 bits): a header declaring more than this times the file size
#: describes data the file cannot hold.
MAX_RATIO = 1032
# Member header: magic, deflate, FEXTRA, mtime 0, xfl 0, OS unknown (255),
# XLEN 8, then the subfield 'MF', 4 bytes: the compressed size.
_MEMBER_HEAD = struct.Struct("<4sIBBH2sHI")
_MEMBER_FIXED = (b"\x1f\x8b\x08\x04", 0, 0, 255, 8, b"MF", 4)
# Compressed bytes read at a time, and most bytes decompressed by one call
# (bounds the temporary bytes objects of the one-stream path).
_READ_BYTES = 2**20
_STEP_BYTES = 16 * 2**20
# What a corrupt stream raises, in either implementation.
_STREAM_ERRORS = (zlib.error, _isal_error)


class CorruptGzipError(ValueError):
    """The gzip stream is damaged or truncated."""


class Inflated(NamedTuple):
    """What :func:`read` found.

    Attributes
    ----------
    data : ndarray of uint8
        The first bytes asked for, fewer when the stream is shorter;
        writeable.
    extra : int or None
        Decompressed bytes found after `data` (0: the stream ends there), or
        None when more than :data:`TAIL_BYTES` follow (not decompressed).
    garbage : int
        Bytes after the last gzip member that are not gzip (0: none).
    """
    data: np.ndarray
    extra: Optional[int]
    garbage: int


def is_gzip(head):
    """Whether `head` (the first bytes of a file) starts a gzip stream."""
    return bytes(head[:2]) == GZIP_MAGIC


def _engine():
    return isal_zlib if igzip is not None and isal_zlib is not None else zlib


def _corrupt(error):
    return CorruptGzipError(f"corrupt or truncated gzip data ({error})")


def _blocked_prefix(fileobj, size):
    """[(offset, length, size)] of the leading members of a blocked file that
    lie wholly within its first `size` decompressed bytes, from the member
    headers and trailers alone (their sizes are checked on inflation)."""
    members, pos, total = [], 0, 0
    while True:
        fileobj.seek(pos)
        head = fileobj.read(_MEMBER_HEAD.size)
        if len(head) < _MEMBER_HEAD.size:
            return members
        fields = _MEMBER_HEAD.unpack(head)
        if (fields[0], fields[2:7]) != (_MEMBER_FIXED[0], _MEMBER_FIXED[2:]):
            return members
        end = pos + _MEMBER_HEAD.size + fields[7] + 8
        fileobj.seek(end - 4)
        trailer = fileobj.read(4)
        if len(trailer) < 4:
            return members
        usize = int.from_bytes(trailer, "little")
        # Members medfast writes are never empty (but for an empty file)
        # nor much larger compressed than raw: any other is left to the
        # one-stream path, which reads it in bounded pieces.
        if not usize or total + usize > size or fields[7] > usize + usize // 8 + 1024:
            return members
        members.append((pos, end - pos, usize))
        total += usize
        pos = end


def _inflate_member(member, out, offset, size):
    """Decompress one whole member (header to trailer) into
    out[offset:offset + size]; its CRC and size are checked."""
    inflater = _engine().decompressobj(wbits=31)
    try:
        data = inflater.decompress(member, size + 1)
    except _STREAM_ERRORS as error:
        raise _corrupt(error) from None
    if len(data) != size or not inflater.eof or inflater.unused_data:
        raise CorruptGzipError("corrupt or truncated gzip data (member size mismatch)")
    out[offset:offset + size] = np.frombuffer(data, np.uint8)


def _inflate_blocked(fileobj, members, out):
    """Inflate `members` into the start of `out`, THREADS at a time;
    returns the bytes filled."""
    offset = 0
    if THREADS == 1 or len(members) < 2:
        for start, length, size in members:
            fileobj.seek(start)
            _inflate_member(fileobj.read(length), out, offset, size)
            offset += size
        return offset
    with ThreadPoolExecutor(THREADS) as pool:
        # Bounded look-ahead: at most 2 * THREADS compressed members in memory.
        running = collections.deque()
        for start, length, size in members:
            if len(running) == 2 * THREADS:
                running.popleft().result()
            fileobj.seek(start)
            running.append(pool.submit(_inflate_member, fileobj.read(length), out,
                                       offset, size))
            offset += size
        for job in running:
            job.result()
    return offset


def _stream(fileobj, pos, out, filled, tail):
    """Inflate the gzip members from byte `pos` of `fileobj` into
    out[filled:], then up to `tail` bytes more, counted and dropped.
    Returns (filled, extra, garbage) as :class:`Inflated` means them."""
    engine, view = _engine(), memoryview(out)
    extra = 0
    fileobj.seek(pos)
    pending = fileobj.read(_READ_BYTES)
    while True:  # one gzip member per pass
        if len(pending) < 2:
            pending += fileobj.read(_READ_BYTES)
        if not pending:
            return filled, extra, 0
        if not is_gzip(pending):
            at = fileobj.tell() - len(pending)
            return filled, extra, fileobj.seek(0, os.SEEK_END) - at
        inflater = engine.decompressobj(wbits=31)
        while not inflater.eof:
            if not pending:
                pending = fileobj.read(_READ_BYTES)
                if not pending:
                    raise _corrupt("the file ends inside a gzip member")
            # One byte past the tail says that more follows.
            want = len(out) - filled if filled < len(out) else tail + 1 - extra
            if not want:
                return filled, None, 0
            try:
                data = inflater.decompress(pending, min(want, _STEP_BYTES))
            except _STREAM_ERRORS as error:
                raise _corrupt(error) from None
            pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            into = min(len(data), len(out) - filled)
            view[filled:filled + into] = data[:into]
            filled += into
            extra += len(data) - into
        if extra > tail:
            return filled, None, 0


def read(fileobj, size, tail=TAIL_BYTES):
    """Decompress the first `size` bytes of a gzip file, and look past them.

    Never decompresses more than ``size + tail + 1`` bytes, nor holds more
    than a few MiB of compressed data at a time.  Blocked files (see the
    module docstring) are inflated member by member in threads; any other
    gzip file, and the member a blocked one ends in, as one stream.

    Parameters
    ----------
    fileobj : binary file
        Open at any position, seekable.
    size : int
        Decompressed bytes wanted.
    tail : int
        Decompressed bytes to inflate past `size` to see what follows (they
        are counted, not kept).

    Returns
    -------
    Inflated

    Raises
    ------
    CorruptGzipError
        If the stream is damaged, ends inside a member, or fails a CRC
        check in what was decompressed.
    """
    out = np.empty(size, np.uint8)
    members = _blocked_prefix(fileobj, size) if _engine() is isal_zlib else []
    filled = _inflate_blocked(fileobj, members, out)
    pos = members[-1][0] + members[-1][1] if members else 0
    filled, extra, garbage = _stream(fileobj, pos, out, filled, tail)
    return Inflated(out[:filled], extra, garbage)


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

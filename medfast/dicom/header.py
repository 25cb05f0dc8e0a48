"""One DICOM file's header: walked natively, values decoded on demand.

:func:`read_header` reads the start of a file (more only when the header
needs it; never the pixel data), and the compiled walker
(``medfast._dicomwalk``, which releases the GIL) lists every element,
sequence item and nested element with where its value lies.  A
:class:`Header` is one level of that table (the file's top level or one
sequence item): ``get`` decodes an element's value from its bytes by its
VR, ``sequence`` gives the items of a sequence as Headers, and ``private``
finds a private element through its private creator, in whatever block the
creator reserved.  Nothing else of a file is kept, so a folder of thousands
of files costs a few small records, not thousands of parsed data sets.
"""
from functools import lru_cache
import importlib.util
import math
import os
import struct
import zlib

import numpy as np

from .. import _dicomwalk

__all__ = ["NotDicomError", "Header", "HeaderFile", "read_header", "read_heads", "tag_of",
           "unpacked"]

_MISSING, _SEQUENCE, _NON_ASCII = _dicomwalk.IS_MISSING, _dicomwalk.IS_SEQUENCE, _dicomwalk.NON_ASCII

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE)

_FIRST_READ = 1 << 16         # bytes read first; most headers fit
_MAX_HEADER = 1 << 30         # a header larger than this is not believed
_TEXT = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
         "UI", "UR", "UT"}
_SINGLE_TEXT = {"LT", "ST", "UT", "UR"}   # a backslash is text, not a separator
_CHARSET_TEXT = {"LO", "LT", "PN", "SH", "ST", "UC", "UT"}
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d",
           "SV": "q", "UV": "Q", "AT": "HH"}


class NotDicomError(ValueError):
    """The file is not DICOM, or its header cannot be read (skipped, never
    fatal); the message says why."""


@lru_cache(maxsize=None)
def _dictionaries():
    """pydicom's data dictionaries ({tag: (VR, VM, name, retired,
    keyword)}, and the private one by creator), loaded from their own source
    files: importing the pydicom package costs ~0.3 s, which would be most of
    the time of a small conversion.  Falls back to importing pydicom."""
    try:
        spec = importlib.util.find_spec("pydicom")
        folder = spec.submodule_search_locations[0]
        out = []
        for name, attribute in (("_dicom_dict", "DicomDictionary"),
                                ("_private_dict", "private_dictionaries")):
            module_spec = importlib.util.spec_from_file_location(
                f"medfast_pydicom{name}", os.path.join(folder, name + ".py"))
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            out.append(getattr(module, attribute))
        return tuple(out)
    except Exception:  # another pydicom layout: its public API
        from pydicom.datadict import DicomDictionary
        from pydicom._private_dict import private_dictionaries
        return DicomDictionary, private_dictionaries


@lru_cache(maxsize=None)
def _keywords():
    return {entry[4]: tag for tag, entry in _dictionaries()[0].items() if entry[4]}


@lru_cache(maxsize=None)
def _sq_tags():
    return np.array(sorted(t for t, entry in _dictionaries()[0].items() if entry[0] == "SQ"),
                    dtype=np.uint32)


@lru_cache(maxsize=4096)
def tag_of(key):
    """A tag as an int, from a keyword ('EchoTime'), an int or a (group,
    element) pair."""
    if isinstance(key, int):
        return key
    if isinstance(key, tuple):
        return (key[0] << 16) | key[1]
    tag = _keywords().get(key)
    if tag is None:
        raise KeyError(f"unknown DICOM keyword {key!r}")
    return tag


@lru_cache(maxsize=256)
def _tags(keys):
    """A tuple of keys as a tuple of int tags."""
    return tuple(tag_of(key) for key in keys)


@lru_cache(maxsize=4096)
def _dictionary_vr(tag):
    entry = _dictionaries()[0].get(tag)
    vr = entry[0] if entry else None
    return vr.split(" or ")[0] if vr else None


def _implicit_vr(tag):
    """The VR pydicom gives elements its dictionary lacks, in implicit VR
    data sets: private creators LO, group lengths UL."""
    if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
        return "LO"
    if tag & 0xFFFF == 0:
        return "UL"
    return None


@lru_cache(maxsize=4096)
def _default_vr(tag):
    """The VR of an element whose file does not say (implicit VR)."""
    return _dictionary_vr(tag) or _implicit_vr(tag)


@lru_cache(maxsize=1024)
def _private_vr(tag, creator):
    """The VR pydicom's private dictionary gives element `tag` of `creator`
    (keys like '0043xx39'), or None."""
    key = f"{tag >> 16:04X}xx{tag & 0xFF:02X}"
    entry = _dictionaries()[1].get(creator, {}).get(key)
    return entry[0].split(" or ")[0] if entry and entry[0] else None


def _vr_name(code):
    return chr(code >> 8) + chr(code & 0xFF) if code else None


class HeaderFile:
    """A file's header bytes and element table, and where its pixels lie.

    Attributes
    ----------
    path : str
    table : medfast._dicomwalk.Table
        The walk; ``table.data`` holds the header bytes (the file's start,
        inflated when deflated or gzipped).
    little, implicit : bool
        The data set's encoding.
    transfer_syntax : str
    pixel_tag : int or None
        (7FE0,0010), (7FE0,0008) or (7FE0,0009); None when there are none.
    pixel_offset : int or None
        File offset of the pixel data value, when it can be read straight
        from the file (not gzipped or deflated).
    pixel_length : int or None
        Its length in bytes; -1 when encapsulated (compressed).
    gz : bool
        The file is gzipped (``.dcm.gz``).
    size : int or None
        The file's size in bytes (None when gzipped).
    capacity : int or None
        The most bytes the file can hold once inflated: its size, times
        :data:`DEFLATE_RATIO` per layer of deflate (gzip, deflated data set).
    top : Header
        The data set's top level.
    """

    __slots__ = ("path", "table", "little", "implicit", "transfer_syntax", "pixel_tag",
                 "pixel_offset", "pixel_length", "gz", "charset", "top", "size", "capacity",
                 "_array")

    def __init__(self, path, table, little, implicit, syntax, pixel_row, direct, gz,
                 size=None, capacity=None):
        self.path = path
        self.size = size
        self.capacity = capacity
        self.table = table
        self.little = little
        self.implicit = implicit
        self.transfer_syntax = syntax
        self.gz = gz
        self.pixel_tag = self.pixel_offset = self.pixel_length = None
        if pixel_row is not None:
            tag, _, _, offset, length = table.row(pixel_row)
            self.pixel_tag = tag
            self.pixel_offset = offset if direct else None
            self.pixel_length = length
        self.charset = None
        self._array = None
        self.top = Header(self, -1)
        self.charset = self.top.get("SpecificCharacterSet")

    def item_values(self, sequence, path, vr=None):
        """One value per item of a sequence, found by a path of tags inside
        each item: all items at once (the per-frame functional groups of a
        file with thousands of frames, without a Header per frame).

        Parameters
        ----------
        sequence : Header
            The item that holds the sequence (e.g. the top level).
        path : tuple
            The sequence's key, then the keys of nested sequences (their
            first item is searched), then the element's key: e.g.
            ``('PerFrameFunctionalGroupsSequence', 'PlanePositionSequence',
            'ImagePositionPatient')``.
        vr : str, optional
            Decode as this VR.

        Returns
        -------
        list
            Per item, the decoded value or None.
        """
        table = self.table
        seq_row = table.find(sequence.row, tag_of(path[0]))
        if seq_row < 0:
            return []
        n_items = len(table.children(seq_row))
        out = [None] * n_items
        if self._array is None:
            self._array = table.array()
        a = self._array
        tags = [tag_of(k) for k in path[1:]]
        rows = np.flatnonzero(a["tag"] == tags[-1])
        rows = rows[a["depth"][rows] == len(tags)]
        parent = a["parent"]
        item = parent[rows]
        keep = item >= 0
        for step in reversed(tags[:-1]):
            item = np.where(keep, item, 0)
            seq = parent[item]
            keep &= (seq >= 0) & (a["tag"][np.maximum(seq, 0)] == step) \
                & (a["index"][item] == 0)
            item = parent[np.maximum(seq, 0)]
            keep &= item >= 0
        item = np.where(keep, item, 0)
        keep &= parent[item] == seq_row
        frames = a["index"][item]
        for row, frame in zip(rows[keep].tolist(), frames[keep].tolist()):
            if out[frame] is None:
                out[frame] = Header(self, -1)._decode(row, tags[-1], vr)
        return out


class Header:
    """One level of a DICOM data set: a file's top level or a sequence item.

    ``get(key)`` takes a keyword (``'EchoTime'``), an int tag or a (group,
    element) pair, and returns plain Python values: str, int, float, bytes,
    a list of them for multi-valued elements, a list of :class:`Header` for a
    sequence, or None when the element is absent or empty.
    """

    __slots__ = ("file", "row")

    def __init__(self, file, row):
        self.file = file
        self.row = row

    def __contains__(self, key):
        return self.file.table.find(self.row, tag_of(key)) >= 0

    def tags(self):
        """The tags at this level, in stream order."""
        table = self.file.table
        return [table.row(i)[0] for i in table.children(self.row)]

    def sequences(self):
        """(tag, items) of every sequence at this level, in stream order."""
        table = self.file.table
        out = []
        for row in table.children(self.row):
            tag, _, kind, _, _ = table.row(row)
            if kind == _dicomwalk.SEQUENCE:
                out.append((tag, [Header(self.file, i) for i in table.children(row)]))
        return out

    def raw(self, key):
        """An element's value bytes, or None when absent."""
        row = self.file.table.find(self.row, tag_of(key))
        return None if row < 0 else self.file.table.value(row)

    def vr(self, key):
        """An element's VR (explicit, else from the dictionary), or None."""
        tag = tag_of(key)
        row = self.file.table.find(self.row, tag)
        if row < 0:
            return None
        return self.file.table.row(row)[1] or _dictionary_vr(tag) or _implicit_vr(tag)

    def get(self, key, vr=None):
        """An element's decoded value, or None.

        Parameters
        ----------
        key : str, int or (int, int)
        vr : str, optional
            Decode as this VR (for private elements of implicit VR files).
        """
        tag = tag_of(key)
        value, row = self.file.table.get(self.row, tag, vr, _default_vr, self.file.little)
        if value is _MISSING:
            return None
        if value is _SEQUENCE or value is _NON_ASCII:
            return self._decode(row, tag, vr)
        return value

    def values(self, *keys):
        """The decoded values of several elements (None where absent): one
        call into the compiled walker for all of them."""
        tags = _tags(keys)
        out = self.file.table.get_many(self.row, tags, _default_vr, self.file.little)
        for i, value in enumerate(out):
            if type(value) is tuple:  # a sequence, or text in a character set
                out[i] = self._decode(value[1], tags[i])
        return out

    def _decode(self, row, tag, vr=None):
        """An element's value, decoded in Python (sequences, text in a
        character set)."""
        table = self.file.table
        _, explicit, kind, _, _ = table.row(row)
        if kind == _dicomwalk.SEQUENCE:
            return [Header(self.file, item) for item in table.children(row)]
        vr = vr or explicit or _dictionary_vr(tag) or _implicit_vr(tag)
        if vr == "UN":
            vr = _dictionary_vr(tag) or "UN"
        return decode(table.value(row), vr, self.file.little, self.file.charset)

    def sequence(self, key):
        """The items of a sequence, as Headers ([] when absent)."""
        row = self.file.table.find(self.row, tag_of(key))
        if row < 0 or self.file.table.row(row)[2] != _dicomwalk.SEQUENCE:
            return []
        return [Header(self.file, item) for item in self.file.table.children(row)]

    def item(self, key, index=0):
        """Item `index` of a sequence, or None."""
        items = self.sequence(key)
        return items[index] if len(items) > index else None

    def private_tag(self, group, creator, element):
        """The tag of private element `element` (low byte, 0x00-0xFF) of the
        block `creator` reserved in `group`, or None."""
        # As the walker compares: ASCII letters without case, surrounding
        # spaces and NULs left out.
        name = creator.encode("latin-1", "replace").strip(b" \0").upper()
        block = self.file.table.private_block(self.row, group, name)
        return None if block < 0 else (group << 16) | (block << 8) | (element & 0xFF)

    def private(self, group, creator, element, vr=None):
        """A private element's value, found through its private creator
        (whatever block the creator reserved), or None.

        An element belongs to the creator that last reserved its block
        before it in the file (dcm2niix's reading), so a block reserved
        twice, as a PACS that renumbers private blocks may leave it, gives
        each creator its own elements.

        Parameters
        ----------
        group : int
            An odd group, e.g. 0x2005.
        creator : str
            The private creator, e.g. ``'Philips MR Imaging DD 001'``.
        element : int
            The element's low byte (0x0E for (2005,xx0E)).
        vr : str, optional
            The VR to decode with when the file does not say (implicit VR);
            by default pydicom's private dictionary, else raw bytes.
        """
        row = self.file.table.private_find(self.row, group,
                                           creator.strip().upper().encode("latin-1"),
                                           element & 0xFF)
        if row < 0:
            return None
        tag = self.file.table.row(row)[0]
        if vr is None and self.file.table.row(row)[1] is None:
            vr = _private_vr(tag, creator.strip(" \0")) or "OB"
        return self._decode(row, tag, vr)

    def __repr__(self):
        return f"<Header {self.file.path} row {self.row}>"


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------
def _text(raw, vr, charset):
    # Plain ASCII needs no character set; ISO 2022 escape sequences (Japanese,
    # Korean...) are 7-bit too, but not ASCII text.
    if b"\x1b" not in raw:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            pass
    if vr in _CHARSET_TEXT and charset:
        try:
            from pydicom.charset import convert_encodings, decode_bytes
            names = [charset] if isinstance(charset, str) else list(charset)
            return decode_bytes(raw, convert_encodings(names), {"\\", "^", "="})
        except Exception:  # an unknown or inconsistent character set
            pass
    return raw.decode("latin-1")


def decode(raw, vr, little=True, charset=None):
    """A raw value decoded by its VR: str/int/float/bytes or a list of them
    (multiple values), None when empty.  Numbers that do not parse decode
    as None (a corrupt element is as good as absent)."""
    if not raw:
        return None
    if vr in _TEXT or vr in ("DS", "IS"):
        # Only spaces (and trailing NULs) are padding: other whitespace is
        # part of the value, as pydicom and dcm2niix read it (UIDs and
        # numbers hold none: pydicom strips it).
        strip = None if vr in ("UI", "DS", "IS") else " "
        text = _text(raw, vr, charset).rstrip("\0 ").strip(strip)
        if vr in ("DS", "IS"):
            parts = []
            for p in text.split("\\"):
                try:
                    p = p.strip()
                    parts.append(float(p) if vr == "DS" else int(float(p)))
                except ValueError:
                    parts.append(None)
            if not parts or all(p is None for p in parts):
                return None
            return parts[0] if len(parts) == 1 else parts
        if not text:
            return None
        if vr in _SINGLE_TEXT:
            return text
        # pydicom's rules: each value of a text VR loses its trailing NULs
        # and spaces; a UID its surrounding whitespace.
        parts = [p.strip() if vr == "UI" else p.rstrip("\0 ").lstrip(" ")
                 for p in text.split("\\")]
        return parts[0] if len(parts) == 1 else parts
    code = _BINARY.get(vr)
    if code is not None:
        size = struct.calcsize(code)
        count = len(raw) // size
        if not count:
            return None
        values = struct.unpack(("<" if little else ">") + code * count, raw[:count * size])
        if vr == "AT":
            values = [(values[i] << 16) | values[i + 1] for i in range(0, len(values), 2)]
        return values[0] if len(values) == 1 else list(values)
    return bytes(raw)


# --------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------
def _looks_like_dicom(head):
    """A Part 10 preamble ('DICM' at 128), or a raw data set that starts with
    a group 0x0002 / 0x0008 element, little or big endian (written by old
    tools without preamble)."""
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    little = head[1] == 0 and head[0] in (2, 8) and head[3] == 0
    big = head[0] == 0 and head[1] in (2, 8) and head[2] == 0
    return little or big


# The most a deflate stream (gzip, a deflated data set) can inflate to per
# compressed byte: 258 bytes per match coded in 2 bits, at best.
DEFLATE_RATIO = 1032
_CHUNK = 1 << 20              # compressed bytes handed to zlib at a time


def _file_reader(path, offset):
    """read(n): the next `n` bytes of a file from `offset` on (b"" at its
    end), one short read each."""
    def read(n):
        nonlocal offset
        data, _ = _dicomwalk.read_file(path, offset, n)
        offset += len(data)
        return data
    return read


def _after(first, read):
    """read(n) giving the bytes `first`, then what `read` gives."""
    def chained(n):
        nonlocal first
        if first:
            out, first = first, b""
            return out
        return read(n)
    return chained


class _Inflater:
    """A deflate stream (gzip members, or a raw stream) inflated as far as
    asked and never further: memory follows what the reader asks for, not
    what the stream holds (1 MB of deflated zeros is 1 GiB)."""

    def __init__(self, gzipped, read):
        self._wbits = 16 + zlib.MAX_WBITS if gzipped else -zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._read = read
        self._input = b""
        self.done = False   # nothing more to inflate
        self.cut = False    # ... because the compressed bytes end too soon

    def read(self, n):
        """Up to `n` more inflated bytes, fewer only at the stream's end.

        Raises zlib.error (corrupt stream) or OSError (unreadable file)."""
        out = []
        while n > 0 and not self.done:
            data = self._zlib.unconsumed_tail or self._input or self._read(_CHUNK)
            self._input = b""
            if not data:
                self.done = self.cut = True
                break
            chunk = self._zlib.decompress(data, n)
            out.append(chunk)
            n -= len(chunk)
            if self._zlib.eof:
                rest = self._zlib.unused_data
                if self._wbits > 0 and rest[:2] == b"\x1f\x8b":  # another gzip member
                    self._zlib, self._input = zlib.decompressobj(self._wbits), rest
                else:
                    self.done = True
        return b"".join(out)


class _Source:
    """The bytes of a file, read (or inflated) as far as needed; `head`,
    the file's start and size when already read (:func:`read_heads`).
    `size` is the file's size (compressed, when gzipped)."""

    def __init__(self, path, head=None):
        self.path = path
        self.gz = path.lower().endswith(".gz")
        self.deflated = False
        self._inflater = None
        try:
            if head is not None and not self.gz:
                self.data, self.size = head
                self.complete = len(self.data) >= self.size
            elif self.gz:
                self.size = os.path.getsize(path)
                self._inflater = _Inflater(True, _file_reader(path, 0))
                self.data = b""
                self.complete = False
                self.extend(_FIRST_READ)
            else:
                self.data, self.size = _dicomwalk.read_file(path, 0, _FIRST_READ)
                self.complete = len(self.data) >= self.size
        except OSError as exc:
            raise NotDicomError(f"cannot read ({getattr(exc, 'strerror', None) or exc})") \
                from None

    @property
    def cut(self):
        """Whether the inflated bytes ended before their stream's end."""
        return self._inflater is not None and self._inflater.cut

    @property
    def capacity(self):
        """The most bytes the file can hold once inflated."""
        return self.size * DEFLATE_RATIO ** (self.gz + self.deflated)

    def inflate_from(self, pos):
        """The bytes from `pos` on are one raw deflate stream (a Deflated
        Explicit VR Little Endian data set): from now on `data` holds them
        inflated, as far as the walk needs."""
        rest, self.data = self.data[pos:], self.data[:pos]
        below = (self._inflater.read if self._inflater is not None
                 else _file_reader(self.path, pos + len(rest)))
        self._inflater = _Inflater(False, _after(rest, below))
        self.complete, self.deflated = False, True
        self.extend(pos + _FIRST_READ)

    def extend(self, size, limit=_MAX_HEADER):
        """Make `data` at least `size` bytes long where the file allows;
        more than `limit` bytes is refused."""
        if self.complete or len(self.data) >= size:
            return
        if size > limit:
            raise NotDicomError(f"header larger than {limit >> 20} MiB")
        if self._inflater is not None:
            try:
                self.data += self._inflater.read(size - len(self.data))
            except zlib.error as exc:
                what = "deflated data set" if self.deflated else "gzip file"
                raise NotDicomError(f"not a readable {what} ({exc})") from None
            except OSError as exc:
                raise NotDicomError(f"cannot read ({exc})") from None
            self.complete = self._inflater.done
        else:
            try:
                self.data, self.size = _dicomwalk.read_file(self.path, 0, size)
            except OSError as exc:
                raise NotDicomError(f"cannot read ({exc})") from None
            self.complete = len(self.data) >= self.size


def _walk(source, pos, implicit, little, meta=False):
    """Walk from `pos`, reading more of the file while an element does not
    fit; returns (status, stop, table)."""
    sq = _sq_tags()
    while True:
        status, stop, need, table = _dicomwalk.walk(source.data, pos, implicit, little, sq,
                                                    meta)
        if status != _dicomwalk.SHORT or source.complete:
            return status, stop, table
        source.extend(max(need + 1024, 2 * len(source.data)))


def _guess_encoding(data, pos):
    """pydicom's guess for a data set without a transfer syntax: explicit VR
    when bytes 4-5 are letters, big endian when the group then reads as
    >= 1024 little endian."""
    if len(data) - pos < 6:
        return True, True
    explicit = 0x40 < data[pos + 4] < 0x5B and 0x40 < data[pos + 5] < 0x5B
    if not explicit:
        return True, True
    return False, int.from_bytes(data[pos:pos + 2], "little") < 1024


def read_heads(paths):
    """The start of each file (what :func:`read_header` reads first), read
    without the GIL in one call: ``(data, size)`` per path, None where a
    file cannot be read (:func:`read_header` then says why)."""
    return _dicomwalk.read_heads(list(paths), _FIRST_READ)


def _open(path, head=None):
    """A file's source, where its data set starts and its transfer syntax
    (None when it has no file meta): a deflated data set is inflated from
    there on, as far as it is read."""
    source = _Source(path, head)
    data = source.data
    if not _looks_like_dicom(data[:132]):
        raise NotDicomError("not a DICOM file (no 'DICM' marker)")
    pos = 132 if data[128:132] == b"DICM" else 0
    syntax = None
    if len(data) >= pos + 2 and data[pos] == 2 and data[pos + 1] == 0:
        status, pos, meta = _walk(source, pos, False, True, meta=True)
        if status < 0:
            raise NotDicomError(f"unreadable file meta information "
                                f"({_dicomwalk.STATUS[status]})")
        rows = [r for r in meta.children(-1) if meta.row(r)[0] == 0x00020010]
        if len(rows) > 1:
            raise NotDicomError("unreadable file meta information (two transfer syntaxes)")
        if rows:
            syntax = meta.value(rows[0]).decode("ascii", "replace").strip(" \0")
    if syntax == DEFLATED_LE:
        source.inflate_from(pos)
    return source, pos, syntax


def unpacked(path, limit):
    """A gzipped file or a deflated data set, as pydicom reads a plain file.

    Parameters
    ----------
    path : str
        A ``.dcm.gz`` file, or a file of transfer syntax Deflated Explicit
        VR Little Endian (or both).
    limit : int
        The most bytes inflated and returned: nothing beyond is inflated.

    Returns
    -------
    bytes
        The file's start with the gzip layer removed and the data set
        inflated (its preamble and file meta as they are).

    Raises
    ------
    NotDicomError
        When the file cannot be read or inflated, or its stream ends before
        `limit` bytes without its end marker (cut short).
    """
    source = _open(path)[0]
    source.extend(limit, limit=math.inf)
    if len(source.data) < limit and source.cut:
        what = "deflated data set" if source.deflated else "gzip stream"
        raise NotDicomError(f"the {what} is cut short (truncated)")
    return source.data[:limit]


def read_header(path, head=None):
    """Read a DICOM file's header, stopping before the pixel data.

    Parameters
    ----------
    path : str
        A DICOM file, optionally gzipped (``.dcm.gz``).
    head : (bytes, int), optional
        The file's start and size, already read (:func:`read_heads`).

    Returns
    -------
    HeaderFile

    Raises
    ------
    NotDicomError
        When the file is not DICOM, is cut inside its header or cannot be
        read; the message says which.
    """
    source, pos, syntax = _open(path, head)
    direct = not source.gz
    if syntax == DEFLATED_LE:
        direct = False
        implicit, little = False, True
    elif syntax is None:
        implicit, little = _guess_encoding(source.data, pos)
        direct = False  # pixel layout guessed: let pydicom decode
    else:
        implicit, little = {IMPLICIT_LE: (True, True),
                            EXPLICIT_BE: (False, False)}.get(syntax, (False, True))
    if source.data[pos:pos + 2] == b"\0\0" and not (implicit and little):
        # A command set (group 0000) is implicit VR little endian whatever
        # the transfer syntax (PS3.7; pydicom reads it so): in a stored file
        # of another encoding, it is damage.
        raise NotDicomError("a command set (group 0000) where the data set belongs")
    status, stop, table = _walk(source, pos, implicit, little)
    if status < 0 and status != _dicomwalk.SHORT and syntax not in (None, DEFLATED_LE) \
            and _guess_encoding(source.data, pos) != (implicit, little):
        # A data set written in another encoding than its transfer syntax
        # says (some secondary captures): read as it is written, as pydicom
        # and dcm2niix do.
        implicit, little = _guess_encoding(source.data, pos)
        status, stop, table = _walk(source, pos, implicit, little)
    if status < 0:
        where = "cut inside its header" if status == _dicomwalk.SHORT \
            else _dicomwalk.STATUS[status]
        raise NotDicomError(f"unreadable DICOM header ({where}, at byte {stop})")
    pixel_row = len(table) - 1 if status == _dicomwalk.PIXELS else None
    if pixel_row is not None and len(table.data) > stop:
        table.data = table.data[:stop]  # the header only: pixels are read when needed
    return HeaderFile(os.fspath(path), table, little, implicit,
                      syntax or (IMPLICIT_LE if implicit else EXPLICIT_LE),
                      pixel_row, direct, source.gz, None if source.gz else source.size,
                      source.capacity)

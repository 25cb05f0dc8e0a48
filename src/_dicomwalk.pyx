# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Walk a DICOM header into a flat table of elements, without the GIL.

One row per data element, sequence item and nested element, in stream
order: its tag, explicit VR (0 when the encoding gives none), nesting depth,
the row of the item or sequence that holds it, and where its value lies in
the buffer.  Nothing is decoded: :mod:`medfast.dicom.header` turns the few
values it needs into numbers and text.  The walk is plain C over a byte
buffer, so many files are walked at once by threads (``walk`` and
``read_file`` release the GIL).

Every read is bounds-checked and every step moves forward, so corrupt input
ends in an error status, never in a read past the buffer or an endless
loop.  Sequences are recognised as pydicom recognises them: by their VR
(SQ, or UN with an undefined length), by a dictionary of sequence tags
passed in, or, for a private value of unknown VR, by an undefined length or
by its starting with an item tag (kept as plain bytes when it does not parse
as one).  Other undefined-length values (compressed pixel data in an icon
image) run to the Sequence Delimitation Item.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.math cimport isfinite
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport strtod
from libc.stdio cimport FILE, fclose, fopen, fread, fseek, SEEK_SET
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy

import os

import numpy as np

cdef extern from "<sys/stat.h>" nogil:
    cdef struct stat:
        int64_t st_size
    int c_stat "stat" (const char* path, stat* buf)

# Row kinds.
cdef enum:
    K_ELEMENT = 0
    K_SEQUENCE = 1
    K_ITEM = 2
    K_PIXELS = 3      # the top-level pixel data element (the walk stops there)

# Status codes (errors are negative).
cdef enum:
    ST_END = 0        # the data set ends with the buffer; no pixel data
    ST_PIXELS = 1     # stopped at the pixel data element (last row)
    E_SHORT = -1      # the buffer ends inside an element: read more of the file
    E_BAD_VR = -2     # an explicit VR that is not two capital letters / unknown
    E_ITEM = -3       # an item or delimiter tag where an element belongs
    E_DEPTH = -4      # sequences nested too deeply
    E_MEMORY = -5     # out of memory for the table
    E_FILE = -6       # the file could not be opened or read
    STOP = -100       # internal: the walk stopped (pixel data, end of file meta)
    MAX_DEPTH = 32

STATUS = {ST_END: "end of data", ST_PIXELS: "pixel data",
          E_SHORT: "the data end inside an element (truncated file?)",
          E_BAD_VR: "unknown or malformed value representation",
          E_ITEM: "item or delimiter tag where a data element belongs",
          E_DEPTH: "sequences nested too deeply",
          E_MEMORY: "out of memory",
          E_FILE: "cannot read the file"}
END, PIXELS, SHORT = ST_END, ST_PIXELS, E_SHORT
ELEMENT, SEQUENCE, ITEM, PIXEL_DATA = K_ELEMENT, K_SEQUENCE, K_ITEM, K_PIXELS

cdef uint32_t UNDEFINED = 0xFFFFFFFF
cdef uint32_t T_ITEM = 0xFFFEE000
cdef uint32_t T_ITEM_END = 0xFFFEE00D
cdef uint32_t T_SEQ_END = 0xFFFEE0DD

ctypedef struct Row:
    uint32_t tag
    uint16_t vr          # the two VR letters (first << 8 | second); 0 if none
    uint8_t depth
    uint8_t kind
    int32_t parent       # row of the enclosing item (elements) or sequence (items)
    int32_t index        # items: ordinal within their sequence
    int32_t first        # first row inside this sequence or item (-1: none)
    int32_t next         # next row at the same level (-1: last)
    int64_t offset       # value offset in the buffer
    int64_t length       # value length (undefined lengths resolved; -1: encapsulated)

ROW_DTYPE = np.dtype([("tag", "<u4"), ("vr", "<u2"), ("depth", "u1"), ("kind", "u1"),
                      ("parent", "<i4"), ("index", "<i4"), ("first", "<i4"),
                      ("next", "<i4"), ("offset", "<i8"), ("length", "<i8")])
assert ROW_DTYPE.itemsize == sizeof(Row)

ctypedef struct Walk:
    const uint8_t* b
    int64_t n
    bint little
    Row* rows
    int64_t count
    int64_t capacity
    const uint32_t* sq_tags   # sorted tags whose dictionary VR is SQ
    int64_t n_sq
    int64_t need              # on E_SHORT: bytes needed to go on (0: unknown)
    int64_t stop_pos          # where the walk stopped (STOP)
    bint meta                 # stop at the first top-level group other than 0002

# Two-letter explicit VRs: 1 = 2-byte length, 2 = 2 reserved bytes + 4-byte length.
cdef uint8_t VR_KIND[676]


cdef void _init_vrs():
    cdef int i
    for i in range(676):
        VR_KIND[i] = 0
    for name in ("AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US").split():
        VR_KIND[(ord(name[0]) - 65) * 26 + ord(name[1]) - 65] = 1
    for name in ("OB OD OF OL OV OW SQ SV UC UN UR UT UV").split():
        VR_KIND[(ord(name[0]) - 65) * 26 + ord(name[1]) - 65] = 2


_init_vrs()

cdef uint16_t VR_SQ = (ord("S") << 8) | ord("Q")
cdef uint16_t VR_UN = (ord("U") << 8) | ord("N")


cdef inline uint32_t rd16(const uint8_t* p, bint little) noexcept nogil:
    if little:
        return p[0] | (<uint32_t>p[1] << 8)
    return (<uint32_t>p[0] << 8) | p[1]


cdef inline uint32_t rd32(const uint8_t* p, bint little) noexcept nogil:
    if little:
        return (p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
                | (<uint32_t>p[3] << 24))
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | p[3])


cdef inline bint upper(uint8_t c) noexcept nogil:
    return 0x40 < c < 0x5B


cdef inline bint looks_explicit(const uint8_t* b, int64_t n, int64_t pos) noexcept nogil:
    """The element at `pos` carries a known two-letter VR."""
    if n - pos < 6 or not (upper(b[pos + 4]) and upper(b[pos + 5])):
        return False
    return VR_KIND[(b[pos + 4] - 65) * 26 + (b[pos + 5] - 65)] != 0


cdef bint is_sq_tag(Walk* w, uint32_t tag) noexcept nogil:
    cdef int64_t lo = 0, hi = w.n_sq, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if w.sq_tags[mid] < tag:
            lo = mid + 1
        else:
            hi = mid
    return lo < w.n_sq and w.sq_tags[lo] == tag


cdef int64_t add_row(Walk* w, uint32_t tag, uint16_t vr, int depth, int kind,
                     int64_t parent, int64_t index, int64_t offset, int64_t length,
                     int64_t* previous) noexcept nogil:
    """Append a row and link it after `previous` (the last row added at the
    same level, -1 for the first, which the parent then points to)."""
    cdef Row* grown
    cdef int64_t cap, row
    if w.count == w.capacity:
        if w.capacity >= 0x7FFFFFFF // 2:
            return E_MEMORY
        cap = w.capacity * 2 if w.capacity else 256
        grown = <Row*>realloc(w.rows, cap * sizeof(Row))
        if grown == NULL:
            return E_MEMORY
        w.rows, w.capacity = grown, cap
    row = w.count
    w.rows[row] = Row(tag, vr, <uint8_t>depth, <uint8_t>kind, <int32_t>parent,
                      <int32_t>index, -1, -1, offset, length)
    if previous[0] >= 0:
        w.rows[previous[0]].next = <int32_t>row
    elif parent >= 0:
        w.rows[parent].first = <int32_t>row
    previous[0] = row
    w.count += 1
    return row


cdef int64_t walk_items(Walk* w, int64_t pos, int64_t end, bint undefined,
                        bint implicit, int depth, int64_t seq_row) noexcept nogil:
    """Items of a sequence whose value starts at `pos`.  Defined length: up to
    `end`; undefined: up to the Sequence Delimitation Item.  Returns the
    position after the value, or a negative status."""
    cdef uint32_t tag, length
    cdef int64_t item_row, item_end, index = 0, r, previous = -1
    cdef bint item_implicit
    if depth > MAX_DEPTH:
        return E_DEPTH
    while True:
        if not undefined and pos == end:
            return pos
        if end - pos < 8:
            return E_SHORT
        tag = (rd16(w.b + pos, w.little) << 16) | rd16(w.b + pos + 2, w.little)
        length = rd32(w.b + pos + 4, w.little)
        pos += 8
        if tag == T_SEQ_END and undefined:
            return pos
        if tag != T_ITEM:
            return E_ITEM
        # pydicom's rule: an item of an explicit VR data set may be encoded
        # implicitly (never the reverse).
        item_implicit = implicit or not looks_explicit(w.b, end, pos)
        item_row = add_row(w, T_ITEM, 0, depth, K_ITEM, seq_row, index, pos, 0,
                           &previous)
        if item_row < 0:
            return item_row
        index += 1
        if length == UNDEFINED:
            r = walk_elements(w, pos, end, True, item_implicit, depth, item_row)
        else:
            if <int64_t>length > end - pos:
                return E_SHORT
            item_end = pos + length
            r = walk_elements(w, pos, item_end, False, item_implicit, depth, item_row)
        if r < 0:
            return r
        w.rows[item_row].length = r - pos - (8 if length == UNDEFINED else 0)
        pos = r


cdef int64_t skip_fragments(Walk* w, int64_t pos, int64_t end) noexcept nogil:
    """Items of defined length from `pos` to the Sequence Delimitation Item;
    returns the position after it, or a negative status."""
    cdef uint32_t tag, length
    while True:
        if end - pos < 8:
            return E_SHORT
        tag = (rd16(w.b + pos, w.little) << 16) | rd16(w.b + pos + 2, w.little)
        length = rd32(w.b + pos + 4, w.little)
        pos += 8
        if tag == T_SEQ_END:
            return pos
        if tag != T_ITEM or length == UNDEFINED:
            return E_ITEM
        if <int64_t>length > end - pos:
            return E_SHORT
        pos += length


cdef int64_t walk_elements(Walk* w, int64_t pos, int64_t end, bint undefined,
                           bint implicit, int depth, int64_t parent) noexcept nogil:
    """Elements from `pos`: to `end` (defined length), or to the Item
    Delimitation Item (undefined-length item), or, at the top level, to the
    pixel data.  Returns the position after them, or a negative status."""
    cdef uint32_t tag, length, group
    cdef uint16_t vr
    cdef int64_t value, row, r, mark, previous = -1
    cdef int kind
    cdef bint sequence, guessed
    while True:
        if pos == end and not undefined:
            return pos
        if end - pos < 8:
            return E_SHORT
        group = rd16(w.b + pos, w.little)
        tag = (group << 16) | rd16(w.b + pos + 2, w.little)
        if depth == 0 and w.meta and group != 2:
            w.stop_pos = pos
            return STOP
        if tag == T_ITEM_END and undefined:
            return pos + 8
        if group == 0xFFFE:
            return E_ITEM
        if implicit:
            vr = 0
            length = rd32(w.b + pos + 4, w.little)
            value = pos + 8
        else:
            if not (upper(w.b[pos + 4]) and upper(w.b[pos + 5])):
                return E_BAD_VR
            kind = VR_KIND[(w.b[pos + 4] - 65) * 26 + (w.b[pos + 5] - 65)]
            if kind == 0:
                return E_BAD_VR
            vr = (<uint16_t>w.b[pos + 4] << 8) | w.b[pos + 5]
            if kind == 1:
                length = rd16(w.b + pos + 6, w.little)
                value = pos + 8
            else:
                if end - pos < 12:
                    return E_SHORT
                length = rd32(w.b + pos + 8, w.little)
                value = pos + 12
        if depth == 0 and (tag == 0x7FE00010 or tag == 0x7FE00008 or tag == 0x7FE00009):
            r = add_row(w, tag, vr, 0, K_PIXELS, parent, 0, value,
                        -1 if length == UNDEFINED else length, &previous)
            w.stop_pos = pos
            return r if r < 0 else STOP
        if length != UNDEFINED and <int64_t>length > end - value:
            if depth == 0 and not undefined:
                w.need = value + length
            return E_SHORT
        # Undefined length: a sequence when explicitly SQ or UN; in implicit
        # VR, when the dictionary says SQ or the tag is private (pydicom's
        # rules; a public element of another VR holds bytes up to the
        # Sequence Delimitation Item).
        sequence = vr == VR_SQ or (length == UNDEFINED and (
            vr == VR_UN or (vr == 0 and (group & 1 or is_sq_tag(w, tag)))))
        guessed = False
        if not sequence and (vr == 0 or vr == VR_UN) and length != UNDEFINED and length >= 8:
            # A sequence by the dictionary (it must parse as one, as pydicom
            # reads it), or a private one that starts with an item tag: tried,
            # and kept as bytes if it does not parse.
            sequence = is_sq_tag(w, tag)
            if not sequence and group & 1:
                sequence = guessed = (rd16(w.b + value, w.little) == 0xFFFE
                                      and rd16(w.b + value + 2, w.little) == 0xE000)
        if length == UNDEFINED and not sequence:
            # Encapsulated (compressed) pixel data inside an item (an icon
            # image): fragments up to the Sequence Delimitation Item.
            r = skip_fragments(w, value, end)
            if r < 0:
                return r
            row = add_row(w, tag, vr, depth, K_ELEMENT, parent, 0, value, r - 8 - value,
                          &previous)
            if row < 0:
                return row
            pos = r
            continue
        if sequence:
            row = add_row(w, tag, VR_SQ if vr == 0 or vr == VR_UN else vr, depth,
                          K_SEQUENCE, parent, 0, value, 0, &previous)
            if row < 0:
                return row
            mark = w.count
            # UN of undefined length holds implicit VR little endian items.
            r = walk_items(w, value, value + length if length != UNDEFINED else end,
                           length == UNDEFINED, implicit or vr == VR_UN, depth + 1, row)
            if r == E_MEMORY or r == E_DEPTH or r == STOP:
                return r
            if r < 0 and guessed:
                w.count = mark  # not a sequence after all: plain bytes
                w.rows[row].first = -1
                w.rows[row].kind = K_ELEMENT
                w.rows[row].vr = vr
                w.rows[row].length = length
                pos = value + length
                continue
            if r < 0:
                return r
            w.rows[row].length = r - value - (8 if length == UNDEFINED else 0)
            pos = r
        else:
            r = add_row(w, tag, vr, depth, K_ELEMENT, parent, 0, value, length,
                        &previous)
            if r < 0:
                return r
            pos = value + length


cdef int64_t walk_c(Walk* w, int64_t pos, bint implicit) noexcept nogil:
    """The data set from `pos`; returns a status (ST_END, ST_PIXELS or < 0)
    and sets ``w.stop_pos``."""
    cdef int64_t r = walk_elements(w, pos, w.n, False, implicit, 0, -1)
    if r == STOP:
        return ST_END if w.meta else ST_PIXELS
    if r < 0:
        return r
    w.stop_pos = r
    return ST_END


def walk(data, Py_ssize_t pos, bint implicit, bint little,
         const uint32_t[::1] sq_tags, bint meta=False):
    """Walk a data set's elements.

    Parameters
    ----------
    data : bytes
        The header bytes (the whole file, or its start).
    pos : int
        Offset of the first element.
    implicit, little : bool
        The encoding of the data set.
    sq_tags : uint32 array
        Sorted tags whose dictionary VR is SQ (for implicit VR).
    meta : bool
        Walk the file meta group only: stop at the first element of
        another group.

    Returns
    -------
    status : int
        END, PIXELS (the last row is the pixel data element) or a negative
        error (SHORT: the data end inside an element).
    stop : int
        Where the walk stopped: the end of the data, the pixel data
        element's tag, or the first element after the file meta group.
    need : int
        With SHORT, the length of data needed to read the element that did
        not fit (0 when unknown).
    table : Table
    """
    cdef const uint8_t[::1] view = data
    cdef Walk w
    cdef int64_t status
    w.b = &view[0] if view.shape[0] else NULL
    w.n = view.shape[0]
    w.little = little
    w.rows = NULL
    w.count = w.capacity = 0
    w.sq_tags = &sq_tags[0] if sq_tags.shape[0] else NULL
    w.n_sq = sq_tags.shape[0]
    w.need = 0
    w.stop_pos = pos
    w.meta = meta
    if pos < 0 or pos > w.n:
        raise ValueError("pos outside the data")
    with nogil:
        status = walk_c(&w, pos, implicit)
    table = Table()
    table.rows, table.count, table.data = w.rows, w.count, data
    return int(status), int(w.stop_pos), int(w.need), table


cdef class Table:
    """The rows of one walk, and the bytes their offsets refer to.

    Rows are numbered in stream order; row -1 stands for the top level.
    """

    cdef Row* rows
    cdef int64_t count
    cdef public object data

    def __dealloc__(self):
        free(self.rows)

    def __len__(self):
        return self.count

    cdef inline void check(self, Py_ssize_t i) except *:
        if i < 0 or i >= self.count:
            raise IndexError(f"row {i} outside the table")

    cpdef Py_ssize_t find(self, Py_ssize_t parent, uint32_t tag) except -2:
        """The first row holding `tag` inside item `parent` (-1: the top
        level), or -1."""
        cdef int64_t i
        if parent >= 0:
            self.check(parent)
            i = self.rows[parent].first
        else:
            i = 0 if self.count else -1
        while i >= 0:
            if self.rows[i].tag == tag:
                return i
            i = self.rows[i].next
        return -1

    def children(self, Py_ssize_t parent):
        """The rows inside item or sequence `parent` (-1: the top level)."""
        cdef list out = []
        cdef int64_t i
        if parent >= 0:
            self.check(parent)
            i = self.rows[parent].first
        else:
            i = 0 if self.count else -1
        while i >= 0:
            out.append(i)
            i = self.rows[i].next
        return out

    cdef bint is_creator(self, int64_t i, const uint8_t* c, Py_ssize_t n):
        """Whether row `i`'s value is private creator `c` (upper case,
        stripped): compared without case and surrounding spaces or NULs."""
        cdef const uint8_t[::1] d = self.data
        cdef int64_t a = self.rows[i].offset, b
        cdef Py_ssize_t k
        cdef uint8_t ch
        if self.rows[i].length < n or a + self.rows[i].length > d.shape[0]:
            return False
        b = a + self.rows[i].length
        while a < b and (d[a] == 32 or d[a] == 0):
            a += 1
        while b > a and (d[b - 1] == 32 or d[b - 1] == 0):
            b -= 1
        if b - a != n:
            return False
        for k in range(n):
            ch = d[a + k]
            if 0x61 <= ch <= 0x7A:
                ch -= 32
            if ch != c[k]:
                return False
        return True

    def private_block(self, Py_ssize_t parent, uint32_t group, bytes creator):
        """The block (0x10-0xFF) that private creator `creator` (upper case,
        stripped) reserved in `group` inside item `parent`, or -1.  Creator
        values compare without case and surrounding spaces or NULs."""
        cdef const uint8_t* c = creator
        cdef Py_ssize_t n = len(creator)
        cdef int64_t i
        cdef uint32_t low
        if parent >= 0:
            self.check(parent)
            i = self.rows[parent].first
        else:
            i = 0 if self.count else -1
        while i >= 0:
            low = self.rows[i].tag & 0xFFFF
            if self.rows[i].tag >> 16 == group and 0x10 <= low <= 0xFF \
                    and self.is_creator(i, c, n):
                return low
            i = self.rows[i].next
        return -1

    def private_find(self, Py_ssize_t parent, uint32_t group, bytes creator,
                     uint32_t element):
        """The row of private element (`group`, xx`element`) of the block
        that private creator `creator` (upper case, stripped) reserved inside
        item `parent`, or -1.

        Stream order decides, as dcm2niix reads private tags: an element
        belongs to the creator that last reserved its block before it.  So a
        block reserved twice (a PACS that renumbers private blocks, such as
        Agfa's, can move one vendor block onto another's) still gives each
        creator its own elements."""
        cdef const uint8_t* c = creator
        cdef Py_ssize_t n = len(creator)
        cdef int64_t i
        cdef uint32_t low
        cdef int64_t block = -1
        if parent >= 0:
            self.check(parent)
            i = self.rows[parent].first
        else:
            i = 0 if self.count else -1
        while i >= 0:
            if self.rows[i].tag >> 16 == group:
                low = self.rows[i].tag & 0xFFFF
                if 0x10 <= low <= 0xFF:
                    if self.is_creator(i, c, n):
                        block = low
                    elif low == block:
                        block = -1  # another creator took the block over
                elif block >= 0 and low >> 8 == block and low & 0xFF == element:
                    return i
            i = self.rows[i].next
        return -1

    cdef object _get(self, Py_ssize_t parent, uint32_t tag, object vr,
                     object dictionary_vr, bint little, Py_ssize_t* row_out):
        cdef Py_ssize_t row = self.find(parent, tag)
        cdef Row r
        row_out[0] = row
        if row < 0:
            return IS_MISSING
        r = self.rows[row]
        if r.kind == K_SEQUENCE:
            return IS_SEQUENCE
        if vr is None:
            vr = _vr_string(r.vr) if r.vr else dictionary_vr(tag)
            if vr == "UN":
                vr = dictionary_vr(tag) or "UN"
        if r.length < 0:
            return None
        return decode_span(self.data, r.offset, r.length, vr, little)

    def get(self, Py_ssize_t parent, uint32_t tag, object vr, object dictionary_vr,
            bint little):
        """The decoded value of element `tag` in item `parent`, and its row.

        The value is IS_MISSING when absent, IS_SEQUENCE for a sequence,
        NON_ASCII when a text value needs its character set (the caller
        decodes it), else what :func:`decode_span` returns.  `vr` overrides
        the element's VR; without one, the explicit VR, else
        ``dictionary_vr(tag)``.
        """
        cdef Py_ssize_t row
        value = self._get(parent, tag, vr, dictionary_vr, little, &row)
        return value, row

    def get_many(self, Py_ssize_t parent, tuple tags, object dictionary_vr, bint little):
        """:meth:`get` for several tags at once (one call from Python for the
        few dozen values a file gives): a list of values, None where absent,
        ``(marker, row)`` where the caller must decode (a sequence, text in
        a character set)."""
        cdef list out = []
        cdef Py_ssize_t row
        for tag in tags:
            value = self._get(parent, tag, None, dictionary_vr, little, &row)
            if value is IS_MISSING:
                out.append(None)
            elif value is IS_SEQUENCE or value is NON_ASCII:
                out.append((value, row))
            else:
                out.append(value)
        return out

    def row(self, Py_ssize_t i):
        """(tag, vr, kind, offset, length) of row `i`; vr as its two letters
        or None."""
        self.check(i)
        cdef Row r = self.rows[i]
        vr = None if r.vr == 0 else chr(r.vr >> 8) + chr(r.vr & 0xFF)
        return r.tag, vr, r.kind, r.offset, r.length

    def value(self, Py_ssize_t i):
        """The value bytes of row `i` (b"" beyond the data held)."""
        self.check(i)
        cdef Row r = self.rows[i]
        if r.length < 0:
            return b""
        return self.data[r.offset:r.offset + r.length]

    def array(self):
        """The rows as a numpy structured array (ROW_DTYPE), a copy."""
        table = np.empty(self.count, ROW_DTYPE)
        cdef unsigned char[::1] dest
        if self.count:
            dest = table.view(np.uint8)
            memcpy(&dest[0], self.rows, self.count * sizeof(Row))
        return table


def read_file(path, Py_ssize_t offset, Py_ssize_t size):
    """Up to `size` bytes of a file from `offset`, read without the GIL.

    Returns
    -------
    data : bytes
    file_size : int
    """
    cdef bytes encoded = path.encode() if isinstance(path, str) else bytes(path)
    cdef const char* name = encoded
    cdef stat st
    cdef FILE* f
    cdef char* buf = NULL
    cdef int64_t got = -1, total = -1
    with nogil:
        if c_stat(name, &st) == 0:
            total = st.st_size
            if offset > total:
                offset = total
            if size > total - offset:
                size = total - offset
            buf = <char*>malloc(size if size > 0 else 1)
            f = fopen(name, "rb")
            if f != NULL and buf != NULL:
                if fseek(f, offset, SEEK_SET) == 0:
                    got = fread(buf, 1, size, f)
                fclose(f)
            elif f != NULL:
                fclose(f)
    try:
        if got < 0:
            raise OSError(f"cannot read {path}")
        return PyBytes_FromStringAndSize(buf, got), total
    finally:
        free(buf)


def read_heads(list paths, Py_ssize_t size):
    """The first `size` bytes of each file (all of a smaller one), read in
    one call without the GIL, so that threads read ahead of the parsing
    without handing the GIL back and forth for each file.

    Returns
    -------
    list
        Per path, ``(data, file_size)``, or None when it cannot be read.
    """
    cdef Py_ssize_t n = len(paths), i, want
    cdef list encoded = [os.fsencode(p) for p in paths]
    cdef const char** names = <const char**>malloc((n if n else 1) * sizeof(char*))
    cdef char** bufs = <char**>calloc(n if n else 1, sizeof(char*))
    cdef int64_t* got = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
    cdef int64_t* totals = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
    cdef stat st
    cdef FILE* f
    cdef list out = []
    if names == NULL or bufs == NULL or got == NULL or totals == NULL:
        free(names); free(bufs); free(got); free(totals)
        raise MemoryError()
    for i in range(n):
        names[i] = encoded[i]
    try:
        with nogil:
            for i in range(n):
                got[i] = -1
                if c_stat(names[i], &st) != 0:
                    continue
                totals[i] = st.st_size
                want = size if size < st.st_size else st.st_size
                bufs[i] = <char*>malloc(want if want > 0 else 1)
                f = fopen(names[i], "rb")
                if f != NULL:
                    if bufs[i] != NULL:
                        got[i] = fread(bufs[i], 1, want, f)
                    fclose(f)
        for i in range(n):
            out.append(None if got[i] < 0 else
                       (PyBytes_FromStringAndSize(bufs[i], got[i]), totals[i]))
    finally:
        for i in range(n):
            free(bufs[i])
        free(names); free(bufs); free(got); free(totals)
    return out


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------
IS_MISSING = object()   # Table.get: no such element
IS_SEQUENCE = object()  # Table.get: the element is a sequence
NON_ASCII = object()   # decode_span: text that needs the character set

cdef dict _VR_STRINGS = {}
cdef set _TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM",
                      "UC", "UI", "UR", "UT"}
cdef set _SINGLE_VRS = {"LT", "ST", "UT", "UR"}


cdef object _vr_string(uint16_t code):
    out = _VR_STRINGS.get(code)
    if out is None:
        out = chr(code >> 8) + chr(code & 0xFF)
        _VR_STRINGS[code] = out
    return out


cdef inline bint _blank(uint8_t c) noexcept nogil:
    return c == 32 or c == 0


cdef object _number(const uint8_t* p, Py_ssize_t a, Py_ssize_t b, bint integer):
    """One DS/IS value from p[a:b] (spaces around allowed), or None."""
    cdef char buf[64]
    cdef char* end
    cdef double value
    while a < b and p[a] == 32:
        a += 1
    while b > a and (p[b - 1] == 32 or p[b - 1] == 0):
        b -= 1
    if b <= a or b - a >= 64:
        return None
    memcpy(buf, p + a, b - a)
    buf[b - a] = 0
    value = strtod(buf, &end)
    if end != buf + (b - a):
        return None
    if integer:
        return int(value)
    return value


cdef object _unpack(const uint8_t* p, Py_ssize_t n, str vr, bint little):
    cdef Py_ssize_t size, count, i
    cdef uint8_t tmp[8]
    cdef list out = []
    cdef int k
    size = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "SV": 8, "UV": 8,
            "AT": 4}[vr]
    count = n // size
    if count == 0:
        return None
    for i in range(count):
        for k in range(size):
            tmp[k] = p[i * size + (k if little else size - 1 - k)]
        if vr == "US":
            out.append((<uint16_t*>tmp)[0])
        elif vr == "SS":
            out.append((<int16_t*>tmp)[0])
        elif vr == "UL":
            out.append((<uint32_t*>tmp)[0])
        elif vr == "SL":
            out.append((<int32_t*>tmp)[0])
        elif vr == "FL":
            out.append((<float*>tmp)[0])
        elif vr == "FD":
            out.append((<double*>tmp)[0])
        elif vr == "SV":
            out.append((<int64_t*>tmp)[0])
        elif vr == "UV":
            out.append((<uint64_t*>tmp)[0])
        else:  # AT: group, element
            if little:
                out.append((<uint32_t>(tmp[0] | (tmp[1] << 8)) << 16) | (tmp[2] | (tmp[3] << 8)))
            else:
                out.append((<uint32_t>((tmp[3] << 8) | tmp[2]) << 16) | ((tmp[1] << 8) | tmp[0]))
    return out[0] if count == 1 else out


def decode_span(bytes data, Py_ssize_t offset, Py_ssize_t length, str vr, bint little):
    """Decode data[offset:offset+length] by its VR: str, int, float, bytes or
    a list of them (several values); None when empty or when no number
    parses; NON_ASCII for text that needs its character set."""
    cdef const uint8_t* p
    cdef Py_ssize_t a, b, i, start
    cdef bint number, integer, any_value
    cdef list parts
    if length <= 0 or offset < 0 or offset + length > len(data):
        return None
    p = <const uint8_t*>PyBytes_AS_STRING(data) + offset
    number = vr == "DS" or vr == "IS"
    if number or vr in _TEXT_VRS:
        a, b = 0, length
        while b > a and _blank(p[b - 1]):
            b -= 1
        for i in range(b):
            # Printable ASCII only (trailing NUL padding aside); anything
            # else (a character set, tabs, escapes) is decoded in Python.
            if p[i] < 0x20 or p[i] > 0x7E:
                return NON_ASCII
        while a < b and p[a] == 32:
            a += 1
        if b == a:
            return None
        if vr in _SINGLE_VRS:
            return PyUnicode_DecodeASCII(<const char*>p + a, b - a, NULL)
        parts = []
        start = a
        integer = vr == "IS"
        for i in range(a, b + 1):
            if i == b or p[i] == 92:  # backslash: next value
                if number:
                    parts.append(_number(p, start, i, integer))
                else:
                    parts.append(PyUnicode_DecodeASCII(<const char*>p + start, i - start,
                                                       NULL).strip())
                start = i + 1
        if number:
            any_value = False
            for value in parts:
                if value is not None:
                    any_value = True
            if not any_value:
                return None
        return parts[0] if len(parts) == 1 else parts
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"):
        return _unpack(p, length, vr, little)
    return PyBytes_FromStringAndSize(<const char*>p, length)

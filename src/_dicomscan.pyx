# cython: boundscheck=False, wraparound=False
"""Walk a DICOM element stream: the fast part of ``medfast.dicom.fastheader``.

One flat loop over the top-level (tag, VR, length) headers that turns each
element into a ``pydicom.dataelem.RawDataElement`` (the value bytes are
copied, nothing is decoded: pydicom converts values lazily, as it does for
the elements its own reader returns).  Defined-length values, sequences and
items are skipped by their length; only undefined-length sequences and items
are walked, to find their delimiters.  Every read is bounds-checked and every
step moves forward by at least 8 bytes, so corrupt input ends in an error
status, never in a read past the buffer or an endless loop.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport uint8_t, uint32_t

from pydicom.tag import BaseTag

# Status codes returned by scan_elements (errors are negative).
cdef enum:
    ST_END = 0          # reached the end of the data
    ST_STOP = 1         # stopped before an element (group change / pixel data)
    E_TRUNCATED = -1    # a header or value runs past the end of the data
    E_BAD_VR = -2       # explicit VR that pydicom does not know
    E_ITEM_TAG = -3     # an item or delimiter tag where an element belongs
    E_NOT_ITEMS = -4    # undefined length whose value is not a list of items
    E_TOO_DEEP = -5     # sequences nested deeper than MAX_DEPTH
    MAX_DEPTH = 64
    TAG_CACHE_MAX = 65536
    IMPLICIT = 676      # VR index of "no VR" (implicit VR, items, delimiters)

cdef uint32_t UNDEFINED = 0xFFFFFFFF
cdef uint32_t ITEM = 0xFFFEE000
cdef uint32_t ITEM_DELIM = 0xFFFEE00D
cdef uint32_t SEQ_DELIM = 0xFFFEE0DD

STATUS = {
    E_TRUNCATED: "truncated data or a length that overruns the buffer",
    E_BAD_VR: "unknown or non-alphabetic explicit VR",
    E_ITEM_TAG: "item or delimiter tag where a data element was expected",
    E_NOT_ITEMS: "undefined-length value that is not a sequence of items",
    E_TOO_DEEP: "sequences nested too deeply",
}

# Where scan_elements stops before the end of the data.
cdef enum:
    S_NEVER = 0
    S_GROUP_CHANGE = 1  # file meta: at the first tag outside group 0x0002
    S_PIXEL_DATA = 2    # data set: at (7FE0,0008), (7FE0,0009) or (7FE0,0010)

STOP_NEVER, STOP_GROUP_CHANGE, STOP_PIXEL_DATA = S_NEVER, S_GROUP_CHANGE, S_PIXEL_DATA
STATUS_END, STATUS_STOP = ST_END, ST_STOP

# Explicit VRs pydicom knows: 1 = 2-byte length, 2 = 2 reserved bytes and a
# 4-byte length.  Indexed by (first letter - 'A') * 26 + (second - 'A').
cdef uint8_t VR_KIND[676]
cdef list _VR_NAMES = [None] * 677   # index IMPLICIT (676): None
VR_NAMES = _VR_NAMES


def _init_vr_table():
    short = ("AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US")
    long_ = ("OB OD OF OL OV OW SQ SV UC UN UR UT UV")
    for i in range(676):
        VR_KIND[i] = 0
    for kind, names in ((1, short), (2, long_)):
        for name in names.split():
            i = (ord(name[0]) - 65) * 26 + ord(name[1]) - 65
            VR_KIND[i] = kind
            _VR_NAMES[i] = name


_init_vr_table()

# Shared BaseTag objects (ints are immutable), so each element costs a dict
# lookup instead of a BaseTag() call.  Bounded: private tags vary per vendor.
cdef dict _TAGS = {}


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


cdef inline bint is_upper(uint8_t c) noexcept nogil:
    return 0x40 < c < 0x5B


cdef inline int read_header(const uint8_t* b, Py_ssize_t n, Py_ssize_t pos,
                            bint implicit, bint little, uint32_t* tag,
                            int* vr, uint32_t* length,
                            Py_ssize_t* value_pos) noexcept nogil:
    """Decode the element header at `pos`: tag, VR index (IMPLICIT when the
    encoding or the tag has no VR), value length and value position."""
    cdef uint32_t group
    cdef int i
    if n - pos < 8:
        return E_TRUNCATED
    group = rd16(b + pos, little)
    tag[0] = (group << 16) | rd16(b + pos + 2, little)
    if implicit or group == 0xFFFE:  # items and delimiters never have a VR
        vr[0] = IMPLICIT
        length[0] = rd32(b + pos + 4, little)
        value_pos[0] = pos + 8
        return 0
    if not (is_upper(b[pos + 4]) and is_upper(b[pos + 5])):
        return E_BAD_VR
    i = (b[pos + 4] - 65) * 26 + (b[pos + 5] - 65)
    if VR_KIND[i] == 0:
        return E_BAD_VR
    vr[0] = i
    if VR_KIND[i] == 1:
        length[0] = rd16(b + pos + 6, little)
        value_pos[0] = pos + 8
        return 0
    if n - pos < 12:
        return E_TRUNCATED
    length[0] = rd32(b + pos + 8, little)
    value_pos[0] = pos + 12
    return 0


cdef inline bint looks_implicit(const uint8_t* b, Py_ssize_t n,
                                Py_ssize_t pos) noexcept nogil:
    """pydicom's test of an item's encoding: its first VR is not two capital
    letters."""
    return n - pos >= 6 and not (is_upper(b[pos + 4]) and is_upper(b[pos + 5]))


cdef Py_ssize_t skip_items(const uint8_t* b, Py_ssize_t n, Py_ssize_t pos,
                           bint implicit, bint little, int depth,
                           bint* saw_implicit) noexcept nogil:
    """Skip an undefined-length value made of items, from its first byte to
    just after its Sequence Delimitation Item; returns that position, or a
    negative status.  Undefined-length items are walked element by element
    (nested undefined-length values recursively) to their Item Delimitation
    Item, like pydicom's ``read_sequence``.  Sets `saw_implicit` when an item
    of explicit VR data is encoded implicitly (pydicom switches to implicit
    VR for such an item, never the reverse)."""
    cdef uint32_t tag = 0, length = 0
    cdef Py_ssize_t value_pos = 0
    cdef int vr = 0, r
    cdef bint item_implicit
    if depth > MAX_DEPTH:
        return E_TOO_DEEP
    while True:
        if n - pos < 8:
            return E_TRUNCATED
        tag = (rd16(b + pos, little) << 16) | rd16(b + pos + 2, little)
        length = rd32(b + pos + 4, little)
        pos += 8
        if tag == SEQ_DELIM:
            return pos
        if tag != ITEM:
            return E_NOT_ITEMS
        if length != UNDEFINED:
            if <Py_ssize_t>length > n - pos:
                return E_TRUNCATED
            if not implicit and length >= 6 and looks_implicit(b, n, pos):
                saw_implicit[0] = True
            pos += length
            continue
        item_implicit = implicit or looks_implicit(b, n, pos)
        if item_implicit and not implicit:
            saw_implicit[0] = True
        while True:
            r = read_header(b, n, pos, item_implicit, little, &tag, &vr,
                            &length, &value_pos)
            if r < 0:
                return r
            if tag == ITEM_DELIM:
                pos = value_pos
                break
            if (tag >> 16) == 0xFFFE:
                return E_ITEM_TAG
            if length == UNDEFINED:
                pos = skip_items(b, n, value_pos, item_implicit, little,
                                 depth + 1, saw_implicit)
                if pos < 0:
                    return pos
            elif <Py_ssize_t>length > n - value_pos:
                return E_TRUNCATED
            else:
                pos = value_pos + length


def scan_elements(const uint8_t[::1] data, Py_ssize_t pos, bint implicit,
                  bint little, int stop, dict out, list empties,
                  type raw_type):
    """Add a RawDataElement to `out` for each element from `pos` on.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    pos : int
        Offset of the first element header.
    implicit, little : bool
        The encoding of the elements (explicit VR when `implicit` is false).
    stop : int
        STOP_NEVER, STOP_GROUP_CHANGE or STOP_PIXEL_DATA: where to stop
        before reaching the end of `data`.
    out : dict
        Filled with ``{BaseTag: RawDataElement}`` in stream order (a repeated
        tag keeps its first position and its last value, like pydicom).
    empties : list
        The raw value of an empty element for each VR index (677 entries).
    raw_type : type
        ``pydicom.dataelem.RawDataElement``.

    Returns
    -------
    status : int
        ST_END (0), ST_STOP (1) or a negative error code (see STATUS).
    position : int
        Where the scan ended (the stop element's tag, or the error).
    undefined : list
        ``(tag, implicit_items)`` for each element of undefined length (its
        value holds the items, without the final Sequence Delimitation Item);
        `implicit_items` is true when any of its items is implicit VR.
    """
    cdef const uint8_t* b = &data[0] if data.shape[0] else NULL
    cdef Py_ssize_t n = data.shape[0]
    cdef uint32_t tag = 0, length = 0
    cdef Py_ssize_t value_pos = 0, end
    cdef int vr = 0, r
    cdef bint saw_implicit = False
    cdef list undefined = []
    cdef object key, value
    if not issubclass(raw_type, tuple):  # new_raw fills tuple slots
        raise TypeError("raw_type must be a tuple subclass")
    while True:
        if pos == n:
            return ST_END, pos, undefined
        if n - pos < 8:  # pydicom would silently drop a partial header
            return E_TRUNCATED, pos, undefined
        # The file meta ends at the first other group, whatever its VR.
        if stop == S_GROUP_CHANGE and rd16(b + pos, little) != 2:
            return ST_STOP, pos, undefined
        r = read_header(b, n, pos, implicit, little, &tag, &vr, &length,
                        &value_pos)
        if r < 0:
            return r, pos, undefined
        # Like pydicom's stop_when, checked once the whole header is read.
        if stop == S_PIXEL_DATA and (tag == 0x7FE00010 or tag == 0x7FE00008
                                     or tag == 0x7FE00009):
            return ST_STOP, pos, undefined
        if (tag >> 16) == 0xFFFE:
            return E_ITEM_TAG, pos, undefined
        if length == UNDEFINED:
            saw_implicit = implicit
            end = skip_items(b, n, value_pos, implicit, little, 0, &saw_implicit)
            if end < 0:
                return end, pos, undefined
            value = PyBytes_FromStringAndSize(<const char*>b + value_pos,
                                              end - 8 - value_pos)
            pos = end
        elif <Py_ssize_t>length > n - value_pos:
            return E_TRUNCATED, pos, undefined
        else:
            if length:
                value = PyBytes_FromStringAndSize(<const char*>b + value_pos,
                                                  length)
            else:
                value = empties[vr]
            pos = value_pos + length
        key = _TAGS.get(tag)
        if key is None:
            key = _new_tag(tag)
        out[key] = new_raw(raw_type, key, _VR_NAMES[vr], length, value,
                           value_pos, implicit, little)
        if length == UNDEFINED:
            undefined.append((key, saw_implicit))


cdef extern from *:
    """
    static PyObject *medfast_alloc_tuple(PyTypeObject *type, Py_ssize_t n) {
        return type->tp_alloc(type, n);
    }
    """
    object alloc_tuple "medfast_alloc_tuple" (type t, Py_ssize_t n)


cdef inline void put(object t, Py_ssize_t i, object item):
    Py_INCREF(item)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(t, i, item)


cdef object new_raw(type raw_type, object tag, object vr, uint32_t length,
                    object value, Py_ssize_t value_pos, bint implicit,
                    bint little):
    """RawDataElement(tag, vr, length, value, value_pos, implicit, little),
    built as CPython builds a tuple subclass (allocate, fill the slots),
    without the named tuple's Python-level __new__ and its argument tuple."""
    cdef object t = alloc_tuple(raw_type, 9)
    put(t, 0, tag)
    put(t, 1, vr)
    put(t, 2, length)
    put(t, 3, value)
    put(t, 4, value_pos)
    put(t, 5, implicit)
    put(t, 6, little)
    put(t, 7, True)   # is_raw
    put(t, 8, False)  # is_buffered
    return t


cdef object _new_tag(uint32_t tag):
    key = BaseTag(tag)
    if len(_TAGS) < TAG_CACHE_MAX:
        _TAGS[tag] = key
    return key

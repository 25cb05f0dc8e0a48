"""Siemens: the CSA private header, mosaic images, diffusion and XA
classic series.

A mosaic stores all slices of one volume tiled in a single 2-D image
(ImageType contains 'MOSAIC').  Its ImagePositionPatient is that of the
whole tiled image, not of the first slice, and the slice direction comes
from the CSA header's SliceNormalVector (it may point against the cross
product of the row and column directions: slices numbered head to foot;
without it, foot to head as dcm2niix assumes).  Parsing the CSA header is
left to nibabel's ``nicom.csareader``.  Private elements are always found
through their private creator (a PACS may move a block, see
:meth:`medfast.dicom.header.Header.private`).

XA scanners exporting classic ("interoperability") files may write each
volume of a 4-D acquisition as its own series (SeriesNumber 5001, 5002...,
each with its own SeriesInstanceUID, ImageType MFSPLIT).  As dcm2niix does,
classic single-frame XA images are grouped by their SeriesTime instead of
their series UID, and may be stacked across series numbers
(``Slice.stackable``); their volumes are ordered by series number, then
instance number.

Siemens XA files may leave EchoNumbers out: as dcm2niix does, the echo
number then comes from the second field of the ICE dims string (0021,xx06)
of "SIEMENS MR SDI 02" (in an enhanced file, of each frame's private item
(0021,xxFE)), and the time of each image after the start of the
acquisition from TimeAfterStart (0021,xx04) of the same block.
"""
import functools
import math
import re
import struct
import warnings

import numpy as np

from ..values import floats, number

CSA = "SIEMENS CSA HEADER"
MR_HEADER = "SIEMENS MR HEADER"
SDI = "SIEMENS MR SDI 02"
_XA10A = ("XA10", "XA11", "XA20", "XA30", "XA31")
_XA_LATER = ("XA5", "XA6", "XA7")


def _csareader():
    with warnings.catch_warnings():
        # nibabel.nicom warns that its DICOM *wrappers* are experimental;
        # only the CSA parser, which is stable, is used here.
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader
    return csareader


def csa_image_header(header):
    """The CSA image header (0029,xx10) as {name: list of values}, or {}."""
    return _parse_csa(header.private(0x0029, CSA, 0x10, vr="OB"))


def _parse_csa(raw):
    if not isinstance(raw, bytes):
        return {}
    return _parse_csa_bytes(raw)


# A file's CSA header is wanted by its diffusion fields and by its mosaic
# geometry, one after the other: parse it once (callers only read the dict).
@functools.lru_cache(maxsize=4)
def _parse_csa_bytes(raw):
    try:
        tags = _csareader().read(raw)["tags"]
    except Exception:  # a malformed private header is not fatal
        return {}
    return {name: tag["items"] for name, tag in tags.items() if tag["items"]}


def mosaic_geometry(header, csa):
    """Number of tiles, tile shape, first-slice position and slice normal.

    Parameters
    ----------
    header : medfast.dicom.header.Header
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
    n = number(header.private(0x0019, MR_HEADER, 0x0A, vr="US"), int)
    if not n and csa.get("NumberOfImagesInMosaic"):
        n = int(csa["NumberOfImagesInMosaic"][0])
    if not n or n < 1:
        raise ValueError("mosaic without NumberOfImagesInMosaic")
    grid = math.ceil(math.sqrt(n))
    rows, cols = int(header.get("Rows")), int(header.get("Columns"))
    if rows % grid or cols % grid:
        raise ValueError(f"mosaic of {rows}x{cols} cannot hold {n} tiles")
    tile = (rows // grid, cols // grid)
    iop = floats(header.get("ImageOrientationPatient"), 6)
    ipp = floats(header.get("ImagePositionPatient"), 3)
    spacing = floats(header.get("PixelSpacing"), 2)
    if iop is None or ipp is None or spacing is None:
        raise ValueError("mosaic without image geometry")
    row_spacing, col_spacing = spacing
    # The position refers to the tiled image's corner: move it to the
    # corner of one tile (centre the tile in the mosaic).
    shift = (iop[:3] * col_spacing * (cols - tile[1]) / 2
             + iop[3:] * row_spacing * (rows - tile[0]) / 2)
    normal = np.cross(iop[:3], iop[3:])
    # Without a SliceNormalVector dcm2niix takes Siemens' default slice
    # numbering, foot to head.
    csa_normal = np.array([0.0, 0.0, 1.0])
    if csa.get("SliceNormalVector"):
        given = floats([float(v) for v in csa["SliceNormalVector"][:3]], 3)
        csa_normal = given if given is not None else csa_normal
    if np.dot(csa_normal, normal) < 0:
        normal = -normal
    return n, tile, ipp + shift, normal / np.linalg.norm(normal)


def _xa_versions(header):
    """(isXA10A, isSiemensXA) as dcm2niix reads them: XA10-XA31 in
    SoftwareVersions (or 'XA10A' in ImplementationVersionName), and any XA
    software (XA10-XA31, XA5x, XA6x, XA7x)."""
    versions = header.get("SoftwareVersions")
    text = "\\".join(versions) if isinstance(versions, list) else str(versions or "")
    early = "XA10A" in str(header.get("ImplementationVersionName") or "")
    if len(text) > 4:
        early = early or any(v in text for v in _XA10A)
        return early, early or any(v in text for v in _XA_LATER)
    return early, False


def ice_echo(ice):
    """The echo number of an ICE dims string (0021,xx06), read as dcm2niix
    reads it (issue 568): every character but a digit made a space, the
    first number after the first space; None when there is none (or no
    string).

    >>> ice_echo("X_4_1_1_1_1_160_1_1_1_1_1_277"), ice_echo("1_2_1"), ice_echo("X")
    (4, 2, None)
    """
    if not isinstance(ice, str):
        return None
    digits = re.sub(r"[^0-9]", " ", ice)
    space = digits.find(" ")
    match = re.match(r"\s*([0-9]+)", digits[space:]) if space >= 0 else None
    return int(match.group(1)) if match else None


def _echo_from_ice(echo, ice_values):
    """dcm2niix's echo number of a file whose ICE dims strings are
    `ice_values` (one per frame, in file order) and whose EchoNumbers is
    `echo`: each ICE echo replaces the number while it is not above 1."""
    for ice in ice_values:
        if echo is not None and echo > 1:
            break
        found = ice_echo(ice)
        if found is not None:
            echo = found
    return echo


def _csa_diffusion(header):
    """(b-value, LPS direction or None) from the CSA image header's B_value
    and DiffusionGradientDirection, as dcm2niix reads them for any image
    (a negative b-value is 0); (None, None) without a B_value.  The header
    is parsed only when its B_value tag has items (parsing every image's
    CSA header would be slow): the item count follows the tag's 64-byte
    name, its VM, VR and SyngoDT (CSA1 and CSA2 alike)."""
    raw = header.private(0x0029, CSA, 0x10, vr="OB")
    name = raw.find(b"B_value\0") if isinstance(raw, bytes) else -1
    if name < 0 or len(raw) < name + 80 or struct.unpack_from("<i", raw, name + 76)[0] < 1:
        return None, None
    csa = _parse_csa(raw)
    bvalue = number(csa["B_value"][0]) if csa.get("B_value") else None
    if bvalue is None:
        return None, None
    vector = csa.get("DiffusionGradientDirection")
    gradient = None
    if vector and len(vector) > 2:
        gradient = floats([float(v) for v in vector[:3]], 3)
    return max(bvalue, 0.0), gradient


def classic_fields(header, s):
    """Fill a classic Siemens slice's fields: diffusion (private
    (0019,xx0C)/(0019,xx0E), else the CSA header, mosaic or not), the echo
    number from the ICE dims when EchoNumbers is missing or not above 1, XA
    TimeAfterStart, and the XA classic series rule (dcm2niix, issue 394): a
    single-frame XA image is grouped by its SeriesTime instead of its
    series UID and may stack across series numbers, so that series split
    one per volume (MFSPLIT) make one 4-D series, volumes in series number
    order."""
    if s.bvalue is None:
        bvalue = number(header.private(0x0019, MR_HEADER, 0x0C, vr="IS"))
        if bvalue is not None:
            s.bvalue = bvalue
            s.gradient = floats(header.private(0x0019, MR_HEADER, 0x0E, vr="FD"), 3)
        else:
            s.bvalue, s.gradient = _csa_diffusion(header)
    if s.bvalue and (s.gradient is None or not any(s.gradient)):
        s.isotropic = True
    s.echo = _echo_from_ice(s.echo, [header.private(0x0021, SDI, 0x06, vr="LO")])
    s.xa10a, xa = _xa_versions(header)
    if xa:
        s.time_after_start = _milliseconds(header.private(0x0021, SDI, 0x04, vr="DS"))
    if "fldyn3d1" in str(header.get("SequenceName") or ""):
        _dynamic_series(s)
    series_time = str(header.get("SeriesTime") or "")
    if xa and s.file.frames == 1 and len(series_time) > 1:
        s.series_uid = "SeriesTime " + series_time
        s.stackable = True
        if s.instance is not None and s.series_number is not None:
            s.instance += s.series_number * 1000  # as dcm2niix numbers them ('_i2001001')


def _dynamic_series(s):
    """dcm2niix's rule for Siemens dynamic contrast series (sequence
    fldyn3d1, issue 252), one series per time point: merged by protocol
    name across series numbers, but for XA10-XA31, whose time points are
    numbered by acquisition (and which the XA classic rule may merge)."""
    if s.xa10a:
        if s.instance is not None:
            s.instance += (s.acquisition or 0) * 1000
        return
    s.series_uid = "Protocol " + s.protocol
    s.stackable = True
    if s.instance is not None and s.series_number is not None:
        s.instance += s.series_number * 1000


def _milliseconds(seconds):
    value = number(seconds)
    return None if value is None else value * 1000.0


def _private_frames(frames, element, vr):
    """One value per frame of element `element` of "SIEMENS MR SDI 02" in
    each frame's private item (0021,xxFE), the blocks as the first frame
    reserves them; Nones when there is none."""
    first = frames.top.item("PerFrameFunctionalGroupsSequence")
    sequence = first.private_tag(0x0021, SDI, 0xFE) if first is not None else None
    inner = first.item(sequence) if sequence is not None else None
    tag = inner.private_tag(0x0021, SDI, element) if inner is not None else None
    if tag is None:
        return [None] * frames.count
    return frames.get(sequence, tag, vr=vr)


def frame_fields(frames):
    """Per-frame Siemens fields of an enhanced file: the file's echo number
    as dcm2niix reads it (the top level's EchoNumbers, replaced by each
    frame's ICE dims echo in turn while it is not above 1), and XA
    TimeAfterStart (ms) of each frame.

    Parameters
    ----------
    frames : medfast.dicom.slices.FrameFields

    Returns
    -------
    list of dict
    """
    out = [{} for _ in range(frames.count)]
    given = frames.top.get("EchoNumbers")
    given = number(given[0] if isinstance(given, list) else given, int)
    echo = _echo_from_ice(given, _private_frames(frames, 0x06, "LO"))
    if echo != given:
        for fields in out:
            fields["echo"] = echo
    if _xa_versions(frames.top)[1]:
        for fields, seconds in zip(out, _private_frames(frames, 0x04, "DS")):
            fields["time_after_start"] = _milliseconds(seconds)
    return out


def xa_private(header, element, creator="SIEMENS MR SDI 02", shared=False):
    """A Siemens XA (enhanced) private value: per frame, creator 'SIEMENS MR
    SDI 02', or in the shared group, creator 'SIEMENS MR SDS 01' (both in a
    private sequence of the functional group)."""
    groups = header.groups[-1:] if shared else header.groups[:1]
    if shared and len(header.groups) < 2:
        return None
    for group in groups:
        for tag, items in group.sequences():
            if not (tag >> 16) & 1 or not items:
                continue
            try:
                value = items[0].private(0x0021, creator, element)
            except Exception:  # corrupt
                value = None
            if value is not None:
                return value
    return None


def ascconv_protocol(ds):
    """The ASCCONV part of the Siemens CSA series header (0029,xx20) as
    {key: value text}."""
    try:
        raw = ds.private(0x0029, "SIEMENS CSA HEADER", 0x20, vr="OB")
    except Exception:  # corrupt
        return {}
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    text = bytes(raw).decode("latin-1")
    begin = text.find("### ASCCONV BEGIN")
    end = text.find("### ASCCONV END", begin)
    if begin < 0 or end < 0:
        return {}
    return dict(re.findall(r"^([\w.\[\]]+)\s*=\s*(\S+)", text[begin:end], flags=re.MULTILINE))


def protocol_slice_times(header, tiles):
    """Mosaic slice times from the protocol when the CSA image header has no
    MosaicRefAcqTimes: ascending, descending or interleaved excitation over
    TR minus the delay in TR, as dcm2niix computes them."""
    protocol = ascconv_protocol(header.ds)
    try:
        mode = int(protocol.get("sSliceArray.ucMode", ""), 0)
        tr = float(protocol.get("alTR[0]", "")) / 1e6
        delay = float(protocol.get("lDelayTimeInTR", "0")) / 1e6
        n = int(protocol.get("sSliceArray.lSize", ""))
    except ValueError:
        return None
    if int(protocol.get("sSliceAcceleration.lMultiBandFactor", "1") or 1) > 1:
        return None
    if n != max(tiles) + 1 or tr <= delay:
        return None
    if mode == 1:
        order = list(range(n))
    elif mode == 2:
        order = list(range(n - 1, -1, -1))
    elif mode == 4:  # interleaved: odd counts start with the first slice
        first = 0 if n % 2 else 1
        order = list(range(first, n, 2)) + list(range(1 - first, n, 2))
    else:
        return None
    step = (tr - delay) / n
    when = {tile: index * step for index, tile in enumerate(order)}
    return [when[t] for t in tiles]


def mosaic_slice_times(volume, header, tr):
    """Mosaic slice times from the CSA MosaicRefAcqTimes.  The second
    volume's are used when there is one (as dcm2niix does: the first volume
    of a multiband series may carry bogus times), else the first plausible
    volume's."""
    tiles = [s.tile for s in volume.grid[0]]
    candidates = list(range(len(volume.grid)))
    if len(candidates) > 1:
        candidates.insert(0, candidates.pop(1))
    for t in candidates:
        times = volume.grid[t][0].mosaic_times
        if not times or len(times) < max(tiles) + 1:
            continue
        try:
            values = [float(times[k]) / 1000.0 for k in tiles]
        except (TypeError, ValueError):
            continue
        low = min(values)
        values = [v - low for v in values] if low < 0 else values
        if tr and max(values) >= tr:
            continue  # bogus (e.g. the first volume of a multiband series)
        return values
    return protocol_slice_times(header, tiles) if header.manufacturer == "Siemens" else None


def xa_slice_times(volume, tr):
    """Siemens XA slice times from each image's TimeAfterStart (0021,xx04),
    as dcm2niix computes them (its sliceTimingXA and checkSliceTiming):

    * a 4-D series of several files (classic, or one enhanced file per
      volume): the second volume's times (the first may be bogus, issue
      875), from the earliest; none for derived images whose times span
      more than one TR;
    * one enhanced file holding a 3-D volume: the frames' times as stored
      while they end within one TR, else from the earliest when they span
      less than one TR, else none (one enhanced file holding a 4-D series:
      its first volume's, from the earliest);
    * a 3-D series of classic files: none (one time per file, dcm2niix
      writes no SliceTiming);
    * none when the times do not vary.
    """
    grid = volume.grid
    four_d = len(grid) > 1 and len(volume.files) > 1
    if not four_d and volume.first.file.frames == 1:
        return None
    times = [s.time_after_start / 1000.0 for s in grid[1 if four_d else 0]]
    low, high = min(times), max(times)
    if low == high:
        return None
    if four_d:
        if volume.first.derived and not high - low <= (tr or 0):
            return None
        return [t - low for t in times]
    if len(grid) > 1 or (tr is not None and high > tr and high - low <= tr):
        return [t - low for t in times]
    return times if tr is None or high <= tr else None

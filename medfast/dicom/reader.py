"""Open one DICOM file: its header, and later its pixels.

The only module that opens DICOM files.  Headers are parsed by pydicom
(stopping before the pixel data); the position where the pixel data starts
is remembered so that uncompressed pixels are read later with one seek and
one ``np.frombuffer``, without parsing the header a second time.
Compressed transfer syntaxes, bit-packed and colour data go through
pydicom's pixel-data plugins (pylibjpeg, its JPEG/JPEG-LS/JPEG 2000/RLE
decoders).
"""
from dataclasses import dataclass
import gzip
import io
import os

import numpy as np

from . import values
from .fastheader import FastPathUnavailable, read_header_fast

# Transfer syntaxes whose pixel data are stored raw ("native"):
# implicit VR little, explicit VR little, explicit VR big endian.
_NATIVE = {"1.2.840.10008.1.2": "<", "1.2.840.10008.1.2.1": "<",
           "1.2.840.10008.1.2.2": ">"}


class NotDicomError(ValueError):
    """The file is not a DICOM file (it is skipped, never fatal)."""


@dataclass(eq=False)
class DicomFile:
    """One DICOM file's header and where its pixel data start.

    Attributes
    ----------
    path : str
    dataset : pydicom.Dataset
        The header: every element before the pixel data.
    pixel_offset : int or None
        File offset of the Pixel Data element for uncompressed, not gzipped
        files; None when the pixels must be decoded by pydicom.
    """

    path: str
    dataset: object
    pixel_offset: object = None


def _pydicom():
    import pydicom
    return pydicom


def _looks_like_dicom(head):
    """A Part 10 preamble ('DICM' at 128), or a raw data set that starts with
    a group 0x0002 / 0x0008 element (written by old tools without preamble)."""
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[1] == 0 and head[0] in (2, 8)


def _open_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise NotDicomError(f"not a readable gzip file ({exc})") from None
    return data


def read_header(path):
    """Read a DICOM file's header, stopping before the pixel data.

    Parameters
    ----------
    path : str
        A DICOM file, optionally gzipped (``.dcm.gz``).

    Returns
    -------
    DicomFile

    Raises
    ------
    NotDicomError
        When the file is not DICOM, is truncated inside its header or
        cannot be read; the message says which.
    """
    gz = path.lower().endswith(".gz")
    try:
        if gz:
            data = _open_bytes(path)
        else:
            with open(path, "rb") as f:
                data = f.read(132)
                if _looks_like_dicom(data):
                    data += f.read()
    except OSError as exc:
        raise NotDicomError(f"cannot read ({exc.strerror or exc})") from None
    if not _looks_like_dicom(data[:132]):
        raise NotDicomError("not a DICOM file (no 'DICM' marker)")
    try:
        # The Cython element walker: same data set as pydicom's, ~10x faster.
        ds, offset = read_header_fast(data, filename=path)
    except FastPathUnavailable:
        ds, offset = _read_header_pydicom(data, path)
    if gz:
        offset = None
    if "TransferSyntaxUID" not in ds.file_meta:
        # A raw data set without file meta: pydicom guessed the encoding.
        offset = None
    return DicomFile(path, ds, offset)


def _read_header_pydicom(data, path):
    """pydicom's reader: for what the fast path declines (deflate, odd
    encodings, damaged files, whose error pydicom then names)."""
    pydicom = _pydicom()
    fp = io.BytesIO(data)
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=data[128:132] != b"DICM")
    except Exception as exc:  # pydicom raises many kinds on bad bytes
        raise NotDicomError(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None
    ds.filename = path
    return ds, fp.tell()


def transfer_syntax(ds):
    """The transfer syntax UID of a data set read by :func:`read_header`."""
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    return str(uid) if uid is not None else "1.2.840.10008.1.2"


def _native_pixels(dfile):
    """Uncompressed pixels with one read: (frames, rows, cols), stored values."""
    ds = dfile.dataset
    order = _NATIVE[transfer_syntax(ds)]
    bits = values.get(ds, "BitsAllocated")
    signed = values.get(ds, "PixelRepresentation") == 1
    dtype = np.dtype(f"{order}{'i' if signed else 'u'}{bits // 8}")
    rows, cols = values.get(ds, "Rows"), values.get(ds, "Columns")
    frames = int(values.get(ds, "NumberOfFrames") or 1)
    count = rows * cols * frames
    with open(dfile.path, "rb") as f:
        f.seek(dfile.pixel_offset)
        head = f.read(12)
        if head[:4] not in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
            # (Fix: say that a cut file is the likely cause.)
            raise ValueError("no Pixel Data element (missing, or the file is truncated)")
        # Explicit VR OB/OW: tag, VR, 2 reserved bytes, 4-byte length;
        # implicit VR: tag, 4-byte length.
        start = 12 if head[4:6] in (b"OB", b"OW") else 8
        f.seek(dfile.pixel_offset + start)
        data = f.read(count * dtype.itemsize)
    if len(data) < count * dtype.itemsize:
        raise ValueError(f"pixel data truncated ({len(data)} of "
                         f"{count * dtype.itemsize} bytes)")
    # bytearray: a writeable buffer without a second copy.
    array = np.frombuffer(bytearray(data), dtype).reshape(frames, rows, cols)
    if not dtype.isnative:
        array = array.byteswap().view(dtype.newbyteorder("="))
    return _mask_stored_bits(array, values.get(ds, "BitsStored") or bits, bits, signed)


def _mask_stored_bits(array, stored, allocated, signed):
    """Clear the bits above BitsStored (some scanners leave junk there) and
    sign-extend signed values, as pydicom and dcm2niix do."""
    if stored >= allocated:
        return array
    shift = allocated - stored
    if signed:
        array <<= shift
        array >>= shift  # arithmetic shift: sign extension
    else:
        array &= (1 << stored) - 1
    return array


def read_pixels(dfile):
    """Decode a file's pixel data.

    Parameters
    ----------
    dfile : DicomFile

    Returns
    -------
    numpy.ndarray
        Stored values (before rescaling), shape (frames, rows, cols) for
        monochrome data, (frames, rows, cols, samples) for colour data.

    Raises
    ------
    ValueError
        When the pixel data are missing, truncated, or in a transfer syntax
        that no installed decoder handles; the message names the syntax.
    """
    ds = dfile.dataset
    simple = (dfile.pixel_offset is not None and transfer_syntax(ds) in _NATIVE
              and (values.get(ds, "SamplesPerPixel") or 1) == 1
              and values.get(ds, "BitsAllocated") in (8, 16, 32))
    if simple:
        return _native_pixels(dfile)
    pydicom = _pydicom()
    try:
        full = pydicom.dcmread(io.BytesIO(_open_bytes(dfile.path)),
                               force=True)
        if "PixelData" not in full and "FloatPixelData" not in full:
            # (Fix: pydicom drops a compressed Pixel Data element cut short
            # without an error; say that a cut file is the likely cause.)
            raise ValueError("no Pixel Data element (missing, or the file is truncated)")
        array = full.pixel_array
    except ValueError:
        raise
    except Exception as exc:  # decoder plugins raise their own kinds
        name = getattr(transfer_syntax(ds), "name", transfer_syntax(ds))
        raise ValueError(f"cannot decode pixel data ({name}): "
                         f"{type(exc).__name__}: {exc}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    if frames == 1:
        array = array[np.newaxis]
    if samples == 1:
        array = array.reshape(frames, int(ds.Rows), int(ds.Columns))
    if not array.dtype.isnative:
        # Fix: pydicom hands big-endian files that take this path (gzipped
        # .dcm.gz) back as '>u2'/'>i2' arrays; the uncompressed path returns
        # native order, so the image's dtype must not depend on the path.
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def list_files(path):
    """Every file under `path` (recursively, sorted; hidden files skipped),
    or `path` itself when it is a file."""
    if os.path.isfile(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if not f.startswith("."))
    return found

"""Image files by format: :func:`load` and :func:`save` for NIfTI and MGH.

A file is opened once: its first bytes (:func:`open_sniffed`) say whether it
is gzip-compressed and whether it is DICOM, and the same open file is handed
to the format's reader (:mod:`medfast.io.nifti`, :mod:`medfast.io.mgh`), as
nibabel's ``load`` passes its sniff down.  The extension picks the format;
the content decides compression.  :func:`medfast.load` (one layer up, in
:mod:`medfast.loadsave`) adds DICOM files and folders.
"""
import contextlib
import os

from ..image import Image
from . import _gzip, mgh, nifti
from ._atomic import atomic_write
from ._paths import existing_path

__all__ = ["load", "save", "open_sniffed", "is_dicom"]

# Extension -> (format, gzip-compressed).  Longest first.
_FORMATS = ((".nii.gz", "nifti", True), (".nii", "nifti", False),
            (".mgz", "mgh", True), (".mgh", "mgh", False))
_READERS = {"nifti": nifti.read, "mgh": mgh.read}
_WRITERS = {"nifti": nifti.parts, "mgh": mgh.parts}
_SUPPORTED = ".nii, .nii.gz, .mgh and .mgz"
_DICOM_EXTS = (".dcm", ".dicom", ".ima")
_DICOM_HINT = "read DICOM with medfast.load or medfast.load_dicom"
#: Bytes read to recognise a file: gzip's magic, DICOM's preamble + "DICM".
SNIFF_BYTES = 132


def _format(path):
    name = path.lower()
    for ext, fmt, gz in _FORMATS:
        if name.endswith(ext):
            return fmt, gz
    return None, None


def _extension(path):
    base = os.path.basename(path)
    return base[base.find("."):] if "." in base else "no extension"


def _named_dicom(path):
    name = path.lower()
    return name.endswith(_DICOM_EXTS) or name.endswith(tuple(e + ".gz" for e in _DICOM_EXTS))


def is_dicom(path, head):
    """True for a file named like DICOM (``.dcm``, ``.dcm.gz``, ``.ima``...)
    or whose first bytes `head` hold the DICOM Part 10 marker."""
    return _named_dicom(path) or head[128:132] == b"DICM"


@contextlib.contextmanager
def open_sniffed(path):
    """Open the existing file `path` once: yield ``(f, head)``, `head` its
    first :data:`SNIFF_BYTES` bytes, `f` positioned at the start."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        yield f, head


def _unsupported(path, verb, head=b""):
    if _named_dicom(path) or head[128:132] == b"DICM":
        return ValueError(f"{path}: a DICOM file; {_DICOM_HINT}")
    return ValueError(f"{path}: unsupported format ({_extension(path)}); "
                      f"medfast.{verb} handles {_SUPPORTED}")


def read(f, head, path):
    """The NIfTI or MGH image in the open file `f` whose first bytes are
    `head` (see :func:`open_sniffed`); `path` names it in errors."""
    fmt, _ = _format(path)
    if fmt is None or is_dicom(path, head):
        raise _unsupported(path, "load", head)
    return _READERS[fmt](f, path, _gzip.is_gzip(head[:2]))


def load(path):
    """Read a NIfTI-1/2 or MGH image.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``, ``.nii.gz``, ``.mgh`` or ``.mgz`` file.  The content is
        trusted over the name for compression: a gzip stream named ``.nii``
        (or an uncompressed file named ``.nii.gz``) is read all the same.

    Returns
    -------
    Image
        ``array`` has nibabel's semantics, ``np.asanyarray(img.dataobj)``:
        when the header has no scaling (``scl_slope`` 0/NaN/1 and
        ``scl_inter`` 0/NaN) the voxels keep their on-disk dtype (int16
        stays int16); otherwise they are scaled, ``raw * slope + inter``,
        as float64.  For uncompressed files the array is a copy-on-write
        memory map (nothing is read until used); for ``.nii.gz`` it is a
        writeable view of the decompressed buffer (no copy).  The array is indexed
        ``(i, j, k[, t])``: a 2-D file gets a third axis of length 1, and
        trailing axes of length 1 beyond the fourth are dropped.  Colour
        files (NIfTI RGB24, datatype 128, as dcm2niix writes colour DICOM)
        give the structured dtype :data:`medfast.image.RGB24`, one
        ``(R, G, B)`` byte triplet per voxel.
        ``affine`` is nibabel's ``img.affine`` (the sform when its code is
        set, else the qform, else the voxel sizes).  ``meta`` holds the
        header fields (see :mod:`medfast.io.nifti` and its ``NIFTI_FIELDS``)
        that :func:`save` writes back; for MGH files ``meta['mgh']`` holds
        ``tr``, ``flip_angle``, ``te`` and ``ti``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If `path` is a folder or a DICOM file (not supported yet), has an
        unsupported extension, or is corrupt or truncated, or its header
        declares no readable image (the message names the file and what is
        wrong).
    MemoryError
        If the image the header declares cannot fit in the memory available
        (refused before anything is allocated).
    TypeError
        If the voxel type cannot be held by an :class:`Image` (e.g. RGBA).

    Warns
    -----
    UserWarning
        For data after the image the header declares (ignored, as nibabel
        ignores them; of a gzip stream, no more than 1 MiB past the image is
        ever decompressed), and for each header problem nibabel reports
        (e.g. an unknown qform code, set to 0): one warning each, naming
        the file.

    Examples
    --------
    >>> import medfast
    >>> img = medfast.load("t1.nii.gz")                      # doctest: +SKIP
    >>> img.array.dtype, img.meta["nifti"]["pixdim"][4]      # doctest: +SKIP
    (dtype('int16'), 0.0)
    """
    path = existing_path(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; {_DICOM_HINT}")
    with open_sniffed(path) as (f, head):
        return read(f, head, path)


def save(img, path):
    """Write an image as NIfTI (``.nii``, ``.nii.gz``) or MGH (``.mgh``, ``.mgz``).

    Parameters
    ----------
    img : Image
        The image.  Header fields come from ``img.meta`` (as :func:`load`
        fills it; all optional): ``qform_code``/``sform_code`` (default 1,
        'scanner'), ``meta["nifti"]`` (:data:`medfast.io.nifti.NIFTI_FIELDS`) or
        ``meta['mgh']``.  An :data:`medfast.image.RGB24` array is written
        as NIfTI RGB24 (datatype 128, unscaled).
    path : str or os.PathLike
        The file to write; its extension picks the format.  ``.nii.gz`` and
        ``.mgz`` are a standard gzip stream (level 1, ISA-L igzip when
        installed, two threads from 32 MiB of data).

    Notes
    -----
    * **Scaling.**  When ``meta['nifti']`` has a slope/intercept other than
      1/0 (the array was scaled on load), the voxels are stored as
      ``(array - inter) / slope`` in ``on_disk_dtype`` with that slope and
      intercept, **only if** that reproduces the array exactly on reading;
      otherwise (the values changed, e.g. after resampling) the array is
      stored as it is, unscaled, so no precision is lost.
    * **Geometry.**  If ``img.affine`` is the affine the stored header
      fields give, those fields are written back unchanged; otherwise sform
      and qform are both set from ``img.affine`` (a qform cannot hold shears:
      nibabel drops them there; the sform keeps the exact float32 affine).
    * **Atomic.**  The data go to a temporary file in the same folder that
      replaces `path` once complete: an error or interruption part-way
      leaves `path` as it was and no temporary file.  (No fsync: a power
      cut may still lose the new file.)

    Raises
    ------
    TypeError
        If `img` is not an :class:`Image`, or its dtype cannot be stored in
        the format (NIfTI: bool, float16; MGH: only uint8, int16, int32 and
        float32).
    ValueError
        If the extension is not supported, or a text field of
        ``meta['nifti']`` is longer than the header holds.
    FileNotFoundError
        If the folder of `path` does not exist.
    """
    if not isinstance(img, Image):
        raise TypeError(f"img must be a medfast.Image, got {type(img).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    fmt, gz = _format(path)
    if fmt is None:
        raise _unsupported(path, "save")
    parts = _WRITERS[fmt](img)
    with atomic_write(path) as f:
        if not gz:
            for part in parts:
                f.write(part)
            return
        _gzip.write(f, parts)

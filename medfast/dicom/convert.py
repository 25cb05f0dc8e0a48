"""DICOM -> NIfTI conversion, dcm2niix style: :func:`convert`.

Every volume found under a folder (as :func:`medfast.load_dicom_all` finds
them) becomes one NIfTI file, with a BIDS JSON sidecar and, for diffusion
series, ``.bval``/``.bvec`` files.  File names follow dcm2niix's ``-f``
patterns and its rules for unsafe characters and name collisions; nothing
is ever written outside the output folder.  Nothing is left out silently:
the result lists every input file not used and every volume not written,
with the reason (the library prints nothing; ``medfast convert`` does).
"""
from dataclasses import dataclass
import json
import os
import re
import string
import unicodedata

from ..image import Image
from ..io import save
from ..io.nifti import fields_from_meta
from ..io._atomic import claim, sweep
from .annotations import SUFFIX, find_annotations
from .load import _check_suv, _no_volume_error, image_and_sidecar
from .pixels import PixelDataError
from .scan import Skipped, _dropped_files, volume_name, volumes
from .series import without_files
from .diffusion import diffusion_table
from .sidecar import anonymize as _drop_identifying
from .values import text_of
from .volume_header import VolumeHeader

__all__ = ["convert", "ConvertResult", "Output", "Failure", "Kept", "PLACEHOLDERS",
           "EXISTING", "output_stem", "check_pattern"]

#: The ``-f`` placeholders :func:`convert` understands, as in dcm2niix.
PLACEHOLDERS = {
    "a": "receive coil name",
    "b": "name of the first DICOM file, without extension",
    "c": "image comments",
    "d": "series description",
    "e": "echo number",
    "f": "name of the input folder",
    "g": "accession number",
    "i": "patient ID",
    "j": "series instance UID",
    "k": "study instance UID",
    "l": "procedure step description",
    "m": "manufacturer, short (Ca, GE, Ph, Si, To, UI, Br; NA if unknown)",
    "n": "patient name",
    "o": "SOP instance UID of the first file",
    "p": "protocol name (the series description when it is empty, as dcm2niix)",
    "q": "scanning sequence",
    "r": "instance number of the first file (%3r: zero-padded)",
    "s": "series number (%3s: zero-padded to 3 digits)",
    "t": "study date and time, YYYYMMDDhhmmss",
    "u": "acquisition number",
    "v": "vendor (Canon, GE, Philips, Siemens, Toshiba, UIH, Bruker; NA if unknown)",
    "x": "study ID",
    "z": "sequence name",
}
_SHORT_VENDOR = {"Bruker": "Br", "GE": "GE", "Toshiba": "To", "Canon": "Ca", "UIH": "UI",
                 "Philips": "Ph", "Siemens": "Si"}
# Characters dcm2niix replaces by '_' in file names (besides control
# characters); medfast also replaces characters outside ASCII that have no
# ASCII form, so that names are portable.
_UNSAFE = set('\\/ <>:;"*|?')
# Header values are cut to this length in names, as dcm2niix reads them.
_MAX_FIELD = 64
# Longest name stem: leaves room for a collision letter, '.nii.gz', the
# claim's lock file name ('.NAME.medfast-lock') and the atomic writer's
# temporary name within 255 bytes.
_MAX_STEM = 230
_EXTENSIONS = (".nii", ".nii.gz", ".json", ".bval", ".bvec")
_COMPANIONS = (".json", ".bval", ".bvec")
_LETTERS = [""] + list(string.ascii_lowercase)
_FALLBACK = "unnamed"

#: What :func:`convert` does with an output name already taken, and
#: dcm2niix's ``-w`` value for it.
EXISTING = {"skip": 0, "overwrite": 1, "suffix": 2}


@dataclass(frozen=True)
class Output:
    """The files written for one volume, and what was found and handled
    while assembling it (``problems``: missing slices, non-uniform
    spacing, gantry tilt...)."""

    nifti: str
    sidecar: object  # str or None
    bval: object
    bvec: object
    series: str
    shape: tuple
    problems: tuple = ()

    @property
    def files(self):
        """Every file of this volume."""
        return [p for p in (self.nifti, self.sidecar, self.bval, self.bvec) if p]


@dataclass(frozen=True)
class Failure:
    """A volume that was not converted, and why."""

    series: str
    reason: str

    def __str__(self):
        return f"series {self.series}: {self.reason}"


@dataclass(frozen=True)
class Kept:
    """A volume not written because its complete output was already there
    (``existing='skip'``)."""

    series: str
    nifti: str

    def __str__(self):
        return f"{self.nifti}: series {self.series}: already converted"


class ConvertResult(list):
    """The NIfTI files written (a list of paths, one per volume), plus:

    Attributes
    ----------
    outputs : list of Output
        Every file written, volume by volume.
    failed : list of Failure
        Volumes found but not written (undecodable pixels in every file, an
        unwritable name...); nothing of them was left on disk.
    skipped : list of medfast.dicom.Skipped
        Input files not used, each with the reason and its ``kind``:
        ``'skipped'`` (not DICOM, unreadable, truncated, no image, a
        dangling link), ``'duplicate'`` (a copy of an image read from
        another file, converted once) or ``'dropped'`` (images a volume
        left out: an incomplete 4-D series, a file whose pixel data could
        not be read).
    kept : list of Kept
        Volumes not written because their complete output already existed
        (``existing='skip'``: an earlier run, or another run at the same
        time, wrote them).
    """

    def __init__(self, outputs, failed, skipped, kept=()):
        super().__init__(o.nifti for o in outputs)
        self.outputs = list(outputs)
        self.failed = list(failed)
        self.skipped = list(skipped)
        self.kept = list(kept)

    @property
    def files(self):
        """Every file written (NIfTI, JSON, bval, bvec)."""
        return [p for o in self.outputs for p in o.files]

    @property
    def ok(self):
        """True when every image found was converted: no volume failed, no
        file was skipped or dropped (duplicates do not count: their images
        were converted from the first copy)."""
        return not self.failed and all(s.kind == "duplicate" for s in self.skipped)


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------
def sanitize(text):
    """A header value or name part made safe as one file-name component.

    dcm2niix's rules: ``\\ / space < > : ; " * | ?`` and control characters
    become ``_``, runs of ``_`` collapse to one, a leading ``.`` becomes
    ``_`` (no hidden files, no ``..``); accented letters lose their accent,
    other non-ASCII characters become ``_``.
    """
    out = []
    for ch in unicodedata.normalize("NFKD", str(text)):
        if unicodedata.combining(ch):
            continue
        code = ord(ch)
        out.append("_" if code < 32 or code >= 127 or ch in _UNSAFE else ch)
    name = re.sub("_+", "_", "".join(out))
    if name.startswith("."):
        name = "_" + name[1:]
    return re.sub("_+", "_", name)


def check_pattern(pattern):
    """Check a ``-f`` name pattern (see :func:`convert`) without converting.

    Raises
    ------
    TypeError
        If `pattern` is not a str.
    ValueError
        If it is empty, absolute, holds ``.``/``..`` or an unknown
        placeholder; the message says which.
    """
    _parse_pattern(pattern)


def _parse_pattern(pattern):
    """Split a pattern into folder components of (literal or placeholder)
    tokens; raise ValueError for what cannot be a file name."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
    if not pattern.strip():
        raise ValueError("pattern is empty")
    if pattern.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", pattern):
        raise ValueError(f"pattern {pattern!r} is an absolute path; give a name relative "
                         "to the output folder")
    components = []
    for part in re.split(r"[/\\]", pattern):
        if part in ("", ".", ".."):
            raise ValueError(f"pattern {pattern!r}: folder component {part!r} is not "
                             "allowed (empty, '.' or '..')")
        tokens, i = [], 0
        while i < len(part):
            if part[i] != "%":
                j = part.find("%", i)
                j = len(part) if j < 0 else j
                tokens.append(("text", part[i:j]))
                i = j
                continue
            m = re.match(r"%(\d?)([A-Za-z%])", part[i:])
            if m is None:
                raise ValueError(f"pattern {pattern!r}: '%' at the end, or followed by "
                                 f"{part[i + 1:i + 2]!r}; use %% for a literal %")
            digits, key = m.group(1), m.group(2).lower()
            if key == "%":
                tokens.append(("text", "%"))
            elif digits and key not in ("s", "r"):
                raise ValueError(f"pattern {pattern!r}: zero padding (%{digits}{key}) is "
                                 "only for %s and %r")
            elif key not in PLACEHOLDERS:
                raise ValueError(
                    f"pattern {pattern!r}: unknown placeholder %{m.group(2)}; known: "
                    + ", ".join("%" + k for k in PLACEHOLDERS))
            else:
                tokens.append(("field", key, int(digits) if digits else 0))
            i += len(m.group(0))
        components.append(tokens)
    return components


def _folder_name(src):
    path = os.path.realpath(src)
    if not os.path.isdir(path):
        path = os.path.dirname(path)
    return os.path.basename(path.rstrip(os.sep)) or path


def _fields(volume, src):
    """Placeholder letter -> text, from the volume's first file."""
    header = VolumeHeader(volume.first)
    ds = header.ds

    def text(keyword):
        return text_of(header.get(keyword)) or ""

    def number(keyword):
        value = header.get(keyword)
        try:
            return str(int(float(str(value)))) if value not in (None, "") else ""
        except ValueError:
            return ""

    vendor = header.manufacturer or ""
    date, time_ = text("StudyDate"), text("StudyTime")
    try:
        stamp = f"{float(date) * 1e6 + float(time_ or 0):.0f}" if date else ""
    except ValueError:
        stamp = ""
    echo = header.slice.echo
    base = os.path.basename(volume.first.file.path)
    for ext in (".gz", ".dcm", ".ima", ".dicom"):
        if base.lower().endswith(ext):
            base = base[:-len(ext)]
    values = {
        "a": text("ReceiveCoilName"),
        "b": base,
        "c": text("ImageComments"),
        "d": text("SeriesDescription"),
        "e": str(echo or 0),  # dcm2niix: 0 without an echo number
        "f": _folder_name(src),
        "g": text("AccessionNumber"),
        "i": text("PatientID"),
        "j": text("SeriesInstanceUID"),
        "k": text("StudyInstanceUID"),
        "l": text("PerformedProcedureStepDescription"),
        "m": _SHORT_VENDOR.get(vendor, "NA"),
        "n": text("PatientName"),
        "o": str(ds.get("SOPInstanceUID") or ""),
        "p": text("ProtocolName") or text("SeriesDescription"),  # as dcm2niix
        "q": text("ScanningSequence"),
        "r": number("InstanceNumber"),
        "s": str(volume.series_number) if volume.series_number is not None else "",
        "t": stamp,
        "u": number("AcquisitionNumber"),
        "v": vendor if vendor in _SHORT_VENDOR else "NA",
        "x": text("StudyID"),
        "z": text("SequenceName"),
    }
    return {key: value[:_MAX_FIELD] for key, value in values.items()}


def output_stem(volume, pattern="%p_%s", src=""):
    """The output name of a volume, relative to the output folder, without
    extension (and before any collision letter).

    Parameters
    ----------
    volume : medfast.dicom.series.Volume
    pattern : str
        dcm2niix ``-f`` pattern (:data:`PLACEHOLDERS`); ``/`` separates
        sub-folders.
    src : str
        The input path (for ``%f``).

    Returns
    -------
    list of str
        The folder components and, last, the file name stem: each one
        sanitised (:func:`sanitize`; header values cut to 64 characters as
        dcm2niix does), at most 230 characters, never empty,
        ``.`` or ``..``.  The volume's split suffix (``_e2``, ``_ph``,
        ``_fieldmaphz``...) ends the stem; ``_eN`` is left out when the
        pattern holds ``%e``.
    """
    components = _parse_pattern(pattern)
    fields = _fields(volume, src)
    suffix = volume.suffix or ""
    if any(t[0] == "field" and t[1] == "e" for c in components for t in c):
        suffix = re.sub(r"_e\d+(?:\.\d+)?", "", suffix)
    out = []
    for index, tokens in enumerate(components):
        parts = []
        for token in tokens:
            if token[0] == "text":
                parts.append(token[1])
                continue
            value = fields[token[1]]
            if token[2] and value.isdigit():
                value = value.zfill(token[2])
            parts.append(value)
        last = index == len(components) - 1
        name = sanitize("".join(parts) + (suffix if last else ""))
        if name.strip("_") == "":
            name = sanitize(_FALLBACK + "_" + volume_name(volume)) if last else _FALLBACK
        if len(name) > _MAX_STEM:
            keep = sanitize(suffix) if last else ""
            name = name[:_MAX_STEM - len(keep)] + keep
        out.append(name)
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _inside(path, root):
    return os.path.commonpath([os.path.realpath(path), root]) == root


def _make_folders(root, components, created):
    """Create the sub-folders of a name below `root` (appending the new ones
    to `created`); refuse any that resolves outside it (e.g. through a
    symbolic link)."""
    folder = root
    for part in components:
        folder = os.path.join(folder, part)
        try:  # mkdir follows no link; another run may make the folder too
            os.mkdir(folder)
            created.append(folder)
        except FileExistsError:
            pass
        if not os.path.isdir(folder):
            raise ValueError(f"{folder} exists and is not a folder")
        if not _inside(folder, root):
            raise ValueError(f"{folder} leads outside the output folder {root}")
    return folder


def _remove_empty(folders):
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _next_name(folder, stem, reserved):
    """folder/stem, or with dcm2niix's 'a'..'z' suffix when that name was
    given to another volume of this run."""
    for letter in _LETTERS:
        base = os.path.join(folder, stem + letter)
        if base not in reserved:
            return base
    raise ValueError(f"too many volumes named {stem}* in {folder} (a to z taken)")


def _claim_free_name(folder, stem, reserved):
    """A claim on folder/stem or the first of stem + 'a'..'z' that no file
    (any extension), no other volume of this run and no other process
    writing at the same time has."""
    for letter in _LETTERS:
        base = os.path.join(folder, stem + letter)
        if base in reserved:
            continue
        held = claim(base)
        if held is None:  # another run is writing this name
            continue
        if any(os.path.lexists(base + ext) for ext in _EXTENSIONS):
            held.release()
            continue
        return held
    raise ValueError(f"too many files named {stem}* in {folder} (a to z taken)")


def _complete(base, extension, sidecar, diffusion):
    """Whether every file a volume would be written as exists."""
    wanted = ([extension] + ([".json"] if sidecar else [])
              + ([".bval", ".bvec"] if diffusion else []))
    return all(os.path.isfile(base + ext) for ext in wanted)


def _write_text(path, text):
    with open(path, "xb") as f:  # in a claim's private work folder
        f.write(text.encode("utf-8"))


def _numbers(values):
    return " ".join(f"{float(v):g}" for v in values) + "\n"


def _place(work, base, extensions):
    """Move a volume's files from the work folder to `base` + extension so
    that the volume appears as a unit.

    The NIfTI file of that name (if any: an incomplete or replaced output)
    goes first and the new one comes last, so that a NIfTI file present
    always has its own sidecar and bval/bvec; companions of the replaced
    output that the new volume does not have are removed.  An interruption
    part-way leaves the volume absent (at most companions without their
    NIfTI, which the next run replaces).
    """
    name = os.path.basename(base)
    nifti = extensions[0]
    if os.path.lexists(base + nifti):
        os.unlink(base + nifti)
    placed = []
    try:
        for ext in _COMPANIONS:
            if ext in extensions:
                os.replace(os.path.join(work, name + ext), base + ext)
                placed.append(base + ext)
            elif os.path.lexists(base + ext) and not os.path.isdir(base + ext):
                os.unlink(base + ext)
        os.replace(os.path.join(work, name + nifti), base + nifti)
    except BaseException:
        for path in placed:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise


def _write_volume(img, fields, volume, held, compress, sidecar, anonymize):
    """Write one volume's files under the name `held` claims: first in the
    claim's work folder, then moved into place (:func:`_place`).  On any
    error nothing of the volume is left (the work folder goes with the
    claim)."""
    base = held.base
    work = held.workspace()
    name = os.path.basename(base)
    extensions = [".nii.gz" if compress else ".nii"]
    meta = dict(img.meta)
    meta["nifti"] = fields_from_meta(img.meta, img.ndim)
    save(Image(img.array, img.affine, meta), os.path.join(work, name + extensions[0]))
    if sidecar:
        fields = dict(fields)
        if anonymize:
            fields = _drop_identifying(fields)
        from .. import __version__
        fields["ConversionSoftware"] = "medfast"
        fields["ConversionSoftwareVersion"] = __version__
        _write_text(os.path.join(work, name + ".json"),
                    json.dumps(fields, indent="\t", allow_nan=False) + "\n")
        extensions.append(".json")
    if "bvals" in img.meta and "bvecs" in img.meta:
        _write_text(os.path.join(work, name + ".bval"), _numbers(img.meta["bvals"]))
        columns = list(zip(*img.meta["bvecs"]))
        _write_text(os.path.join(work, name + ".bvec"), "".join(_numbers(c) for c in columns))
        extensions += [".bval", ".bvec"]
    _place(work, base, extensions)
    path = {ext: base + ext for ext in extensions}
    return Output(path[extensions[0]], path.get(".json"), path.get(".bval"), path.get(".bvec"),
                  volume_name(volume), tuple(img.shape), tuple(volume.problems))


def _write_annotation(note, image_of, base, series, suffix, compress, existing):
    """Write one SEG/RTSTRUCT beside its image (`base`: the image's name
    without extension; `image_of()` gives the image) as ``base + suffix``:
    a label map NIfTI on the image's grid (one channel per label when
    labels overlap) and a JSON of the label names.  Returns an
    :class:`Output`, or a :class:`Kept` when it is there already
    (``existing='skip'``)."""
    extension = ".nii.gz" if compress else ".nii"
    target = base + suffix
    with claim(target, wait=True) as held:
        if existing == "skip" and _complete(target, extension, True, False):
            return Kept(series + suffix, target + extension)
        labels = note.load(image_of())
        work = held.workspace()
        name = os.path.basename(target)
        save(Image(labels.array, labels.affine, {"nifti": {"xyzt_units": 10}}),
             os.path.join(work, name + extension))
        fields = {"Modality": note.modality, "AnnotationOf": os.path.basename(base) + extension,
                  "Labels": {str(n): label for n, label in labels.meta["labels"].items()}}
        if labels.array.ndim == 4:
            fields["Channels"] = list(labels.meta.get("channels") or labels.meta["labels"])
        if labels.meta.get("problems"):
            fields["Problems"] = list(labels.meta["problems"])
        _write_text(os.path.join(work, name + ".json"),
                    json.dumps(fields, indent="\t", allow_nan=False) + "\n")
        _place(work, target, [extension, ".json"])
    return Output(target + extension, target + ".json", None, None, series + suffix,
                  tuple(labels.shape), tuple(labels.meta.get("problems") or ()))


def _annotation_suffixes(notes):
    """Output suffixes of one volume's annotations: '_seg', '_seg2', ...,
    '_rtstruct', ... in file order."""
    count, out = {}, []
    for note in notes:
        count[note.modality] = count.get(note.modality, 0) + 1
        number = count[note.modality]
        out.append(SUFFIX[note.modality] + (str(number) if number > 1 else ""))
    return out


def _readable(volume, suv=None):
    """The image and sidecar fields of a volume, leaving out the files whose
    pixel data cannot be read (the volume is assembled again without them).

    Returns
    -------
    image, fields, volume (as converted), list of Skipped (files left out)
    """
    lost = []
    while True:
        try:
            img, fields = image_and_sidecar(volume, suv=suv)
            return img, fields, volume, lost
        except PixelDataError as exc:
            if exc.path not in volume.files:
                raise
            try:
                volume = without_files(volume, {exc.path})
            except ValueError:
                if lost:
                    raise PixelDataError(exc.path, f"{exc.reason} (and {len(lost)} other "
                                         "file(s) of the series)") from None
                raise exc from None
            lost.append(Skipped(exc.path, exc.reason))


def convert(src, dst, pattern="%p_%s", compress=True, sidecar=True, anonymize=True,
            existing="skip", annotations=False, suv=None, progress=None):
    """Convert every DICOM volume under a folder to NIfTI, as dcm2niix does.

    Parameters
    ----------
    src : str or os.PathLike
        A folder (searched recursively) or one DICOM file.
    dst : str or os.PathLike
        Output folder; created if missing.  Nothing is written outside it.
    pattern : str, optional
        Output name, dcm2niix's ``-f`` pattern (default ``'%p_%s'``:
        protocol name and series number); see :data:`PLACEHOLDERS`.  ``/``
        in the pattern makes sub-folders (``'%n/%p_%s'``); ``/`` and other
        unsafe characters in header values never do (see :func:`sanitize`).
        Volumes split from one series get dcm2niix's suffixes (``_e2``,
        ``_ph``, ``_fieldmaphz``...).  Volumes of one run that get the
        same name get ``a``, ``b``, ... appended.
    compress : bool, optional
        ``.nii.gz`` (default) or ``.nii``.
    sidecar : bool, optional
        Write the BIDS JSON sidecar (``name.json``, see
        :func:`medfast.dicom.sidecar.bids_sidecar`).
    anonymize : bool, optional
        Leave identifying fields out of the sidecar
        (:data:`medfast.dicom.sidecar.IDENTIFYING_FIELDS`: patient name, ID,
        birth date, sex, weight, referring physician, accession number,
        study ID, UIDs, acquisition date), as dcm2niix's default ``-ba y``
        does.  ``%n``/``%i`` in `pattern` still use them (see Notes).
    existing : {'skip', 'overwrite', 'suffix'}, optional
        An output name already taken, as dcm2niix's ``-w 0|1|2``:
        ``'skip'`` (default) keeps a complete output (NIfTI with its
        sidecar and bval/bvec) and writes nothing for that volume (listed
        in ``.kept``), so that running a conversion again completes it;
        an incomplete one (left by an interrupted run) is replaced.
        ``'overwrite'`` replaces it.  ``'suffix'`` never touches an
        existing file: the volume gets the first of ``a``, ``b``, ...
        whose name is free.
    annotations : bool, optional
        Also write each SEG and RTSTRUCT beside the volume it annotates:
        ``NAME_seg`` / ``NAME_rtstruct`` (``_seg2``... for more), a label
        map NIfTI on the volume's grid (4-D, one channel per label, when
        labels overlap) and a JSON naming the labels (``Labels``: number ->
        name).  One whose series is not found is listed in ``.skipped``.
    suv : {None, 'bw'}, optional
        ``'bw'``: PET volumes in body-weight SUV, as :func:`medfast.load_dicom`
        gives them, with ``Units`` and the factor in the sidecar; other
        modalities are written as they are.
    progress : callable, optional
        Called as ``progress('scan', files_read, files_found)`` after each
        file's header and ``progress('convert', volumes_done,
        volumes_found)`` after each volume (written, kept or failed): what
        a progress bar needs.  The library prints nothing itself.

    Returns
    -------
    ConvertResult
        A list of the NIfTI files written (one per volume), with
        ``.outputs`` (all files, volume by volume: the sidecar and, for
        diffusion series, ``.bval``/``.bvec`` in FSL's convention),
        ``.failed`` (volumes that could not be converted, with the reason),
        ``.skipped`` (input files not used, with the reason: skipped,
        duplicate or dropped, see :class:`ConvertResult`) and ``.ok``
        (everything found was converted).

    Raises
    ------
    FileNotFoundError
        If `src` does not exist.
    ValueError
        If `src` holds no DICOM volume (nothing is written, `dst` is not
        created), if no volume could be converted (or was already), or if
        `pattern` or `existing` is not valid.

    Notes
    -----
    **Interruptions.**  A volume's files are written in a private work
    folder next to its name (``.NAME.medfast-tmp``), then moved into place,
    the NIfTI file last: killed at any moment, the conversion leaves each
    volume complete or absent (a NIfTI file present always has its
    companions; companions without their NIfTI file can be left, and are
    replaced by the next run).  A volume that fails (an error while
    writing) leaves none of its files behind; the other volumes are still
    converted and the failure is listed in ``.failed``.  What a killed run
    left (work folders, lock files) is removed by the next run writing to
    the same folder.  No fsync: a power cut may still lose recent files.

    **Concurrent runs** into one folder (other processes, other threads)
    never write the same name: each name is claimed (an ``flock`` on
    ``.NAME.medfast-lock``, dropped by the system when its process ends)
    before it is written.  With ``'skip'`` and ``'overwrite'`` a run waits
    while another one writes a name it needs; with ``'suffix'`` it takes
    the next letter.  Each run lists exactly the files it wrote.

    **Privacy.**  With ``anonymize=True`` no written file holds the
    patient's name, ID, birth date or address, the referring physician or
    the accession number (the NIfTI header holds no text from the DICOM
    files; the sidecar leaves out :data:`.sidecar.IDENTIFYING_FIELDS`)
    unless `pattern` asks for them: ``%n`` (name), ``%i`` (ID), and
    ``%f``/``%b`` (folder and file names, which some exports build from
    them).  Kept, as dcm2niix does: the institution's name, department
    and address, the station name and device serial number (they identify
    the scanner, not the patient), the time of day of the acquisition, and
    free text as the scanner wrote it (descriptions, protocol name, image
    comments).

    A file whose pixel data turn out unreadable (cut short, corrupt) is left
    out and listed in ``.skipped``; its volume is written without it, as if
    its header were unreadable: a 3-D volume with a gap (its ``problems``
    say so), a 4-D series without the time points that lose an image (their
    other files listed as dropped).  dcm2niix writes nothing of such a
    series.  Uncompressed files cut short are found by the scan already.

    Examples
    --------
    >>> result = medfast.convert("exam/", "nifti/")  # doctest: +SKIP
    >>> result.failed                                 # doctest: +SKIP
    []
    """
    check_pattern(pattern)  # a bad pattern fails before anything is read
    _check_suv(suv)
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(map(repr, EXISTING))}, "
                         f"got {existing!r}")
    src = os.fspath(src)
    dst = os.fspath(dst)
    found, skipped = volumes(src, progress=progress)
    if not found:
        raise _no_volume_error(src, skipped)
    notes_of = {}
    if annotations:
        notes, skipped = find_annotations(skipped, found, volume_name)
        for note in notes:
            if note.series is None:
                skipped.append(Skipped(note.path, f"{note.modality} of a series not found "
                                       f"({', '.join(note.referenced_series) or 'no reference'})"))
            else:
                notes_of.setdefault(note.series, []).append(note)
    if os.path.lexists(dst) and not os.path.isdir(dst):
        raise ValueError(f"{dst}: exists and is not a folder")
    created = []  # folders made here, removed again if nothing is converted
    missing, folder = [], os.path.abspath(dst)
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(dst, exist_ok=True)
    created.extend(reversed(missing))
    root = os.path.realpath(dst)
    extension = ".nii.gz" if compress else ".nii"
    outputs, failed, kept, reserved, swept = [], [], [], set(), set()
    for volume in found:
        name = volume_name(volume)
        try:
            *folders, stem = output_stem(volume, pattern, src)
            folder = _make_folders(root, folders, created)
            if folder not in swept:  # what killed runs left here
                sweep(folder)
                swept.add(folder)
            lost, base = [], None
            if existing != "suffix":
                # The name depends on this run's volumes only, not on the
                # folder, so that a run repeated finds the names it wrote.
                base = _next_name(folder, stem, reserved)
                reserved.add(base)
            img = None
            if (existing == "skip" and os.path.isfile(base + extension)
                    and _complete(base, extension, sidecar, diffusion_table(volume) is not None)):
                kept.append(Kept(name, base + extension))  # the pixels are not even read
            else:
                img, fields, volume, lost = _readable(
                    volume, suv if volume.first.modality == "PT" else None)
                held = (claim(base, wait=True) if base is not None
                        else _claim_free_name(folder, stem, reserved))
                with held:
                    if not _inside(os.path.dirname(held.base), root):
                        raise ValueError(f"{held.base} leads outside the output folder {root}")
                    reserved.add(held.base)
                    diffusion = "bvals" in img.meta and "bvecs" in img.meta
                    if existing == "skip" and _complete(held.base, extension, sidecar, diffusion):
                        kept.append(Kept(name, held.base + extension))  # another run wrote it
                    else:
                        outputs.append(_write_volume(img, fields, volume, held, compress,
                                                     sidecar, anonymize))
                    base = held.base
            def image_of(volume=volume, img=img):  # a kept volume is read only if needed
                return img if img is not None else image_and_sidecar(volume)[0]

            notes = notes_of.get(name, [])
            for note, suffix in zip(notes, _annotation_suffixes(notes)):
                try:
                    done = _write_annotation(note, image_of, base, name, suffix, compress,
                                             existing)
                    (kept if isinstance(done, Kept) else outputs).append(done)
                except Exception as exc:  # the volume itself was written
                    failed.append(Failure(name + suffix, f"{note.path}: "
                                          + (" ".join(str(exc).split()) or type(exc).__name__)))
            reported = {s.path for s in skipped}
            skipped.extend(lost)
            skipped.extend(s for s in _dropped_files([volume]) if s.path not in reported)
        except Exception as exc:  # one bad volume must not stop the others
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if not isinstance(exc, (ValueError, OSError)):
                reason = f"{type(exc).__name__}: {reason}"
            failed.append(Failure(name, reason))
        if progress is not None:
            progress("convert", len(outputs) + len(kept) + len(failed), len(found))
    if not outputs and not kept:
        _remove_empty(created)
        raise ValueError(f"{src}: no volume could be converted ("
                         + "; ".join(str(f) for f in failed[:3])
                         + ("; ..." if len(failed) > 3 else "") + ")")
    return ConvertResult(outputs, failed, skipped, kept)

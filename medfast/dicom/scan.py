"""Scan a folder: read every file's header once, keep the images, report
the rest, and summarise the series found (:func:`scan_dicom`).

Files are found recursively, following symbolic links to files and folders;
each real folder and file is read once, whatever the links leading to it
(no loop, no file counted twice).  Files are read ahead by threads that
hold no GIL while this thread parses their headers.  The same image
found in several files (equal SOPInstanceUID: a backup copy, a ``.dcm``
beside its ``.dcm.gz``) is used once; the other copies are reported as
duplicates.  Nothing is left out silently: every file not used (not DICOM,
unreadable, truncated, no image, a duplicate, a dangling link) and every
image a volume had to leave out is a :class:`Skipped` entry with the reason.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import os

import numpy as np

from .._threads import resolve_threads
from ..orientation import aff2axcodes
from .annotations import find_annotations
from .header import NotDicomError, read_header, read_heads
from .series import assemble
from .slices import AnnotationObject, NotAVolume, file_slices

_CHUNK = 64  # files per thread task: enough to amortise the scheduling


@dataclass(frozen=True)
class Skipped:
    """An input file (or some of its images) not used, and why.

    Attributes
    ----------
    path : str
    reason : str
    kind : str
        ``'skipped'``: the file holds nothing usable (not DICOM, unreadable,
        truncated, no image, a dangling link); ``'duplicate'``: its images
        are copies of images read from another file (same SOPInstanceUID),
        used once; ``'dropped'``: its images were read but a volume had to
        leave them out (an incomplete 4-D series, no position among placed
        slices).
    annotation : str
        'SEG' or 'RTSTRUCT' for an annotation object (labels for a series:
        :func:`scan_dicom` lists it in ``.annotations``, ``convert(...,
        annotations=True)`` writes it), else ''.
    """

    path: str
    reason: str
    kind: str = "skipped"
    annotation: str = ""   # 'SEG' or 'RTSTRUCT': labels for a series (see scan_dicom)

    def __str__(self):
        return f"{self.path}: {self.reason}"


class ScanResult(list):
    """A list of :class:`SeriesInfo`, plus the files not used.

    Attributes
    ----------
    skipped : list of Skipped
        Files not used, each with the reason and its ``kind``: not DICOM,
        unreadable, truncated, no image (``'skipped'``), a copy of an image
        already found (``'duplicate'``), or images a volume had to leave out
        (``'dropped'``: an incomplete 4-D series, no position among placed
        slices).
    annotations : list of medfast.dicom.annotations.AnnotationInfo
        SEG and RTSTRUCT files, each with the series it references and the
        name of the volume of that series (None when it is not there).
    """

    def __init__(self, series, skipped, annotations=()):
        super().__init__(series)
        self.skipped = list(skipped)
        self.annotations = list(annotations)


@dataclass(frozen=True)
class SeriesInfo:
    """Summary of one volume found by :func:`scan_dicom`.

    A DICOM series that cannot form one volume (e.g. two echoes, magnitude
    and phase) is reported as several, told apart by ``name``.
    """

    name: str
    series_uid: str
    series_number: object
    description: str
    protocol: str
    modality: str
    manufacturer: str
    n_files: int
    shape: tuple
    spacing: tuple
    orientation: str
    is_4d: bool
    problems: tuple = field(default=())

    def __str__(self):
        shape = "x".join(str(n) for n in self.shape)
        spacing = "x".join(f"{v:.3g}" for v in self.spacing)
        text = (f"series {self.name}: {self.description or self.protocol or '(no description)'}"
                f" [{self.modality}, {self.manufacturer}] {shape} voxels of {spacing} mm, "
                f"{self.orientation}, {self.n_files} file(s)")
        return text + "".join(f"\n  problem: {p}" for p in self.problems)


def list_files(path):
    """Every file under `path`, or `path` itself when it is not a folder,
    and what could not be listed.

    Recursive, depth first, sorted by name (a folder's files before its
    sub-folders); names starting with '.' are left out.  Symbolic links are
    followed; each real folder and each real file is listed once (the first
    path that reaches it), so link loops end and a folder linked twice is
    read once.

    Returns
    -------
    files : list of str
    skipped : list of Skipped
        Folders that cannot be read, dangling links, and entries that are
        neither files nor folders (sockets, pipes: opening a pipe would
        wait forever).
    """
    if not os.path.isdir(path):
        return [path], []
    files, skipped = [], []
    seen_folders, seen_files = set(), set()
    pending = [path]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen_folders:
                continue
            seen_folders.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted((e for e in listing if not e.name.startswith(".")),
                                 key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(folder, f"cannot read folder ({exc.strerror or exc})"))
            continue
        folders = []
        for entry in entries:
            try:
                if entry.is_dir():
                    folders.append(entry.path)
                elif entry.is_file():
                    # A link's target is another file; a plain file is known
                    # by its inode (free from the listing on POSIX).
                    real = os.stat(entry.path) if entry.is_symlink() else None
                    key = ((real.st_dev, real.st_ino) if real is not None
                           else (info.st_dev, entry.inode()))
                    if key not in seen_files:
                        seen_files.add(key)
                        files.append(entry.path)
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    skipped.append(Skipped(entry.path, "dangling symbolic link (to "
                                           f"{os.readlink(entry.path)}: no such file)"))
                else:
                    skipped.append(Skipped(entry.path, "not a regular file or folder"))
            except OSError as exc:
                skipped.append(Skipped(entry.path, f"cannot read ({exc.strerror or exc})"))
        pending.extend(reversed(folders))
    return files, skipped


def _truncated_pixels(info, size):
    """Why a file's uncompressed pixel data are cut short (the file of
    `size` bytes ends before them), else None.  Told from the file size, as
    dcm2niix does; compressed and gzipped pixel data show it only when
    decoded."""
    if info.pixel_offset is None or info.pixel_length is None or info.pixel_length < 0:
        return None
    needed = (info.rows * info.columns * info.samples * info.frames
              * info.bits_allocated + 7) // 8
    present = (size if size is not None else os.path.getsize(info.path)) - info.pixel_offset
    if present >= needed:
        return None
    return (f"truncated: {max(present, 0)} of the {needed} bytes of pixel data "
            f"(the file is cut short)")


def _read_one(path, head=None):
    """(slices, skip reason or None, annotation modality or '') of one
    file; `head`, its start and size when already read."""
    try:
        hfile = read_header(path, head)
        slices = file_slices(hfile)
    except AnnotationObject as exc:
        return [], str(exc), exc.modality
    except (NotDicomError, NotAVolume) as exc:
        return [], str(exc), ""
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:  # an unforeseen oddity must not stop the scan
        return [], f"unreadable DICOM header ({type(exc).__name__}: {str(exc)[:200]})", ""
    try:
        reason = _truncated_pixels(slices[0].file, hfile.size) if slices else None
    except OSError as exc:
        reason = f"cannot read ({exc.strerror or exc})"
    return ([], reason, "") if reason else (slices, None, "")


def _read_ahead(files, threads):
    """(path, head) for every file, in order: the files' starts read by
    `threads` threads a few chunks ahead of the caller (each chunk in one
    call that holds no GIL), so that reading overlaps parsing; gzipped files
    are read by the parser itself (head None)."""
    chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]

    def heads(chunk):
        plain = [p for p in chunk if not p.lower().endswith(".gz")]
        found = dict(zip(plain, read_heads(plain)))
        return [found.get(p) for p in chunk]

    with ThreadPoolExecutor(threads) as pool:
        pending = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(heads, chunk)))
            if len(pending) > 2 * threads:  # bounded memory: a few chunks ahead
                chunk, future = pending.popleft()
                yield from zip(chunk, future.result())
        while pending:
            chunk, future = pending.popleft()
            yield from zip(chunk, future.result())


def read_folder(path, threads=None, progress=None):
    """Slices of every DICOM file under `path`, and the files skipped.

    Headers are parsed in this thread as `threads` threads read the files
    ahead (the reads and the compiled header walk release the GIL; parsing
    in several threads measured slower, the values being decoded in Python).

    Parameters
    ----------
    path : str
    threads : int, optional
        Threads reading files ahead (default: medfast's thread count).
    progress : callable, optional
        Called as ``progress('scan', files_read, files_found)`` after each
        file (a command line's progress bar).

    Returns
    -------
    slices : list of medfast.dicom.slices.Slice
    skipped : list of Skipped
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    files, skipped = list_files(path)
    threads = resolve_threads(threads)
    if threads > 1 and len(files) > _CHUNK:
        pairs = _read_ahead(files, threads)
    else:
        pairs = ((p, None) for p in files)
    results = []
    for p, head in pairs:
        results.append(_read_one(p, head))
        if progress is not None:
            progress("scan", len(results), len(files))
    slices = []
    for file, (found, reason, annotation) in zip(files, results):
        if reason is not None:
            skipped.append(Skipped(file, reason, annotation=annotation))
        slices.extend(found)
    slices, duplicates = _drop_duplicates(slices)
    return slices, skipped + duplicates


def _drop_duplicates(slices):
    """Keep one slice per image: equal SOPInstanceUID, series, instance
    number and echo (modified copies saved as new series are not copies),
    frame and tile; the first file in path order is kept; report the files
    whose images were copies."""
    kept, first_path = [], {}
    copies = {}
    for s in slices:
        if not s.sop_uid:
            kept.append(s)
            continue
        key = (s.sop_uid, s.series_uid, s.series_number, s.instance, s.echo, s.frame, s.tile)
        owner = first_path.setdefault(key, s.file.path)
        if owner == s.file.path:
            kept.append(s)
        else:
            copies.setdefault(s.file.path, owner)
    skipped = [Skipped(path, f"duplicate of {owner} (same SOPInstanceUID)", "duplicate")
               for path, owner in copies.items()]
    return kept, skipped


def _base_name(volume):
    number = volume.series_number
    base = str(number) if number is not None else volume.first.series_uid
    return base + volume.suffix


def volume_name(volume):
    """The name a volume is picked by: its SeriesNumber plus a suffix
    ('5', '801_fieldmaphz'); set by :func:`volumes`."""
    return volume.name or _base_name(volume)


def _sort_key(volume):
    number = volume.series_number
    number = float("inf") if number is None else number
    return (number, volume.first.series_uid, volume.suffix)


def _distinct_tails(uids):
    """The shortest ends (4 characters at least, dots left out) that tell
    the UIDs apart: {uid: tail}."""
    plain = {uid: uid.replace(".", "").replace(" ", "") for uid in uids}
    for n in range(4, max(len(p) for p in plain.values()) + 1):
        tails = {uid: p[-n:] for uid, p in plain.items()}
        if len(set(tails.values())) == len(tails):
            return tails
    return {uid: uid for uid in uids}


def volumes(path, threads=None, progress=None):
    """Every volume under `path`, sorted by series number, and the files
    not used (skipped, or left out of a volume); `progress` as for
    :func:`read_folder`."""
    slices, skipped = read_folder(path, threads, progress)
    found = sorted(assemble(slices), key=_sort_key)
    uids = {}
    for v in found:
        # Count the distinct series UIDs behind a name, not the volumes, so
        # the UID tail is added only where it tells series apart.
        uids.setdefault(_base_name(v), set()).add(v.first.series_uid)
    tails = {base: _distinct_tails(group) for base, group in uids.items() if len(group) > 1}
    for v in found:
        # Two series with one number (two exams in one folder): the end of
        # the series UID tells them apart.
        base = _base_name(v)
        v.name = base if base not in tails else f"{base}_{tails[base][v.first.series_uid]}"
    # One series split into volumes that no suffix tells apart: number them
    # _1, _2... in their (deterministic) sort order.
    names = [v.name for v in found]
    seen = {}
    for v, name in zip(found, names):
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            v.name = f"{name}_{seen[name]}"
    return found, skipped + _dropped_files(found)


def _dropped_files(found):
    """Skipped entries for the images volumes left out (one per file)."""
    out = {}
    for v in found:
        for s, reason in v.dropped:
            out.setdefault(s.file.path, Skipped(s.file.path, f"series {volume_name(v)}: {reason}",
                                                "dropped"))
    return list(out.values())


def summary(volume):
    """A :class:`SeriesInfo` for a volume."""
    first = volume.first
    spacing = tuple(float(v) for v in np.sqrt((volume.affine[:3, :3] ** 2).sum(axis=0)))
    return SeriesInfo(
        name=volume_name(volume), series_uid=first.series_uid,
        series_number=volume.series_number, description=first.description,
        protocol=first.protocol, modality=first.modality,
        manufacturer=first.manufacturer, n_files=len(volume.files), shape=volume.shape,
        spacing=spacing, orientation="".join(aff2axcodes(volume.affine)),
        is_4d=len(volume.shape) == 4, problems=tuple(volume.problems))


def scan_dicom(path, *, threads=None, progress=None):
    """Find the DICOM series under a folder, reading headers only.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively, symbolic links followed) or one
        file.  Files that are not DICOM, hold no image (reports, RT plans,
        spectroscopy...) or repeat an image already found are skipped and
        listed in ``.skipped`` with the reason; SEG and RTSTRUCT files are
        listed in ``.annotations``.
    threads : int, optional
        Threads reading headers (default: medfast's thread count).
    progress : callable, optional
        Called as ``progress('scan', files_read, files_found)`` after each
        file (a progress bar's hook).

    Returns
    -------
    ScanResult
        A list of :class:`SeriesInfo`, one per volume, sorted by series
        number; ``.skipped`` lists the files not used, with the reason;
        ``.annotations`` the SEG and RTSTRUCT files, with the series they
        annotate.

    Examples
    --------
    >>> for info in medfast.scan_dicom("exam/"):  # doctest: +SKIP
    ...     print(info)
    """
    found, skipped = volumes(os.fspath(path), threads, progress)
    annotations, skipped = find_annotations(skipped, found, volume_name)
    return ScanResult([summary(v) for v in found], skipped, annotations)

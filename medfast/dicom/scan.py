"""Scan a folder: read every file's header once, keep the images, report
the rest, and summarise the series found (:func:`scan_dicom`)."""
from dataclasses import dataclass, field
import os

import numpy as np

from ..orientation import aff2axcodes
from .reader import NotDicomError, list_files, read_header
from .series import assemble
from .slices import NotAVolume, file_slices


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why."""

    path: str
    reason: str


class ScanResult(list):
    """A list of :class:`SeriesInfo`, plus the files skipped (``.skipped``)."""

    def __init__(self, series, skipped):
        super().__init__(series)
        self.skipped = skipped


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


def read_folder(path):
    """Headers and slices of every DICOM file under `path`.

    Returns
    -------
    slices : list of medfast.dicom.slices.Slice
    skipped : list of Skipped
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    slices, skipped = [], []
    for file in list_files(path):
        try:
            slices.extend(file_slices(read_header(file)))
        except (NotDicomError, NotAVolume) as exc:
            skipped.append(Skipped(file, str(exc)))
        except Exception as exc:
            # Fix: pydicom converts header elements lazily, so a corrupt
            # element (an unknown VR, a length that does not fit its VR...)
            # raised NotImplementedError/TypeError/... from deep inside the
            # scan.  Such a file is skipped with the reason, like any other
            # unreadable header.
            skipped.append(Skipped(file, f"unreadable DICOM header ({type(exc).__name__}: "
                                         f"{str(exc)[:200]})"))
    return slices, skipped


def _base_name(volume):
    number = volume.first.series_number
    base = str(number) if number is not None else volume.first.series_uid
    return base + volume.suffix


def volume_name(volume):
    """The name a volume is picked by: its SeriesNumber plus a suffix
    ('5', '801_fieldmaphz'); set by :func:`volumes`."""
    return volume.name or _base_name(volume)


def _sort_key(volume):
    number = volume.first.series_number
    number = float("inf") if number is None else number
    return (number, volume.first.series_uid, volume.suffix)


def _distinct_tails(uids):
    """The shortest ends (4 characters at least, dots left out) that tell
    the UIDs apart: {uid: tail}."""
    plain = {uid: uid.replace(".", "") for uid in uids}
    for n in range(4, max(len(p) for p in plain.values()) + 1):
        tails = {uid: p[-n:] for uid, p in plain.items()}
        if len(set(tails.values())) == len(tails):
            return tails
    return {uid: uid for uid in uids}


def volumes(path):
    """Every volume under `path`, sorted by series number, and the skipped
    files."""
    slices, skipped = read_folder(path)
    found = sorted(assemble(slices), key=_sort_key)
    uids = {}
    for v in found:
        # (Fix: count the distinct series UIDs behind a name, not the
        # volumes, so the UID tail is added only where it tells series apart.)
        uids.setdefault(_base_name(v), set()).add(v.first.series_uid)
    tails = {base: _distinct_tails(group) for base, group in uids.items() if len(group) > 1}
    for v in found:
        # Two series with one number (two scanners' exams in one folder):
        # the end of the series UID tells them apart.
        base = _base_name(v)
        v.name = base if base not in tails else f"{base}_{tails[base][v.first.series_uid]}"
    # Fix: one series split into volumes that no suffix tells apart
    # (different orientation, matrix or pixel spacing) got one name twice,
    # so series=NAME could not pick either: number them _1, _2... in their
    # (deterministic) sort order.
    names = [v.name for v in found]
    seen = {}
    for v, name in zip(found, names):
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            v.name = f"{name}_{seen[name]}"
    return found, skipped


def _text(ds, keyword):
    # Fix: a corrupt descriptive element (converted lazily by pydicom) must
    # not stop the scan: it reads as empty.
    try:
        return str(ds.get(keyword, ""))
    except Exception:
        return ""


def summary(volume):
    """A :class:`SeriesInfo` for a volume."""
    ds = volume.first.file.dataset
    spacing = tuple(float(v) for v in np.sqrt((volume.affine[:3, :3] ** 2).sum(axis=0)))
    return SeriesInfo(
        name=volume_name(volume), series_uid=volume.first.series_uid,
        series_number=ds.get("SeriesNumber"),
        description=_text(ds, "SeriesDescription"),
        protocol=_text(ds, "ProtocolName"),
        modality=_text(ds, "Modality"),
        manufacturer=_text(ds, "Manufacturer"),
        n_files=len(volume.files), shape=volume.shape, spacing=spacing,
        orientation="".join(aff2axcodes(volume.affine)),
        is_4d=len(volume.shape) == 4, problems=tuple(volume.problems))


def scan_dicom(path):
    """Find the DICOM series under a folder, reading headers only.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively) or one file.  Files that are not
        DICOM, or hold no volume (reports, RT objects, localizers...), are
        skipped and listed in ``.skipped`` with the reason.

    Returns
    -------
    ScanResult
        A list of :class:`SeriesInfo`, one per volume, sorted by series
        number; ``.skipped`` lists the files not used.

    Examples
    --------
    >>> for info in medfast.scan_dicom("exam/"):  # doctest: +SKIP
    ...     print(info)
    """
    found, skipped = volumes(os.fspath(path))
    return ScanResult([summary(v) for v in found], skipped)

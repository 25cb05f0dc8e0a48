"""Annotation objects found in a folder (DICOM SEG, RTSTRUCT) and the
volumes they annotate.

The scan reports SEG and RTSTRUCT files as :class:`.scan.Skipped` entries
with ``annotation`` set (they hold no volume of their own).  Here each is
read (headers only, with pydicom: a study holds few) for the series it
references and its label names, and matched with the volume of that series
among those found, so that :func:`medfast.scan_dicom` can list them,
:func:`medfast.load_dicom_all` load them and :func:`medfast.convert` write
them beside their image.
"""
from dataclasses import dataclass, field

from .rtstruct import OverlapError, load_rtstruct, referenced_series, roi_names
from .seg import load_seg, segment_descriptions

#: Output-name suffix of each kind of annotation (``convert``).
SUFFIX = {"SEG": "_seg", "RTSTRUCT": "_rtstruct"}


@dataclass(frozen=True)
class AnnotationInfo:
    """One SEG or RTSTRUCT file and the volume it annotates.

    Attributes
    ----------
    path : str
    modality : str
        'SEG' or 'RTSTRUCT'.
    referenced_series : tuple of str
        SeriesInstanceUIDs it references.
    series : str or None
        The name (as :func:`medfast.scan_dicom` lists volumes) of the
        volume it annotates, None when that series is not in the folder.
    labels : dict
        Label number -> segment label or ROI name.
    """

    path: str
    modality: str
    referenced_series: tuple
    series: object
    labels: dict = field(default_factory=dict)

    def __str__(self):
        names = ", ".join(self.labels.values())
        target = (f"series {self.series}" if self.series is not None else
                  "a series not found here (" + (", ".join(self.referenced_series) or
                                                 "no reference") + ")")
        return f"{self.modality} {self.path}: {len(self.labels)} label(s) ({names}) on {target}"

    def load(self, image):
        """The labels on `image`'s grid (:func:`load_seg` /
        :func:`load_rtstruct`): a label map, or one channel per label
        (``meta['channels']``) when labels overlap."""
        read = load_seg if self.modality == "SEG" else load_rtstruct
        try:
            return read(self.path, like=image)
        except OverlapError:
            return read(self.path, like=image, onehot=True)


def _seg_references(ds):
    return [str(item.get("SeriesInstanceUID", "")) for item in ds.get("ReferencedSeriesSequence", [])
            if item.get("SeriesInstanceUID")]


def read_annotation(entry, volume_names):
    """An :class:`AnnotationInfo` for a skipped entry marked as annotation,
    or a reason (str) when its header cannot be read.

    Parameters
    ----------
    entry : medfast.dicom.scan.Skipped
    volume_names : dict
        SeriesInstanceUID -> the name of the volume that stands for it.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(entry.path, stop_before_pixels=True)
        if entry.annotation == "SEG":
            references, labels = _seg_references(ds), {
                n: s["label"] for n, s in segment_descriptions(ds).items()}
        else:
            references, labels = referenced_series(ds), roi_names(ds)
    except Exception as exc:
        return f"unreadable {entry.annotation} ({type(exc).__name__}: {str(exc)[:200]})"
    series = next((volume_names[uid] for uid in references if uid in volume_names), None)
    return AnnotationInfo(entry.path, entry.annotation, tuple(references), series, labels)


def find_annotations(skipped, found, name_of):
    """Split the scan's skipped entries into annotations and the rest.

    Parameters
    ----------
    skipped : list of Skipped
    found : list of medfast.dicom.series.Volume
    name_of : callable
        Volume -> its name.

    Returns
    -------
    annotations : list of AnnotationInfo
    rest : list of Skipped
        The other entries, and annotation files whose header cannot be read
        (with the reason).
    """
    volume_names = {}
    for volume in found:
        if not volume.variant:  # the volume itself, not its '_Eq'/'_ADC' rendering
            volume_names.setdefault(volume.first.series_uid, name_of(volume))
    annotations, rest = [], []
    for entry in skipped:
        if not entry.annotation:
            rest.append(entry)
            continue
        info = read_annotation(entry, volume_names)
        if isinstance(info, str):
            rest.append(type(entry)(entry.path, info))
        else:
            annotations.append(info)
    return annotations, rest

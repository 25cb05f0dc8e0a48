"""Load DICOM volumes as :class:`medfast.Image` (RAS affine, metadata)."""
import os

import numpy as np

from ..image import Image
from ..orientation import lps_to_ras_points
from .annotations import find_annotations
from .equalize import equalize
from .geometry import untilted_affine
from .pixels import volume_pixels
from .scan import summary, volume_name, volumes
from .diffusion import diffusion_table
from .series import is_localizer
from .sidecar import bids_sidecar
from .suv import suv_bw_factor


def to_image(volume, correct_tilt=False, suv=None):
    """The :class:`medfast.Image` of an assembled volume (see
    :func:`image_and_sidecar`)."""
    return image_and_sidecar(volume, correct_tilt, suv)[0]


def _check_suv(suv):
    if suv not in (None, "bw"):
        raise ValueError(f"suv must be None or 'bw' (body-weight SUV), not {suv!r}")


def image_and_sidecar(volume, correct_tilt=False, suv=None):
    """The :class:`medfast.Image` of an assembled volume, and its BIDS
    sidecar fields (built once, for both).

    Parameters
    ----------
    volume : medfast.dicom.series.Volume
    correct_tilt : bool, optional
        Resample a gantry-tilted stack onto the orthogonal grid (linear
        interpolation with the resampling core), as dcm2niix does.
    suv : {None, 'bw'}, optional
        PET only: body-weight SUV (float32; :mod:`.suv`); the factor and
        Units go into the sidecar fields.

    Returns
    -------
    image : Image
        ``meta`` holds the BIDS sidecar fields (:func:`.sidecar.bids_sidecar`),
        ``bvals``/``bvecs`` for diffusion series
        (:func:`.sidecar.diffusion_table`) and the DICOM files used.
    sidecar : dict
    """
    _check_suv(suv)
    suv_fields = None
    if suv is not None:
        if volume.first.modality != "PT":
            raise ValueError(f"{volume.first.file.path}: suv='bw' needs a PET series "
                             f"(Modality PT, not {volume.first.modality or 'missing'})")
        factor, suv_fields = suv_bw_factor(volume.first.file.path)
    array, scaling = volume_pixels(volume)
    if volume.equalize is not None:
        array = _equalized(array, volume.equalize)
    if suv_fields is not None:
        array = array.astype(np.float32) * np.float32(factor)
    try:
        sidecar = bids_sidecar(volume)
    except Exception as exc:
        # A corrupt header element raises whatever its decoder raises, from
        # deep inside the sidecar: name the file whose header is read.
        raise ValueError(f"{volume.first.file.path}: unreadable DICOM header element "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if suv_fields is not None:
        sidecar.update(suv_fields)
    meta = dict(sidecar)
    meta["dicom_series"] = volume_name(volume)
    meta["dicom_files"] = volume.files
    meta["dicom_scaling"] = scaling
    instances = {s.sop_uid: s.position for s in volume.grid[0]
                 if s.sop_uid and s.position is not None}
    if len(instances) == len(volume.grid[0]):
        # Where each image lies (RAS), for annotations that name their slice
        # by SOPInstanceUID (RTSTRUCT's ContourImageSequence); one image per
        # file only, as frames of one file share their UID.
        meta["dicom_instances"] = {uid: tuple(lps_to_ras_points(np.asarray(p, float)))
                                   for uid, p in instances.items()}
    diffusion = diffusion_table(volume)
    if diffusion is not None:
        # b-values and FSL bvecs (voxel axes of this affine), in volume order.
        meta["bvals"], meta["bvecs"] = diffusion
    if volume.problems:
        meta["problems"] = list(volume.problems)
    if volume.first.position is None:
        meta["qform_code"] = meta["sform_code"] = 0  # no place in the patient
    if volume.tilt:
        meta["GantryTilt"] = volume.tilt
    img = Image(array, volume.affine, meta)
    if volume.tilt and correct_tilt:
        from ..resample import resample
        img = resample(img, shape=img.spatial_shape, affine=untilted_affine(img.affine),
                       order="linear", dtype=img.dtype if img.dtype.kind == "f" else "float32")
        img.meta["GantryTiltCorrected"] = True
    return img, sidecar


def _equalized(array, plan):
    """The equidistant copy of a stack (:mod:`.equalize`); colour voxels
    resampled channel by channel."""
    distances, count, spacing = plan
    if array.dtype.names:
        channels = np.stack([array[name] for name in array.dtype.names], axis=-1)
        out = equalize(channels, distances, count, spacing)
        return np.ascontiguousarray(out).view(array.dtype)[..., 0]
    return equalize(array, distances, count, spacing)


def _no_volume_error(path, skipped):
    reasons = {}
    for item in skipped:
        reasons.setdefault(item.reason, []).append(item.path)
    detail = "; ".join(f"{len(v)} file(s): {k}" for k, v in list(reasons.items())[:4])
    return ValueError(f"{path}: no DICOM volume found"
                      + (f" ({detail})" if detail else " (empty folder)"))


def _matches(volume, series):
    if hasattr(series, "name") and hasattr(series, "series_uid"):
        return volume_name(volume) == series.name
    name = volume_name(volume)
    if isinstance(series, int):
        return volume.series_number == series
    series = str(series)
    return series in (name, volume.first.series_uid, volume.first.description)


def _is_localizer(volume):
    return is_localizer(volume.first)


def load_dicom(path, series=None, *, correct_tilt=False, suv=None):
    """Load one DICOM volume from a folder (or file).

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively) or a single DICOM file.
    series : int, str or SeriesInfo, optional
        Which series to load when the folder holds several: a SeriesNumber,
        a name from :func:`scan_dicom` (such as ``'801_e2'``), a
        SeriesInstanceUID, a SeriesDescription, or a :class:`SeriesInfo`.
        Localizers (scouts) do not count: a CT and its scouts give the CT,
        the scouts named in ``meta['problems']``.
    correct_tilt : bool, optional
        Resample gantry-tilted CT onto an orthogonal grid.
    suv : {None, 'bw'}, optional
        PET: return body-weight SUV (float32) instead of Bq/ml;
        ``meta['Units']`` is then 'g/ml' and ``meta['SUVbwScaleFactor']``
        the factor applied (see :mod:`medfast.dicom.suv`).

    Returns
    -------
    Image
        Voxel (i, j, k[, t]) -> RAS+ mm; ``meta`` holds the acquisition
        fields (BIDS names), the files used and any problems found.

    Raises
    ------
    ValueError
        When no volume is found, or when several match and `series` does
        not pick one (the message lists them); with ``suv='bw'``, for a
        series that is not PET or lacks a tag SUV needs (named).

    Examples
    --------
    >>> img = medfast.load_dicom("exam/", series=5)  # doctest: +SKIP
    >>> suv = medfast.load_dicom("exam/pet", suv="bw")  # doctest: +SKIP
    """
    _check_suv(suv)
    path = os.fspath(path)
    found, skipped = volumes(path)
    if not found:
        raise _no_volume_error(path, skipped)
    if series is not None:
        everything, found = found, [v for v in found if _matches(v, series)]
        if not found:
            names = ", ".join(volume_name(v) for v in everything)
            raise ValueError(f"{path}: no series {series!r}; found: {names}")
    scouts = []
    if len(found) > 1 and not all(_is_localizer(v) for v in found):
        # Scouts planned the acquisition: not the volume asked for.
        scouts = [v for v in found if _is_localizer(v)]
        found = [v for v in found if not _is_localizer(v)]
    if len(found) > 1 and len([v for v in found if not v.variant]) == 1:
        # One volume and its other renderings ('_Eq', '_ADC'): the volume.
        found = [v for v in found if not v.variant]
    if len(found) > 1:
        listing = "\n".join(f"  {summary(v)}" for v in found)
        raise ValueError(
            f"{path} holds {len(found)} volumes; pick one with "
            f"load_dicom(path, series=NAME) (NAME as listed), or load them all "
            f"with load_dicom_all(path):\n{listing}")
    img = to_image(found[0], correct_tilt, suv)
    if scouts:
        img.meta.setdefault("problems", []).extend(
            f"localizer {volume_name(v)} ({len(v.files)} file(s)) left out: "
            f"load_dicom(path, series={volume_name(v)!r}) loads it" for v in scouts)
    return img


def load_dicom_all(path, *, correct_tilt=False, suv=None, annotations=False):
    """Load every DICOM volume under a folder.

    Parameters
    ----------
    path : str or os.PathLike
    correct_tilt : bool, optional
        Resample gantry-tilted CT onto an orthogonal grid.
    suv : {None, 'bw'}, optional
        Body-weight SUV for the PET volumes (see :func:`load_dicom`); other
        volumes are unchanged.
    annotations : bool, optional
        Also load the SEG and RTSTRUCT files, each on the grid of the
        volume it annotates and placed right after it in the list
        (:func:`medfast.load_seg`, :func:`medfast.load_rtstruct`: a label
        map, or one channel per label when labels overlap;
        ``meta['annotation_of']`` names the volume).  One that references
        no volume found raises ``ValueError``.

    Returns
    -------
    list of Image
        Sorted by series number; ``img.meta['dicom_series']`` names each.
    """
    _check_suv(suv)
    path = os.fspath(path)
    found, skipped = volumes(path)
    if not found:
        raise _no_volume_error(path, skipped)
    images = [to_image(v, correct_tilt, suv if v.first.modality == "PT" else None)
              for v in found]
    if not annotations:
        return images
    notes, _ = find_annotations(skipped, found, volume_name)
    for note in notes:
        if note.series is None:
            raise ValueError(f"{note.path}: the {note.modality} annotates a series not found "
                             f"in {path} ({', '.join(note.referenced_series) or 'no reference'})")
    out = []
    for image in images:
        out.append(image)
        out.extend(note.load(image) for note in notes
                   if note.series == image.meta["dicom_series"])
    return out

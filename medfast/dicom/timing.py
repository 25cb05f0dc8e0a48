"""Slice timing: one acquisition time per slice of a volume (BIDS
``SliceTiming``), as dcm2niix computes it.

Siemens mosaics take the CSA ``MosaicRefAcqTimes`` (else the protocol), GE
EPI its protocol block, Siemens XA each image's TimeAfterStart (those rules
live in :mod:`.vendors`); other enhanced files each frame's
FrameAcquisitionDateTime, other classic series each slice's TriggerTime or
AcquisitionTime.
"""
from . import values
from .vendors import ge, siemens

__all__ = ["slice_timing"]


def _frame_times(volume):
    """Multi-frame files: FrameAcquisitionDateTime of each slice (seconds),
    None when they do not vary (e.g. frames without functional groups)."""
    times = [s.time for s in volume.grid[0]]
    return None if any(t is None for t in times) or len(set(times)) < 2 else times


def _classic_times(volume):
    """Classic files: TriggerTime (ms) where it varies between slices, else
    AcquisitionTime, of each slice (seconds)."""
    slices = volume.grid[0]
    triggers = [s.trigger for s in slices]
    if all(t is not None for t in triggers) and len(set(triggers)) > 1:
        return [t / 1000.0 for t in triggers]
    times = [s.time for s in slices]
    if all(t is not None for t in times) and len(set(times)) > 1:
        return times
    return None


def slice_timing(volume, header, tr):
    """One time per slice (seconds, medfast's slice order), or None."""
    if values.text_of(header.get("Modality")) in ("CT", "PT"):
        return None
    if values.text_of(header.get("MRAcquisitionType")) == "3D":
        return None
    first = volume.first
    if first.tile is not None:
        return siemens.mosaic_slice_times(volume, header, tr)
    if len(volume.grid[0]) < 2:
        return None
    if header.manufacturer == "GE":
        times = ge.slice_times(volume, header, tr)
        if times is not None:
            return times
    if all(s.time_after_start is not None for row in volume.grid for s in row):
        return siemens.xa_slice_times(volume, tr)
    times = _frame_times(volume) if first.file.frames > 1 else _classic_times(volume)
    if times is None:
        return None
    low = min(times)
    times = [t - low for t in times]
    if tr and max(times) >= tr:
        return None  # not the slices of one TR: not slice timing
    return times

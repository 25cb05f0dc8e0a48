"""Synthetic annotated series for the SEG / RTSTRUCT / PET tests.

* :func:`write_ct`: an oblique CT series of non-square, anisotropic pixels
  (96 columns x 80 rows at 0.8 x 0.9 mm, 2.5 mm slices), files shuffled
  (random names, instance numbers in random order), with the truth's grid.
* :func:`truth_masks`: ROI masks on that grid, indexed (i, j, k): a body
  ellipse, a ring with an island inside its hole, and a blob overlapping
  the body.
* :func:`mask_contours` / :func:`write_rtstruct`: the tests' own contour
  writer: marching squares between pixel centres (each contour vertex is
  the midpoint between an inside and an outside pixel centre), holes and
  islands as separate contours, so even-odd filling gives the mask back.

Everything is numpy + pydicom; medfast is not used here.
"""
import os

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from synthetic import lps_affine, oblique, stack_positions, write_series

ROWS, COLS = 80, 96
PIXEL_SPACING = (0.8, 0.9)   # between rows, between columns
SLICE_STEP = 2.5
ORIENTATION = oblique(12.0, -8.0, 25.0)
RTSTRUCT_SOP = "1.2.840.10008.5.1.4.1.1.481.3"


class Series:
    """What was written: files, UIDs per slice (sorted order), grids."""

    def __init__(self, paths, sop_uids, lps, series_uid, study_uid, frame_uid, datasets):
        self.paths, self.sop_uids, self.lps = paths, sop_uids, lps
        self.series_uid, self.study_uid, self.frame_uid = series_uid, study_uid, frame_uid
        self.datasets = datasets   # sorted along the normal

    @property
    def ras(self):
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.lps


def write_ct(folder, *, slices=10, modality="CT", seed=0, **fields):
    """Write a shuffled oblique series; returns a :class:`Series`."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, ORIENTATION, step=SLICE_STEP, origin=(-30.0, 12.0, 40.0))
    order = rng.permutation(slices)              # the order files are written in
    stack = (np.arange(slices)[:, None, None] * 7
             + np.arange(ROWS)[None, :, None] + np.arange(COLS)[None, None, :]).astype(np.int16)
    frame_uid, study_uid, series_uid = generate_uid(), generate_uid(), generate_uid()
    # The patient and study modules highdicom copies into a SEG.
    fields = {"PatientBirthDate": "19700101", "PatientSex": "O", "StudyID": "1",
              "AccessionNumber": "", "ReferringPhysicianName": "", **fields}
    paths = write_series(folder, stack[order], positions[order], orientation=ORIENTATION,
                         pixel_spacing=PIXEL_SPACING, modality=modality,
                         slice_thickness=SLICE_STEP, series_uid=series_uid,
                         study_uid=study_uid, frame_of_reference=frame_uid,
                         instance_numbers=rng.permutation(slices) + 1, seed=seed, **fields)
    datasets = [None] * slices
    for path, k in zip(paths, order):
        datasets[k] = pydicom.dcmread(path)
    lps = lps_affine(ORIENTATION, PIXEL_SPACING, positions)
    return Series(paths, [str(ds.SOPInstanceUID) for ds in datasets], lps, series_uid,
                  study_uid, frame_uid, datasets)


def truth_masks(slices=10):
    """{name: bool (COLS, ROWS, slices) mask}: body, ring (with an island
    in its hole), lesion (overlaps body)."""
    i, j, k = np.meshgrid(np.arange(COLS), np.arange(ROWS), np.arange(slices), indexing="ij")
    body = ((i - 40) / 30.0) ** 2 + ((j - 38) / 25.0) ** 2 <= 1.0
    body &= (k >= 1) & (k <= slices - 2)
    r = np.hypot(i - 80, j - 64)
    ring = ((r <= 10) & (r > 5)) | (r <= 2.5)
    ring &= (k >= 2) & (k <= slices - 3)
    lesion = (np.abs(i - 30) <= 5) & (np.abs(j - 30) <= 3) & (k >= 3) & (k <= 5)
    lesion[28, 27, 4] = False    # a one-pixel hole: a contour of its own
    return {"body": body, "ring": ring, "lesion": lesion}


def mask_contours(mask):
    """Closed contours (lists of (x, y) pixel coordinates) whose even-odd
    filling at pixel centres is `mask` (indexed [x, y]).

    Marching squares between pixel centres: the boundary between an inside
    pixel and an outside one is walked edge by edge around each region
    (outer boundaries and holes alike: every boundary is a contour of its
    own), and each contour vertex is the midpoint of a boundary edge, half
    way between the pixel centres on either side of it.
    """
    padded = np.pad(np.asarray(mask, bool), 1)
    # Directed unit edges between pixel corners, doubled coordinates (so
    # corners are integers): inside on the left, walking counter-clockwise.
    nxt = {}
    xs, ys = np.nonzero(padded)
    for x, y in zip(xs, ys):
        cx, cy = 2 * (x - 1), 2 * (y - 1)
        corners = [(cx - 1, cy - 1), (cx + 1, cy - 1), (cx + 1, cy + 1), (cx - 1, cy + 1)]
        neighbours = [(x, y - 1), (x + 1, y), (x, y + 1), (x - 1, y)]
        for e, (nx_, ny_) in enumerate(neighbours):
            if not padded[nx_, ny_]:
                nxt.setdefault(corners[e], []).append(corners[(e + 1) % 4])
    contours = []
    while nxt:
        start = next(iter(nxt))
        loop, corner = [], start
        while True:
            ends = nxt[corner]
            end = ends.pop()
            if not ends:
                del nxt[corner]
            loop.append(((corner[0] + end[0]) / 4.0, (corner[1] + end[1]) / 4.0))
            corner = end
            if corner == start:
                break
        contours.append(loop)
    return contours


def _item(**fields):
    ds = Dataset()
    for key, value in fields.items():
        setattr(ds, key, value)
    return ds


def write_rtstruct(path, series, masks, *, reference_images=True, extra_contours=()):
    """Write an RTSTRUCT with one ROI per mask (in dict order), contours
    from :func:`mask_contours` on each slice, mapped to LPS with the
    series' grid.

    Parameters
    ----------
    extra_contours : list of (roi name, (n, 3) LPS points)
        More closed planar contours (e.g. off every slice plane).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP, meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientName, ds.PatientID = "Synthetic^Phantom", "SYN001"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = series.study_uid, generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 90, 1
    ds.StructureSetLabel = "synthetic"
    ds.ReferencedFrameOfReferenceSequence = Sequence([_item(
        FrameOfReferenceUID=series.frame_uid,
        RTReferencedStudySequence=Sequence([_item(
            ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
            ReferencedSOPInstanceUID=series.study_uid,
            RTReferencedSeriesSequence=Sequence([_item(
                SeriesInstanceUID=series.series_uid,
                ContourImageSequence=Sequence([
                    _item(ReferencedSOPClassUID=d.SOPClassUID, ReferencedSOPInstanceUID=u)
                    for d, u in zip(series.datasets, series.sop_uids)]))]))]))])
    rois, contours = [], []
    extra = {}
    for name, points in extra_contours:
        extra.setdefault(name, []).append(points)
    for number, (name, mask) in enumerate(masks.items(), 1):
        rois.append(_item(ROINumber=number, ReferencedFrameOfReferenceUID=series.frame_uid,
                          ROIName=name, ROIGenerationAlgorithm="MANUAL"))
        items = []
        for k in range(mask.shape[2]):
            for loop in mask_contours(mask[:, :, k]):
                xy = np.asarray(loop)
                voxels = np.c_[xy, np.full(len(xy), k), np.ones(len(xy))]
                world = (voxels @ series.lps.T)[:, :3]
                item = _item(ContourGeometricType="CLOSED_PLANAR",
                             NumberOfContourPoints=len(world),
                             ContourData=[f"{v:.4f}" for v in world.ravel()])
                if reference_images:
                    item.ContourImageSequence = Sequence([_item(
                        ReferencedSOPClassUID=series.datasets[k].SOPClassUID,
                        ReferencedSOPInstanceUID=series.sop_uids[k])])
                items.append(item)
        for points in extra.get(name, []):
            items.append(_item(ContourGeometricType="CLOSED_PLANAR",
                               NumberOfContourPoints=len(points),
                               ContourData=[f"{v:.4f}" for v in np.ravel(points)]))
        contours.append(_item(ReferencedROINumber=number, ROIDisplayColor=[255, 0, 0],
                              ContourSequence=Sequence(items)))
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence([
        _item(ObservationNumber=n, ReferencedROINumber=n, RTROIInterpretedType="ORGAN",
              ROIInterpreter="") for n in range(1, len(masks) + 1)])
    pydicom.dcmwrite(os.fspath(path), ds, enforce_file_format=True)
    return os.fspath(path)

"""Annotations on the image grid: DICOM SEG (written with highdicom) and
RTSTRUCT (written by the tests' own contour writer, so the truth is known)
on a shuffled oblique CT of non-square, anisotropic pixels; the even-odd
rasteriser against a direct crossing count; PET SUV against a hand
computation; localizers kept out of the CT."""
import json
import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

import medfast
from medfast.dicom.rtstruct import OverlapError

from annotation_synth import (COLS, ROWS, mask_contours, truth_masks, write_ct,
                              write_rtstruct)
from synthetic import AXIAL, SAGITTAL, image_dataset, ramp, save, stack_positions, write_series

hd = pytest.importorskip("highdicom")

SLICES = 10


# --------------------------------------------------------------------------
# fixtures: one CT, its truth, structure sets and segmentations


def _description(number, label):
    from pydicom.sr.codedict import codes
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Organ,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)


def _write_seg(path, series, pixels, kind, labels, order=None, **options):
    """A highdicom SEG of `pixels` ((i, j, k[, segment]) on the CT grid);
    frames written in `order` of the source slices (default sorted)."""
    order = np.arange(SLICES) if order is None else np.asarray(order)
    frames = np.moveaxis(pixels, (0, 1, 2), (2, 1, 0))[order]   # (k, j, i[, s])
    seg = hd.seg.Segmentation(
        source_images=[series.datasets[k] for k in order], pixel_array=frames,
        segmentation_type=kind, segment_descriptions=[
            _description(n, name) for n, name in enumerate(labels, 1)],
        series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="medfast tests", manufacturer_model_name="synthetic",
        software_versions="1", device_serial_number="1", **options)
    seg.save_as(path)
    return os.fspath(path)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotated")
    series = write_ct(root / "ct", slices=SLICES, seed=3)
    masks = truth_masks(SLICES)
    out = {"root": root, "series": series, "masks": masks,
           "ct": medfast.load_dicom(root / "ct"),
           "rtstruct": write_rtstruct(root / "rs.dcm", series, masks)}
    rng = np.random.default_rng(5)
    types = hd.seg.SegmentationTypeValues
    # Body and lesion overlap; empty frames are left out (slices 0 and 9);
    # frames in shuffled order.
    pair = np.stack([masks["body"], masks["lesion"]], axis=-1).astype(np.uint8)
    out["seg_overlap"] = _write_seg(root / "seg_overlap.dcm", series, pair, types.BINARY,
                                    ["body", "lesion"], order=rng.permutation(SLICES))
    labelmap = masks["body"] * 1 + masks["ring"] * 2
    out["seg_labelmap"] = _write_seg(root / "seg_labelmap.dcm", series,
                                     labelmap.astype(np.uint8), types.LABELMAP,
                                     ["body", "ring"], transfer_syntax_uid=RLELossless)
    i = np.arange(COLS)[:, None, None] / (COLS - 1)
    probability = (masks["body"] * (0.25 + 0.7 * i)).astype(np.float32)  # 0.25..0.95
    out["probability"] = probability
    out["seg_fractional"] = _write_seg(root / "seg_fractional.dcm", series, probability,
                                       types.FRACTIONAL, ["body"])
    return out


def _truth(study, *names):
    return np.stack([study["masks"][n] for n in names], axis=-1).astype(np.uint8)


# --------------------------------------------------------------------------
# RTSTRUCT


def test_rtstruct_onehot_equals_the_truth(study):
    """Every ROI voxel-exact on the shuffled oblique 96x80 grid, overlapping
    ROIs as channels; holes and an island inside a hole come out right."""
    labels = medfast.load_rtstruct(study["rtstruct"], study["ct"], onehot=True)
    assert labels.meta["labels"] == {1: "body", 2: "ring", 3: "lesion"}
    np.testing.assert_array_equal(labels.array, _truth(study, "body", "ring", "lesion"))
    np.testing.assert_array_equal(labels.affine, study["ct"].affine)
    assert labels.meta["problems"] == []


def test_rtstruct_label_map_rois_and_overlap_error(study):
    labels = medfast.load_rtstruct(study["rtstruct"], study["ct"], rois=["ring", "body"])
    assert labels.meta["labels"] == {1: "ring", 2: "body"} and labels.dtype == np.uint8
    expected = study["masks"]["ring"] * 1 + study["masks"]["body"] * 2
    np.testing.assert_array_equal(labels.array, expected)
    with pytest.raises(OverlapError, match="'body' and 'lesion' overlap in"):
        medfast.load_rtstruct(study["rtstruct"], study["ct"])
    with pytest.raises(ValueError, match="no ROI named 'liver'"):
        medfast.load_rtstruct(study["rtstruct"], study["ct"], rois="liver")


def test_rtstruct_by_plane_position_on_any_axis_order(study, tmp_path):
    """Without ContourImageSequence, on a reoriented view (the slice axis
    is then the first array axis) and from the series folder."""
    path = write_rtstruct(tmp_path / "rs.dcm", study["series"],
                          {"ring": study["masks"]["ring"]}, reference_images=False)
    view = medfast.reorient(study["ct"], "SAR")
    labels = medfast.load_rtstruct(path, view)
    truth = medfast.reorient(medfast.Image(study["masks"]["ring"].astype(np.uint8),
                                           study["ct"].affine), "SAR")
    np.testing.assert_array_equal(labels.array, truth.array)
    from_folder = medfast.load_rtstruct(path, study["root"] / "ct")
    np.testing.assert_array_equal(from_folder.array, study["masks"]["ring"])


def test_rtstruct_contours_off_the_slices_are_reported(study, tmp_path):
    series = study["series"]
    square = np.array([[10, 10], [20, 10], [20, 20], [10, 20]], float)

    def world(k):
        voxels = np.c_[square, np.full(4, k), np.ones(4)]
        return (voxels @ series.lps.T)[:, :3]

    path = write_rtstruct(tmp_path / "rs.dcm", series, {"ring": study["masks"]["ring"]},
                          extra_contours=[("ring", world(4.5)), ("ring", world(40))])
    with pytest.warns(UserWarning, match="2 contour"):
        labels = medfast.load_rtstruct(path, study["ct"])
    problems = labels.meta["problems"]
    assert len(problems) == 2
    assert "1.25 mm from the nearest slice plane" in problems[0]
    assert "outside the image" in problems[1]
    np.testing.assert_array_equal(labels.array, study["masks"]["ring"])


def _even_odd_reference(polygons, ny, nx):
    """Pixel centres inside by a direct crossing count over all edges."""
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    count = np.zeros((ny, nx), int)
    for poly in polygons:
        for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
            crosses = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            count += crosses & (x < xint)
    return (count % 2).astype(np.uint8)


def test_raster_kernel_matches_a_crossing_count():
    """Random (self-intersecting, out-of-grid) polygons, several per slice,
    slices in any order, 1 and 2 threads."""
    from medfast import _raster
    rng = np.random.default_rng(11)
    ny, nx, nz = 13, 17, 5
    groups = {k: [rng.uniform(-3, 20, size=(rng.integers(3, 9), 2)) for _ in range(k % 3 + 1)]
              for k in (3, 0, 4)}
    xy = np.concatenate([p for k in groups for p in groups[k]])
    sizes = [len(p) for k in groups for p in groups[k]]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    group_starts = np.concatenate([[0], np.cumsum([len(groups[k]) for k in groups])])
    for threads in (1, 2):
        out = np.zeros((nz, ny, nx), np.uint8)
        _raster.fill_polygons(xy, starts, group_starts.astype(np.int64),
                              np.array(list(groups), np.int64), out, threads)
        for k in range(nz):
            expected = (_even_odd_reference(groups[k], ny, nx) if k in groups
                        else np.zeros((ny, nx), np.uint8))
            np.testing.assert_array_equal(out[k], expected)


def test_contour_writer_round_trip():
    """The tests' own writer: even-odd filling of its contours is the mask."""
    mask = truth_masks(SLICES)["ring"][:, :, 4]
    contours = mask_contours(mask)
    assert len(contours) == 3   # outer ring, its hole, the island
    np.testing.assert_array_equal(
        _even_odd_reference([np.asarray(c) for c in contours], ROWS, COLS), mask.T)


# --------------------------------------------------------------------------
# SEG


def _highdicom_frames(path, series):
    """highdicom's own reading: (i, j, k, segment) on the CT's slices."""
    seg = hd.seg.segread(path)
    present = {str(item.ReferencedSOPInstanceUID)
               for frame in seg.PerFrameFunctionalGroupsSequence
               for item in frame.DerivationImageSequence[0].SourceImageSequence}
    uids = [u for u in series.sop_uids if u in present]
    frames = seg.get_pixels_by_source_instance(uids, combine_segments=False,
                                               rescale_fractional=True)
    out = np.zeros((SLICES,) + frames.shape[1:], frames.dtype)
    out[[series.sop_uids.index(u) for u in uids]] = frames
    return np.moveaxis(out, (0, 1, 2), (2, 1, 0))


def test_seg_binary_overlap_onehot_and_highdicom(study):
    """Frames in shuffled order, empty ones left out, overlapping segments:
    the label map raises naming them; the one-hot channels equal the
    truth and highdicom's own reading."""
    with pytest.raises(OverlapError, match=r"segments 1 \('body'\) and 2 \('lesion'\) overlap"):
        medfast.load_seg(study["seg_overlap"], like=study["ct"])
    seg = medfast.load_seg(study["seg_overlap"], like=study["ct"], onehot=True)
    np.testing.assert_array_equal(seg.array, _truth(study, "body", "lesion"))
    np.testing.assert_array_equal(seg.array, _highdicom_frames(study["seg_overlap"],
                                                               study["series"]))
    assert seg.meta["labels"] == {1: "body", 2: "lesion"} and seg.meta["channels"] == [1, 2]
    assert seg.meta["segments"][2]["type"]["meaning"] == "Organ"
    np.testing.assert_array_equal(seg.affine, study["ct"].affine)


def test_seg_own_grid_spans_the_frames(study):
    """Without like=: the SEG's frame grid, from the lowest frame to the
    highest (slices 1-8 here), slices without a frame empty."""
    own = medfast.load_seg(study["seg_overlap"], onehot=True)
    ct = study["ct"]
    assert own.shape == (COLS, ROWS, SLICES - 2, 2)
    np.testing.assert_allclose(own.affine, ct.affine @ _shift(0, 0, 1), atol=1e-4)
    np.testing.assert_array_equal(own.array, _truth(study, "body", "lesion")[:, :, 1:-1])


def _shift(*voxels):
    out = np.eye(4)
    out[:3, 3] = voxels
    return out


def test_seg_labelmap(study):
    """A LABELMAP SEG, RLE-compressed (decoded by pydicom's handlers)."""
    assert pydicom.dcmread(study["seg_labelmap"]).file_meta.TransferSyntaxUID == RLELossless
    seg = medfast.load_seg(study["seg_labelmap"], like=study["ct"])
    assert seg.meta["SegmentationType"] == "LABELMAP"
    np.testing.assert_array_equal(seg.array, study["masks"]["body"] * 1
                                  + study["masks"]["ring"] * 2)
    onehot = medfast.load_seg(study["seg_labelmap"], like=study["ct"], onehot=True)
    np.testing.assert_array_equal(onehot.array, _truth(study, "body", "ring"))


def test_seg_fractional_threshold_and_probability(study):
    path = study["seg_fractional"]
    reference = _highdicom_frames(path, study["series"])[..., 0]
    probability = medfast.load_seg(path, like=study["ct"], fractional="probability")
    assert probability.dtype == np.float32 and probability.ndim == 3
    np.testing.assert_allclose(probability.array, reference, atol=1e-6)
    np.testing.assert_allclose(probability.array, study["probability"], atol=0.5 / 255)
    labels = medfast.load_seg(path, like=study["ct"])
    np.testing.assert_array_equal(labels.array, (reference >= 0.5 - 1e-6) & (reference > 0))
    with pytest.raises(ValueError, match="fractional must be"):
        medfast.load_seg(path, fractional="soft")


def test_seg_resampled_when_the_grids_differ(study):
    """like= a grid the frames do not lie on: the SEG's own grid resampled
    with order='label'."""
    grid = medfast.resample(study["ct"], spacing=(1.3, 1.1, 2.0))
    seg = medfast.load_seg(study["seg_labelmap"], like=grid)
    truth = medfast.Image((study["masks"]["body"] * 1 + study["masks"]["ring"] * 2)
                          .astype(np.uint8), study["ct"].affine)
    expected = medfast.resample(truth, like=grid, order="label")
    np.testing.assert_array_equal(seg.array, expected.array)
    np.testing.assert_array_equal(seg.affine, grid.affine)


# --------------------------------------------------------------------------
# finding them, and converting


def test_scan_lists_annotations_and_convert_writes_them(study, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(study["root"] / "ct", folder / "ct")
    for key in ("rtstruct", "seg_labelmap"):
        shutil.copy(study[key], folder / os.path.basename(study[key]))
    found = medfast.scan_dicom(folder)
    assert len(found) == 1 and found.skipped == []
    kinds = sorted((a.modality, a.series) for a in found.annotations)
    assert kinds == [("RTSTRUCT", found[0].name), ("SEG", found[0].name)]
    images = medfast.load_dicom_all(folder, annotations=True)
    assert [img.meta["Modality"] for img in images] == ["CT", "RTSTRUCT", "SEG"]

    plain = medfast.convert(folder, tmp_path / "plain")
    assert sorted(os.path.basename(s.path) for s in plain.skipped) == ["rs.dcm",
                                                                       "seg_labelmap.dcm"]
    result = medfast.convert(folder, tmp_path / "out", annotations=True)
    assert result.ok and not result.failed
    nifti = {os.path.basename(o.nifti): o for o in result.outputs}
    stem = os.path.basename(result[0])[:-len(".nii.gz")]
    assert set(nifti) == {stem + ".nii.gz", stem + "_seg.nii.gz", stem + "_rtstruct.nii.gz"}
    image = medfast.load(result[0])
    seg = medfast.load(tmp_path / "out" / (stem + "_seg.nii.gz"))
    np.testing.assert_allclose(seg.affine, image.affine)
    np.testing.assert_array_equal(seg.array, study["masks"]["body"] * 1
                                  + study["masks"]["ring"] * 2)
    rt = medfast.load(tmp_path / "out" / (stem + "_rtstruct.nii.gz"))
    assert rt.array.shape == (COLS, ROWS, SLICES, 3)   # overlapping ROIs: channels
    with open(tmp_path / "out" / (stem + "_rtstruct.json")) as f:
        sidecar = json.load(f)
    assert sidecar["Labels"] == {"1": "body", "2": "ring", "3": "lesion"}
    assert sidecar["AnnotationOf"] == stem + ".nii.gz"
    from medfast.cli import main
    assert main(["convert", str(folder), "-o", str(tmp_path / "cli"), "--annotations"]) == 0
    assert sorted(os.listdir(tmp_path / "cli")) == sorted(
        os.path.basename(p) for p in result.files)


# --------------------------------------------------------------------------
# PET and CT


def _pet(folder, **changes):
    """A 3-slice PET series in Bq/ml with known dose, times and weight."""
    stack = ramp(3, rows=4, cols=5, dtype=np.int16, start=100)
    drug = pydicom.Dataset()
    drug.RadionuclideTotalDose = "370000000"        # 370 MBq
    drug.RadionuclideHalfLife = "6586.2"            # F-18, s
    drug.RadiopharmaceuticalStartTime = "093000"
    fields = dict(Units="BQML", DecayCorrection="START", PatientWeight="72.5",
                  SeriesDate="20240101", SeriesTime="104512",
                  RadiopharmaceuticalInformationSequence=pydicom.Sequence([drug]))
    fields.update(changes)
    fields = {k: v for k, v in fields.items() if v is not None}
    write_series(folder, stack, stack_positions(3), modality="PT", slope=2.5, intercept=0,
                 **fields)
    return stack


def test_pet_suv_bw_against_a_hand_computation(tmp_path):
    stack = _pet(tmp_path / "pet")
    bqml = medfast.load_dicom(tmp_path / "pet")
    suv = medfast.load_dicom(tmp_path / "pet", suv="bw")
    # 1 h 15 min 12 s after injection: 4512 s of F-18 decay.
    decayed = 370e6 * 0.5 ** (4512 / 6586.2)
    factor = 72.5 * 1000 / decayed
    assert suv.meta["SUVbwScaleFactor"] == pytest.approx(factor, rel=1e-12)
    assert suv.meta["Units"] == "g/ml" and suv.meta["DecayTime"] == pytest.approx(4512)
    assert suv.dtype == np.float32
    np.testing.assert_allclose(suv.array, stack.transpose(2, 1, 0) * 2.5 * factor, rtol=1e-6)
    np.testing.assert_allclose(suv.array, bqml.array * factor, rtol=1e-6)
    result = medfast.convert(tmp_path / "pet", tmp_path / "out", suv="bw")
    with open(result.outputs[0].sidecar) as f:
        sidecar = json.load(f)
    assert sidecar["Units"] == "g/ml" and "PatientWeight" not in sidecar
    assert sidecar["SUVbwScaleFactor"] == pytest.approx(factor, rel=1e-12)
    np.testing.assert_allclose(medfast.load(result[0]).array, suv.array, rtol=1e-6)


@pytest.mark.parametrize("missing", ["PatientWeight", "RadiopharmaceuticalInformationSequence",
                                     "Units"])
def test_pet_suv_names_the_missing_tag(tmp_path, missing):
    _pet(tmp_path / "pet", **{missing: None})
    with pytest.raises(ValueError, match=f"cannot compute SUV: {missing}"):
        medfast.load_dicom(tmp_path / "pet", suv="bw")


def test_ct_scout_is_never_stacked_and_is_reported(tmp_path):
    """A localizer in the CT's own series and orientation (which dcm2niix
    would stack as one more slice) and a sagittal one: load_dicom returns
    the CT alone and names the scouts."""
    stack = ramp(4, dtype=np.int16, seed=4)
    positions = stack_positions(4)
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, stack, positions, series_uid=uid, slope=1, intercept=-1024)
    for number, (orientation, position) in enumerate(
            [(AXIAL, positions[3] + [0, 0, 40]), (SAGITTAL, positions[1])], 98):
        scout = image_dataset(ramp(1, start=9000)[0], position=position,
                              orientation=orientation, series_uid=uid, instance_number=number,
                              ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
        save(scout, tmp_path / f"scout{number}.dcm")
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, stack.transpose(2, 1, 0).astype(np.int32) - 1024)
    scouts = [p for p in img.meta["problems"] if p.startswith("localizer")]
    assert len(scouts) == 2 and all("left out" in p for p in scouts)
    # Three volumes (names as dcm2niix's for orientations: all '_i'), the
    # axial scout one of its own.
    shapes = sorted(s.shape for s in medfast.scan_dicom(tmp_path))
    assert shapes == [(8, 6, 1), (8, 6, 1), (8, 6, 4)]

"""Siemens XA split series, Siemens mosaics, United Imaging grids, colour
images and private blocks found through their creator, on synthetic DICOM.

Every case is written with pydicom (tests/dicom/synthetic.py) and checked
two ways where it can be: against what was written (numpy only), and
against dcm2niix run live on the same folder (the volumes it writes, their
voxels, affines, b-vectors and slice times, compared after both are brought
to closest-canonical RAS).  The dcm2niix checks skip when it is not
installed.
"""
import json
import math
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

import medfast
from medfast.dicom.header import read_header
from medfast.image import RGB24
from dicom_data import canonical
from synthetic import (AXIAL, CORONAL, SAGITTAL, csa2, image_dataset, lps_to_ras, normal,
                       oblique, private_block, save, save_with_private_blocks,
                       stack_positions)

OBLIQUE = oblique(20.0, -15.0, 30.0)
ORIENTATIONS = {"axial": AXIAL, "sagittal": SAGITTAL, "coronal": CORONAL, "oblique": OBLIQUE}


# --------------------------------------------------------------------------
# helpers


def _channels(array):
    """RGB24 voxels as a trailing axis of 3 bytes (other arrays unchanged)."""
    array = np.asanyarray(array)
    if array.dtype.names:
        return np.stack([array[name] for name in array.dtype.names], axis=-1)
    return array


def _canonical(array, affine):
    data, affine = canonical(array, affine)
    return _channels(data), affine


def _dcm2niix(folder, out, json_sidecar=False):
    """dcm2niix's output for `folder`: {file stem: nibabel image}."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    os.makedirs(out)
    run = subprocess.run([exe, "-z", "n", "-b", "y" if json_sidecar else "n", "-f", "%s_%p",
                          "-o", str(out), str(folder)], capture_output=True, text=True)
    return {p[:-4]: nib.load(os.path.join(out, p)) for p in sorted(os.listdir(out))
            if p.endswith(".nii")}, run


def _same(img_array, img_affine, ref):
    """Whether medfast's (array, affine) is dcm2niix's image `ref`."""
    data, affine = _canonical(img_array, img_affine)
    ref_data, ref_affine = _canonical(np.asanyarray(ref.dataobj), ref.affine)
    return (data.shape == ref_data.shape and np.array_equal(data.astype(np.int64),
                                                            ref_data.astype(np.int64))
            and np.abs(affine - ref_affine).max() < 1e-3)


def _assert_like_dcm2niix(folder, tmp_path, images=None):
    """medfast's volumes of `folder` are dcm2niix's, one for one."""
    refs, run = _dcm2niix(folder, tmp_path / "dcm2niix")
    images = medfast.load_dicom_all(folder) if images is None else images
    assert len(images) == len(refs), (run.stdout, [img.shape for img in images])
    for name, ref in refs.items():
        assert any(_same(img.array, img.affine, ref) for img in images), \
            f"dcm2niix's {name} {ref.shape} has no match: {[img.shape for img in images]}"
    return refs


def _slice_centres(shape, affine, normal_lps):
    """Distance of each slice's centre along a fixed slice normal (LPS)."""
    centre = (np.array(shape[:2]) - 1) / 2.0
    points = [affine @ [centre[0], centre[1], k, 1.0] for k in range(shape[2])]
    return [float(np.dot(lps_to_ras([p[:3]])[0], normal_lps)) for p in points]


def _times_by_position(nii, times, normal_lps):
    return sorted(zip(np.round(_slice_centres(nii.shape, nii.affine, normal_lps), 3), times))


# --------------------------------------------------------------------------
# Siemens XA classic split series (MFSPLIT)


def _xa_series(folder, *, volumes=3, slices=4, version="syngo MR XA30", series_numbers=None,
               series_times=None, acquisitions=None, study_times=None, protocol="ep2d_bold",
               first=5001, seed=0, study_uid=None, orientation=AXIAL, sequence="epfid2d1_64"):
    """Classic XA files, one series (own SeriesInstanceUID) per volume.
    Returns the stored values (volumes, slices, rows, cols) and positions."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, orientation, step=3.0)
    series_numbers = series_numbers or [first + v for v in range(volumes)]
    series_times = series_times or ["120000.000000"] * volumes
    acquisitions = acquisitions or list(range(1, volumes + 1))
    study_times = study_times or ["120000"] * volumes
    study_uid = study_uid or generate_uid()
    data = rng.integers(0, 3000, size=(volumes, slices, 6, 8)).astype(np.uint16)
    os.makedirs(folder, exist_ok=True)
    for v in range(volumes):
        uid = generate_uid()
        for k in rng.permutation(slices):
            ds = image_dataset(
                data[v, k], position=positions[k], orientation=orientation, modality="MR",
                series_uid=uid, study_uid=study_uid, series_number=series_numbers[v],
                instance_number=int(k) + 1, Manufacturer="SIEMENS", SoftwareVersions=version,
                SeriesTime=series_times[v], StudyTime=study_times[v], ProtocolName=protocol,
                ImageType=["ORIGINAL", "PRIMARY", "M", "MFSPLIT", "NONE", "MAGNITUDE"],
                AcquisitionNumber=acquisitions[v], EchoTime=30.0, RepetitionTime=2000.0,
                FlipAngle=90.0, SequenceName=sequence)
            save(ds, os.path.join(folder, f"{protocol}_{series_numbers[v]}_{k}_"
                                          f"{rng.integers(1 << 30):x}.dcm"))
    return data, positions


def _expected_4d(data, order, positions, orientation):
    """(cols, rows, slices, volumes) of `data` volumes in `order`, slices
    along the normal."""
    slice_order = np.argsort(positions @ normal(orientation))
    return np.stack([data[v][slice_order].transpose(2, 1, 0) for v in order], axis=-1)


@pytest.mark.parametrize("version", ["syngo MR XA30", "syngo MR XA60", "syngo MR XA20A"])
def test_xa_split_series_with_one_series_time_are_one_4d_series(version, tmp_path):
    data, positions = _xa_series(tmp_path / "in", version=version, volumes=4)
    images = medfast.load_dicom_all(tmp_path / "in")
    assert len(images) == 1
    img = images[0]
    np.testing.assert_array_equal(img.array, _expected_4d(data, range(4), positions, AXIAL))
    # Named after the lowest series number, as dcm2niix names it.
    assert img.meta["SeriesNumber"] == 5001
    assert img.meta["dicom_series"].startswith("5001")
    _assert_like_dcm2niix(tmp_path / "in", tmp_path)


def test_xa_split_volumes_follow_series_numbers_not_acquisition_numbers(tmp_path):
    # Series numbers given against the acquisition (and file) order.
    numbers, acquisitions = [5003, 5001, 5004, 5002], [1, 2, 3, 4]
    data, positions = _xa_series(tmp_path / "in", volumes=4, series_numbers=numbers,
                                 acquisitions=acquisitions, orientation=SAGITTAL)
    img = medfast.load_dicom(tmp_path / "in")
    order = np.argsort(numbers)
    np.testing.assert_array_equal(img.array, _expected_4d(data, order, positions, SAGITTAL))
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


@pytest.mark.parametrize("version", ["syngo MR XA30", "syngo MR XA60"])
def test_xa_split_series_with_their_own_series_times_stay_apart(version, tmp_path):
    times = ["120000.000000", "120010.000000", "120020.000000"]
    data, positions = _xa_series(tmp_path / "in", version=version, series_times=times)
    images = medfast.load_dicom_all(tmp_path / "in")
    assert sorted(img.shape for img in images) == [(8, 6, 4)] * 3
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


def test_xa_protocols_sharing_a_series_time_do_not_merge(tmp_path):
    _xa_series(tmp_path / "in", volumes=2, protocol="ep2d_bold", first=5001, seed=1)
    _xa_series(tmp_path / "in", volumes=3, protocol="ep2d_asl", first=6001, seed=2)
    images = medfast.load_dicom_all(tmp_path / "in")
    assert sorted(img.shape for img in images) == [(8, 6, 4, 2), (8, 6, 4, 3)]
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


def test_series_time_grouping_is_for_xa_software_only(tmp_path):
    # The same files from VE11 software: series UIDs keep them apart.
    _xa_series(tmp_path / "in", version="syngo MR E11")
    images = medfast.load_dicom_all(tmp_path / "in")
    assert len(images) == 3
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


@pytest.mark.parametrize("version, merged", [("syngo MR XA30", True), ("syngo MR XA60", False)])
def test_xa_split_series_study_time(version, merged, tmp_path):
    # XA10-XA31 (dcm2niix's isXA10A) trust the study UID over differing
    # study times (issue 236); later XA versions do not.
    _xa_series(tmp_path / "in", version=version,
               study_times=["120000", "120100", "120200"])
    images = medfast.load_dicom_all(tmp_path / "in")
    assert len(images) == (1 if merged else 3)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


def test_xa_classic_images_are_numbered_like_dcm2niix(tmp_path):
    # Scouts in three orientations: one volume each, told apart by
    # instance number plus series number x 1000, as dcm2niix names them.
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(tmp_path / "in")
    for i, orientation in enumerate([AXIAL, SAGITTAL, CORONAL]):
        ds = image_dataset(
            np.arange(48, dtype=np.uint16).reshape(6, 8) + i, position=(0.0, 0.0, i),
            orientation=orientation, modality="MR", series_uid=series_uid,
            study_uid=study_uid, series_number=2001, instance_number=i + 1,
            Manufacturer="SIEMENS", SoftwareVersions="syngo MR XA30",
            SeriesTime="120000.000000", ProtocolName="AAHead_Scout",
            ImageType=["DERIVED", "PRIMARY", "MPR"], EchoTime=3.0, RepetitionTime=8.0,
            FlipAngle=20.0)
        save(ds, tmp_path / "in" / f"{i}.dcm")
    result = medfast.convert(tmp_path / "in", tmp_path / "ours", pattern="%s_%p",
                             compress=False)
    names = sorted(os.path.basename(o.nifti)[:-4] for o in result.outputs)
    assert names == [f"2001_AAHead_Scout_i200100{i}" for i in (1, 2, 3)]
    refs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref")
    assert sorted(refs) == names


@pytest.mark.parametrize("version, merged", [("syngo MR E11", True), ("syngo MR XA30", False)])
def test_siemens_dynamic_contrast_series_merge_by_protocol(version, merged, tmp_path):
    # fldyn3d1 (issue 252): one series per time point, own series UID and
    # time, merged by protocol name; XA10-XA31 keep them apart.
    times = ["120000.000000", "120100.000000", "120200.000000"]
    numbers = [12, 10, 11]
    data, positions = _xa_series(tmp_path / "in", version=version, series_times=times,
                                 series_numbers=numbers, protocol="t1_fl3d_dyn",
                                 sequence="*fldyn3d1")
    images = medfast.load_dicom_all(tmp_path / "in")
    if merged:
        assert len(images) == 1
        np.testing.assert_array_equal(
            images[0].array, _expected_4d(data, np.argsort(numbers), positions, AXIAL))
    else:
        assert len(images) == 3
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


# --------------------------------------------------------------------------
# Siemens mosaics: slice normal along or against row x column


def _mosaic_series(folder, *, n=5, tile=(4, 6), orientation=AXIAL, origin=(-10.0, -20.0, 30.0),
                   gap=3.0, against=False, volumes=2, times=None, csa_blocks=None, seed=0,
                   spacing=(1.5, 1.25), csa_normal=True):
    """Siemens mosaics (one file per volume) whose CSA SliceNormalVector
    (left out unless `csa_normal`) points along or `against` row x column;
    tile k lies k * gap along it from `origin`.  `csa_blocks(csa_bytes)` gives the private blocks of
    group 0029 (default: the CSA header at (0029,0010)).  Returns the
    stored tiles (volumes, n, rows, cols), their positions and the CSA
    slice times (ms)."""
    rng = np.random.default_rng(seed)
    grid = math.ceil(math.sqrt(n))
    o = np.asarray(orientation, dtype=float)
    slice_normal = normal(orientation) * (-1.0 if against else 1.0)
    positions = np.asarray(origin) + np.arange(n)[:, None] * gap * slice_normal
    data = rng.integers(0, 3000, size=(volumes, n) + tile).astype(np.uint16)
    rows, cols = grid * tile[0], grid * tile[1]
    # Siemens gives the position of the whole tiled image's corner.
    corner = positions[0] - (o[:3] * spacing[1] * (cols - tile[1]) / 2
                             + o[3:] * spacing[0] * (rows - tile[0]) / 2)
    times = [float(t) for t in (rng.permutation(n) * 80.0 if times is None else times)]
    tags = {"NumberOfImagesInMosaic": [n], "SliceNormalVector": list(slice_normal),
            "MosaicRefAcqTimes": times}
    if not csa_normal:
        del tags["SliceNormalVector"]
    csa = csa2(tags)
    blocks = (csa_blocks or (lambda raw: [private_block(0x0029, 0x10, "SIEMENS CSA HEADER",
                                                        {0x10: ("OB", raw)})]))(csa)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(folder, exist_ok=True)
    for v in range(volumes):
        image = np.zeros((rows, cols), np.uint16)
        for k in range(n):
            r, c = divmod(k, grid)
            image[r * tile[0]:(r + 1) * tile[0], c * tile[1]:(c + 1) * tile[1]] = data[v, k]
        ds = image_dataset(
            image, position=corner, orientation=orientation, pixel_spacing=spacing,
            modality="MR", series_uid=series_uid, study_uid=study_uid, series_number=4,
            instance_number=v + 1, Manufacturer="SIEMENS", SoftwareVersions="syngo MR E11",
            ProtocolName="ep2d_bold", ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"],
            AcquisitionNumber=v + 1, EchoTime=30.0, RepetitionTime=2000.0, FlipAngle=90.0,
            SpacingBetweenSlices=gap, slice_thickness=gap, MRAcquisitionType="2D")
        save_with_private_blocks(ds, os.path.join(folder, f"mosaic{v}.dcm"), blocks)
    return data, positions, times


def _expected_mosaic(data, orientation, positions, spacing=(1.5, 1.25)):
    """medfast's array and RAS affine of the tiles, in tile order (the
    slice axis along the CSA normal)."""
    array = np.stack([volume.transpose(2, 1, 0) for volume in data], axis=-1)
    o = np.asarray(orientation, dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = o[:3] * spacing[1]
    lps[:3, 1] = o[3:] * spacing[0]
    lps[:3, 2] = positions[1] - positions[0]
    lps[:3, 3] = positions[0]
    return array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


@pytest.mark.parametrize("name", list(ORIENTATIONS))
@pytest.mark.parametrize("against", [False, True], ids=["F>>H", "H>>F"])
@pytest.mark.parametrize("n", [5, 9])
def test_mosaic_slice_normal_against_row_cross_column(name, against, n, tmp_path):
    orientation = ORIENTATIONS[name]
    data, positions, _ = _mosaic_series(
        tmp_path / "in", n=n, orientation=orientation, against=against)
    img = medfast.load_dicom(tmp_path / "in")
    array, affine = _expected_mosaic(data, orientation, positions)
    ours, ours_affine = canonical(img.array, img.affine)
    want, want_affine = canonical(array, affine)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_allclose(ours_affine, want_affine, atol=1e-6)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


@pytest.mark.parametrize("orientation", [(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), SAGITTAL,
                                         oblique(170.0, 10.0, 5.0)],
                         ids=["row x column to the feet", "sagittal", "oblique"])
def test_mosaic_without_slice_normal_is_numbered_foot_to_head(orientation, tmp_path):
    # No SliceNormalVector in the CSA header: Siemens' default numbering
    # (foot to head), as dcm2niix assumes.
    data, positions, _ = _mosaic_series(tmp_path / "in", orientation=orientation,
                                        csa_normal=False)
    img = medfast.load_dicom(tmp_path / "in")
    cross = normal(orientation)
    step = cross if cross[2] >= 0 else -cross
    array, affine = _expected_mosaic(data, orientation, positions[0] + np.outer(
        np.arange(len(positions)), 3.0 * step))
    ours, ours_affine = canonical(img.array, img.affine)
    want, want_affine = canonical(array, affine)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_allclose(ours_affine, want_affine, atol=1e-6)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


@pytest.mark.parametrize("against", [False, True], ids=["F>>H", "H>>F"])
@pytest.mark.parametrize("name", ["axial", "sagittal"])
def test_mosaic_slice_times_follow_the_slices(against, name, tmp_path):
    orientation = ORIENTATIONS[name]
    times = [0.0, 400.0, 100.0, 300.0, 200.0]
    _, positions, _ = _mosaic_series(
        tmp_path / "in", orientation=orientation, against=against, times=times)
    medfast.convert(tmp_path / "in", tmp_path / "ours", pattern="%s_%p", compress=False)
    ours = nib.load(tmp_path / "ours" / "4_ep2d_bold.nii")
    timing = json.loads((tmp_path / "ours" / "4_ep2d_bold.json").read_text())["SliceTiming"]
    fixed = normal(orientation)
    # Each slice's time is the CSA time of its tile, wherever it lies.
    tile_at = {round(float(np.dot(p, fixed)), 3): k for k, p in enumerate(positions)}
    for distance, time in _times_by_position(ours, timing, fixed):
        assert time == pytest.approx(times[tile_at[distance]] / 1000.0)
    refs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref", json_sidecar=True)
    ref = refs["4_ep2d_bold"]
    ref_timing = json.loads((tmp_path / "ref" / "4_ep2d_bold.json").read_text())["SliceTiming"]
    np.testing.assert_allclose(_times_by_position(ours, timing, fixed),
                               _times_by_position(ref, ref_timing, fixed), atol=1e-6)


# --------------------------------------------------------------------------
# Private blocks found through their creator


def _header_with(tmp_path, blocks, name="blocks.dcm"):
    ds = image_dataset(np.zeros((4, 4), np.uint16), position=(0, 0, 0), modality="MR")
    return read_header(save_with_private_blocks(ds, tmp_path / name, blocks)).top


def test_private_block_reserved_twice_gives_each_creator_its_elements(tmp_path):
    # An Agfa PACS moved 'SIEMENS MR SDI 02' from (0021,11xx) onto the
    # block of 'SIEMENS MR SDS 01': (0021,1004) is then two elements.
    sds = private_block(0x0021, 0x10, "SIEMENS MR SDS 01", {0x04: ("DS", "1")})
    sdi = private_block(0x0021, 0x10, "SIEMENS MR SDI 02",
                        {0x04: ("DS", "0.0975"), 0x53: ("FD", 12.5)})
    header = _header_with(tmp_path, [sds, sdi])
    assert header.private(0x0021, "SIEMENS MR SDS 01", 0x04) == pytest.approx(1.0)
    assert header.private(0x0021, "SIEMENS MR SDI 02", 0x04) == pytest.approx(0.0975)
    assert header.private(0x0021, "SIEMENS MR SDI 02", 0x53) == pytest.approx(12.5)
    # The element of the first creator that the second does not repeat is
    # not the second's.
    assert header.private(0x0021, "SIEMENS MR SDS 01", 0x53) is None
    # Reversed: the block taken over by SDS.
    header = _header_with(tmp_path, [sdi, sds], "reversed.dcm")
    assert header.private(0x0021, "SIEMENS MR SDS 01", 0x04) == pytest.approx(1.0)
    assert header.private(0x0021, "SIEMENS MR SDI 02", 0x04) == pytest.approx(0.0975)


@pytest.mark.parametrize("slot", [0x10, 0x11, 0x4F, 0xFF])
def test_private_element_found_in_any_block(slot, tmp_path):
    block = private_block(0x0019, slot, " Siemens MR Header\0", {0x28: ("FD", 7.25)})
    other = private_block(0x0019, 0x10 if slot != 0x10 else 0x12, "SIEMENS MEDCOM OOG",
                          {0x28: ("FD", 99.0)})
    header = _header_with(tmp_path, [other, block] if slot > 0x10 else [block, other])
    assert header.private(0x0019, "SIEMENS MR HEADER", 0x28) == pytest.approx(7.25)
    assert header.private(0x0019, "SIEMENS MEDCOM OOG", 0x28) == pytest.approx(99.0)
    assert header.private(0x0019, "NOT THERE", 0x28) is None


def _csa_elsewhere(raw):
    # The CSA header in the second block, a foreign creator's element at
    # (0029,1010), where the CSA image header usually is.
    return [private_block(0x0029, 0x10, "SIEMENS MEDCOM HEADER2", {0x10: ("OB", b"JUNK" * 8)}),
            private_block(0x0029, 0x11, "SIEMENS CSA HEADER", {0x10: ("OB", raw)})]


def _csa_agfa(raw):
    # Two creators reserve (0029,0010) one after the other, the CSA header
    # last (each block's elements follow its creator).
    return [private_block(0x0029, 0x10, "SIEMENS MEDCOM HEADER2", {0x10: ("OB", b"JUNK" * 8)}),
            private_block(0x0029, 0x10, "SIEMENS CSA HEADER", {0x10: ("OB", raw)})]


def _csa_agfa_first(raw):
    return [private_block(0x0029, 0x10, "SIEMENS CSA HEADER", {0x10: ("OB", raw)}),
            private_block(0x0029, 0x10, "SIEMENS MEDCOM HEADER2", {0x10: ("OB", b"JUNK" * 8)})]


@pytest.mark.parametrize("blocks", [_csa_elsewhere, _csa_agfa, _csa_agfa_first])
def test_mosaic_with_the_csa_header_in_another_block(blocks, tmp_path):
    # The number of tiles and the slice normal come from the CSA header
    # only (no (0019,xx0A)): read through its creator, the mosaic is
    # de-tiled and oriented as when the header is where Siemens puts it.
    data, positions, times = _mosaic_series(
        tmp_path / "in", n=6, orientation=SAGITTAL, against=True, csa_blocks=blocks)
    img = medfast.load_dicom(tmp_path / "in")
    array, affine = _expected_mosaic(data, SAGITTAL, positions)
    ours, ours_affine = canonical(img.array, img.affine)
    want, want_affine = canonical(array, affine)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_allclose(ours_affine, want_affine, atol=1e-6)
    assert sorted(img.meta["SliceTiming"]) == pytest.approx(sorted(t / 1000 for t in times))
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


def test_sidecar_reads_siemens_private_values_through_their_creator(tmp_path):
    # BandwidthPerPixelPhaseEncode (0019,xx28) of 'SIEMENS MR HEADER',
    # its block reserved after another creator's (0019,1028).
    ds = image_dataset(np.arange(48, dtype=np.uint16).reshape(6, 8), position=(0, 0, 0),
                       modality="MR", Manufacturer="SIEMENS", ProtocolName="epi",
                       InPlanePhaseEncodingDirection="COL", EchoTime=30.0,
                       RepetitionTime=2000.0)
    blocks = [private_block(0x0019, 0x10, "SIEMENS MEDCOM OOG", {0x28: ("FD", 999.0)}),
              private_block(0x0019, 0x10, "SIEMENS MR HEADER", {0x28: ("FD", 25.5)})]
    save_with_private_blocks(ds, tmp_path / "in.dcm", blocks)
    img = medfast.load_dicom(tmp_path / "in.dcm")
    assert img.meta["BandwidthPerPixelPhaseEncode"] == pytest.approx(25.5)


# --------------------------------------------------------------------------
# United Imaging grids


def _uih_grid(folder, *, n=5, tile=(4, 6), orientation=AXIAL, origin=(-10.0, -20.0, 30.0),
              gap=3.0, descending=False, volumes=2, seed=0, spacing=(1.5, 1.25),
              between=None, thickness=3.0, top_position=True, frames=True, slot=0x10,
              vframe=True, manufacturer="UIH", slice_count=None):
    """UIH grid files, one per volume: `n` tiles `gap` apart along row x
    column (against it when `descending`), tile k at row k // columns and
    column k % columns of a ceil(sqrt(n))-column grid.  Each slice's
    position and time in the private sequence (0065,xx51) when `frames`.
    Returns the stored tiles (volumes, n, rows, cols) and positions."""
    rng = np.random.default_rng(seed)
    across = math.ceil(math.sqrt(n))
    down = math.ceil(n / across)
    direction = normal(orientation) * (-1.0 if descending else 1.0)
    positions = np.asarray(origin) + np.arange(n)[:, None] * gap * direction
    data = rng.integers(0, 3000, size=(volumes, n) + tile).astype(np.uint16)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(folder, exist_ok=True)
    for v in range(volumes):
        image = np.zeros((down * tile[0], across * tile[1]), np.uint16)
        for k in range(n):
            r, c = divmod(k, across)
            image[r * tile[0]:(r + 1) * tile[0], c * tile[1]:(c + 1) * tile[1]] = data[v, k]
        extra = {} if between is None else {"SpacingBetweenSlices": between}
        ds = image_dataset(
            image, position=positions[0] if top_position else None, orientation=orientation,
            pixel_spacing=spacing, modality="MR", series_uid=series_uid, study_uid=study_uid,
            series_number=3, instance_number=v + 1, Manufacturer=manufacturer,
            ProtocolName="epi_grid", slice_thickness=thickness,
            ImageType=["ORIGINAL", "PRIMARY", "M"] + (["VFRAME"] if vframe else [])
            + ["MAGNITUDE"], AcquisitionNumber=v + 1, EchoTime=30.0, RepetitionTime=2000.0,
            FlipAngle=90.0, MRAcquisitionType="2D", **extra)
        ds.add_new((0x0065, slot), "LO", "Image Private Header")
        ds.add_new((0x0065, (slot << 8) | 0x50), "DS", str(slice_count or n))
        if frames:
            items = []
            for k in range(n):
                item = Dataset()
                item.ImagePositionPatient = [float(x) for x in positions[k]]
                item.AcquisitionTime = f"1200{10 + v:02d}.{k * 125:03d}"
                items.append(item)
            ds.add_new((0x0065, (slot << 8) | 0x51), "SQ", items)
        save(ds, os.path.join(folder, f"grid{v}.dcm"))
    return data, positions


def _expected_grid(data, orientation, origin, step, spacing=(1.5, 1.25)):
    """The tiles in tile order, slices `step` (a signed vector) apart."""
    array = np.stack([volume.transpose(2, 1, 0) for volume in data], axis=-1)
    o = np.asarray(orientation, dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = o[:3] * spacing[1]
    lps[:3, 1] = o[3:] * spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


@pytest.mark.parametrize("n", [2, 5, 6, 9, 10, 12])
def test_uih_grid_layout(n, tmp_path):
    # ceil(sqrt(n)) columns, ceil(n / columns) rows (5 -> 3 x 2), filled
    # row by row; the trailing tiles of the grid are empty.
    data, positions = _uih_grid(tmp_path / "in", n=n)
    img = medfast.load_dicom(tmp_path / "in")
    array, affine = _expected_grid(data, AXIAL, positions[0], positions[1] - positions[0])
    np.testing.assert_array_equal(img.array, array)
    np.testing.assert_allclose(img.affine, affine, atol=1e-6)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


@pytest.mark.parametrize("name", list(ORIENTATIONS))
@pytest.mark.parametrize("descending", [False, True])
def test_uih_grid_geometry(name, descending, tmp_path):
    # Descending grids (the last slice's position against row x column)
    # have their slices the other way: the same voxels in space.
    orientation = ORIENTATIONS[name]
    data, positions = _uih_grid(tmp_path / "in", n=6, orientation=orientation,
                                descending=descending)
    img = medfast.load_dicom(tmp_path / "in")
    array, affine = _expected_grid(data, orientation, positions[0], positions[1] - positions[0])
    ours, ours_affine = canonical(img.array, img.affine)
    want, want_affine = canonical(array, affine)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_allclose(ours_affine, want_affine, atol=1e-6)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


@pytest.mark.parametrize("case", [
    dict(between=4.0),                 # SpacingBetweenSlices, not the frames' positions
    dict(thickness=2.0),               # else SliceThickness
    dict(top_position=False),          # the first frame's position as the origin
    dict(frames=False),                # no per-slice positions: along row x column
    dict(frames=False, orientation="sagittal"),   # ... or dcm2niix's guess against it
    dict(frames=False, top_position=False),     # no position at all: a placeholder
    dict(frames=False, top_position=False, orientation="sagittal", n=7),
    dict(descending=True, orientation="coronal", top_position=False),
    dict(vframe=False),                # VFRAME plays no part
    dict(volumes=1, n=2),
], ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()))
def test_uih_grid_variants_like_dcm2niix(case, tmp_path):
    case = dict(case)
    orientation = ORIENTATIONS[case.pop("orientation", "axial")]
    _uih_grid(tmp_path / "in", orientation=orientation, **case)
    images = medfast.load_dicom_all(tmp_path / "in")
    assert len(images) == 1
    n = case.get("n", 5)
    assert images[0].shape[2] == n
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, images)


def test_uih_grid_without_position_is_stacked_with_a_placeholder(tmp_path):
    data, _ = _uih_grid(tmp_path / "in", frames=False, top_position=False)
    img = medfast.load_dicom(tmp_path / "in")
    # Without a position, rows are in dcm2niix's order (last row first).
    np.testing.assert_array_equal(img.array, np.stack(
        [volume.transpose(2, 1, 0)[:, ::-1] for volume in data], axis=-1))
    assert any("placeholder" in p for p in img.meta["problems"])


def test_uih_slice_count_makes_a_grid(tmp_path):
    # Without (0065,xx50), or from another vendor, a VFRAME image is one
    # 2-D image (dcm2niix does the same).
    for where, kwargs in (("one", dict(slice_count=1)), ("siemens", dict(manufacturer="SIEMENS"))):
        _uih_grid(tmp_path / where, volumes=1, **kwargs)
        img = medfast.load_dicom(tmp_path / where)
        assert img.shape == (18, 8, 1)
        _assert_like_dcm2niix(tmp_path / where, tmp_path / f"ref_{where}", [img])


def test_uih_grid_creator_in_another_block(tmp_path):
    # Found through its creator wherever the block is (dcm2niix does not
    # remap this creator, so it is not compared here).
    data, positions = _uih_grid(tmp_path / "in", slot=0x13, n=9, orientation=OBLIQUE)
    img = medfast.load_dicom(tmp_path / "in")
    array, affine = _expected_grid(data, OBLIQUE, positions[0], positions[1] - positions[0])
    np.testing.assert_array_equal(img.array, array)
    np.testing.assert_allclose(img.affine, affine, atol=1e-6)


@pytest.mark.parametrize("descending", [False, True])
def test_uih_grid_slice_times(descending, tmp_path):
    _, positions = _uih_grid(tmp_path / "in", descending=descending)
    medfast.convert(tmp_path / "in", tmp_path / "ours", pattern="%s_%p", compress=False)
    ours = nib.load(tmp_path / "ours" / "3_epi_grid.nii")
    timing = json.loads((tmp_path / "ours" / "3_epi_grid.json").read_text())["SliceTiming"]
    fixed = normal(AXIAL)
    # Tile k was acquired at k * 0.125 s.
    for distance, time in _times_by_position(ours, timing, fixed):
        k = int(np.argmin(np.abs(positions @ fixed - distance)))
        assert time == pytest.approx(0.125 * k)
    refs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref", json_sidecar=True)
    ref_timing = json.loads((tmp_path / "ref" / "3_epi_grid.json").read_text())["SliceTiming"]
    # dcm2niix keeps times of day in float32 (2 ms steps here).
    np.testing.assert_allclose(_times_by_position(ours, timing, fixed),
                               _times_by_position(refs["3_epi_grid"], ref_timing, fixed),
                               atol=5e-3)


UIH_TABLE = [(0.0, (0.0, 0.0, 0.0)), (1000.0, (0.6, 0.8, 0.0)), (1000.0, (0.0, -0.6, 0.8)),
             (1.25, (0.0, 0.0, 0.0)), (500.0, (-0.48, 0.6, 0.64))]


def _uih_dwi(folder, orientation, slices=4, seed=0):
    """UIH diffusion, one file per slice: b-value (0065,1009), gradient
    (0065,1037) in the image's axes; (0018,9087)/(0018,9089) hold other
    values that must be ignored."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, orientation, step=3.0)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(folder, exist_ok=True)
    instance = 0
    for b, g in UIH_TABLE:
        for k in range(slices):
            instance += 1
            ds = image_dataset(
                rng.integers(0, 3000, size=(6, 8)).astype(np.uint16), position=positions[k],
                orientation=orientation, modality="MR", series_uid=series_uid,
                study_uid=study_uid, series_number=12, instance_number=instance,
                Manufacturer="UIH", ProtocolName="dti_tra", SpacingBetweenSlices=3.0,
                ImageType=["ORIGINAL", "PRIMARY", "M", "VFRAME", "MAGNITUDE"],
                PatientPosition="HFS", EchoTime=80.0, RepetitionTime=5000.0, FlipAngle=90.0,
                DiffusionBValue=b + 7.0, DiffusionGradientOrientation=[1.0, 0.0, 0.0])
            ds.add_new((0x0065, 0x0010), "LO", "Image Private Header")
            ds.add_new((0x0065, 0x1009), "FD", b)
            ds.add_new((0x0065, 0x1037), "FD", list(g))
            save(ds, os.path.join(folder, f"slice{instance:03d}.dcm"))


def _bvecs_in_patient_space(bvecs, affine):
    """FSL bvecs -> unit vectors in the image's RAS space (so two writers
    that store the voxels differently can be compared)."""
    v = np.array(bvecs, dtype=float)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return v @ axes.T


@pytest.mark.parametrize("name", ["axial", "sagittal", "oblique"])
def test_uih_diffusion(name, tmp_path):
    orientation = ORIENTATIONS[name]
    _uih_dwi(tmp_path / "in", orientation)
    img = medfast.load_dicom(tmp_path / "in")
    assert img.shape == (8, 6, 4, len(UIH_TABLE))
    assert img.meta["bvals"] == pytest.approx([b for b, _ in UIH_TABLE])
    # The gradient is in the image's axes (row, column, row x column).
    o = np.asarray(orientation, dtype=float)
    axes_lps = np.stack([o[:3], o[3:], normal(orientation)], axis=1)
    want = np.array([axes_lps @ g for _, g in UIH_TABLE]) * [-1.0, -1.0, 1.0]
    np.testing.assert_allclose(_bvecs_in_patient_space(img.meta["bvecs"], img.affine), want,
                               atol=1e-6)
    refs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref", json_sidecar=True)
    ref = refs["12_dti_tra"]
    assert _same(img.array, img.affine, ref)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "ref" / "12_dti_tra.bval"),
                               img.meta["bvals"])
    ref_bvecs = np.loadtxt(tmp_path / "ref" / "12_dti_tra.bvec").T
    np.testing.assert_allclose(_bvecs_in_patient_space(img.meta["bvecs"], img.affine),
                               _bvecs_in_patient_space(ref_bvecs, ref.affine), atol=1e-5)


# --------------------------------------------------------------------------
# Colour


def _colour_series(folder, *, n=3, rows=6, cols=8, planar=0, photometric="RGB",
                   syntax=ExplicitVRLittleEndian, bits=8, position=True, orientation=AXIAL,
                   seed=0):
    """An 8-bit (or `bits`) colour series, one file per slice.  Returns the
    stored samples (n, rows, cols, 3) and the positions."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(np.uint8 if bits == 8 else np.uint16)
    data = rng.integers(0, 256 if bits == 8 else 4096, size=(n, rows, cols, 3)).astype(dtype)
    positions = stack_positions(n, orientation, step=2.5)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
        ds = image_dataset(
            np.zeros((rows, cols), dtype), position=positions[k] if position else None,
            orientation=orientation, modality="MR", series_uid=series_uid,
            study_uid=study_uid, series_number=14, instance_number=k + 1,
            Manufacturer="SIEMENS", ProtocolName="colour_fa",
            ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "FA"])
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = photometric
        ds.PlanarConfiguration = planar
        stored = data[k].transpose(2, 0, 1) if planar else data[k]
        ds.PixelData = np.ascontiguousarray(stored, dtype.newbyteorder("<")).tobytes()
        path = os.path.join(folder, f"colour{k}.dcm")
        if syntax in (RLELossless, JPEG2000Lossless):
            ds.compress(syntax, data[k], generate_instance_uid=False)
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
        else:
            save(ds, path, syntax)
    return data, positions


def _ybr_to_rgb(ybr):
    """dcm2niix's YBR_FULL -> RGB (float32 arithmetic, rounded, clipped)."""
    y, cb, cr = (ybr[..., i].astype(np.float32) - [0, 128, 128][i] for i in range(3))
    rgb = np.stack([y + np.float32(1.402) * cr,
                    y - np.float32(0.344136) * cb - np.float32(0.714136) * cr,
                    y + np.float32(1.772) * cb], axis=-1)
    return np.clip(np.trunc(rgb + np.float32(0.5)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("case", [
    dict(),
    dict(planar=1),
    dict(photometric="YBR_FULL"),
    dict(photometric="YBR_FULL", planar=1, orientation="sagittal"),
    dict(syntax=RLELossless),
    dict(syntax=RLELossless, photometric="YBR_FULL"),  # RLE's YCbCr is kept as it is
    dict(syntax=JPEG2000Lossless, rows=32, cols=40, orientation="oblique"),
], ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()) or "rgb")
def test_colour_series(case, tmp_path):
    case = dict(case)
    orientation = ORIENTATIONS[case.pop("orientation", "axial")]
    data, positions = _colour_series(tmp_path / "in", orientation=orientation, **case)
    img = medfast.load_dicom(tmp_path / "in")
    assert img.array.dtype == RGB24
    order = np.argsort(positions @ normal(orientation))
    want = data[order]
    if case.get("photometric") == "YBR_FULL" and case.get("syntax") != RLELossless:
        want = _ybr_to_rgb(want)
    np.testing.assert_array_equal(_channels(img.array), want.transpose(2, 1, 0, 3))
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


def test_colour_conversion_writes_rgb24_nifti_like_dcm2niix(tmp_path):
    _colour_series(tmp_path / "in", planar=1, orientation=OBLIQUE)
    result = medfast.convert(tmp_path / "in", tmp_path / "ours", pattern="%s_%p",
                             compress=False)
    ours = nib.load(result.outputs[0].nifti)
    assert ours.header["datatype"] == 128 and ours.header["bitpix"] == 24
    refs, _ = _dcm2niix(tmp_path / "in", tmp_path / "ref")
    ref = refs["14_colour_fa"]
    assert _same(np.asanyarray(ours.dataobj), ours.affine, ref)
    back = medfast.load(result.outputs[0].nifti)
    assert back.array.dtype == RGB24


def test_colour_of_16_bits_is_refused_with_a_reason(tmp_path):
    _colour_series(tmp_path / "in", bits=16)
    found = medfast.scan_dicom(tmp_path / "in")
    assert len(found) == 0
    assert found.skipped and all("16 bits" in s.reason for s in found.skipped)
    refs, run = _dcm2niix(tmp_path / "in", tmp_path / "ref")
    assert refs == {}  # dcm2niix: 'Unsupported DICOM bit-depth 16 with 3 samples per pixel'


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("orientation", ["none", "sagittal"])
def test_colour_secondary_capture_without_position(n, orientation, tmp_path):
    # No ImagePositionPatient: stacked in instance order with dcm2niix's
    # placeholder geometry (voxel sizes, centred), the slice order reversed
    # when row x column points against (1, 1, 1).
    data, _ = _colour_series(tmp_path / "in", n=n, position=False)
    if orientation != "none":
        for name in os.listdir(tmp_path / "in"):
            ds = pydicom.dcmread(tmp_path / "in" / name)
            ds.ImageOrientationPatient = list(SAGITTAL)
            ds.save_as(tmp_path / "in" / name)
    img = medfast.load_dicom(tmp_path / "in")
    want = data[::-1] if orientation == "sagittal" else data
    # Without a position, rows are in dcm2niix's order (last row first).
    np.testing.assert_array_equal(_channels(img.array), want[:, ::-1].transpose(2, 1, 0, 3))
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


def _multiframe(folder, *, frames=4, files=1, orientation=AXIAL, position=True, colour=False,
                syntax=ExplicitVRLittleEndian, seed=0):
    """Multi-frame files without functional groups (cine, secondary
    captures).  Returns the stored frames (files, frames, rows, cols[, 3])."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if colour else np.uint16
    data = rng.integers(0, 256, size=(files, frames, 6, 8) + ((3,) if colour else ())
                        ).astype(dtype)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(folder, exist_ok=True)
    for f in range(files):
        ds = image_dataset(np.zeros((6, 8), dtype), position=(1.0, 2.0, 3.0) if position else None,
                           orientation=orientation, modality="OT", series_uid=series_uid,
                           study_uid=study_uid, series_number=5, instance_number=f + 1)
        ds.NumberOfFrames = frames
        if colour:
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
            ds.PlanarConfiguration = 0
        ds.PixelData = data[f].tobytes()
        path = os.path.join(folder, f"frames{f}.dcm")
        if syntax == RLELossless:
            ds.compress(syntax, data[f], generate_instance_uid=False)
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
        else:
            save(ds, path)
    return data


@pytest.mark.parametrize("case", [
    dict(),
    dict(orientation="sagittal"),      # dcm2niix's guess: against row x column
    dict(orientation="oblique", files=3),  # files of frames: a 4-D series
    dict(position=False, orientation="sagittal"),
    dict(colour=True, syntax=RLELossless),
    dict(colour=True, position=False),
], ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()) or "grey")
def test_multiframe_files_without_functional_groups(case, tmp_path):
    # Every frame is a slice, the frames of each file a volume; without a
    # position, slices against row x column are stored the other way.
    case = dict(case)
    orientation = ORIENTATIONS[case.pop("orientation", "axial")]
    data = _multiframe(tmp_path / "in", orientation=orientation, **case)
    img = medfast.load_dicom(tmp_path / "in")
    want = data.transpose((3, 2, 1, 0) + ((4,) if data.ndim == 5 else ()))
    if not case.get("position", True):
        want = want[:, ::-1]  # rows in dcm2niix's order, as it has no place for them
        if np.sum(normal(orientation)) < 0:
            want = want[:, :, ::-1]
    if not case.get("files"):
        want = want[:, :, :, 0]
    np.testing.assert_array_equal(_channels(img.array), want)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])


def test_data_set_encoded_against_its_transfer_syntax(tmp_path):
    # The file meta says explicit VR, the data set is implicit VR (some
    # secondary captures): read as written, as pydicom and dcm2niix do.
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import correct_ambiguous_vr, write_dataset, write_file_meta_info

    pixels = np.arange(48, dtype=np.uint16).reshape(6, 8)
    ds = correct_ambiguous_vr(image_dataset(pixels, position=(0, 0, 0), modality="MR"), True)
    meta, body = DicomBytesIO(), DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    body.is_little_endian, body.is_implicit_VR = True, True
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    write_dataset(body, ds)
    os.makedirs(tmp_path / "in")
    (tmp_path / "in" / "sc.dcm").write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue()
                                              + body.getvalue())
    img = medfast.load_dicom(tmp_path / "in")
    np.testing.assert_array_equal(img.array[..., 0], pixels.T)
    _assert_like_dcm2niix(tmp_path / "in", tmp_path, [img])

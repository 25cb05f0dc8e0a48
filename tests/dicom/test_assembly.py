"""Series assembly on synthetic DICOM (issue 4): grouping and splitting,
slice order, 4-D, gaps, the affine, rescaling, vendor scaling, gantry tilt,
transfer syntaxes and objects that are not volumes.

Every expectation is computed independently of medfast: numpy on the arrays
that were written (tests/dicom/synthetic.py), the hand-built LPS matrix,
nibabel (its DICOM wrapper's affine, ``as_closest_canonical``), pydicom's
``pixel_array``, scipy's ``map_coordinates`` and, for a few cases, dcm2niix
run on the same folders.
"""
import gzip
import shutil
import subprocess
import warnings

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000Lossless, RLELossless, generate_uid)

import medfast
from strategies import examples
from synthetic import (AXIAL, CORONAL, SAGITTAL, add_philips_scale_slope, expected_array,
                       image_dataset, lps_to_ras, non_image_dataset,
                       oblique, ramp, ras_affine, save, sort_order, stack_positions,
                       write_series)

OBLIQUE = oblique(20.0, -15.0, 30.0)
ORIENTATIONS = {"axial": AXIAL, "sagittal": SAGITTAL, "coronal": CORONAL, "oblique": OBLIQUE}


# --------------------------------------------------------------------------
# helpers


def _problems(img):
    return img.meta.get("problems", [])


def _message_line_count(exc):
    return len(str(exc.value).strip().splitlines())


def _canonical(array, affine):
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array), affine))
    return np.asanyarray(img.dataobj), img.affine


def _dcm2niix(folder, out):
    """dcm2niix's volumes for `folder`, as (array, affine) in closest
    canonical RAS."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    out.mkdir()
    run = subprocess.run([exe, "-z", "n", "-b", "n", "-f", "%s_%p", "-o", str(out), str(folder)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    refs = sorted(out.glob("*.nii"))
    assert refs, run.stdout
    return [(ref.name, _canonical(np.asanyarray(nib.load(ref).dataobj), nib.load(ref).affine))
            for ref in refs]


def _assert_same_as_dcm2niix(img, ref):
    data, affine = _canonical(img.array, img.affine)
    ref_data, ref_affine = ref
    assert data.shape == ref_data.shape
    if data.dtype.kind == "f" or ref_data.dtype.kind == "f":
        np.testing.assert_allclose(data, ref_data, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(data.astype(np.int64), ref_data.astype(np.int64))
    np.testing.assert_allclose(affine, ref_affine, atol=1e-3)


def _voxel_to_ras(affine, i, j, k):
    return (np.asarray(affine) @ [i, j, k, 1.0])[:3]


def _check_maps_positions(img, orientation, pixel_spacing, positions_sorted):
    """Every slice's corner voxels land where the written IPP says (RAS)."""
    o = np.asarray(orientation, dtype=float)
    cols, rows = img.shape[:2]
    for k, p in enumerate(positions_sorted):
        for i, j in [(0, 0), (cols - 1, 0), (0, rows - 1), (cols - 1, rows - 1)]:
            lps = p + i * pixel_spacing[1] * o[:3] + j * pixel_spacing[0] * o[3:]
            np.testing.assert_allclose(_voxel_to_ras(img.affine, i, j, k),
                                       lps_to_ras([lps])[0], atol=1e-6)


# --------------------------------------------------------------------------
# grouping by SeriesInstanceUID


@pytest.fixture
def two_series(tmp_path):
    """A CT (series 3, 4 axial slices) and an MR (series 7, 5 sagittal
    slices) in one folder, random file names."""
    ct = ramp(4, dtype=np.int16, start=-100)
    mr = ramp(5, rows=5, cols=7, dtype=np.uint16, start=1000)
    ct_pos = stack_positions(4, AXIAL, step=3.0)
    mr_pos = stack_positions(5, SAGITTAL, step=1.5, origin=(5.0, -30.0, 60.0))
    ct_uid, mr_uid = generate_uid(), generate_uid()
    write_series(tmp_path, ct, ct_pos, series_uid=ct_uid, series_number=3,
                 description="head ct", instance_numbers=[4, 2, 3, 1], seed=1)
    write_series(tmp_path, mr, mr_pos, orientation=SAGITTAL, series_uid=mr_uid,
                 series_number=7, modality="MR", description="t1 sag",
                 pixel_spacing=(0.5, 0.75), seed=2)
    return dict(path=tmp_path, ct=ct, mr=mr, ct_pos=ct_pos, mr_pos=mr_pos,
                ct_uid=ct_uid, mr_uid=mr_uid)


def test_two_series_scan(two_series):
    found = medfast.scan_dicom(two_series["path"])
    assert [s.name for s in found] == ["3", "7"]
    ct, mr = found
    assert ct.series_uid == two_series["ct_uid"] and mr.series_uid == two_series["mr_uid"]
    assert ct.shape == (8, 6, 4) and mr.shape == (7, 5, 5)
    assert ct.n_files == 4 and mr.n_files == 5
    assert ct.modality == "CT" and mr.modality == "MR"
    assert ct.description == "head ct" and mr.description == "t1 sag"
    np.testing.assert_allclose(ct.spacing, (1.0, 1.0, 3.0))
    np.testing.assert_allclose(mr.spacing, (0.75, 0.5, 1.5))
    assert not ct.is_4d and not ct.problems and not mr.problems
    assert found.skipped == []


def test_two_series_load_without_choice_lists_them(two_series):
    with pytest.raises(ValueError) as exc:
        medfast.load_dicom(two_series["path"])
    text = str(exc.value)
    assert "2 volumes" in text
    for piece in ("series 3", "head ct", "8x6x4", "series 7", "t1 sag", "7x5x5",
                  "series=", "load_dicom_all"):
        assert piece in text, (piece, text)


@pytest.mark.parametrize("how", ["number", "name", "uid", "description", "info"])
def test_two_series_pick_one(two_series, how):
    info = medfast.scan_dicom(two_series["path"])[1]
    choice = {"number": 7, "name": "7", "uid": two_series["mr_uid"],
              "description": "t1 sag", "info": info}[how]
    img = medfast.load_dicom(two_series["path"], series=choice)
    np.testing.assert_array_equal(img.array, expected_array(two_series["mr"]))
    assert img.dtype == np.uint16
    np.testing.assert_allclose(img.affine, ras_affine(SAGITTAL, (0.5, 0.75),
                                                      two_series["mr_pos"]), atol=1e-9)
    assert img.meta["dicom_series"] == "7"
    assert len(img.meta["dicom_files"]) == 5


def test_two_series_unknown_choice(two_series):
    with pytest.raises(ValueError, match=r"no series 12.*3, 7"):
        medfast.load_dicom(two_series["path"], series=12)


def test_two_series_load_all(two_series):
    ct, mr = medfast.load_dicom_all(two_series["path"])
    # The CT's instance numbers are scrambled: order comes from positions.
    np.testing.assert_array_equal(ct.array, expected_array(two_series["ct"]))
    np.testing.assert_array_equal(mr.array, expected_array(two_series["mr"]))
    assert ct.meta["dicom_series"] == "3" and mr.meta["dicom_series"] == "7"
    assert ct.meta["Modality"] == "CT" and ct.meta["SeriesInstanceUID"] == two_series["ct_uid"]


def test_same_series_number_two_uids(tmp_path):
    """Two exams' series 1 in one folder: two volumes, distinct names, each
    reachable by UID and by name."""
    a, b = ramp(3, start=0), ramp(3, start=500)
    uid_a, uid_b = generate_uid(), generate_uid()
    write_series(tmp_path, a, stack_positions(3), series_uid=uid_a, seed=1)
    write_series(tmp_path, b, stack_positions(3, step=-2.0), series_uid=uid_b, seed=2)
    found = medfast.scan_dicom(tmp_path)
    assert len(found) == 2 and len({s.name for s in found}) == 2
    for info in found:
        by_name = medfast.load_dicom(tmp_path, series=info.name)
        by_uid = medfast.load_dicom(tmp_path, series=info.series_uid)
        np.testing.assert_array_equal(by_name.array, by_uid.array)
    img = medfast.load_dicom(tmp_path, series=uid_b)
    # step -2: written top-down, so the array is the stack reversed.
    np.testing.assert_array_equal(img.array, expected_array(b[::-1]))


# --------------------------------------------------------------------------
# splitting one series (one SeriesInstanceUID) that cannot form one volume

def _split_case(kind):
    """Two parts of one series, as (stack, positions, write_series kwargs)."""
    base = dict(modality="MR", series_number=5, description="split me")
    a = ramp(3, start=0, dtype=np.uint16)
    pos = stack_positions(3, AXIAL, step=2.0)
    first = (a, pos, dict(base))
    if kind == "orientation":
        b = ramp(3, start=200, dtype=np.uint16)
        second = (b, stack_positions(3, CORONAL, step=2.0), dict(base, orientation=CORONAL))
    elif kind == "matrix":
        b = ramp(3, cols=10, start=200, dtype=np.uint16)
        second = (b, pos, dict(base))
    elif kind == "spacing":
        b = ramp(3, start=200, dtype=np.uint16)
        second = (b, pos, dict(base, pixel_spacing=(0.5, 0.5)))
    elif kind == "echo":
        first[2]["EchoNumbers"] = 1
        first[2]["EchoTime"] = 5.0
        b = ramp(3, start=200, dtype=np.uint16)
        second = (b, pos, dict(base, EchoNumbers=2, EchoTime=10.0))
    elif kind == "image_type":
        first[2]["ImageType"] = ["ORIGINAL", "PRIMARY", "M", "ND"]
        b = ramp(3, start=200, dtype=np.uint16)
        second = (b, pos, dict(base, ImageType=["ORIGINAL", "PRIMARY", "P", "ND"]))
    else:
        raise AssertionError(kind)
    return first, second


@pytest.mark.parametrize("kind", ["orientation", "matrix", "spacing", "echo", "image_type"])
def test_split_series(tmp_path, kind):
    uid = generate_uid()
    parts = _split_case(kind)
    for seed, (stack, positions, fields) in enumerate(parts):
        write_series(tmp_path, stack, positions, series_uid=uid, seed=seed + 10,
                     instance_numbers=np.arange(1, 4) + 3 * seed, **fields)
    found = medfast.scan_dicom(tmp_path)
    assert len(found) == 2, [str(s) for s in found]
    names = [s.name for s in found]
    assert len(set(names)) == 2, names
    assert all(s.series_uid == uid and s.n_files == 3 for s in found)
    if kind == "echo":
        assert names == ["5_e1", "5_e2"]
    if kind == "image_type":
        assert names == ["5", "5_ph"]
    # Without series=: an error listing both, and how to pick one.
    with pytest.raises(ValueError) as exc:
        medfast.load_dicom(tmp_path)
    text = str(exc.value)
    assert "2 volumes" in text and "series=" in text and "load_dicom_all" in text
    assert all(f"series {name}:" in text for name in names)
    assert "split me" in text
    # By name: each part is its own, complete, volume.
    expected = [expected_array(stack, sort_order(positions, fields.get("orientation", AXIAL)))
                for stack, positions, fields in parts]
    matched = []
    for info in found:
        img = medfast.load_dicom(tmp_path, series=info.name)
        assert img.shape == info.shape
        assert img.meta["dicom_series"] == info.name
        matched += [p for p, e in enumerate(expected)
                    if e.shape == img.shape and np.array_equal(img.array, e)]
    assert sorted(matched) == [0, 1]
    # By series number: both match, so the choice is still ambiguous.
    with pytest.raises(ValueError, match="2 volumes"):
        medfast.load_dicom(tmp_path, series=5)
    everything = medfast.load_dicom_all(tmp_path)
    assert [img.meta["dicom_series"] for img in everything] == names


# --------------------------------------------------------------------------
# slice order from ImagePositionPatient


@pytest.mark.parametrize("numbers", ["ascending", "reversed", "scrambled"])
@pytest.mark.parametrize("step", [2.5, -2.5])
@pytest.mark.parametrize("plane", list(ORIENTATIONS))
def test_slice_order_and_affine(tmp_path, plane, step, numbers):
    orientation = ORIENTATIONS[plane]
    n = 5
    stack = ramp(n, dtype=np.int16, seed=7)
    positions = stack_positions(n, orientation, step=step, origin=(12.5, -7.0, 41.0))
    instance = {"ascending": [1, 2, 3, 4, 5], "reversed": [5, 4, 3, 2, 1],
                "scrambled": [3, 5, 1, 4, 2]}[numbers]
    spacing = (0.8, 1.1)  # between rows, between columns
    write_series(tmp_path, stack, positions, orientation=orientation, pixel_spacing=spacing,
                 instance_numbers=instance, seed=n)
    img = medfast.load_dicom(tmp_path)
    order = sort_order(positions, orientation)
    assert list(order) == (list(range(n)) if step > 0 else list(range(n))[::-1])
    np.testing.assert_array_equal(img.array, expected_array(stack, order))
    np.testing.assert_allclose(img.affine, ras_affine(orientation, spacing, positions[order]),
                               atol=1e-9)
    _check_maps_positions(img, orientation, spacing, positions[order])
    # The slice axis points along the normal, |step| apart.
    np.testing.assert_allclose(np.linalg.norm(img.affine[:3, 2]), abs(step))
    assert not _problems(img)


@settings(max_examples=examples(12))
@given(angles=st.tuples(*[st.floats(-180, 180, allow_nan=False)] * 3),
       n=st.integers(2, 6), step=st.floats(0.5, 5.0).map(lambda v: round(v, 3)),
       negative=st.booleans(), spacing=st.tuples(st.sampled_from([0.5, 0.9, 1.0, 1.7]),
                                                  st.sampled_from([0.6, 1.0, 1.3])),
       permutation_seed=st.integers(0, 2**16))
def test_slice_order_any_orientation(tmp_path_factory, angles, n, step, negative, spacing,
                                     permutation_seed):
    """Random oblique stacks, random instance numbers: the array follows the
    positions along the normal and the affine puts every voxel where the
    IPPs say."""
    folder = tmp_path_factory.mktemp("stack")
    orientation = oblique(*angles)
    positions = stack_positions(n, orientation, step=-step if negative else step,
                                origin=(3.0, -4.0, 5.0))
    stack = ramp(n, dtype=np.int16, seed=permutation_seed)
    rng = np.random.default_rng(permutation_seed)
    write_series(folder, stack, positions, orientation=orientation, pixel_spacing=spacing,
                 instance_numbers=rng.permutation(n) + 1, seed=permutation_seed)
    img = medfast.load_dicom(folder)
    order = sort_order(positions, orientation)
    np.testing.assert_array_equal(img.array, expected_array(stack, order))
    _check_maps_positions(img, orientation, spacing, positions[order])
    shutil.rmtree(folder)


@pytest.mark.parametrize("plane", list(ORIENTATIONS))
def test_affine_matches_nibabel_dicom_wrapper(tmp_path, plane):
    """nibabel's own DICOM formula (nibabel.nicom): voxel (row, column,
    slice) -> LPS; its in-plane columns are ours swapped, its slice column is
    the normal times SpacingBetweenSlices (up to sign)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the DICOM readers are highly experimental"
        from nibabel.nicom import dicomwrappers
    orientation = ORIENTATIONS[plane]
    positions = stack_positions(4, orientation, step=3.0)
    paths = write_series(tmp_path, ramp(4), positions, orientation=orientation,
                         pixel_spacing=(0.7, 1.3), SpacingBetweenSlices=3.0)
    img = medfast.load_dicom(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nib_lps = dicomwrappers.wrapper_from_file(paths[0]).affine
    ours_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    np.testing.assert_allclose(ours_lps[:3, 0], nib_lps[:3, 1], atol=1e-9)
    np.testing.assert_allclose(ours_lps[:3, 1], nib_lps[:3, 0], atol=1e-9)
    np.testing.assert_allclose(np.abs(ours_lps[:3, 2]), np.abs(nib_lps[:3, 2]), atol=1e-9)
    np.testing.assert_allclose(ours_lps[:3, 3], nib_lps[:3, 3], atol=1e-9)


@pytest.mark.parametrize("plane", list(ORIENTATIONS))
def test_as_canonical_equals_nibabel(tmp_path, plane):
    orientation = ORIENTATIONS[plane]
    stack = ramp(4, dtype=np.int16, seed=3)
    positions = stack_positions(4, orientation, step=-2.0)
    write_series(tmp_path, stack, positions, orientation=orientation, pixel_spacing=(0.9, 1.2))
    img = medfast.load_dicom(tmp_path)
    ours = medfast.as_canonical(img)
    ref = nib.as_closest_canonical(nib.Nifti1Image(
        expected_array(stack, sort_order(positions, orientation)),
        ras_affine(orientation, (0.9, 1.2), positions[::-1])))
    np.testing.assert_array_equal(ours.array, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-9)


@pytest.mark.parametrize("plane", list(ORIENTATIONS))
def test_orientation_matches_dcm2niix(tmp_path, plane):
    orientation = ORIENTATIONS[plane]
    stack = ramp(4, dtype=np.int16, seed=11)
    positions = stack_positions(4, orientation, step=-2.0)
    write_series(tmp_path / "in", stack, positions, orientation=orientation,
                 pixel_spacing=(0.9, 1.2), instance_numbers=[2, 4, 1, 3], modality="MR")
    refs = _dcm2niix(tmp_path / "in", tmp_path / "out")
    assert len(refs) == 1, [name for name, _ in refs]
    _assert_same_as_dcm2niix(medfast.load_dicom(tmp_path / "in"), refs[0][1])


# --------------------------------------------------------------------------
# repeated positions: 4-D


def _write_4d(folder, T=4, K=3, temporal=True, instance_numbers=None, drop=None, **fields):
    """T volumes of K slices; returns the (T, K, rows, cols) stored values."""
    data = ramp(T * K, dtype=np.int16, seed=5).reshape(T, K, 6, 8)
    positions = stack_positions(K, AXIAL, step=2.0)
    rng = np.random.default_rng(3)
    stacks, pos, per_slice, numbers = [], [], [], []
    for t in range(T):
        for k in range(K):
            if drop == (t, k):
                continue
            stacks.append(data[t, k])
            pos.append(positions[k])
            extra = {"TemporalPositionIdentifier": t + 1} if temporal else {}
            per_slice.append(extra)
            numbers.append(t * K + k + 1 if instance_numbers is None
                           else instance_numbers(t, k))
    perm = rng.permutation(len(stacks))  # write order means nothing either
    write_series(folder, np.array(stacks)[perm], np.array(pos)[perm],
                 per_slice=[per_slice[i] for i in perm],
                 instance_numbers=[numbers[i] for i in perm], modality="MR", **fields)
    return data, positions


def test_4d_by_temporal_position(tmp_path):
    # Instance numbers run against time: the temporal index must win.
    data, positions = _write_4d(tmp_path, instance_numbers=lambda t, k: 100 - (t * 3 + k))
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 3, 4) and img.is_4d
    np.testing.assert_array_equal(img.array, data.transpose(3, 2, 1, 0))
    np.testing.assert_allclose(img.affine, ras_affine(AXIAL, (1.0, 1.0), positions))
    info, = medfast.scan_dicom(tmp_path)
    assert info.shape == (8, 6, 3, 4) and info.is_4d and info.n_files == 12
    assert not info.problems


def test_4d_by_instance_number(tmp_path):
    data, _ = _write_4d(tmp_path, temporal=False)
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 3, 4)
    for t in range(4):
        np.testing.assert_array_equal(img.array[..., t], data[t].transpose(2, 1, 0))


def test_4d_matches_dcm2niix(tmp_path):
    _write_4d(tmp_path / "in", temporal=True)
    refs = _dcm2niix(tmp_path / "in", tmp_path / "out")
    assert len(refs) == 1, [name for name, _ in refs]
    _assert_same_as_dcm2niix(medfast.load_dicom(tmp_path / "in"), refs[0][1])


def test_4d_irregular_keeps_complete_volumes(tmp_path):
    """Slice 2 of volume 3 is missing: volumes 1, 2 and 4 are complete and
    kept whole (never a volume stitched from two time points)."""
    data, _ = _write_4d(tmp_path, T=4, K=3, temporal=True, drop=(2, 1))
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 3, 3)
    np.testing.assert_array_equal(img.array, data[[0, 1, 3]].transpose(3, 2, 1, 0))
    problems = _problems(img)
    assert problems and any("slice count differs" in p for p in problems), problems
    info, = medfast.scan_dicom(tmp_path)
    assert info.shape == (8, 6, 3, 3)
    assert info.problems == tuple(problems)


@pytest.mark.parametrize("drop", [(1, 2), (2, 1), (0, 2), (2, 0), (1, 1)])
def test_4d_irregular_without_time_labels(tmp_path, drop):
    """No temporal index, InstanceNumber counting volume after volume: the
    volume missing a slice is dropped, the others are kept whole.  (Not
    tested: the very first slice missing, which reads just as well as
    numbering that starts at 2 with the last volume short.)"""
    data, _ = _write_4d(tmp_path, T=3, K=3, temporal=False, drop=drop)
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 3, 2)
    kept = [t for t in range(3) if t != drop[0]]
    np.testing.assert_array_equal(img.array, data[kept].transpose(3, 2, 1, 0))
    assert any("slice count differs" in p for p in _problems(img))


def test_4d_irregular_slice_major_numbers_reports(tmp_path):
    """InstanceNumber counting slice after slice (all time points of a
    position, then the next): nothing tells which volume lacks the slice;
    complete positions are kept as a 4-D array and the problem reported."""
    _write_4d(tmp_path, T=3, K=3, temporal=False, drop=(1, 2),
              instance_numbers=lambda t, k: k * 3 + t + 1)
    img = medfast.load_dicom(tmp_path)
    assert img.shape == (8, 6, 3, 2)
    assert any("slice count differs" in p for p in _problems(img))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_two_acquisitions_in_one_series(tmp_path, seed):
    """Two CT runs in one series (AcquisitionNumber 1 and 2) over
    overlapping positions: two volumes, '_a1' always the first acquisition,
    whatever the file names."""
    uid = generate_uid()
    first, second = ramp(3, start=0), ramp(4, start=1000)
    pos1 = stack_positions(3, step=2.0)
    pos2 = stack_positions(4, step=2.0, origin=(-10.0, -20.0, 32.0))
    write_series(tmp_path, first, pos1, series_uid=uid, series_number=4, AcquisitionNumber=1,
                 seed=seed)
    write_series(tmp_path, second, pos2, series_uid=uid, series_number=4, AcquisitionNumber=2,
                 seed=seed + 100, instance_numbers=[4, 5, 6, 7])
    found = medfast.scan_dicom(tmp_path)
    assert [(s.name, s.shape) for s in found] == [("4_a1", (8, 6, 3)), ("4_a2", (8, 6, 4))]
    np.testing.assert_array_equal(medfast.load_dicom(tmp_path, series="4_a1").array,
                                  expected_array(first))
    np.testing.assert_array_equal(medfast.load_dicom(tmp_path, series="4_a2").array,
                                  expected_array(second))


# --------------------------------------------------------------------------
# gaps and spacing


def _write_positions(folder, offsets, **fields):
    positions = np.array([[-10.0, -20.0, 30.0 + z] for z in offsets])
    stack = ramp(len(offsets), dtype=np.int16, seed=2)
    write_series(folder, stack, positions, **fields)
    return stack, positions


def test_missing_slice_reported(tmp_path):
    stack, positions = _write_positions(tmp_path, [0, 2, 4, 8, 10, 12])
    img = medfast.load_dicom(tmp_path)  # the stack, not its equidistant copy
    assert img.shape == (8, 6, 6)  # no slice invented
    np.testing.assert_array_equal(img.array, expected_array(stack))
    problems = _problems(img)
    assert any("missing slices: 1" in p and "after slice 3" in p for p in problems), problems
    # The affine is exact at the first slice, with the first step (as
    # dcm2niix: the gap then shows as the distances the affine gets wrong).
    np.testing.assert_allclose(img.affine, ras_affine(AXIAL, (1, 1), positions[:2]))
    info, eq = medfast.scan_dicom(tmp_path)
    assert info.problems == tuple(problems)
    assert eq.name == info.name + "_Eq" and eq.shape == (8, 6, 7)


@pytest.mark.parametrize("offsets, dtype", [
    ([0, 2, 4, 8, 10, 12], np.int16),        # a missing slice
    ([0, 2, 4.5, 6, 8], np.int16),           # one gap off by 0.5 mm
    ([0, 1, 2, 3, 5, 7, 9, 14, 19], np.int16),  # three thicknesses (CT-like)
    ([0, 3, 3.5, 4, 10], np.uint8),          # gaps shorter and longer
])
def test_unequal_gaps_as_dcm2niix(tmp_path, offsets, dtype):
    """Gaps varying by more than 0.2 mm: the stack with the first step, and
    an equidistant copy '_Eq' (linear interpolation between the nearest
    slices), both equal to dcm2niix's two files."""
    positions = np.array([[-10.0, -20.0, 30.0 + z] for z in offsets])
    stack = ramp(len(offsets), dtype=dtype, seed=3)
    write_series(tmp_path / "in", stack, positions, modality="MR")
    refs = _dcm2niix(tmp_path / "in", tmp_path / "out")
    assert len(refs) == 2
    images = medfast.load_dicom_all(tmp_path / "in")
    assert [img.meta["dicom_series"].endswith("_Eq") for img in images] == [False, True]
    for (_, ref), img in zip(sorted(refs, key=lambda r: "_Eq" in r[0]), images):
        _assert_same_as_dcm2niix(img, ref)


def test_uint16_gets_no_equidistant_copy(tmp_path):
    """dcm2niix equalizes int16, uint8, float and RGB data only."""
    positions = np.array([[-10.0, -20.0, 30.0 + z] for z in [0, 2, 4, 8, 10, 12]])
    write_series(tmp_path / "u16", ramp(6, dtype=np.uint16, seed=2), positions)
    assert len(medfast.scan_dicom(tmp_path / "u16")) == 1


def test_non_uniform_spacing_reported(tmp_path):
    _write_positions(tmp_path, [0, 2, 4.5, 6, 8])
    img = medfast.load_dicom(tmp_path)
    problems = _problems(img)
    assert any("non-uniform slice spacing" in p for p in problems), problems
    assert not any("missing" in p for p in problems)
    info = medfast.scan_dicom(tmp_path)[0]
    assert any("non-uniform" in p for p in info.problems)


def test_uniform_spacing_no_problem(tmp_path):
    _write_positions(tmp_path, [0, 1.25, 2.5, 3.75])
    img = medfast.load_dicom(tmp_path)
    assert "problems" not in img.meta
    assert medfast.scan_dicom(tmp_path)[0].problems == ()


# --------------------------------------------------------------------------
# rescale slope / intercept


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_ct_intercept_keeps_integers(tmp_path, dtype):
    """CT: 12 stored bits, slope 1, intercept -1024: exact integers; every
    value the header allows (0..4095 or -2048..2047, minus 1024) fits int16,
    so int16 (pixels.py picks the type from BitsStored)."""
    stack = np.abs(ramp(3, dtype=np.int16, seed=1).astype(np.int32)) % 2048  # 0..2047
    stack = stack.astype(dtype)
    write_series(tmp_path, stack, stack_positions(3), slope=1, intercept=-1024, bits_stored=12)
    img = medfast.load_dicom(tmp_path)
    assert img.dtype == np.int16
    np.testing.assert_array_equal(img.array, expected_array(stack.astype(np.int64) - 1024))
    assert img.meta["dicom_scaling"] == "rescale"


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_ct_intercept_16_stored_bits(tmp_path, dtype):
    """16 stored bits: the header allows values that overflow int16 once
    shifted, so the decoded values decide: int16 when they fit (typical CT,
    as dcm2niix keeps it), a wider integer type when they do not; values
    exact either way."""
    stack = np.abs(ramp(3, dtype=np.int16, seed=1).astype(np.int32)).astype(dtype)
    stack[stack > 30000] = 30000
    write_series(tmp_path / "fits", stack, stack_positions(3), slope=1, intercept=-1024)
    img = medfast.load_dicom(tmp_path / "fits")
    assert img.dtype == np.int16
    np.testing.assert_array_equal(img.array, expected_array(stack.astype(np.int64) - 1024))
    wide = stack.copy()
    wide[0, 0, 0] = np.iinfo(dtype).min if dtype == np.int16 else 40000
    write_series(tmp_path / "wide", wide, stack_positions(3), slope=1, intercept=-1024)
    img = medfast.load_dicom(tmp_path / "wide")
    assert img.dtype == np.int32
    np.testing.assert_array_equal(img.array, expected_array(wide.astype(np.int64) - 1024))


def test_integer_intercept_mixed_bits_stored(tmp_path):
    """Slices of one series stored with different BitsStored /
    PixelRepresentation: the output type must hold every slice's values."""
    uid = generate_uid()
    positions = stack_positions(3)
    low = ramp(1, dtype=np.uint16, start=0)[0] % 4096
    high = (ramp(1, dtype=np.uint16, start=0)[0] * 1000 + 30000).astype(np.uint16)
    neg = -ramp(1, dtype=np.int16, start=1)[0] * 500
    stacks = [low, high, neg.astype(np.int16)]
    bits = [12, 16, 16]
    for k in range(3):
        ds = image_dataset(stacks[k], position=positions[k], series_uid=uid, instance_number=k + 1,
                           slope=1, intercept=-1024, bits_stored=bits[k])
        save(ds, tmp_path / f"{k}.dcm")
    img = medfast.load_dicom(tmp_path)
    expected = np.stack([s.astype(np.int64) - 1024 for s in stacks])
    np.testing.assert_array_equal(img.array.astype(np.int64), expected_array(expected))


def test_intercept_too_wide_for_int16(tmp_path):
    """Scaled values beyond int16 (here -2976..33024): a wider integer type,
    values exact (pixels.py: integer when every scaled value fits one)."""
    stack = ramp(2, dtype=np.int16, seed=1)
    stack[0, 0, 0], stack[1, 0, 0] = 32000, -4000
    write_series(tmp_path, stack, stack_positions(2), slope=1, intercept=1024)
    img = medfast.load_dicom(tmp_path)
    assert img.dtype == np.int32
    np.testing.assert_array_equal(img.array, expected_array(stack.astype(np.int64) + 1024))


def test_intercept_unsigned_shift(tmp_path):
    """Non-negative results that overflow int16 but fit uint16."""
    stack = np.abs(ramp(2, dtype=np.int16, seed=4)).astype(np.int16)
    stack[0, 0, 0] = 32767
    write_series(tmp_path, stack, stack_positions(2), slope=1, intercept=100)
    img = medfast.load_dicom(tmp_path)
    assert img.dtype.kind in "iu" and img.dtype.itemsize <= 4
    np.testing.assert_array_equal(img.array.astype(np.int64),
                                  expected_array(stack.astype(np.int64) + 100))


def test_intercept_on_32_bit_data(tmp_path):
    """32-bit stored values: int32 when every value the header allows fits,
    else the decoded values decide (an integer type when they fit one)."""
    stack = ramp(2, dtype=np.int32, seed=2) * 1000
    write_series(tmp_path / "a", stack, stack_positions(2), slope=1, intercept=-1024,
                 bits_stored=24)
    img = medfast.load_dicom(tmp_path / "a")
    assert img.dtype == np.int32
    np.testing.assert_array_equal(img.array, expected_array(stack.astype(np.int64) - 1024))
    big = np.full((2, 6, 8), 4_000_000_000, dtype=np.uint32)
    big[0, 0, 0] = 0
    write_series(tmp_path / "b", big, stack_positions(2), slope=1, intercept=-1024)
    img = medfast.load_dicom(tmp_path / "b")
    expected = expected_array(big.astype(np.int64) - 1024)
    if img.dtype.kind == "f":
        np.testing.assert_allclose(img.array, expected, rtol=1e-7)
    else:
        np.testing.assert_array_equal(img.array.astype(np.int64), expected)


def test_fractional_slope_gives_float32(tmp_path):
    stack = ramp(3, dtype=np.uint16, start=7)
    write_series(tmp_path, stack, stack_positions(3), modality="MR", slope=0.5, intercept=-3.25)
    img = medfast.load_dicom(tmp_path)
    assert img.dtype == np.float32
    expected = expected_array(stack.astype(np.float64) * 0.5 - 3.25)
    np.testing.assert_allclose(img.array, expected, rtol=1e-6)
    assert img.meta["dicom_scaling"] == "rescale"


def test_per_slice_slopes_pet(tmp_path):
    stack = ramp(4, dtype=np.int16, seed=9)
    slopes = [0.013, 1.7e-3, 2.5, 0.1]
    intercepts = [0.0, 1.5, -2.0, 0.25]
    positions = stack_positions(4, step=-3.0)
    write_series(tmp_path, stack, positions, modality="PT",
                 per_slice=[dict(slope=s, intercept=b) for s, b in zip(slopes, intercepts)],
                 instance_numbers=[2, 3, 4, 1])
    img = medfast.load_dicom(tmp_path)
    assert img.dtype == np.float32
    scaled = stack * np.array(slopes)[:, None, None] + np.array(intercepts)[:, None, None]
    order = sort_order(positions, AXIAL)
    np.testing.assert_allclose(img.array, expected_array(scaled, order), rtol=1e-6, atol=1e-6)


def test_rescale_matches_dcm2niix(tmp_path):
    stack = ramp(3, dtype=np.int16, seed=6)
    write_series(tmp_path / "in", stack, stack_positions(3), slope=1, intercept=-1024)
    refs = _dcm2niix(tmp_path / "in", tmp_path / "out")
    assert len(refs) == 1
    _assert_same_as_dcm2niix(medfast.load_dicom(tmp_path / "in"), refs[0][1])


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("syntax, gz", [(ExplicitVRLittleEndian, False),
                                        (ImplicitVRLittleEndian, False),
                                        (ExplicitVRBigEndian, False),
                                        (ExplicitVRLittleEndian, True),
                                        (ExplicitVRBigEndian, True)])
def test_12_bit_junk_high_bits(tmp_path, signed, syntax, gz):
    """BitsStored 12 of 16 with junk in the top 4 bits: masked (unsigned) or
    sign-extended from bit 11 (signed), as pydicom's pixel_array does."""
    import pydicom
    rng = np.random.default_rng(12)
    low = rng.integers(0, 4096, size=(3, 6, 8)).astype(np.uint16)
    low[0, 0, :4] = [0, 0x7FF, 0x800, 0xFFF]  # the extremes of both ranges
    junk = rng.integers(1, 16, size=low.shape).astype(np.uint16) << 12
    words = low | junk
    stack = words.view(np.int16) if signed else words
    paths = write_series(tmp_path, stack, stack_positions(3), bits_stored=12, syntax=syntax,
                         gz=gz)
    img = medfast.load_dicom(tmp_path)
    if signed:
        expected = np.where(low >= 2048, low.astype(np.int32) - 4096, low).astype(np.int16)
    else:
        expected = low
    np.testing.assert_array_equal(img.array, expected_array(expected))
    assert img.dtype == (np.int16 if signed else np.uint16)
    for k, path in enumerate(paths):
        reference = pydicom.dcmread(gzip.open(path) if gz else path).pixel_array
        np.testing.assert_array_equal(img.array[:, :, k].T, reference)


# --------------------------------------------------------------------------
# Philips private scale slope


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_philips_scale_slope(tmp_path, syntax):
    """The precise value (SV * RS + RI) / (RS * SS); a scale slope that
    varies between slices is taken from the first slice, as dcm2niix does
    (it never looks at the others)."""
    stack = ramp(3, dtype=np.uint16, start=3)
    rs, ri = 2.5, -10.0
    ss = [0.25, 0.25, 0.5]
    write_series(tmp_path, stack, stack_positions(3), modality="MR", slope=rs, intercept=ri,
                 per_slice=[dict(philips_scale_slope=s) for s in ss], syntax=syntax)
    img = medfast.load_dicom(tmp_path)
    assert img.meta["dicom_scaling"] == "philips"
    assert img.dtype == np.float32
    expected = (stack * rs + ri) / (rs * ss[0])
    np.testing.assert_allclose(img.array, expected_array(expected), rtol=1e-6)


def test_philips_scale_slope_other_private_block(tmp_path):
    """The private creator decides where the slope is: block 0x11 puts it at
    (2005,110E)."""
    stack = ramp(2, dtype=np.uint16, start=3)
    for k in range(2):
        ds = image_dataset(stack[k], position=(0, 0, 2.0 * k), modality="MR", slope=2.0,
                           intercept=1.0, instance_number=k + 1,
                           series_uid="1.2.3.4.5", study_uid="1.2.3.4")
        add_philips_scale_slope(ds, 4.0, block=0x11)
        save(ds, tmp_path / f"{k}.dcm")
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_allclose(img.array, expected_array((stack * 2.0 + 1.0) / 8.0), rtol=1e-6)


def test_not_philips_ignores_private_slope(tmp_path):
    """The same private element from another manufacturer is not a scale
    slope: plain rescaling."""
    stack = ramp(2, dtype=np.uint16, start=3)
    for k in range(2):
        ds = image_dataset(stack[k], position=(0, 0, 2.0 * k), modality="MR", slope=2.0,
                           intercept=1.0, instance_number=k + 1,
                           series_uid="1.2.3.4.6", study_uid="1.2.3.4")
        add_philips_scale_slope(ds, 4.0)
        ds.Manufacturer = "SyntheticCo"
        save(ds, tmp_path / f"{k}.dcm")
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_allclose(img.array, expected_array(stack * 2.0 + 1.0), rtol=1e-6)


# --------------------------------------------------------------------------
# CT gantry tilt


TILT_DEG = 15.0


@pytest.fixture
def tilted(tmp_path):
    """Axial CT whose slices shift along the column direction by
    step * tan(15 degrees) per slice (GantryDetectorTilt 15)."""
    K, step = 6, 2.0
    shift = np.array([0.0, step * np.tan(np.radians(TILT_DEG)), 0.0])  # column dir = +y
    positions = stack_positions(K, AXIAL, step=step, shift=shift)
    rows, cols = 12, 10
    stack = (np.arange(K)[:, None, None] * 7 + np.arange(rows)[None, :, None] * 11
             + np.arange(cols)[None, None, :] * 3).astype(np.int16)
    write_series(tmp_path, stack, positions, pixel_spacing=(1.0, 1.0), slope=1,
                 intercept=-1024, GantryDetectorTilt=TILT_DEG, instance_numbers=[6, 5, 4, 3, 2, 1])
    return dict(path=tmp_path, positions=positions, stack=stack.astype(np.int32) - 1024)


def test_tilt_sheared_affine(tilted):
    img = medfast.load_dicom(tilted["path"])
    positions = tilted["positions"]
    np.testing.assert_array_equal(img.array, expected_array(tilted["stack"]))
    # Sheared: the slice axis is not orthogonal to the in-plane axes, and
    # the affine puts every slice exactly at its IPP.
    assert abs(np.dot(img.affine[:3, 1], img.affine[:3, 2])) > 0.1
    _check_maps_positions(img, AXIAL, (1.0, 1.0), positions)
    np.testing.assert_allclose(img.affine, ras_affine(AXIAL, (1.0, 1.0), positions), atol=1e-9)
    assert img.meta["GantryTilt"] == pytest.approx(TILT_DEG, abs=1e-6)
    assert any("gantry tilt" in p for p in _problems(img))
    info, = medfast.scan_dicom(tilted["path"])
    assert any("gantry tilt" in p for p in info.problems)


def test_tilt_corrected(tilted):
    from scipy import ndimage
    img = medfast.load_dicom(tilted["path"], correct_tilt=True)
    sheared = medfast.load_dicom(tilted["path"])
    a = img.affine[:3, :3]
    gram = a.T @ a
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)  # orthogonal
    np.testing.assert_allclose(img.affine[:3, :2], sheared.affine[:3, :2])
    np.testing.assert_allclose(img.affine[:3, 3], sheared.affine[:3, 3])
    # The slice spacing along the normal is kept.
    assert abs(img.affine[2, 2]) == pytest.approx(2.0)
    assert img.shape == sheared.shape
    assert img.dtype.kind == "f"
    # Independent: linear interpolation of the sheared grid at the new
    # voxel centres, with scipy.
    grid = np.indices(img.shape, dtype=float).reshape(3, -1)
    world = img.affine @ np.vstack([grid, np.ones(grid.shape[1])])
    src = (np.linalg.inv(sheared.affine) @ world)[:3]
    expected = ndimage.map_coordinates(sheared.array.astype(np.float64), src, order=1,
                                       mode="constant", cval=0.0).reshape(img.shape)
    inside = np.all((src > -1e-9) & (src < np.array(img.shape)[:, None] - 1 + 1e-9),
                    axis=0).reshape(img.shape)
    assert inside.sum() > img.array.size // 3
    np.testing.assert_allclose(img.array[inside], expected[inside], rtol=1e-5, atol=1e-3)
    # and with medfast.resample onto the same grid.
    again = medfast.resample(sheared, shape=img.shape, affine=img.affine, dtype=np.float32)
    np.testing.assert_allclose(img.array, again.array, rtol=1e-6, atol=1e-4)
    assert img.meta.get("GantryTiltCorrected") is True


# --------------------------------------------------------------------------
# transfer syntaxes, gzip


SYNTHETIC_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                      RLELossless, JPEG2000Lossless]


@pytest.mark.parametrize("gz", [False, True], ids=["dcm", "dcm.gz"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8])
@pytest.mark.parametrize("syntax", SYNTHETIC_SYNTAXES, ids=lambda s: s.name)
def test_transfer_syntax(tmp_path, syntax, dtype, gz):
    if syntax == JPEG2000Lossless and dtype == np.uint8:
        pytest.skip("covered by 16-bit")
    # OpenJPEG needs at least 32 pixels a side with its default resolutions.
    rows, cols = (32, 36) if syntax == JPEG2000Lossless else (6, 8)
    stack = ramp(3, rows=rows, cols=cols, dtype=dtype, seed=3)
    positions = stack_positions(3, step=-1.5)
    write_series(tmp_path, stack, positions, syntax=syntax, gz=gz, instance_numbers=[3, 1, 2])
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack[::-1]))
    assert img.dtype == dtype  # native byte order, the stored type
    assert img.dtype.isnative
    np.testing.assert_allclose(img.affine, ras_affine(AXIAL, (1, 1), positions[::-1]))


def test_mixed_syntaxes_in_one_series(tmp_path):
    stack = ramp(5, dtype=np.int16, seed=8)
    positions = stack_positions(5)
    uid = generate_uid()
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                RLELossless, ExplicitVRLittleEndian]
    for k, syntax in enumerate(syntaxes):
        ds = image_dataset(stack[k], position=positions[k], series_uid=uid, instance_number=k + 1)
        save(ds, tmp_path / f"s{k}.dcm{'.gz' if k == 4 else ''}", syntax, gz=k == 4)
    img = medfast.load_dicom(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack))
    assert img.dtype == np.int16


def _qa_syntax_files(dicom_qa):
    return sorted((dicom_qa / "transfer_syntax" / "In").glob("*.dcm"))


def test_qa_transfer_syntaxes_same_array(dicom_qa):
    """The same image in 9 transfer syntaxes (JPEG Lossless, JPEG-LS, JPEG
    2000, RLE, big endian...): every file gives 1.dcm's array."""
    import pydicom
    files = _qa_syntax_files(dicom_qa)
    assert len(files) == 9
    reference = medfast.load_dicom(files[0])
    # 1.dcm is a Siemens mosaic: slice k is tile k of the 2-D image.
    mosaic = pydicom.dcmread(files[0]).pixel_array
    tile = reference.shape[1], reference.shape[0]
    per_row = mosaic.shape[1] // tile[1]
    for k in range(reference.shape[2]):
        r, c = divmod(k, per_row)
        np.testing.assert_array_equal(
            reference.array[:, :, k].T,
            mosaic[r * tile[0]:(r + 1) * tile[0], c * tile[1]:(c + 1) * tile[1]])
    for path in files[1:]:
        img = medfast.load_dicom(path)
        assert img.shape == reference.shape, path.name
        np.testing.assert_array_equal(img.array, reference.array, err_msg=path.name)
        np.testing.assert_allclose(img.affine, reference.affine, err_msg=path.name)


def test_qa_file_gzipped(dicom_qa, tmp_path):
    files = _qa_syntax_files(dicom_qa)
    reference = medfast.load_dicom(files[0])
    for name in ("1.dcm", "9.dcm"):
        target = tmp_path / (name + ".gz")
        target.write_bytes(gzip.compress((dicom_qa / "transfer_syntax" / "In" / name).read_bytes()))
        np.testing.assert_array_equal(medfast.load_dicom(target).array, reference.array)


def test_medfast_load_reads_dicom_folder(tmp_path):
    stack = ramp(3, dtype=np.int16, seed=2)
    write_series(tmp_path, stack, stack_positions(3))
    img = medfast.load(tmp_path)
    np.testing.assert_array_equal(img.array, expected_array(stack))


# --------------------------------------------------------------------------
# objects that are not volumes


def test_non_volume_objects_skipped(tmp_path):
    from pydicom.uid import BasicTextSRStorage, RTStructureSetStorage
    stack = ramp(4, dtype=np.int16, seed=4)
    positions = stack_positions(4)
    uid, study = generate_uid(), generate_uid()
    write_series(tmp_path, stack, positions, series_uid=uid, study_uid=study, slope=1,
                 intercept=-1024)
    sr = non_image_dataset("SR", BasicTextSRStorage, study_uid=study)
    save(sr, tmp_path / "report.dcm")
    rt = non_image_dataset("RTSTRUCT", RTStructureSetStorage, study_uid=study)
    save(rt, tmp_path / "rtstruct.dcm")
    sc = image_dataset(ramp(1)[0], position=None, orientation=None, pixel_spacing=None,
                       modality="OT", study_uid=study, series_number=50)
    save(sc, tmp_path / "capture.dcm")
    # A localizer in the CT's own series, sagittal, at a repeated position.
    scout = image_dataset(ramp(1, start=9000)[0], position=positions[1], orientation=SAGITTAL,
                          series_uid=uid, study_uid=study, instance_number=99,
                          ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    save(scout, tmp_path / "scout.dcm")
    # As dcm2niix: the secondary capture without geometry and the localizer
    # (another orientation, so another stack) are volumes of their own.
    found = medfast.scan_dicom(tmp_path)
    assert len(found) == 3
    main = next(s for s in found if s.shape == (8, 6, 4))
    img = medfast.load_dicom(tmp_path, series=main.name)
    np.testing.assert_array_equal(img.array, expected_array(stack.astype(np.int32) - 1024))
    assert "problems" not in img.meta
    scout = next(s for s in found if s.name.endswith("_i00099"))
    assert scout.shape == (8, 6, 1)
    capture = next(s for s in found if s.series_number == 50)
    assert any("ImagePositionPatient" in p for p in capture.problems)
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in found.skipped}
    assert set(reasons) == {"report.dcm"}
    assert "SR" in reasons["report.dcm"]
    # The structure set is an annotation (it references no series here).
    [rtstruct] = found.annotations
    assert rtstruct.path.endswith("rtstruct.dcm") and rtstruct.series is None
    assert len(medfast.load_dicom_all(tmp_path)) == 3


@pytest.mark.parametrize("orientation", [None, AXIAL, SAGITTAL, CORONAL, (-1, 0, 0, 0, 1, 0),
                                         (0, -1, 0, 0, 0, -1), oblique(20, -15, 30)])
@pytest.mark.parametrize("count", [1, 3])
def test_images_without_position_as_dcm2niix(tmp_path, orientation, count):
    """Secondary captures without ImagePositionPatient: stacked in instance
    order with no place in the patient (qform/sform codes 0), voxel sizes
    and row order as dcm2niix writes them; the NIfTI medfast writes reads
    back (nibabel) exactly as dcm2niix's."""
    (tmp_path / "in").mkdir()
    for k in range(count):
        ds = image_dataset(ramp(1, seed=k)[0], position=None, orientation=orientation,
                           pixel_spacing=(0.5, 0.8), modality="OT", series_number=50,
                           instance_number=count - k, series_uid="1.2.3.4.99")
        save(ds, tmp_path / "in" / f"sc{k}.dcm")
    (_, ref), = _dcm2niix(tmp_path / "in", tmp_path / "out")
    img = medfast.load_dicom(tmp_path / "in")
    _assert_same_as_dcm2niix(img, ref)
    medfast.save(img, tmp_path / "ours.nii")
    ours, theirs = nib.load(tmp_path / "ours.nii"), next((tmp_path / "out").glob("*.nii"))
    theirs = nib.load(theirs)
    assert ours.header["sform_code"] == ours.header["qform_code"] == 0
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))


def test_frame_split_over_several_fragments(tmp_path):
    """A compressed frame whose codestream spans several fragments (gdcmconv
    --split, dcm_qa_frag): joined before decoding, values as dcm2niix's."""
    import pydicom
    from pydicom.encaps import encapsulate, get_frame
    stack = ramp(3, rows=32, cols=32, dtype=np.int16, seed=1)
    positions = stack_positions(3)
    (tmp_path / "in").mkdir()
    for k in range(3):
        ds = image_dataset(stack[k], position=positions[k], series_uid="1.2.3.99",
                           instance_number=k + 1, modality="MR")
        path = save(ds, tmp_path / "in" / f"s{k}.dcm", syntax=JPEG2000Lossless)
        written = pydicom.dcmread(path)
        frame = get_frame(written.PixelData, 0, number_of_frames=1)
        written.PixelData = encapsulate([frame], fragments_per_frame=3, has_bot=True)
        written.save_as(path)
    img = medfast.load_dicom(tmp_path / "in")
    np.testing.assert_array_equal(img.array, expected_array(stack))
    (_, ref), = _dcm2niix(tmp_path / "in", tmp_path / "out")
    _assert_same_as_dcm2niix(img, ref)


def test_float_pixel_data(tmp_path):
    """Float Pixel Data (7FE0,0008), as parametric maps store it: float32
    voxels, equal to dcm2niix's."""
    data = np.random.default_rng(0).normal(size=(3, 6, 8)).astype(np.float32)
    positions = stack_positions(3)
    (tmp_path / "in").mkdir()
    for k in range(3):
        ds = image_dataset(np.zeros((6, 8), np.int16), position=positions[k],
                           series_uid="1.2.3.77", instance_number=k + 1, modality="MR")
        del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
        ds.BitsAllocated = 32
        ds.FloatPixelData = data[k].tobytes()
        save(ds, tmp_path / "in" / f"f{k}.dcm")
    img = medfast.load_dicom(tmp_path / "in")
    assert img.dtype == np.float32
    np.testing.assert_array_equal(img.array, data.transpose(2, 1, 0))
    (_, ref), = _dcm2niix(tmp_path / "in", tmp_path / "out")
    _assert_same_as_dcm2niix(img, ref)

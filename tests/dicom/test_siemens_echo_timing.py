"""Siemens echo numbers (ICE dims), multi-echo names, XA slice timing and
the CSA diffusion fallback of classic images, on synthetic DICOM checked
against dcm2niix.

Every case is written with pydicom: classic files with
:func:`synthetic.image_dataset`, Siemens XA enhanced files (one file per
volume, the per-frame private sequence (0021,xxFE) of "SIEMENS MR SDI 02"
holding TimeAfterStart (0021,xx04) and the ICE dims (0021,xx06)) with
:func:`_xa_enhanced`.  Expectations come from what was written and, where
dcm2niix is installed, from dcm2niix run live on the same folder: its file
names (``-f %s_%p``), voxels, EchoNumber, SliceTiming, bval and bvec.
"""
import json
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import medfast
from dicom_data import canonical
from synthetic import AXIAL, csa2, image_dataset, oblique, save, stack_positions

SDI = "SIEMENS MR SDI 02"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
OBLIQUE = oblique(20.0, -15.0, 30.0)


# --------------------------------------------------------------------------
# writers


def _ice(echo, coil="X"):
    """An ICE dims string (0021,xx06): coil ('X' when combined), echo, then
    the other dimensions."""
    return f"{coil}_{echo}_1_1_1_1_1_1_1_1_1_1_629"


def _sdi_block(ds, slot, time_after_start=None, ice=None):
    """Put the "SIEMENS MR SDI 02" elements TimeAfterStart (seconds) and ICE
    dims in block `slot` of group 0021 of `ds` (left out when None)."""
    ds.add_new((0x0021, slot), "LO", SDI)
    if time_after_start is not None:
        ds.add_new((0x0021, (slot << 8) | 0x04), "DS", f"{time_after_start:.4f}")
    if ice is not None:
        ds.add_new((0x0021, (slot << 8) | 0x06), "LO", ice)
    return ds


def _classic(folder, *, echoes=(1,), echo_times=(5.0,), echo_numbers=None, ice=True,
             volumes=1, slices=4, times=None, series_number=4, description="gre",
             image_type=("ORIGINAL", "PRIMARY", "M", "NONE"), version="syngo MR XA30",
             slot=0x11, series_uid=None, study_uid=None, repetition_time=1000.0,
             orientation=AXIAL, seed=0, first_instance=1, extra=None):
    """Classic Siemens MR files, one per slice, of one series: every echo of
    every volume at `slices` positions (instance numbers from
    `first_instance`, echo by echo, volume by volume).

    echoes : tuple of int
        The echo number of each echo (written in the ICE dims).
    echo_numbers : list, optional
        EchoNumbers (0018,0086) per echo (None: left out).
    ice : bool
        Write the ICE dims (echo as its second field) in block `slot`.
    times : list of float, optional
        TimeAfterStart (s) per slice position (one series; volume v adds
        v * TR).
    extra : callable, optional
        ``extra(ds, volume, echo_index, slice)`` edits each data set.

    Returns the stored values (echoes, volumes, slices, rows, cols) and the
    positions.
    """
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, orientation, step=3.0)
    data = rng.integers(0, 3000, size=(len(echoes), volumes, slices, 6, 8)).astype(np.uint16)
    os.makedirs(folder, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    instance = first_instance - 1
    for e, echo in enumerate(echoes):
        for v in range(volumes):
            for k in range(slices):
                instance += 1
                # Volumes one TR apart (dcm2niix checks TR against them);
                # the slices' own times only in TimeAfterStart.
                seconds = v * repetition_time / 1000.0  # under a minute here
                fields = dict(EchoTime=echo_times[e], RepetitionTime=repetition_time,
                              AcquisitionTime=f"{120000 + seconds:.6f}",
                              FlipAngle=15.0, ProtocolName=description,
                              SequenceName="fl3d1", AcquisitionNumber=v + 1)
                if echo_numbers is not None and echo_numbers[e] is not None:
                    fields["EchoNumbers"] = echo_numbers[e]
                ds = image_dataset(
                    data[e, v, k], position=positions[k], orientation=orientation,
                    modality="MR", series_uid=series_uid, study_uid=study_uid,
                    series_number=series_number,
                    instance_number=instance, Manufacturer="SIEMENS", SoftwareVersions=version,
                    ImageType=list(image_type), description=description, **fields)
                after = None if times is None else times[k] + v * repetition_time / 1000.0
                _sdi_block(ds, slot, after, _ice(echo) if ice else None)
                if extra is not None:
                    extra(ds, v, e, k)
                save(ds, os.path.join(folder, f"{series_number}_{instance:04d}_{seed}.dcm"))
    return data, positions


def _item(**fields):
    item = Dataset()
    for key, value in fields.items():
        setattr(item, key, value)
    return item


def _xa_enhanced(path, pixels, positions, *, echo_time, ice_echoes=None, times=None,
                 series_number=8, series_uid, study_uid, instance=1, description="gre",
                 image_type=("ORIGINAL", "PRIMARY", "M", "NONE"), echo_number=None,
                 orientation=AXIAL, repetition_time=600.0, version="syngo MR XA30"):
    """One Siemens XA enhanced MR file holding one 3-D volume, laid out as the
    scanner writes it: each frame's orientation after its position, and a
    per-frame private item (0021,11FE) of "SIEMENS MR SDI 02" with
    TimeAfterStart (`times`, s, per frame) and ICE dims (`ice_echoes`, per
    frame)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_MR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Manufacturer, ds.SoftwareVersions = "MR", "Siemens Healthineers", version
    ds.PatientName, ds.PatientID = "Synthetic^XA", "XA001"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyDate, ds.StudyTime, ds.SeriesTime = "20240101", "120000", "120500"
    ds.AcquisitionDateTime = "20240101120500.000000"
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance
    ds.ProtocolName = ds.SeriesDescription = description
    ds.ImageType = list(image_type)
    ds.MRAcquisitionType = "2D"
    if echo_number is not None:
        ds.EchoNumbers = echo_number
    n, rows, cols = pixels.shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = [_item(
        PixelMeasuresSequence=[_item(PixelSpacing=[1.5, 1.25], SliceThickness=3.0,
                                     SpacingBetweenSlices=3.0)],
        MRTimingAndRelatedParametersSequence=[_item(RepetitionTime=repetition_time,
                                                    FlipAngle=50.0)])]
    frames = []
    for k in range(n):
        frame = _item(
            MREchoSequence=[_item(EffectiveEchoTime=echo_time)],
            MRImageFrameTypeSequence=[_item(FrameType=list(image_type))],
            FrameContentSequence=[_item(FrameAcquisitionDateTime=f"20240101120500.{k:06d}",
                                        InStackPositionNumber=k + 1,
                                        TemporalPositionIndex=1)],
            PlanePositionSequence=[_item(ImagePositionPatient=[float(v) for v in positions[k]])],
            PlaneOrientationSequence=[_item(ImageOrientationPatient=list(orientation))])
        private = _item()
        _sdi_block(private, 0x11, None if times is None else times[k],
                   None if ice_echoes is None else _ice(ice_echoes[k]))
        frame.add_new((0x0021, 0x0011), "LO", SDI)
        frame.add_new((0x0021, 0x11FE), "SQ", [private])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.ascontiguousarray(pixels, "<u2").tobytes()
    pydicom.dcmwrite(os.fspath(path), ds, enforce_file_format=True)
    return os.fspath(path)


# --------------------------------------------------------------------------
# comparing with dcm2niix


def _dcm2niix(folder, out):
    """dcm2niix's outputs for `folder` (``-f %s_%p``): {stem: (image, sidecar,
    bval or None, bvec or None)}."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    os.makedirs(out)
    run = subprocess.run([exe, "-z", "n", "-b", "y", "-f", "%s_%p", "-o", str(out), str(folder)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    found = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".nii"):
            stem = os.path.join(out, name[:-4])
            extras = [np.loadtxt(stem + ext, ndmin=2) if os.path.exists(stem + ext) else None
                      for ext in (".bval", ".bvec")]
            with open(stem + ".json") as f:
                found[name[:-4]] = (nib.load(stem + ".nii"), json.load(f), *extras)
    return found


def _medfast(folder, out, pattern="%s_%p"):
    """medfast's outputs for `folder`: {stem: (image, sidecar, bval or
    None, bvec or None)} (stems without '.nii.gz')."""
    result = medfast.convert(folder, out, pattern=pattern)
    found = {}
    for output in result.outputs:
        stem = os.path.basename(output.nifti)[:-len(".nii.gz")]
        with open(output.sidecar) as f:
            sidecar = json.load(f)
        tables = [np.loadtxt(p, ndmin=2) if p else None for p in (output.bval, output.bvec)]
        found[stem] = (nib.load(output.nifti), sidecar, *tables)
    return found


def _same_voxels(ours, ref):
    data, affine = canonical(np.asanyarray(ours.dataobj), ours.affine)
    ref_data, ref_affine = canonical(np.asanyarray(ref.dataobj), ref.affine)
    return (data.shape == ref_data.shape and np.array_equal(data, ref_data)
            and np.abs(affine - ref_affine).max() < 1e-3)


def _assert_outputs_like_dcm2niix(folder, tmp_path, pattern="%s_%p"):
    """medfast writes the files dcm2niix writes (same names), with the same
    voxels and the same EchoNumber; returns both outputs."""
    refs = _dcm2niix(folder, tmp_path / "dcm2niix")
    if pattern == "%s_%p":
        ours = _medfast(folder, tmp_path / "medfast")
    else:
        exe = shutil.which("dcm2niix")
        os.makedirs(tmp_path / "dcm2niix_pattern")
        subprocess.run([exe, "-z", "n", "-b", "y", "-f", pattern, "-o",
                        str(tmp_path / "dcm2niix_pattern"), str(folder)], capture_output=True)
        names = sorted(n[:-4] for n in os.listdir(tmp_path / "dcm2niix_pattern")
                       if n.endswith(".nii"))
        assert sorted(_medfast(folder, tmp_path / "medfast", pattern)) == names
        return refs, None
    assert sorted(ours) == sorted(refs)
    for stem, (ref, ref_sidecar, *_) in refs.items():
        img, sidecar = ours[stem][:2]
        assert _same_voxels(img, ref), stem
        assert sidecar.get("EchoNumber") == ref_sidecar.get("EchoNumber"), stem
    return refs, ours


# --------------------------------------------------------------------------
# 1. Echo numbers and multi-echo names


@pytest.mark.parametrize("ice, echo", [
    ("X_4_1_1_1_1_160_1_1_1_1_1_277", 4),
    ("12_3_1_1", 3),        # uncombined coil 12, echo 3
    ("X_X_2_1", 2),         # the first number after the first separator
    ("H11_3_1", 11),        # dcm2niix reads past a leading letter too
    ("X", None),
    ("", None),
    (None, None),
])
def test_ice_echo(ice, echo):
    from medfast.dicom.vendors.siemens import ice_echo
    assert ice_echo(ice) == echo


MEMPRAGE_TE = (1.64, 3.5, 5.36, 7.22)
_CLASSIC_ECHO_CASES = {
    # A MEMPRAGE-like series without EchoNumbers: the ICE dims number the echoes.
    "ice_only": dict(echoes=(1, 2, 3, 4), echo_times=MEMPRAGE_TE),
    # EchoNumbers 1 everywhere: the ICE dims replace it.
    "echo_numbers_1": dict(echoes=(1, 2, 3, 4), echo_times=MEMPRAGE_TE,
                           echo_numbers=[1, 1, 1, 1]),
    # EchoNumbers above 1 win over the ICE dims.
    "echo_numbers_win": dict(echoes=(3, 4), echo_times=(3.5, 5.36), echo_numbers=[2, 3]),
    # Neither: the echo time names the echo (issue 568: '_e1.64').
    "echo_time_only": dict(echoes=(1, 2, 3, 4), echo_times=MEMPRAGE_TE, ice=False),
    # One echo: no suffix for echo 1, '_e2' for a lone second echo.
    "single_echo_1": dict(echoes=(1,), echo_times=(4.92,)),
    "single_echo_2": dict(echoes=(2,), echo_times=(7.38,)),
    # The creator in another block of group 0021.
    "other_block": dict(echoes=(1, 2), echo_times=(4.92, 7.38), slot=0x13),
    # Not XA software: the ICE dims still number the echoes.
    "ve11": dict(echoes=(1, 2), echo_times=(4.92, 7.38), version="syngo MR E11"),
}


@pytest.mark.parametrize("case", sorted(_CLASSIC_ECHO_CASES))
def test_classic_echoes_like_dcm2niix(case, tmp_path):
    _classic(tmp_path / "in", slices=3, **_CLASSIC_ECHO_CASES[case])
    refs, _ = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    spec = _CLASSIC_ECHO_CASES[case]
    assert len(refs) == len(spec["echoes"])


def test_echo_time_names_without_echo_numbers(tmp_path):
    # Independently of dcm2niix: the '%g' echo times, and no EchoNumber.
    _classic(tmp_path / "in", echoes=(1, 2, 3, 4), echo_times=(1.64, 3.5, 5.36, 12.0),
             ice=False, slices=2)
    ours = _medfast(tmp_path / "in", tmp_path / "out")
    assert sorted(ours) == ["4_gre_e1.64", "4_gre_e12", "4_gre_e3.5", "4_gre_e5.36"]
    assert all("EchoNumber" not in sidecar for _, sidecar, *_ in ours.values())


@pytest.mark.parametrize("images", [
    (("M", 1), ("M", 2), ("P", 2)),
    (("M", 1), ("P", 1), ("M", 2)),
    (("P", 1), ("M", 1)),          # one echo: no '_e'
])
def test_magnitude_and_phase_in_one_series_like_dcm2niix(images, tmp_path):
    # One series UID holding magnitude and phase images of one or two
    # echoes: every image of a multi-echo series is named by its echo.
    uid, study = generate_uid(), generate_uid()
    for index, (kind, echo) in enumerate(images):
        _classic(tmp_path / "in", echoes=(echo,), echo_times=((4.92, 7.38)[echo - 1],),
                 series_uid=uid, study_uid=study, series_number=5, seed=index,
                 first_instance=1 + 10 * index, slices=3,
                 image_type=("ORIGINAL", "PRIMARY", kind, "NONE"))
    refs, _ = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert len(refs) == len(images)


def test_echo_placeholder_like_dcm2niix(tmp_path):
    # %e is the echo number, 0 without one (and replaces the '_e' suffix).
    _classic(tmp_path / "in", echoes=(1, 2), echo_times=(4.92, 7.38), ice=False, slices=2)
    _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path, pattern="%s_x%e")


def _xa_echo_files(folder, echo_times, *, ice=True, series_number=8, series_uid=None,
                   study_uid=None, image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
                   ice_echoes=None, times=(0.0, 0.2, 0.4, 0.1, 0.3), seed=0):
    """XA enhanced files of one series, one file (5 frames) per echo."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(len(times), AXIAL, step=3.0)
    series_uid, study_uid = series_uid or generate_uid(), study_uid or generate_uid()
    os.makedirs(folder, exist_ok=True)
    for e, echo_time in enumerate(echo_times):
        frames = ice_echoes[e] if ice_echoes else [e + 1] * len(times)
        _xa_enhanced(os.path.join(folder, f"{series_number}_{e}.dcm"),
                     rng.integers(0, 3000, (len(times), 6, 8)).astype(np.uint16), positions,
                     echo_time=echo_time, ice_echoes=frames if ice else None, times=times,
                     series_number=series_number, series_uid=series_uid,
                     study_uid=study_uid, instance=e + 1, image_type=image_type)


def test_xa_enhanced_echoes_like_dcm2niix(tmp_path):
    _xa_echo_files(tmp_path / "in", MEMPRAGE_TE)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(ours) == [f"8_gre_e{e}" for e in (1, 2, 3, 4)]
    assert [ours[f"8_gre_e{e}"][1]["EchoNumber"] for e in (1, 2, 3, 4)] == [1, 2, 3, 4]


def test_xa_enhanced_echo_times_without_ice_dims_like_dcm2niix(tmp_path):
    _xa_echo_files(tmp_path / "in", (1.64, 3.5), ice=False)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(ours) == ["8_gre_e1.64", "8_gre_e3.5"]


def test_xa_enhanced_echo_is_the_first_above_1_like_dcm2niix(tmp_path):
    # dcm2niix reads the frames' ICE dims in turn while the echo is not
    # above 1: frames 1, 1, 2, 3, 1 make echo 2.
    _xa_echo_files(tmp_path / "in", (5.0,), ice_echoes=[[1, 1, 2, 3, 1]])
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(ours) == ["8_gre_e2"]


def test_xa_dual_echo_field_map_like_dcm2niix(tmp_path):
    # Magnitude echoes 1 and 2 as series 8, the phase difference (echo 2)
    # as series 9, as the XA gre_field_mapping writes them.
    study = generate_uid()
    _xa_echo_files(tmp_path / "in", (4.92, 7.38), study_uid=study)
    _xa_echo_files(tmp_path / "in", (7.38,), study_uid=study, series_number=9,
                   ice_echoes=[[2] * 5], image_type=("ORIGINAL", "PRIMARY", "P", "NONE"), seed=1)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(ours) == ["8_gre_e1", "8_gre_e2", "9_gre_e2_ph"]


def test_xa30_field_map_names_like_dcm2niix(dicom_qa):
    # Real XA30 enhanced files: no EchoNumbers, the echoes in the ICE dims.
    names = {s.name for s in medfast.scan_dicom(dicom_qa / "xa30" / "In" / "8_gre_field_mapping")}
    assert names == {"8_e1", "8_e2"}
    phase = medfast.scan_dicom(dicom_qa / "xa30" / "In" / "9_gre_field_mapping")
    assert [s.name for s in phase] == ["9_e2_ph"]


# --------------------------------------------------------------------------
# 2. Siemens XA slice timing from TimeAfterStart


def _times_by_position(img, times, direction):
    """(slice centre along `direction` (RAS), time) pairs, in order of
    position, of an image and its SliceTiming."""
    a = img.affine
    centre = (np.array(img.shape[:2]) - 1) / 2.0
    points = [a[:3, :3] @ [centre[0], centre[1], k] + a[:3, 3] for k in range(img.shape[2])]
    return sorted((float(p @ direction), t) for p, t in zip(points, times))


def _assert_slice_timing_like_dcm2niix(refs, ours):
    """Every output's SliceTiming is dcm2niix's, slice by slice at the same
    position (either may store the slices in reverse order), or both have
    none."""
    for stem, (ref, ref_sidecar, *_) in refs.items():
        img, sidecar = ours[stem][:2]
        theirs, mine = ref_sidecar.get("SliceTiming"), sidecar.get("SliceTiming")
        assert (theirs is None) == (mine is None), (stem, mine, theirs)
        if theirs is None:
            continue
        direction = np.cross(img.affine[:3, 0], img.affine[:3, 1])
        direction /= np.linalg.norm(direction)
        a, b = _times_by_position(img, mine, direction), _times_by_position(ref, theirs, direction)
        assert np.allclose([p for p, _ in a], [p for p, _ in b], rtol=0, atol=0.01), stem
        assert np.allclose([t for _, t in a], [t for _, t in b], rtol=0, atol=1e-5), (stem, a, b)


INTERLEAVED = [0.0, 0.4, 0.1, 0.5, 0.2]  # seconds after the start, per slice position
DERIVED = ("DERIVED", "PRIMARY", "M", "NONE")


def _first_volume_zero(ds, volume, echo, k):
    if volume == 0:  # bogus times in the first volume (issue 875)
        ds[0x00211104].value = "0"


_XA_CLASSIC_TIMING = {
    "4d": dict(volumes=3, times=INTERLEAVED),
    "4d_bogus_first_volume": dict(volumes=3, times=INTERLEAVED, extra=_first_volume_zero),
    "4d_over_tr": dict(volumes=3, times=[0.0, 2.0, 0.5, 2.5, 1.0]),
    "4d_over_tr_derived": dict(volumes=3, times=[0.0, 2.0, 0.5, 2.5, 1.0], image_type=DERIVED),
    "4d_same_times": dict(volumes=3, times=[0.0] * 5),
    "3d": dict(volumes=1, times=INTERLEAVED),
    "4d_descending_oblique": dict(volumes=2, times=INTERLEAVED[::-1], orientation=OBLIQUE),
}


@pytest.mark.parametrize("case", sorted(_XA_CLASSIC_TIMING))
def test_xa_classic_slice_timing_like_dcm2niix(case, tmp_path):
    _classic(tmp_path / "in", slices=5, **_XA_CLASSIC_TIMING[case])
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    _assert_slice_timing_like_dcm2niix(refs, ours)


def test_xa_classic_slice_timing_is_the_second_volumes(tmp_path):
    # Independently of dcm2niix: the times of the second volume, from its
    # earliest, slice by slice (medfast's slices run along the normal).
    times = [0.3, 0.0, 0.4, 0.1, 0.5]
    _classic(tmp_path / "in", slices=5, volumes=3, times=times, extra=_first_volume_zero)
    img = medfast.load_dicom(tmp_path / "in")
    assert img.meta["SliceTiming"] == pytest.approx(times, abs=1e-6)


def test_xa_split_series_slice_timing_like_dcm2niix(tmp_path):
    # MFSPLIT: one series (UID and number 5001, 5002...) per volume, one 4-D
    # output; its times are the second series'.
    uids = [generate_uid() for _ in range(3)]

    def split(ds, volume, echo, k):
        ds.SeriesInstanceUID, ds.SeriesNumber = uids[volume], 5001 + volume
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MFSPLIT", "NONE"]

    _classic(tmp_path / "in", slices=5, volumes=3, times=INTERLEAVED, extra=split)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert len(ours) == 1 and next(iter(ours.values()))[0].shape[3] == 3
    _assert_slice_timing_like_dcm2niix(refs, ours)


_XA_ENHANCED_TIMING = {
    # One file (3-D): the stored times while they end within one TR (600 ms).
    "3d": dict(times=[[0.1, 0.3, 0.5, 0.2, 0.4]]),
    "3d_late_start": dict(times=[[5.1, 5.3, 5.5, 5.2, 5.4]]),
    "3d_over_tr": dict(times=[[0.0, 0.3, 0.9, 0.2, 0.4]]),
    "3d_over_tr_derived": dict(times=[[0.0, 0.3, 0.9, 0.2, 0.4]], image_type=DERIVED),
    # One file per volume (4-D, TR 1000 ms): the second file's times.
    "4d": dict(times=[[0.0] * 5, [1.0, 1.3, 1.1, 1.4, 1.2], [2.0, 2.3, 2.1, 2.4, 2.2]],
               tr=1000.0),
    "4d_over_tr": dict(times=[[0.0] * 5, [1.0, 2.3, 1.1, 2.4, 1.2], [2.0, 3.3, 2.1, 3.4, 2.2]],
                       tr=1000.0),
    "4d_over_tr_derived": dict(times=[[0.0] * 5, [1.0, 2.3, 1.1, 2.4, 1.2],
                                      [2.0, 3.3, 2.1, 3.4, 2.2]], tr=1000.0,
                               image_type=DERIVED),
}


@pytest.mark.parametrize("case", sorted(_XA_ENHANCED_TIMING))
def test_xa_enhanced_slice_timing_like_dcm2niix(case, tmp_path):
    spec = dict(_XA_ENHANCED_TIMING[case])
    rng = np.random.default_rng(0)
    positions = stack_positions(5, OBLIQUE, step=3.0)
    series_uid, study_uid = generate_uid(), generate_uid()
    os.makedirs(tmp_path / "in")
    for f, times in enumerate(spec["times"]):
        _xa_enhanced(tmp_path / "in" / f"{f}.dcm",
                     rng.integers(0, 3000, (5, 6, 8)).astype(np.uint16), positions,
                     echo_time=5.0, times=times, series_uid=series_uid, study_uid=study_uid,
                     instance=f + 1, repetition_time=spec.get("tr", 600.0),
                     image_type=spec.get("image_type", ("ORIGINAL", "PRIMARY", "M", "NONE")),
                     orientation=OBLIQUE)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    _assert_slice_timing_like_dcm2niix(refs, ours)


def test_xa30_like_dcm2niix(dicom_qa, tmp_path):
    # Real XA30 enhanced files (fMRI, DWI, ASL, field maps; 3-D and 4-D,
    # derived maps): the names, the slice times from TimeAfterStart (not
    # FrameAcquisitionDateTime), and a b-value table only for the 4-D
    # diffusion series (none for a derived map held by one file), the echo
    # numbers and the inversion time (in MRModifierSequence), as dcm2niix.
    refs = _dcm2niix(dicom_qa / "xa30" / "In", tmp_path / "dcm2niix")
    ours = _medfast(dicom_qa / "xa30" / "In", tmp_path / "medfast")
    assert sorted(ours) == sorted(refs)
    for stem, (_, ref_sidecar, *_) in refs.items():
        for key in ("EchoNumber", "InversionTime"):
            assert ours[stem][1].get(key) == ref_sidecar.get(key), (stem, key)
    assert ours["5_anat-T1w_acq-tfl"][1]["InversionTime"] > 0
    assert sum("SliceTiming" in sidecar for _, sidecar, *_ in refs.values()) >= 15
    _assert_slice_timing_like_dcm2niix(refs, ours)
    _assert_diffusion_like_dcm2niix(refs, ours)


# --------------------------------------------------------------------------
# 3. Classic (non-mosaic) Siemens diffusion from the CSA header


DWI = [(0, None), (1000, (1.0, 0.0, 0.0)), (1000, (0.0, 0.6, 0.8)),
       (2000, (0.48, -0.6, 0.64)), (0, (0.0, 0.0, 0.0))]


def _csa_diffusion(table, slot=0x10, private_b=False):
    """An `extra` for :func:`_classic`: volume v's b-value and direction in
    the CSA image header (0029,xx10) only (a b = 0 image has no direction),
    or also in the private (0019,xx0C)/(0019,xx0E) when `private_b`."""
    def extra(ds, volume, echo, k):
        b, direction = table[volume]
        tags = {"B_value": [float(b)]}
        if direction is not None:
            tags["DiffusionGradientDirection"] = list(direction)
        ds.add_new((0x0029, slot), "LO", "SIEMENS CSA HEADER")
        ds.add_new((0x0029, (slot << 8) | 0x10), "OB", csa2(tags))
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        if private_b:
            ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
            ds.add_new((0x0019, 0x100C), "IS", str(b))
            if direction is not None:
                ds.add_new((0x0019, 0x100E), "FD", list(direction))
    return extra


def _in_patient_space(bvecs, affine):
    """FSL bvecs (rows) of an image -> directions in its RAS world."""
    v = np.array(bvecs, float).reshape(-1, 3)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return v @ axes.T


def _assert_diffusion_like_dcm2niix(refs, ours):
    """medfast's bval is dcm2niix's, its bvec too (in the patient's axes)."""
    assert any(bval is not None for *_, bval, _ in refs.values())
    for stem, (ref, _, ref_bval, ref_bvec) in refs.items():
        img, _, bval, bvec = ours[stem]
        assert (ref_bval is None) == (bval is None), stem
        if ref_bval is None:
            continue
        np.testing.assert_allclose(bval, ref_bval)
        np.testing.assert_allclose(_in_patient_space(bvec.T, img.affine),
                                   _in_patient_space(ref_bvec.T, ref.affine), atol=1e-4)


@pytest.mark.parametrize("case", ["ve11", "xa30", "oblique", "csa_block_11", "with_private"])
def test_classic_diffusion_from_the_csa_header_like_dcm2niix(case, tmp_path):
    spec = dict(version="syngo MR XA30" if case == "xa30" else "syngo MR E11",
                orientation=OBLIQUE if case == "oblique" else AXIAL)
    extra = _csa_diffusion(DWI, slot=0x11 if case == "csa_block_11" else 0x10,
                           private_b=case == "with_private")
    _classic(tmp_path / "in", slices=3, volumes=len(DWI), ice=False, description="dwi",
             extra=extra, **spec)
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    _assert_diffusion_like_dcm2niix(refs, ours)


def test_classic_diffusion_from_the_csa_header(tmp_path):
    # Independently of dcm2niix: the CSA b-values, and the directions in
    # the patient's axes.
    _classic(tmp_path / "in", slices=3, volumes=len(DWI), ice=False, orientation=OBLIQUE,
             version="syngo MR E11", extra=_csa_diffusion(DWI))
    img = medfast.load_dicom(tmp_path / "in")
    assert img.meta["bvals"] == [b for b, _ in DWI]
    lps = np.array([d if d is not None else (0, 0, 0) for _, d in DWI], float)
    ras = lps * [-1, -1, 1]
    ras[[0, 4]] = 0  # b = 0: no direction
    np.testing.assert_allclose(_in_patient_space(img.meta["bvecs"], img.affine), ras,
                               atol=1e-6)


@pytest.mark.parametrize("case", ["b1000", "b40", "b40_with_direction", "b1000_trace"])
def test_single_diffusion_volume_like_dcm2niix(case, tmp_path):
    # One volume: a table when its b-value is above 50 (Siemens) or it has a
    # direction, else none.
    table = {"b1000": [(1000, (1.0, 0.0, 0.0))], "b40": [(40, (0.0, 0.0, 0.0))],
             "b40_with_direction": [(40, (0.0, 1.0, 0.0))], "b1000_trace": [(1000, None)]}[case]
    _classic(tmp_path / "in", slices=3, volumes=1, ice=False, version="syngo MR E11",
             extra=_csa_diffusion(table))
    refs, ours = _assert_outputs_like_dcm2niix(tmp_path / "in", tmp_path)
    assert (next(iter(ours.values()))[2] is None) == (case == "b40")
    if case != "b40":
        _assert_diffusion_like_dcm2niix(refs, ours)

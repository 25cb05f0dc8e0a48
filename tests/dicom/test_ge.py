"""GE behaviours of the DICOM layer, on synthetic series checked against
live dcm2niix (and, where the rule allows, an expectation computed from
what was written).

Every series is written with pydicom: Manufacturer "GE MEDICAL SYSTEMS" and
GE's private blocks GEMS_ACQU_01 (0019), GEMS_RELA_01 (0021), GEMS_SERS_01
(0025) and GEMS_PARM_01 (0043), reserved at (gggg,0010) as GE writes them.
dcm2niix reads GE's private elements at those fixed numbers; medfast finds
them through their private creator, so series whose creators sit in other
blocks (a PACS may move them) must give medfast what the (gggg,0010) copy
gives dcm2niix.

Volumes are compared as everywhere in these tests: closest-canonical RAS
(nibabel), identical values, affines within 1e-3 mm.  Names: dcm2niix runs
with ``-f %s_%p`` and protocol "p", so its ``6_p_fieldmaphz`` is medfast's
``6_fieldmaphz``.  Directions (PhaseEncodingDirection, bvecs) are compared
in the patient's axes: medfast's j axis runs down the rows, dcm2niix's up.

Behaviours: direct B0 field maps (``_fieldmaphz``), reverse-polarity EPI
(epi_pepolar modes 0-3), diffusion (b-values, logical gradient directions,
trace volumes), multiphase EPI stored slice by slice, 3-plane localizers
(``_i00001``...) and complex images (``_ph``, ``_real``, ``_imaginary``).
"""
import json
import os
import shutil
import struct
import subprocess

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from medfast.dicom.load import image_and_sidecar
from medfast.dicom.scan import volumes, volume_name

from dicom_data import canonical
from synthetic import (AXIAL, CORONAL, SAGITTAL, image_dataset, oblique, random_names, save,
                       stack_positions)

CREATORS = {0x0019: "GEMS_ACQU_01", 0x0021: "GEMS_RELA_01", 0x0025: "GEMS_SERS_01",
            0x0043: "GEMS_PARM_01"}
# GE private elements used here: (group, element low byte) -> VR
VR = {(0x0019, 0x17): "SS", (0x0019, 0x9C): "LO", (0x0019, 0x9E): "LO", (0x0019, 0xB3): "DS",
      (0x0019, 0xBB): "DS", (0x0019, 0xBC): "DS", (0x0019, 0xBD): "DS", (0x0019, 0xE0): "DS",
      (0x0021, 0x4F): "SS", (0x0021, 0x5A): "SL", (0x0043, 0x2A): "OB", (0x0043, 0x2F): "SS",
      (0x0043, 0x30): "SS", (0x0043, 0x39): "IS", (0x0043, 0x7C): "FL"}
PROTOCOL = "p"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


# --------------------------------------------------------------------------
# writing GE series


def ge_image(pixels, position, private, *, block=0x10, **fields):
    """A classic GE MR image with private elements ``{(group, low byte):
    value}`` in the private block `block` of each group."""
    fields.setdefault("Manufacturer", "GE MEDICAL SYSTEMS")
    fields.setdefault("PatientPosition", "HFS")
    fields.setdefault("ProtocolName", PROTOCOL)
    fields.setdefault("EchoTime", 30)
    fields.setdefault("RepetitionTime", 2000)
    ds = image_dataset(pixels, position=position, modality="MR", **fields)
    for group in sorted({g for g, _ in private}):
        ds.add_new((group, block), "LO", CREATORS[group])
    for (group, element), value in private.items():
        ds.add_new((group, (block << 8) | element), VR[group, element], value)
    return ds


def write_ge(folder, images, syntax=ExplicitVRLittleEndian, seed=0):
    """Write `images` (data sets) under random names: listing order means
    nothing."""
    os.makedirs(folder, exist_ok=True)
    names = random_names(len(images), np.random.default_rng(seed))
    for ds, name in zip(images, names):
        save(ds, os.path.join(folder, name), syntax)
    return folder


def rewrite(folder, target, *, block, syntax=ExplicitVRLittleEndian):
    """A copy of a written series with its GE private creators in block
    `block` (their elements moved with them) and in `syntax`."""
    import pydicom
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(folder):
        ds = pydicom.dcmread(os.path.join(folder, name))
        for group in CREATORS:
            elements = [el for el in ds if el.tag.group == group]
            for el in elements:
                del ds[el.tag]
            for el in elements:
                low = el.tag.element & 0xFF
                tag = (group, block) if el.tag.element < 0x100 else (group, (block << 8) | low)
                ds.add_new(tag, el.VR, el.value)
        save(ds, os.path.join(target, name), syntax)
    return target


# --------------------------------------------------------------------------
# running both converters


def dcm2niix(folder, out):
    """dcm2niix's outputs for `folder`: {medfast-style name: dict(data,
    affine (canonical), raw (its own affine), json, bval, bvec)}."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    os.makedirs(out)
    run = subprocess.run([exe, "-z", "n", "-b", "y", "-ba", "n", "-f", "%s_%p", "-o", str(out),
                          str(folder)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    refs = {}
    for path in sorted(out.glob("*.nii")):
        img = nib.load(path)
        data, affine = canonical(np.asanyarray(img.dataobj), img.affine)
        stem = path.with_suffix("")
        extra = {ext: np.loadtxt(f"{stem}.{ext}", ndmin=2) if os.path.exists(f"{stem}.{ext}")
                 else None for ext in ("bval", "bvec")}
        name = path.stem.replace(f"_{PROTOCOL}", "", 1)
        sidecar = stem.with_suffix(".json")  # dcm2niix writes none for '_ADC'
        refs[name] = dict(data=data, affine=affine, raw=img.affine,
                          json=json.loads(sidecar.read_text()) if sidecar.exists() else None,
                          **extra)
    assert refs, run.stdout
    return refs


def ours(folder):
    """medfast's volumes for `folder`: {name: dict(data, affine
    (canonical), raw, array, sidecar, bvals, bvecs, volume)}."""
    found, _ = volumes(folder)
    out = {}
    for volume in found:
        img, sidecar = image_and_sidecar(volume)
        data, affine = canonical(img.array, img.affine)
        out[volume_name(volume)] = dict(data=data, affine=affine, raw=img.affine,
                                        array=np.asarray(img.array), sidecar=sidecar,
                                        bvals=img.meta.get("bvals"), bvecs=img.meta.get("bvecs"),
                                        volume=volume)
    return out


def assert_same(ours_volume, ref):
    assert ours_volume["data"].shape == ref["data"].shape
    np.testing.assert_array_equal(ours_volume["data"].astype(np.int64),
                                  ref["data"].astype(np.int64))
    np.testing.assert_allclose(ours_volume["affine"], ref["affine"], atol=1e-3)


def assert_same_outputs(mine, refs):
    """The same names, and each volume equal to dcm2niix's."""
    assert sorted(mine) == sorted(refs)
    for name, ref in refs.items():
        assert_same(mine[name], ref)


def patient_direction(code, affine):
    """A BIDS direction code ('j-') as a unit vector (RAS) of `affine`."""
    axis = affine[:3, "ijk".index(code[0])]
    return -axis / np.linalg.norm(axis) if code.endswith("-") else axis / np.linalg.norm(axis)


def patient_bvecs(bvecs, affine):
    """FSL bvecs of an image -> RAS directions (FSL negates x when the
    affine's determinant is positive)."""
    v = np.array(bvecs, dtype=float).reshape(-1, 3)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    return v @ (affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)).T


def pixels(rng, rows=6, cols=5, low=-500):
    return rng.integers(low, 1000, size=(rows, cols)).astype(np.int16)


# --------------------------------------------------------------------------
# 1. Direct B0 field maps


def b0_series(*, slices=4, sequence=("B0map", "B0map"), images=True, locations=None,
              thickness=2.0, spacing=2.0, flag=True, image_kind=None, block=0x10, seed=1):
    """A GE direct B0 map: instances 1..n the field map (Hz), n+1..2n the
    magnitude, one per slice position.  Returns (data sets, stacks)."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, step=spacing)
    uid, study = generate_uid(), generate_uid()
    out, stacks = [], {"hz": [], "magnitude": []}
    for half, kind in enumerate(("hz", "magnitude")):
        for k in range(slices):
            image = pixels(rng)
            stacks[kind].append(image)
            private = {(0x19, 0x9C): sequence[0], (0x19, 0x9E): sequence[1],
                       (0x21, 0x4F): slices if locations is None else locations}
            if flag:
                private[0x43, 0x30] = 0 if kind == "hz" else 2
            if image_kind is not None:
                private[0x43, 0x2F] = image_kind
            fields = {"ImagesInAcquisition": 2 * slices} if images else {}
            out.append(ge_image(image, positions[k], private, block=block, series_uid=uid,
                                study_uid=study, series_number=2,
                                instance_number=half * slices + k + 1,
                                slice_thickness=thickness, SpacingBetweenSlices=spacing,
                                **fields))
    return out, {kind: np.array(stack).transpose(2, 1, 0) for kind, stack in stacks.items()}


@pytest.mark.parametrize("sequence", [("B0map", "B0map"), ("B0rf", "B0map"),
                                      ("3db0map", "EFGRE3D")])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=["explicit", "implicit"])
def test_b0_map_halves_by_instance_number(tmp_path, sequence, syntax):
    # (0020,1002) 8 images, (0021,104F) 4 locations: instances 1-4 are Hz.
    images, stacks = b0_series(sequence=sequence)
    folder = write_ge(tmp_path / "in", images, syntax)
    mine = ours(folder)
    assert sorted(mine) == ["2", "2_fieldmaphz"]
    np.testing.assert_array_equal(mine["2_fieldmaphz"]["array"], stacks["hz"])
    np.testing.assert_array_equal(mine["2"]["array"], stacks["magnitude"])
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


def test_b0_map_interpolation_factor(tmp_path):
    # ZIP x2: 2 locations acquired, 4 slices reconstructed (thickness twice
    # the spacing), 8 images: the field map is the first 2 x 2 instances.
    images, stacks = b0_series(locations=2, thickness=2.0, spacing=1.0)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert mine["2_fieldmaphz"]["data"].shape == (5, 6, 4)
    np.testing.assert_array_equal(mine["2_fieldmaphz"]["array"], stacks["hz"])
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


def test_b0_map_halves_whatever_the_image_type(tmp_path):
    # Every image marked real by (0043,102F): dcm2niix's instance rule
    # makes the first half the Hz map and the second plain magnitude.
    images, stacks = b0_series(image_kind=2)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert sorted(mine) == ["2", "2_fieldmaphz"]
    np.testing.assert_array_equal(mine["2"]["array"], stacks["magnitude"])
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


@pytest.mark.parametrize("block, syntax", [(0x11, ExplicitVRLittleEndian),
                                           (0x12, ImplicitVRLittleEndian)])
def test_b0_map_with_creators_in_other_blocks(tmp_path, block, syntax):
    images, _ = b0_series(locations=2, thickness=2.0, spacing=1.0)
    standard = write_ge(tmp_path / "in", images)
    moved = rewrite(standard, tmp_path / "moved", block=block, syntax=syntax)
    assert_same_outputs(ours(moved), dcm2niix(standard, tmp_path / "out"))


def test_b0_map_image_type_flag_when_the_counts_agree(tmp_path):
    # No (0020,1002): dcm2niix's rule cannot run, and it writes the series
    # as one 4-D volume (field map, then magnitude).  medfast splits the
    # halves by (0043,1030) (0 field map, 2 magnitude): its two volumes are
    # dcm2niix's two time points.
    images, stacks = b0_series(images=False)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert sorted(mine) == ["2", "2_fieldmaphz"]
    np.testing.assert_array_equal(mine["2_fieldmaphz"]["array"], stacks["hz"])
    np.testing.assert_array_equal(mine["2"]["array"], stacks["magnitude"])
    refs = dcm2niix(folder, tmp_path / "out")
    assert list(refs) == ["2"] and refs["2"]["data"].shape == (5, 6, 4, 2)
    for t, name in enumerate(["2_fieldmaphz", "2"]):
        np.testing.assert_array_equal(mine[name]["data"], refs["2"]["data"][..., t])
        np.testing.assert_allclose(mine[name]["affine"], refs["2"]["affine"], atol=1e-3)


def test_b0_map_nothing_tells_the_halves_apart(tmp_path):
    # Neither rule applies: one 4-D series of two volumes, as dcm2niix.
    images, _ = b0_series(images=False, flag=False)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert list(mine) == ["2"] and mine["2"]["data"].shape == (5, 6, 4, 2)
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


def test_counts_that_disagree_without_a_field_map(tmp_path):
    # The same layout from another sequence is no field map: no split.
    images, _ = b0_series(sequence=("fgre", "FGRE"), flag=False)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert "2_fieldmaphz" not in mine
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


def test_real_ge_field_maps(dicom_qa):
    # dcm_qa_fmap GE 2, 3 (3db0map) and 6 (B0rf): magnitude and Hz map per
    # series, the Hz map made of the first (0021,104F) instances.
    found, _ = volumes(dicom_qa / "fmap" / "In" / "GE")
    names = sorted(volume_name(v) for v in found)
    assert names == ["2", "2_fieldmaphz", "3", "3_fieldmaphz", "6", "6_fieldmaphz"]
    locations = {2: 80, 3: 80, 6: 16}
    for volume in found:
        instances = {s.instance for row in volume.grid for s in row}
        n = locations[volume.series_number]
        expected = range(1, n + 1) if volume.suffix == "_fieldmaphz" else range(n + 1, 2 * n + 1)
        assert instances == set(expected)


# --------------------------------------------------------------------------
# 2. Reverse-polarity EPI (epi_pepolar)


def user_data(polarity_flipped, bottom_up=False, version=24.0, offset=64):
    """A minimal GE user data block (0043,102A) as dcm2niix reads it: the
    header offset at byte 24, then the version, the EPI flag (0x800 at
    0x3A), the polarity flag (4 at 0x30) and the ky order (2 bottom-up at
    0x394, 0x308 from version 25.002, after a 0x4C shift)."""
    buf = bytearray(offset + 916 + 0x4C)
    struct.pack_into("<H", buf, 24, offset)
    struct.pack_into("<f", buf, offset, version)
    base, kydir = offset, 0x394
    if version >= 25.002:
        base, kydir = base + 0x4C, kydir - 0x8C
    struct.pack_into("<H", buf, base + 0x3A, 0x800)
    struct.pack_into("<H", buf, base + 0x30, 4 if polarity_flipped else 0)
    struct.pack_into("<H", buf, base + kydir, 2 if bottom_up else 1)
    return bytes(buf)


def pepolar_series(mode, *, volumes_=4, slices=3, series_number=6, polarity=None,
                   temporal=True, phase="COL", block=0x10, orientation=AXIAL, seed=0):
    """An epi_pepolar series, volume after volume; `polarity` is
    (0018,9034) text or ('user data', flipped, bottom_up).  Returns the data
    sets and the stored stacks per temporal position."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, orientation)
    uid, study = generate_uid(), generate_uid()
    images, stored = [], []
    for t in range(volumes_):
        stack = []
        for k in range(slices):
            image = pixels(rng, low=0)
            stack.append(image)
            private = {(0x19, 0x9C): "epi_pepolar", (0x19, 0xB3): f"{mode:.6f}",
                       (0x21, 0x4F): slices}
            fields = {"InPlanePhaseEncodingDirection": phase}
            if temporal:
                fields["TemporalPositionIdentifier"] = t + 1
            if isinstance(polarity, str):
                fields["RectilinearPhaseEncodeReordering"] = polarity
            elif polarity is not None:
                private[0x43, 0x2A] = user_data(*polarity[1:])
            images.append(ge_image(image, positions[k], private, block=block, series_uid=uid,
                                   study_uid=study, series_number=series_number,
                                   instance_number=t * slices + k + 1, orientation=orientation,
                                   **fields))
        stored.append(np.array(stack))
    return images, stored


def _reversed(mode, t):
    """Temporal position t (0-based) reversed?  Mode 2: odd positions
    (1, 3...), mode 3: even ones (2, 4...), counted from 1."""
    return mode == 1 or (mode == 2 and t % 2 == 0) or (mode == 3 and t % 2 == 1)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=["explicit", "implicit"])
def test_pepolar_volumes(tmp_path, mode, syntax):
    images, stored = pepolar_series(mode, polarity="LINEAR")
    folder = write_ge(tmp_path / "in", images, syntax)
    mine = ours(folder)
    # Expected from what was written: reversed volumes have their rows
    # flipped back, and in modes 2 and 3 they are series 1006.
    series = {}
    for t, stack in enumerate(stored):
        flipped = _reversed(mode, t)
        name = "1006" if flipped and mode in (2, 3) else "6"
        series.setdefault(name, []).append(stack[:, ::-1] if flipped else stack)
    assert sorted(mine) == sorted(series)
    for name, stacks in series.items():
        np.testing.assert_array_equal(mine[name]["array"], np.array(stacks).transpose(3, 2, 1, 0))
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


@pytest.mark.parametrize("mode", [1, 3])  # all reversed; forward and reversed (+1000)
@pytest.mark.parametrize("polarity", ["LINEAR", "REVERSE_LINEAR", ("user data", True, False),
                                      ("user data", False, False), ("user data", True, True),
                                      None],
                         ids=["linear", "reverse", "flipped", "unflipped", "bottom-up", "none"])
def test_pepolar_phase_encoding_direction(tmp_path, mode, polarity):
    images, _ = pepolar_series(mode, polarity=polarity)
    folder = write_ge(tmp_path / "in", images)
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert sorted(mine) == sorted(refs)
    for name, ref in refs.items():
        sidecar, expected = mine[name]["sidecar"], ref["json"]
        assert sidecar["SeriesNumber"] == expected["SeriesNumber"] == int(name)
        assert sidecar.get("PhaseEncodingPolarityGE") == expected.get("PhaseEncodingPolarityGE")
        assert ("PhaseEncodingDirection" in sidecar) == ("PhaseEncodingDirection" in expected)
        if "PhaseEncodingDirection" in expected:
            np.testing.assert_allclose(
                patient_direction(sidecar["PhaseEncodingDirection"], mine[name]["raw"]),
                patient_direction(expected["PhaseEncodingDirection"], ref["raw"]), atol=1e-6)
        else:
            assert sidecar["PhaseEncodingAxis"] == expected["PhaseEncodingAxis"]


def test_pepolar_row_phase_encoding(tmp_path):
    images, _ = pepolar_series(2, polarity="REVERSE_LINEAR", phase="ROW",
                               orientation=oblique(10, -20, 15))
    folder = write_ge(tmp_path / "in", images)
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert_same_outputs(mine, refs)
    for name, ref in refs.items():
        np.testing.assert_allclose(
            patient_direction(mine[name]["sidecar"]["PhaseEncodingDirection"], mine[name]["raw"]),
            patient_direction(ref["json"]["PhaseEncodingDirection"], ref["raw"]), atol=1e-6)


def test_pepolar_without_temporal_positions(tmp_path):
    # Modes 2 and 3 need (0020,0100) to tell the volumes apart: without it
    # nothing is reversed (dcm2niix does the same).
    images, stored = pepolar_series(2, temporal=False)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    assert list(mine) == ["6"]
    np.testing.assert_array_equal(mine["6"]["array"], np.array(stored).transpose(3, 2, 1, 0))
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


@pytest.mark.parametrize("block, syntax", [(0x11, ExplicitVRLittleEndian),
                                           (0x13, ImplicitVRLittleEndian)])
def test_pepolar_with_creators_in_other_blocks(tmp_path, block, syntax):
    images, _ = pepolar_series(3, series_number=8, polarity=("user data", True, False))
    standard = write_ge(tmp_path / "in", images)
    moved = rewrite(standard, tmp_path / "moved", block=block, syntax=syntax)
    mine, refs = ours(moved), dcm2niix(standard, tmp_path / "out")
    assert sorted(refs) == ["1008", "8"]
    assert_same_outputs(mine, refs)
    for name, ref in refs.items():
        assert (mine[name]["sidecar"]["PhaseEncodingPolarityGE"]
                == ref["json"]["PhaseEncodingPolarityGE"])


def test_epirt_group_delay_is_not_pepolar(tmp_path):
    # dcm2niix reads the epiRT group delay (0043,107C) last: its presence
    # makes the sequence epiRT, so nothing is reversed.
    images, stored = pepolar_series(1)
    for ds in images:
        ds.add_new((0x0043, 0x0010), "LO", CREATORS[0x0043])
        ds.add_new((0x0043, 0x107C), "FL", 0.0)
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    np.testing.assert_array_equal(mine["6"]["array"], np.array(stored).transpose(3, 2, 1, 0))
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


# --------------------------------------------------------------------------
# 3. Diffusion

DTI = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1)),
       (1000, (0.6, 0.8, 0)), (1000, (0.5, 0.5, 0.5)), (1000, (0.267, -0.534, 0.802)),
       (2000, (-0.3, 0.1, 0.2))]


def dwi_series(table, *, phase="COL", orientation=AXIAL, slices=3, sequence="epi2",
               internal=None, directions=None, descending=False, extra=None, seed=2):
    """A GE DWI series, one volume per (b-value, logical direction) entry;
    b-values written with GE's 10^9 bias, as in '1000001000\\8\\0\\0'."""
    rng = np.random.default_rng(seed)
    positions = stack_positions(slices, orientation)
    order = range(slices - 1, -1, -1) if descending else range(slices)
    uid, study = generate_uid(), generate_uid()
    images, instance = [], 0
    for b, vector in table:
        for k in order:
            instance += 1
            private = {(0x19, 0x9C): sequence, (0x21, 0x4F): slices,
                       (0x43, 0x39): [str(1000000000 + b), "8", "0", "0"],
                       (0x19, 0xBB): f"{vector[0]:.6f}", (0x19, 0xBC): f"{vector[1]:.6f}",
                       (0x19, 0xBD): f"{vector[2]:.6f}"}
            if internal is not None:
                private[0x19, 0x9E] = internal
            if directions is not None:
                private[0x19, 0xE0] = f"{directions:.6f}"
            private.update(extra or {})
            images.append(ge_image(pixels(rng, low=0), positions[k], private, series_uid=uid,
                                   study_uid=study, series_number=5, instance_number=instance,
                                   orientation=orientation, InPlanePhaseEncodingDirection=phase,
                                   EchoTime=80, RepetitionTime=6000))
    return images


def assert_same_diffusion(mine, ref):
    np.testing.assert_allclose(mine["bvals"], ref["bval"].ravel())
    bvecs = ref["bvec"].reshape(3, -1).T
    np.testing.assert_allclose(patient_bvecs(mine["bvecs"], mine["raw"]),
                               patient_bvecs(bvecs, ref["raw"]), atol=5e-4)


@pytest.mark.parametrize("phase", ["COL", "ROW"])
@pytest.mark.parametrize("orientation", [AXIAL, CORONAL, SAGITTAL, oblique(10, -20, 15)],
                         ids=["axial", "coronal", "sagittal", "oblique"])
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_dti_bvecs_match_dcm2niix(tmp_path, phase, orientation, descending):
    folder = write_ge(tmp_path / "in", dwi_series(DTI, phase=phase, orientation=orientation,
                                                  descending=descending))
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert_same_outputs(mine, refs)
    assert_same_diffusion(mine["5"], refs["5"])


def test_dti_bvalues_and_directions_from_the_rule(tmp_path):
    # Axial, COL phase encoding: dcm2niix's bvec (its rows reversed) is
    # (-x, y, z) of the logical direction, i.e. the patient direction
    # -x*row - y*column + z*normal; medfast's bvec of the same direction,
    # in its own axes (row, column, normal; FSL negates x) is (x, -y, z).
    # A direction of length 0.866 scales b = 1000 to 750.
    table = [(0, (0, 0, 0)), (1000, (0.6, 0.8, 0)), (1000, (0.5, 0.5, 0.5)), (1500, (0, 0, 1))]
    mine = ours(write_ge(tmp_path / "in", dwi_series(table)))["5"]
    assert mine["bvals"] == [0, 1000, 750, 1500]
    expected = [[0, 0, 0], [0.6, -0.8, 0], [0.57735, -0.57735, 0.57735], [0, 0, 1]]
    np.testing.assert_allclose(mine["bvecs"], expected, atol=1e-5)


@pytest.mark.parametrize("where", [1, 4])
def test_trace_volumes_of_a_non_tensor_series(tmp_path, where):
    # (0019,10E0) 0 directions: b > 0 without a direction is a trace
    # image; dcm2niix writes the series without them and, as '_ADC', with
    # them last.
    table = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1))]
    table.insert(where, (1000, (0, 0, 0)))
    folder = write_ge(tmp_path / "in", dwi_series(table, directions=0))
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert sorted(refs) == ["5", "5_ADC"]
    assert_same_outputs(mine, refs)
    assert_same_diffusion(mine["5"], refs["5"])


@pytest.mark.parametrize("extra", [{(0x19, 0xE0): "3.000000"}, {(0x43, 0x30): 16}, {}],
                         ids=["directions", "dti-image", "unknown"])
def test_b_without_direction_in_a_tensor_series_is_b0(tmp_path, extra):
    # A tensor series (or one that does not say): dcm2niix writes b = 0.
    table = [(1000, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1))]
    folder = write_ge(tmp_path / "in", dwi_series(table, extra=extra))
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert list(refs) == ["5"] and mine["5"]["bvals"] == [0, 1000, 1000, 1000]
    assert_same_outputs(mine, refs)
    assert_same_diffusion(mine["5"], refs["5"])


@pytest.mark.parametrize("extra", [{(0x43, 0x30): 19}, {(0x21, 0x5A): 7}],
                         ids=["trace-image", "all-directions-series"])
def test_non_tensor_image_types(tmp_path, extra):
    # (0043,1030) other than T2 (14) and DTI (16), or (0021,105A) other
    # than tensor (16): the zero-direction volume is a trace image.
    table = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 0))]
    folder = write_ge(tmp_path / "in", dwi_series(table, extra=extra))
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert sorted(refs) == ["5", "5_ADC"]
    assert_same_outputs(mine, refs)


@pytest.mark.parametrize("sequence, internal, extra", [
    ("epi2", None, {}),
    ("epi2_ASSET", "EPI2", {}),
    ("mydwi", "EPI2", {}),
    ("fgre", None, {}),
    ("epiRT", None, {}),
    ("epi2", "EPI", {}),
    ("epi2", None, {(0x43, 0x7C): 0.0}),  # epiRT group delay
])
def test_diffusion_fields_whatever_the_sequence(tmp_path, sequence, internal, extra):
    # dcm2niix's "only epi2 is diffusion" rule decides its BIDS guess; the
    # .bval/.bvec come from (0043,1039) and (0019,10BB-BD) of any GE image.
    table = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0))]
    images = dwi_series(table, sequence=sequence, internal=internal, extra=extra)
    folder = write_ge(tmp_path / "in", images)
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert_same_outputs(mine, refs)
    assert mine["5"]["bvals"] == [0, 1000, 1000]
    assert_same_diffusion(mine["5"], refs["5"])


def test_no_diffusion_table_without_b_values(tmp_path):
    # GE fMRI carries (0043,1039) too, with b = 0 throughout: no table.
    table = [(0, (0, 0, 0))] * 3
    folder = write_ge(tmp_path / "in", dwi_series(table, sequence="epiRT"))
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert_same_outputs(mine, refs)
    assert mine["5"]["bvals"] is None and refs["5"]["bval"] is None


# --------------------------------------------------------------------------
# 4. Multiphase EPI and localizers


@pytest.mark.parametrize("temporal", [True, False], ids=["temporal", "no-temporal"])
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("locations", [True, False], ids=["locations", "no-locations"])
def test_multiphase_stored_slice_by_slice(tmp_path, temporal, descending, locations):
    # GE multiphase EPI numbers its images phase fastest (XYTZ): all phases
    # of slice 1, then of slice 2...  Volume t must hold phase t.
    phases, slices = 5, 3
    rng = np.random.default_rng(3)
    positions = stack_positions(slices)
    uid, study = generate_uid(), generate_uid()
    images, stored = [], np.zeros((phases, slices, 6, 5), np.int16)
    order = list(range(slices))[::-1] if descending else list(range(slices))
    for rank, k in enumerate(order):
        for t in range(phases):
            stored[t, k] = pixels(rng, low=0)
            private = {(0x19, 0x9C): "epi"}
            if locations:
                private[0x21, 0x4F] = slices
            fields = {"TemporalPositionIdentifier": t + 1} if temporal else {}
            images.append(ge_image(stored[t, k], positions[k], private, series_uid=uid,
                                   study_uid=study, series_number=3,
                                   instance_number=rank * phases + t + 1,
                                   ImagesInAcquisition=phases * slices,
                                   TriggerTime=f"{100 * t}", **fields))
    folder = write_ge(tmp_path / "in", images)
    mine = ours(folder)
    np.testing.assert_array_equal(mine["3"]["array"], stored.transpose(3, 2, 1, 0))
    assert_same_outputs(mine, dcm2niix(folder, tmp_path / "out"))


@pytest.mark.parametrize("planes", [(AXIAL, SAGITTAL, CORONAL), (CORONAL, AXIAL, SAGITTAL)],
                         ids=["ax-sag-cor", "cor-ax-sag"])
def test_three_plane_localizer(tmp_path, planes):
    # SeriesPlane (0019,1017) 256: 3 orientations x 4 slices in one series:
    # one volume per orientation, named by its first instance.
    per_plane = 4
    rng = np.random.default_rng(4)
    uid, study = generate_uid(), generate_uid()
    images = []
    for p, orientation in enumerate(planes):
        positions = stack_positions(per_plane, orientation, step=6.0)
        for k in range(per_plane):
            images.append(ge_image(pixels(rng, 6, 6, low=0), positions[k],
                                   {(0x19, 0x17): 256, (0x19, 0x9C): "3-plane"},
                                   orientation=orientation, series_uid=uid, study_uid=study,
                                   series_number=1, instance_number=p * per_plane + k + 1))
    folder = write_ge(tmp_path / "in", images)
    mine, refs = ours(folder), dcm2niix(folder, tmp_path / "out")
    assert sorted(refs) == ["1_i00001", "1_i00005", "1_i00009"]
    assert_same_outputs(mine, refs)


# --------------------------------------------------------------------------
# 5. Complex images


@pytest.mark.parametrize("block, syntax", [(0x10, ExplicitVRLittleEndian),
                                           (0x10, ImplicitVRLittleEndian),
                                           (0x11, ExplicitVRLittleEndian)])
def test_complex_image_kinds(tmp_path, block, syntax):
    # (0043,102F) 0 magnitude, 1 phase, 2 real, 3 imaginary: four volumes.
    slices = 3
    rng = np.random.default_rng(5)
    positions = stack_positions(slices)
    uid, study = generate_uid(), generate_uid()
    images, stacks = [], {kind: [] for kind in range(4)}
    for k in range(slices):
        for kind in range(4):
            image = pixels(rng)
            stacks[kind].append(image)
            images.append(ge_image(image, positions[k], {(0x43, 0x2F): kind, (0x21, 0x4F): slices},
                                   series_uid=uid, study_uid=study, series_number=4,
                                   instance_number=4 * k + kind + 1))
    standard = write_ge(tmp_path / "in", images)
    folder = rewrite(standard, tmp_path / "moved", block=block, syntax=syntax)
    mine = ours(folder)
    for kind, name in enumerate(["4", "4_ph", "4_real", "4_imaginary"]):
        np.testing.assert_array_equal(mine[name]["array"],
                                      np.array(stacks[kind]).transpose(2, 1, 0))
    assert_same_outputs(mine, dcm2niix(standard, tmp_path / "out"))

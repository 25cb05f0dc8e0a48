"""Philips behaviours of the DICOM layer, checked against dcm2niix.

Synthetic Philips series (:mod:`philips_synth`: classic and enhanced,
explicit and implicit VR, private creators in any block) exercise dcm2niix's
Philips rules; wherever dcm2niix reads the case, the test runs it and
requires the same volumes (shape, values, affine after closest-canonical
reorientation) and, in 4-D series, the same volume order:

* the volume order of classic series (InstanceNumber order when it is
  spatially consistent, else the Philips volume key: gradient and b-value
  numbers, ASL phase < control/label < repeat, derived volumes last);
* derived isotropic (trace/ADC) volumes: left out of the main output and its
  bval/bvec, the whole series as '_ADC' in dcm2niix's order; the b=0+trace
  and trace-only exceptions; a DERIVED trace as a series of its own;
* private elements found through their creator in any block;
* scaling (precise values, varying rescale values, varying MRScaleSlope,
  enhanced per-frame variation) and the Philips sidecar fields;
* enhanced frame order from DimensionIndexValues for the vendors dcm2niix
  sorts (Philips, Canon with its one-index kludge, unknown vendors), and
  the Philips issue 546 and 809 keys.
"""
import json

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import medfast
from medfast.dicom.series import _adc_order
from medfast.dicom.vendors.philips import software_major

from dicom_data import canonical
from philips_synth import (IMAGING_DD_001, IN_STACK, MR_DD_001, MR_DD_005, MR_DD_006, STACK_ID,
                           TEMPORAL_INDEX, run_dcm2niix, write_classic, write_enhanced)

SYNTAXES = pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                                   ids=["explicit", "implicit"])
LABEL_TYPE = 0x20051429
MOVED_BLOCKS = {MR_DD_001: (0x2005, 0x13), MR_DD_005: (0x2005, 0x11),
                IMAGING_DD_001: (0x2001, 0x12), MR_DD_006: (0x2005, 0x10)}
# DD 001 and DD 005 swapped: MRScaleSlope at (2005,140E), the per-frame
# sequence at (2005,100F).
SWAPPED_BLOCKS = {MR_DD_001: (0x2005, 0x14), MR_DD_005: (0x2005, 0x10)}
BLOCKS = pytest.mark.parametrize("blocks", [None, MOVED_BLOCKS, SWAPPED_BLOCKS],
                                 ids=["default", "moved", "swapped"])


# --------------------------------------------------------------------------
# helpers


def _ours(folder):
    """medfast's images of a folder: {dicom_series name: Image}."""
    return {img.meta["dicom_series"]: img for img in medfast.load_dicom_all(folder)}


def _same(img, ref_data, ref_affine):
    data, affine = canonical(img.array, img.affine)
    if data.shape != ref_data.shape or not np.allclose(affine, ref_affine, atol=0.05):
        return False
    if data.dtype.kind == "f" or ref_data.dtype.kind == "f":
        scale = max(float(np.abs(ref_data).max()), 1e-30)
        return np.allclose(data, ref_data, rtol=1e-4, atol=1e-4 * scale)
    return np.array_equal(data.astype(np.int64), ref_data.astype(np.int64))


def _match_dcm2niix(folder, tmp_path, *options):
    """Every NIfTI dcm2niix writes for `folder` is one of medfast's images,
    and medfast writes no other: {dcm2niix file stem: medfast Image}."""
    found = run_dcm2niix(folder, tmp_path / "dcm2niix", *options)
    if found is None:
        pytest.skip("dcm2niix not installed")
    refs, log = found
    ours = _ours(folder)
    matched = {}
    for stem, (data, affine, _) in refs.items():
        hits = [name for name, img in ours.items() if _same(img, data, affine)]
        assert hits, f"dcm2niix's {stem} {data.shape} not among medfast's " \
                     f"{ {n: i.shape for n, i in ours.items()} }\n{log}"
        matched[stem] = ours[hits[0]]
    assert len(ours) == len(refs), (sorted(ours), sorted(refs), log)
    return matched


def _volume_sources(img):
    """Which written volume t each volume of `img` holds (unscaled data:
    stored value 1000 * t + 100 * k + ...)."""
    array = np.asarray(img.array)
    if array.ndim == 3:
        array = array[..., None]
    return [int(array[..., t].min()) // 1000 for t in range(array.shape[3])]


def _dcm2niix_text(tmp_path, stem, extension):
    path = tmp_path / "dcm2niix" / f"{stem}.{extension}"
    return path.read_text() if path.exists() else None


# --------------------------------------------------------------------------
# 1. classic volume order


def _dwi(bnums=True, shuffle_seed=1):
    """b=0 then b=1000 along four directions and b=2000 along two, listed in
    a scrambled order; (2005,1413) gradient and (2005,1412) b-value numbers."""
    directions = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.6, 0.8, 0)]
    volumes = [dict(b=0, vector=(0, 0, 0), grad=1, bnum=1)]
    volumes += [dict(b=1000, vector=d, grad=g + 1, bnum=2) for g, d in enumerate(directions)]
    volumes += [dict(b=2000, vector=d, grad=g + 1, bnum=3) for g, d in enumerate(directions[:2])]
    if not bnums:
        # Without b-value numbers the gradient numbers alone tell volumes apart.
        volumes = [dict(v, grad=i + 1) for i, v in enumerate(volumes)]
        for v in volumes:
            v.pop("bnum")
    rng = np.random.default_rng(shuffle_seed)
    return [volumes[i] for i in rng.permutation(len(volumes))]


@SYNTAXES
@pytest.mark.parametrize("order", ["volume", "slice"])
def test_classic_order_kept_when_instance_order_is_spatial(tmp_path, syntax, order):
    """Volume by volume, or slice by slice with as many volumes as slices:
    InstanceNumber order is spatially consistent, so it stays (the gradient
    numbers are not consulted)."""
    volumes = _dwi()[:4]
    write_classic(tmp_path / "in", volumes, slices=4, order=order, syntax=syntax)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    (img,) = matched.values()
    assert _volume_sources(img) == [0, 1, 2, 3]


@SYNTAXES
@pytest.mark.parametrize("order", ["shuffled", "slice"])
@pytest.mark.parametrize("bnums", [True, False], ids=["bnum", "no-bnum"])
def test_classic_dwi_sorted_by_bvalue_and_gradient_number(tmp_path, syntax, order, bnums):
    """Instance order not spatial (shuffled, or slice by slice with more
    volumes than slices): volumes by b-value number, then gradient number."""
    volumes = _dwi(bnums)
    write_classic(tmp_path / "in", volumes, slices=3, order=order, syntax=syntax)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    (img,) = matched.values()
    expected = sorted(range(len(volumes)),
                      key=lambda t: (volumes[t].get("bnum", 0), volumes[t]["grad"]))
    assert _volume_sources(img) == expected
    assert img.meta["bvals"] == [volumes[t]["b"] for t in expected]


def _asl(phases=2, repeats=3, seed=3):
    volumes = [dict(temporal=r, label=label, phase=p)
               for r in range(1, repeats + 1) for label in ("CONTROL", "LABEL")
               for p in range(1, phases + 1)]
    rng = np.random.default_rng(seed)
    return [volumes[i] for i in rng.permutation(len(volumes))]


@SYNTAXES
@pytest.mark.parametrize("phases", [1, 2])
def test_classic_asl_order(tmp_path, syntax, phases):
    """Shuffled instance numbers: phase fastest, then control before label,
    then the repeat (dcm2niix's 'slice < phase < control/label < repeat')."""
    volumes = _asl(phases)
    write_classic(tmp_path / "in", volumes, order="shuffled", syntax=syntax,
                  blocks=MOVED_BLOCKS)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    (img,) = matched.values()
    expected = sorted(range(len(volumes)), key=lambda t: (
        volumes[t]["temporal"], volumes[t]["label"] == "LABEL", volumes[t]["phase"]))
    assert _volume_sources(img) == expected


@pytest.mark.parametrize("order", ["volume", "slice"])
def test_classic_asl_spatial_instance_order_kept(tmp_path, order):
    volumes = _asl(phases=1, repeats=2)
    write_classic(tmp_path / "in", volumes, slices=4, order=order)
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == list(range(len(volumes)))


def test_classic_phases_without_volume_numbers(tmp_path):
    """Phases vary, volume numbers do not (e.g. TurboQUASAR): by phase."""
    volumes = [dict(phase=p) for p in (3, 1, 4, 2)]
    write_classic(tmp_path / "in", volumes, order="shuffled")
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == [1, 3, 0, 2]


def test_classic_two_slices_keep_instance_order(tmp_path):
    """dcm2niix never re-sorts fewer than three slices per volume: slice by
    slice with more volumes than slices keeps InstanceNumber order (three
    slices would be sorted by gradient number)."""
    volumes = _dwi()[:4]
    write_classic(tmp_path / "in", volumes, slices=2, order="slice")
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == [0, 1, 2, 3]


@pytest.mark.parametrize("software, expect_diffusion_volume", [("5.6.1", True), ("11.1", False)])
def test_classic_diffusion_volume_number(tmp_path, software, expect_diffusion_volume):
    """(2005,1596), the acquisition order of diffusion volumes, replaces the
    gradient and b-value numbers before software release 11."""
    volumes = _dwi()
    order = np.random.default_rng(5).permutation(len(volumes))
    for number, t in enumerate(order):
        volumes[t] = dict(volumes[t], diff_volume=int(number) + 1, software=software)
    write_classic(tmp_path / "in", volumes, order="shuffled")
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    if expect_diffusion_volume:
        assert _volume_sources(img) == [int(t) for t in order]
    else:
        assert _volume_sources(img) == sorted(
            range(len(volumes)), key=lambda t: (volumes[t]["bnum"], volumes[t]["grad"]))


def test_software_major():
    assert [software_major(v) for v in ("5.7.1", ["11.1", "11.1.2"], "R5.6", None, " 3x")] == \
        [5, 11, 0, -1, 3]


# --------------------------------------------------------------------------
# 2. derived isotropic (trace/ADC) volumes


def _with_trace(where, count=1, bnums=False, directions=3):
    """b=0 and b=1000 along `directions` directions, with `count` trace
    volumes (b=1000, zero direction) inserted at `where`, every other."""
    volumes = [dict(b=0, vector=(0, 0, 0), grad=1)]
    volumes += [dict(b=1000, vector=d, grad=g + 2)
                for g, d in enumerate([(1, 0, 0), (0, 1, 0), (0, 0, 1)][:directions])]
    for i in range(count):
        volumes.insert(where + i * 2, dict(b=1000, vector=(0, 0, 0), grad=1))
    if bnums:
        for v in volumes:
            v["bnum"] = 1 if v["b"] == 0 else 2
    return volumes


@SYNTAXES
@pytest.mark.parametrize("where, count, directions, order", [
    (4, 1, 3, "volume"), (2, 1, 3, "volume"), (1, 2, 3, "volume"), (1, 2, 2, "volume"),
    (4, 1, 3, "shuffled"), (2, 1, 3, "shuffled")],
    ids=["end", "middle", "two", "two-of-five", "end-shuffled", "middle-shuffled"])
def test_trace_volumes_split(tmp_path, syntax, where, count, directions, order):
    """The main output leaves the trace volumes out (bval/bvec too); the
    whole series, trace volumes moved to the end in dcm2niix's order, is
    '_ADC'.  (Two trace volumes re-sorted by position share dcm2niix's
    volume key: it then mixes their slices, which is not reproduced.)"""
    volumes = _with_trace(where, count, directions=directions)
    write_classic(tmp_path / "in", volumes, order=order, syntax=syntax)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(matched) == ["301_philips_synthetic", "301_philips_synthetic_ADC"]
    main, adc = matched["301_philips_synthetic"], matched["301_philips_synthetic_ADC"]
    assert main.meta["dicom_series"] == "301" and adc.meta["dicom_series"] == "301_ADC"
    derived = [v["b"] > 0 and not any(v["vector"]) for v in volumes]
    kept = [t for t in range(len(volumes)) if not derived[t]]
    assert _volume_sources(main) == kept
    assert sorted(_volume_sources(adc)) == list(range(len(volumes)))
    assert _volume_sources(adc)[:len(kept)] == kept
    assert main.meta["bvals"] == [volumes[t]["b"] for t in kept]
    bval = _dcm2niix_text(tmp_path, "301_philips_synthetic", "bval")
    assert [float(v) for v in bval.split()] == main.meta["bvals"]


def test_adc_order_replays_dcm2niix():
    """dcm2niix's in-place swap loop does not keep the derived volumes in
    their order when several sit among the others."""
    assert _adc_order([False, True, False, True, False]) == [0, 2, 4, 3, 1]
    assert _adc_order([False, False, True]) == [0, 1, 2]


@pytest.mark.parametrize("volumes, split", [
    ([dict(b=0, vector=(0, 0, 0)), dict(b=1000, vector=(0, 0, 0))], False),
    ([dict(b=1000, vector=(0, 0, 0), grad=g) for g in (1, 2, 3)], False),
    ([dict(b=0, vector=(0, 0, 0)), dict(b=1000, vector=(0, 0, 0)),
      dict(b=1000, vector=(0, 0, 0))], False),
    ([dict(b=0, vector=(0, 0, 0)), dict(b=1000, vector=(1, 0, 0)),
      dict(b=1000, vector=(0, 0, 0))], True),
], ids=["b0+trace", "trace-only", "b0+two-traces", "b0+direction+trace"])
def test_trace_exceptions(tmp_path, volumes, split):
    """b=0 plus one trace, or fewer than two non-trace volumes: nothing is
    removed; two of them are enough for the split."""
    write_classic(tmp_path / "in", volumes)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    assert len(matched) == (2 if split else 1)
    if not split:
        (img,) = matched.values()
        assert img.meta["bvals"] == [v["b"] for v in volumes]


def test_derived_trace_is_its_own_series(tmp_path):
    """A trace volume whose ImageType says DERIVED never stacks with the
    others (dcm2niix's isDerived): a 3-D series of its own, nothing split."""
    volumes = _with_trace(4)
    volumes[4]["image_type"] = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]
    write_classic(tmp_path / "in", volumes)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    shapes = sorted(img.shape for img in matched.values())
    assert shapes == [(5, 4, 3), (5, 4, 3, 4)]
    assert not any(name.endswith("_ADC") for name in matched)


@SYNTAXES
def test_isotropic_by_directionality_and_private_values(tmp_path, syntax):
    """(0018,9075) ISOTROPIC makes a volume derived whatever its private
    direction; private b-values and directions ((2001,1003), (2005,10B0-B2))
    stand in for the public ones, their creators in other blocks."""
    volumes = _with_trace(2)
    volumes[2].update(directionality="ISOTROPIC", private_vector=(0.0, 1.0, 0.0))
    for v in volumes:
        v.setdefault("directionality", "DIRECTIONAL" if v["b"] else "NONE")
    write_classic(tmp_path / "in", volumes, public_diffusion=False, syntax=syntax,
                  blocks=MOVED_BLOCKS)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    main = matched["301_philips_synthetic"]
    assert main.meta["bvals"] == [0, 1000, 1000, 1000]
    bvec = _dcm2niix_text(tmp_path, "301_philips_synthetic", "bvec")
    ref = np.array([[float(v) for v in line.split()] for line in bvec.splitlines()])
    ours = np.array(main.meta["bvecs"]).T
    # dcm2niix's rows are reversed: its second axis is medfast's negated.
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-4)


def test_public_b_with_private_direction(tmp_path):
    """A public b-value without a public direction waits for the private
    direction (dcm2niix's diffusion state), so the volume is not derived."""
    volumes = _with_trace(4)[:4]
    write_classic(tmp_path / "in", [dict(v, vector=None, private_vector=v["vector"])
                                    for v in volumes])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert img.meta["bvals"] == [0, 1000, 1000, 1000]
    assert np.count_nonzero(np.abs(np.array(img.meta["bvecs"])).sum(axis=1)) == 3


def test_not_split_for_other_vendors(tmp_path):
    """Other vendors' b > 0 volumes with a zero direction stay (dcm2niix
    removes trace volumes for Philips and GE only)."""
    volumes = _with_trace(4)
    write_classic(tmp_path / "in", volumes, header={"Manufacturer": "SIEMENS"})
    images = medfast.load_dicom_all(tmp_path / "in")
    assert [img.shape for img in images] == [(5, 4, 3, 5)]


@pytest.mark.parametrize("manufacturer", ["ACME Imaging", None])
def test_unknown_vendor_diffusion_taken_for_philips(tmp_path, manufacturer):
    """A DiffusionBValue in a file whose Manufacturer dcm2niix does not know
    (or that has none) makes it Philips: its trace volumes split, its volume
    order and sidecar are Philips'."""
    volumes = _with_trace(2)
    write_classic(tmp_path / "in", volumes, order="shuffled",
                  header={"Manufacturer": manufacturer})
    matched = _match_dcm2niix(tmp_path / "in", tmp_path, "-b", "y")
    assert sorted(matched) == ["301_philips_synthetic", "301_philips_synthetic_ADC"]
    main = matched["301_philips_synthetic"]
    assert main.meta["Manufacturer"] == "Philips" == _sidecar(
        tmp_path, "301_philips_synthetic")["Manufacturer"]


def test_series_number_split_by_bvalue_number(tmp_path):
    """Classic Philips series numbered above 99999 are split by b-value
    number (dcm2niix adds 1000 times it to the series number)."""
    volumes = _dwi()
    write_classic(tmp_path / "in", volumes, series_number=123456)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    assert sorted(img.meta["dicom_series"] for img in matched.values()) == \
        ["124456", "125456", "126456"]


@pytest.mark.parametrize("marker", ["directionality", "zero-vector"])
def test_enhanced_isotropic_frames_split(tmp_path, marker):
    """Enhanced: ISOTROPIC frames, or frames with b > 0 and a zero
    direction, are derived volumes too."""
    volumes = _with_trace(2)
    for v in volumes:
        if v["b"] and not any(v["vector"]):
            if marker == "directionality":
                v.update(directionality="ISOTROPIC", vector=None)
        elif v["b"]:
            v["directionality"] = "DIRECTIONAL"
    write_enhanced(tmp_path / "in" / "dwi.dcm", volumes,
                   dimension=lambda t, k, v: [1, k + 1, t + 1])
    matched = _match_dcm2niix(tmp_path / "in", tmp_path)
    main = [img for name, img in matched.items() if not name.endswith("_ADC")]
    assert len(matched) == 2 and [img.shape for img in main] == [(5, 4, 3, 4)]
    assert _volume_sources(main[0]) == [0, 1, 3, 4]


# --------------------------------------------------------------------------
# 3. private creators in any block


@SYNTAXES
@BLOCKS
def test_private_creators_classic(tmp_path, syntax, blocks):
    """MRScaleSlope, private diffusion values, gradient/b-value numbers are
    found through their creators wherever they are reserved."""
    volumes = [dict(v, slope=2.0, intercept=-10.0, ss=0.25) for v in _dwi()]
    write_classic(tmp_path / "in", volumes, order="shuffled", syntax=syntax, blocks=blocks,
                  public_diffusion=False)
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert img.meta["dicom_scaling"] == "philips"
    assert img.meta["PhilipsScaleSlope"] == 0.25
    assert sorted(img.meta["bvals"]) == img.meta["bvals"]


def test_unrelated_creator_block_is_not_philips(tmp_path):
    """An element at (2005,100E) whose block was reserved by another creator
    is not the scale slope."""
    volumes = [dict(slope=2.0, intercept=-10.0)] * 2
    write_classic(tmp_path / "in", volumes, header={})
    from pydicom import dcmread
    for path in sorted((tmp_path / "in").iterdir()):
        ds = dcmread(path)
        ds.add_new((0x2005, 0x0010), "LO", "SOMEONE ELSE")
        ds.add_new((0x2005, 0x100E), "FL", 0.5)
        ds.save_as(path)
    img = medfast.load_dicom(tmp_path / "in")
    assert img.meta["dicom_scaling"] != "philips"
    assert "PhilipsScaleSlope" not in img.meta


@SYNTAXES
@BLOCKS
def test_private_creators_enhanced(tmp_path, syntax, blocks):
    """The per-frame private sequence (2005,xx0F) and the scale slope and
    diffusion values in it, wherever their creators are."""
    volumes = [dict(v, slope=1.5, intercept=0.0, ss=3.0) for v in _with_trace(4)]
    for v in volumes:
        v["directionality"] = "DIRECTIONAL" if v["b"] else "NONE"
        if v["b"]:
            v["private_b"], v["private_vector"] = v["b"], v["vector"]
            v["b"], v["vector"] = None, None
    write_enhanced(tmp_path / "in" / "dwi.dcm", volumes, syntax=syntax, blocks=blocks)
    ours = _ours(tmp_path / "in")
    assert sorted(ours) == ["401", "401_ADC"]
    assert ours["401"].meta["bvals"] == [0, 1000, 1000, 1000]
    assert ours["401"].meta["PhilipsScaleSlope"] == 3
    if blocks is None or syntax == ExplicitVRLittleEndian:
        # dcm2niix knows the per-frame sequence of an implicit VR file only
        # at (2005,140F): with the creator moved it cannot read this case.
        _match_dcm2niix(tmp_path / "in", tmp_path)


# --------------------------------------------------------------------------
# 4. scaling


def _sidecar(tmp_path, stem):
    return json.loads((tmp_path / "dcm2niix" / f"{stem}.json").read_text())


PHILIPS_KEYS = ("PhilipsRescaleSlope", "PhilipsRescaleIntercept", "PhilipsScaleSlope",
                "UsePhilipsFloatNotDisplayScaling", "PhilipsRWVSlope", "PhilipsRWVIntercept")


def _same_philips_fields(img, ref):
    for key in PHILIPS_KEYS:
        assert (key in img.meta) == (key in ref), key
        if key in ref:
            assert img.meta[key] == pytest.approx(ref[key], rel=1e-5), key


SCALES = {
    "constant": [dict(slope=2.5, intercept=-10.0, ss=0.25)] * 3,
    "constant-offset": [dict(slope=0.2442, intercept=-500.0, ss=4.095)] * 3,
    "rescale-varies": [dict(slope=s, intercept=i, ss=0.5)
                       for s, i in ((1.0, 0.0), (2.0, 10.0), (1.5, -5.0))],
    "scale-slope-varies": [dict(slope=1.2, intercept=0.0, ss=s) for s in (0.5, 0.25, 2.0)],
    "no-scale-slope": [dict(slope=1.5, intercept=3.0)] * 3,
    "real-world": [dict(rwv=(1.7, -2.0), ss=0.5)] * 3,
    "real-world-and-rescale": [dict(slope=0.8, intercept=0.0, rwv=(0.8, 0.0), ss=8e-6)] * 3,
}


@SYNTAXES
@pytest.mark.parametrize("case", sorted(SCALES))
def test_classic_scaling_matches_dcm2niix(tmp_path, syntax, case):
    """Voxel values as dcm2niix's NIfTI holds them (nibabel applies its
    scl_slope/scl_inter), and the Philips sidecar fields of its JSON."""
    write_classic(tmp_path / "in", SCALES[case], syntax=syntax)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path, "-b", "y")
    ((stem, img),) = matched.items()
    _same_philips_fields(img, _sidecar(tmp_path, stem))


def test_classic_rescale_varies_value(tmp_path):
    """RS/RI varying between volumes: (SV * RS_i + RI_i) / SS_1 + RI_1 /
    (RS_1 * SS_1), dcm2niix's result (not each slice's precise value)."""
    volumes = [dict(slope=2.0, intercept=4.0, ss=0.5), dict(slope=3.0, intercept=-6.0, ss=0.25)]
    info = write_classic(tmp_path / "in", volumes)
    img = medfast.load_dicom(tmp_path / "in")
    stored = info["stored"].astype(np.float64)
    for t, v in enumerate(volumes):
        expected = (stored[t] * v["slope"] + v["intercept"]) / 0.5 + 4.0 / (2.0 * 0.5)
        np.testing.assert_allclose(np.asarray(img.array)[..., t], expected.transpose(2, 1, 0),
                                   rtol=1e-6)


def test_enhanced_scale_slope_varies_gives_display_values(tmp_path):
    """Enhanced frames whose MRScaleSlope varies: display values SV * RS +
    RI (dcm2niix's isScaleVariesEnh), and no Philips scale fields."""
    volumes = [dict(slope=1.5, intercept=2.0, ss=s) for s in (0.5, 0.25, 2.0)]
    info = write_enhanced(tmp_path / "in" / "f.dcm", volumes)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path, "-b", "y")
    ((stem, img),) = matched.items()
    _same_philips_fields(img, _sidecar(tmp_path, stem))
    assert "PhilipsScaleSlope" not in img.meta
    stored = info["stored"].astype(np.float64)
    np.testing.assert_allclose(np.asarray(img.array)[0, 0, 0, :],
                               stored[:, 0, 0, 0] * 1.5 + 2.0, rtol=1e-6)


@pytest.mark.parametrize("varies", ["per-volume", "per-slice"])
def test_enhanced_rescale_varies_one_output(tmp_path, varies):
    """Enhanced frames whose RescaleSlope/Intercept vary (echo time and
    image kind do not): one output of display values, as dcm2niix."""
    if varies == "per-volume":
        volumes = [dict(slope=s, intercept=i, ss=2.0) for s, i in ((1.5, 0), (2.5, 4), (1.5, 0))]
        per_slice = None
    else:
        volumes = [dict(ss=2.0)] * 3
        per_slice = [dict(slope=1.0 + k, intercept=-k) for k in range(3)]
    info = write_enhanced(tmp_path / "in" / "f.dcm", volumes, per_slice=per_slice)
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    slope = 2.5 if varies == "per-volume" else 1.0
    intercept = 4.0 if varies == "per-volume" else 0.0
    np.testing.assert_allclose(np.asarray(img.array)[0, 0, 0, 1],
                               info["stored"][1, 0, 0, 0] * slope + intercept)


def test_enhanced_constant_scaling_precise(tmp_path):
    volumes = [dict(slope=0.2442, intercept=-500.0, ss=4.095)] * 2
    write_enhanced(tmp_path / "in" / "f.dcm", volumes)
    matched = _match_dcm2niix(tmp_path / "in", tmp_path, "-b", "y")
    ((stem, img),) = matched.items()
    _same_philips_fields(img, _sidecar(tmp_path, stem))
    assert img.meta["PhilipsScaleSlope"] == 4.095


def test_qa_enhanced_philips_sidecar_fields(dicom_qa):
    """The Philips scale fields of the QA enhanced Philips references."""
    ours = {img.meta["dicom_series"]: img
            for img in medfast.load_dicom_all(dicom_qa / "enhanced" / "In" / "Philips")}
    for name, stem in (("801_e1", "Philips_WIP_B0_NS_801_e1"),
                       ("801_e2_fieldmaphz", "Philips_WIP_B0_NS_801_e2_fieldmaphz")):
        ref = json.loads((dicom_qa / "enhanced" / "Ref" / f"{stem}.json").read_text())
        _same_philips_fields(ours[name], ref)


# --------------------------------------------------------------------------
# 5. enhanced frame order from DimensionIndexValues


def _shuffled_frames(volumes, slices, seed=0):
    frames = [(t, k) for t in range(volumes) for k in range(slices)]
    rng = np.random.default_rng(seed)
    return [frames[i] for i in rng.permutation(len(frames))]


@pytest.mark.parametrize("stored", ["shuffled", "slice-major"])
def test_enhanced_asl_label_outer_dimension(tmp_path, stored):
    """Philips ASL: [stack, in-stack, label, repeat] sorted last index most
    significant: repeat, then control/label, then slice."""
    volumes = [dict(label=label, temporal=r) for label in ("CONTROL", "LABEL") for r in (1, 2, 3)]
    frames = (_shuffled_frames(6, 3) if stored == "shuffled"
              else [(t, k) for k in range(3) for t in range(6)])
    write_enhanced(tmp_path / "in" / "asl.dcm", volumes, frame_order=frames,
                   pointers=(STACK_ID, IN_STACK, LABEL_TYPE, TEMPORAL_INDEX),
                   dimension=lambda t, k, v: [1, k + 1, 1 + (v["label"] == "LABEL"),
                                              v["temporal"]])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    expected = sorted(range(6), key=lambda t: (volumes[t]["temporal"],
                                               volumes[t]["label"] == "LABEL"))
    assert _volume_sources(img) == expected


def test_enhanced_dwi_by_diffusion_index(tmp_path):
    volumes = _dwi()
    write_enhanced(tmp_path / "in" / "dwi.dcm", volumes,
                   frame_order=[(t, k) for k in range(3) for t in range(len(volumes))],
                   dimension=lambda t, k, v: [1, k + 1, v.get("bnum", 1), v["grad"]])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == sorted(range(len(volumes)), key=lambda t: (
        volumes[t]["grad"], volumes[t]["bnum"]))


@pytest.mark.parametrize("pointers, dims", [
    ((TEMPORAL_INDEX, IN_STACK), lambda t, k, v: [t + 1, k + 1]),
    ((IN_STACK, TEMPORAL_INDEX), lambda t, k, v: [k + 1, 4 - t]),
], ids=["time-first", "slice-first"])
def test_enhanced_canon_order(tmp_path, pointers, dims):
    """Canon and Bruker put time before the slice: the first index most
    significant unless the in-stack position comes first."""
    volumes = [dict(b=0)] + [dict(b=1000, vector=v) for v in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
    write_enhanced(tmp_path / "in" / "canon.dcm", volumes, manufacturer="Canon_MEC",
                   frame_order=_shuffled_frames(4, 3, seed=2), pointers=pointers,
                   dimension=dims, private_frame=False)
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    values = [dims(t, 0, None)[0 if pointers[0] == TEMPORAL_INDEX else 1] for t in range(4)]
    assert _volume_sources(img) == sorted(range(4), key=lambda t: values[t])


@pytest.mark.parametrize("stack_first", [True, False])
def test_enhanced_canon_single_varying_index(tmp_path, stack_first):
    """Canon files whose only varying index is the in-stack position, for a
    4-D file: volumes counted from the frames at in-stack position 1, in
    the order stored."""
    volumes = [dict(b=0)] + [dict(b=1000, vector=v) for v in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
    order = [3, 0, 2, 1]
    frames = [(t, k) for t in order for k in range(3)]
    write_enhanced(tmp_path / "in" / "canon.dcm", volumes, manufacturer="Canon_MEC",
                   frame_order=frames,
                   pointers=(IN_STACK, TEMPORAL_INDEX) if stack_first else (TEMPORAL_INDEX,
                                                                           IN_STACK),
                   dimension=(lambda t, k, v: [k + 1, 1]) if stack_first
                   else (lambda t, k, v: [1, k + 1]), private_frame=False)
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == order


@pytest.mark.parametrize("manufacturer, sorted_", [("ACME Imaging", True), ("SIEMENS", False)])
def test_enhanced_vendors_sorted_or_not(tmp_path, manufacturer, sorted_):
    """Unknown vendors are sorted by DimensionIndexValues; Siemens frames
    keep their stored order."""
    volumes = [{} for _ in range(4)]
    order = [2, 0, 3, 1]
    write_enhanced(tmp_path / "in" / "e.dcm", volumes, manufacturer=manufacturer,
                   frame_order=[(t, k) for t in order for k in range(3)],
                   dimension=lambda t, k, v: [1, k + 1, t + 1], private_frame=False)
    img = medfast.load_dicom(tmp_path / "in")
    assert _volume_sources(img) == ([0, 1, 2, 3] if sorted_ else order)
    if sorted_:
        _match_dcm2niix(tmp_path / "in", tmp_path)


def test_enhanced_issue_546_diffusion_volume_order(tmp_path):
    """Philips R5.6-R10 DWI: (2005,1596) and the slice number (2001,100A)
    make the key, so volumes follow the acquisition order."""
    volumes = _dwi()
    acquired = [int(t) for t in np.random.default_rng(7).permutation(len(volumes))]
    for number, t in enumerate(acquired):
        volumes[t] = dict(volumes[t], diff_volume=number + 1)
    write_enhanced(tmp_path / "in" / "dwi.dcm", volumes, frame_order=_shuffled_frames(7, 3),
                   dimension=lambda t, k, v: [1, k + 1, v["bnum"], v["grad"]])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == acquired


def test_enhanced_issue_809_keys(tmp_path):
    """Philips release 11: dcm2niix rebuilds the key from the private
    fields (phase, ASL label, image type, b-value and gradient numbers,
    temporal position), in-stack position first."""
    volumes = [dict(label=label, phase=p, temporal=r)
               for r in (1, 2) for label in ("LABEL", "CONTROL") for p in (2, 1)]
    write_enhanced(tmp_path / "in" / "asl.dcm", volumes, software="11.1.1",
                   frame_order=_shuffled_frames(len(volumes), 3, seed=4),
                   pointers=(STACK_ID, IN_STACK, TEMPORAL_INDEX),
                   dimension=lambda t, k, v: [1, k + 1, t + 1])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == sorted(range(len(volumes)), key=lambda t: (
        volumes[t]["temporal"], volumes[t]["label"] == "LABEL", volumes[t]["phase"]))


def test_enhanced_issue_809_dwi(tmp_path):
    """Release 11 DWI: the rebuilt key puts the gradient number above the
    b-value number (the original third index, the volume, is only the
    ASL-label slot's fallback)."""
    volumes = _dwi()
    write_enhanced(tmp_path / "in" / "dwi.dcm", volumes, software="11.1",
                   frame_order=_shuffled_frames(len(volumes), 3, seed=6),
                   dimension=lambda t, k, v: [1, k + 1, 1])
    (img,) = _match_dcm2niix(tmp_path / "in", tmp_path).values()
    assert _volume_sources(img) == sorted(range(len(volumes)), key=lambda t: (
        volumes[t]["grad"], volumes[t]["bnum"]))

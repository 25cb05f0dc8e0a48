"""NIfTI dim_info (frequency, phase and slice axes) through medfast.reorient.

nibabel's ``as_reoriented`` renumbers the axes of ``dim_info``; medfast's
reorient must do the same.  Each test writes a file with nibabel, loads it
with medfast, reorients, saves, and compares the header nibabel reads back
with what nibabel's own reorientation gives.
"""
import itertools

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

import medfast
from test_orientation import ALL_CODES, rotation

AFFINE = np.array([[0.0, 0.0, -2.5, 90.0],
                   [-1.0, 0.0, 0.0, 120.0],
                   [0.0, 1.2, 0.0, -70.0],
                   [0.0, 0.0, 0.0, 1.0]])
OBLIQUE = AFFINE.copy()
OBLIQUE[:3, :3] = rotation([1, 2, 3], 25) @ AFFINE[:3, :3]

# (freq, phase, slice): all set, some unknown, every permutation of axes.
DIM_INFOS = list(itertools.permutations(range(3))) + [(1, None, 0), (None, None, 2),
                                                      (None, 2, None)]


def nibabel_file(tmp_path, affine, dim_info, shape=(4, 5, 6)):
    nii = nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), affine)
    nii.header.set_dim_info(*dim_info)
    path = tmp_path / "in.nii"
    nib.save(nii, path)
    return path


def nibabel_reoriented(path, codes):
    nii = nib.load(path)
    ornt = ornt_transform(io_orientation(nii.affine), axcodes2ornt(codes))
    return nii.as_reoriented(ornt)


@pytest.mark.parametrize("dim_info", DIM_INFOS)
@pytest.mark.parametrize("affine", [AFFINE, OBLIQUE], ids=["axis-aligned", "oblique"])
def test_reorient_renumbers_dim_info_like_nibabel(tmp_path, dim_info, affine):
    path = nibabel_file(tmp_path, affine, dim_info)
    img = medfast.load(path)
    for codes in ALL_CODES[::5] + ["RAS", "LPS"]:
        out = medfast.reorient(img, codes)
        medfast.save(out, tmp_path / "out.nii")
        saved = nib.load(tmp_path / "out.nii")
        expected = nibabel_reoriented(path, codes)
        assert saved.header.get_dim_info() == expected.header.get_dim_info(), codes
        np.testing.assert_array_equal(np.asanyarray(saved.dataobj),
                                      np.asanyarray(expected.dataobj))


def test_canonical_4d_matches_nibabel(tmp_path):
    path = nibabel_file(tmp_path, AFFINE, (2, 0, 1), shape=(4, 5, 6, 2))
    out = medfast.as_canonical(medfast.load(path))
    medfast.save(out, tmp_path / "out.nii.gz")
    expected = nib.as_closest_canonical(nib.load(path)).header.get_dim_info()
    assert nib.load(tmp_path / "out.nii.gz").header.get_dim_info() == expected
    assert expected != (2, 0, 1)  # the axes did move


def test_input_meta_is_not_changed_and_other_meta_passes_through(tmp_path):
    img = medfast.load(nibabel_file(tmp_path, AFFINE, (0, 1, 2)))
    img.meta["other"] = {"keep": 1}
    before = img.meta["nifti"]["dim_info"]
    out = medfast.reorient(img, "RAS")
    assert img.meta["nifti"]["dim_info"] == before
    assert out.meta["nifti"]["dim_info"] != before
    assert out.meta["other"] is img.meta["other"]
    assert out.meta["nifti"]["descrip"] == img.meta["nifti"]["descrip"]


def test_no_dim_info_leaves_meta_alone():
    img = medfast.Image(np.zeros((2, 3, 4)), AFFINE, {"nifti": {"dim_info": 0}, "a": 1})
    assert medfast.reorient(img, "RAS").meta == img.meta
    plain = medfast.Image(np.zeros((2, 3, 4)), AFFINE, {"a": 1})
    assert medfast.reorient(plain, "RAS").meta == {"a": 1}

"""medfast: fast, correct resampling of medical images.

The resampling core, :mod:`medfast.ndimage`, is a drop-in for
``scipy.ndimage.affine_transform`` (and ``map_coordinates``, ``zoom``,
``shift``) with the same answers, multithreaded.

Images in world space: :class:`Image` (array + voxel -> RAS+ affine + meta)
and its orientation (:func:`reorient`, :func:`as_canonical`,
:func:`aff2axcodes`; flips and permutations as views, no copies).

DICOM: :func:`scan_dicom` (series found under a folder, headers only),
:func:`load_dicom` / :func:`load_dicom_all` (volumes as :class:`Image`),
:func:`convert` (DICOM folder -> NIfTI + BIDS JSON files, as dcm2niix);
annotations on an image's grid: :func:`load_seg` (DICOM SEG),
:func:`load_rtstruct` (RT structure sets).
"""
from . import ndimage
from .image import Image
from .orientation import aff2axcodes, as_canonical, reorient
from .resample import invert_transform, resample, resample_to
from .io import load_transform, save
from .dicom import convert, load_dicom, load_dicom_all, load_rtstruct, load_seg, scan_dicom
from .loadsave import load
from ._config import show_config
from ._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["ndimage", "Image", "reorient", "as_canonical", "aff2axcodes",
           "resample", "resample_to", "invert_transform", "load", "save",
           "load_transform", "load_dicom", "load_dicom_all", "scan_dicom", "load_seg",
           "load_rtstruct", "convert", "show_config", "get_num_threads", "set_num_threads",
           "__version__"]

"""DICOM series assembly: :func:`scan_dicom`, :func:`load_dicom`,
:func:`load_dicom_all`.

The path of a folder through it: :mod:`.scan` (files, in parallel) ->
:mod:`.header` (one file's header, walked natively) ->
:mod:`.slices` (its 2-D images, with vendor quirks from :mod:`.vendors`) ->
:mod:`.series` (volumes: grouping, order, 4-D) -> :mod:`.geometry` (the RAS
affine) + :mod:`.pixels` (decoding, rescaling) -> :class:`medfast.Image`.
:mod:`.sidecar` gives the BIDS fields and diffusion tables, :mod:`.convert`
writes NIfTI + JSON (+ bval/bvec) files: :func:`convert`.
Annotations on an image's grid: :mod:`.seg` (:func:`load_seg`) and
:mod:`.rtstruct` (:func:`load_rtstruct`, rasterised by ``src/_raster.pyx``).
"""
from .convert import ConvertResult, convert
from .load import load_dicom, load_dicom_all
from .rtstruct import load_rtstruct
from .seg import load_seg
from .scan import ScanResult, SeriesInfo, Skipped, scan_dicom

__all__ = ["scan_dicom", "load_dicom", "load_dicom_all", "SeriesInfo",
           "ScanResult", "Skipped", "convert", "ConvertResult", "load_seg", "load_rtstruct"]

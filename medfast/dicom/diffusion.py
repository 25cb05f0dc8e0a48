"""The diffusion table of a volume: b-values and gradient directions in the
FSL convention (``.bval``/``.bvec``), as dcm2niix writes them."""
import struct

import numpy as np

from . import values
from .vendors import ge
from .volume_header import VolumeHeader

__all__ = ["diffusion_table", "fsl_bvecs"]


def _diffusion_of_slice(s):
    """(b-value, gradient direction or None) of one slice, or None: in
    the patient's axes (LPS), or GE's logical axes (see
    :func:`_ge_diffusion`)."""
    if s.bvalue is None:
        return None
    return s.bvalue, None if s.isotropic else s.gradient


def _ge_diffusion(volume, table):
    """GE logical directions to the patient's, as dcm2niix does (see
    :func:`.vendors.ge.patient_directions`); the phase-encoding axis from
    (0018,1312), else GE's private copy (0043,108A)."""
    header = VolumeHeader(volume.first)
    phase = values.text_of(header.get("InPlanePhaseEncodingDirection")) or values.text_of(
        header.private(0x0043, "GEMS_PARM_01", 0x8A, vr="CS"))
    phase = {"R": "ROW", "C": "COL"}.get((phase or "").upper()[:1])
    return ge.patient_directions(table, volume.first, phase, len(volume.grid[0]))


def _direction(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 24:
            return None
        value = struct.unpack("<3d", bytes(value))
    try:
        vector = np.array([float(v) for v in value][:3], dtype=float)
    except (TypeError, ValueError):
        return None
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        return None
    length = np.linalg.norm(vector)
    return vector / length if length > 1e-6 else None


def fsl_bvecs(directions_lps, affine):
    """Gradient directions (patient LPS) -> FSL bvecs for an image.

    Parameters
    ----------
    directions_lps : (n, 3) array_like
        Unit vectors in DICOM patient coordinates (LPS); zero rows stay zero.
    affine : (4, 4) array_like
        The image's voxel -> RAS+ affine.

    Returns
    -------
    (n, 3) ndarray
        Each direction in the image's voxel axes (the affine's normalised
        columns), with the first component negated when the affine's
        determinant is positive: FSL's convention, which dcm2niix follows.
    """
    g = np.asarray(directions_lps, dtype=float).reshape(-1, 3)
    ras = g * np.array([-1.0, -1.0, 1.0])
    m = np.asarray(affine, dtype=float)[:3, :3]
    axes = m / np.linalg.norm(m, axis=0)
    voxel = np.linalg.solve(axes, ras.T).T  # = axes.T @ ras for orthonormal axes
    norms = np.linalg.norm(voxel, axis=1, keepdims=True)
    voxel = np.where(norms > 0, voxel / np.where(norms > 0, norms, 1), 0.0)
    if np.linalg.det(m) > 0:
        voxel[:, 0] = -voxel[:, 0]
    return voxel


# dcm2niix (nii_saveDTI) writes no table for a single volume from a single
# file, nor for a single volume without a direction whose b-value is at
# most this (issue 352).
_SINGLE_VOLUME_MIN_B = {"Siemens": 50.0}


def diffusion_table(volume):
    """b-values and FSL bvecs of a diffusion volume, in volume order.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    (bvals, bvecs) or None
        ``bvals``: list of numbers (s/mm^2), one per volume (time point);
        ``bvecs``: list of ``[x, y, z]``, one per volume, in the voxel axes
        of ``volume.affine`` (FSL convention, see :func:`fsl_bvecs`;
        ``[0, 0, 0]`` for b = 0 and for volumes without a direction, such as
        isotropic trace images).  None when the series is not diffusion
        weighted: a volume without a b-value, or no b-value above 0; and,
        as dcm2niix, for a single volume held by one file, or without a
        direction and with a b-value of at most 50 (Siemens; 6 for others).

    Notes
    -----
    Sources: DiffusionBValue (0018,9087) and DiffusionGradientOrientation
    (0018,9089) of classic files, the MRDiffusionSequence of each frame of
    enhanced files, and for Siemens the CSA header's ``B_value`` and
    ``DiffusionGradientDirection`` (or the private (0019,100C)/(0019,100E)),
    for GE its private b-value and logical direction, converted as dcm2niix
    does (:func:`.vendors.ge.patient_directions`: b-values scaled by a short
    direction are rescaled, a b > 0 without a direction is b = 0 in a
    tensor series).
    """
    table = []
    for row in volume.grid:
        entry = _diffusion_of_slice(row[0])
        if entry is None or entry[0] is None:
            return None
        table.append(entry)
    if volume.first.gradient_axes == "logical":
        bvals, directions = _ge_diffusion(volume, table)
        bvals = [max(0.0, float(b)) for b in bvals]
    else:
        bvals = [max(0.0, float(b)) for b, _ in table]
        directions = np.zeros((len(table), 3))
        for t, (_, direction) in enumerate(table):
            vector = _direction(direction)
            if bvals[t] > 0 and vector is not None:
                directions[t] = vector
    if not any(b > 0 for b in bvals):
        return None
    if len(bvals) == 1 and (len(volume.files) == 1 or (
            bvals[0] <= _SINGLE_VOLUME_MIN_B.get(volume.first.manufacturer, 6.0)
            and not np.any(directions[0]))):
        return None
    bvecs = fsl_bvecs(directions, volume.affine)
    bvecs = np.round(bvecs, 6) + 0.0  # + 0.0 turns -0.0 into 0.0
    return ([values.json_number(b) for b in bvals],
            [[float(v) for v in row] for row in bvecs])

"""Slice positions -> the voxel-to-world affine (DICOM LPS -> RAS).

Voxel axis i runs along a row (the ImageOrientationPatient row direction,
PixelSpacing[1] apart), j down the columns (PixelSpacing[0]), k from slice
to slice in the order of the positions projected on the slice normal.
"""
import numpy as np

from ..orientation import lps_to_ras_affine

# Two slices closer than this along the normal share a position (mm).
POSITION_TOLERANCE = 0.01
# Relative spread of the gaps above which spacing is reported non-uniform.
SPACING_TOLERANCE = 0.01
# dcm2niix's kSliceTolerance: a gap further than this from the first one
# makes the spacing vary (the first step is then used, as dcm2niix does).
SLICE_TOLERANCE = 0.2
# Angle between the slice step and the normal reported as a tilt (degrees).
TILT_TOLERANCE = 0.05


def slice_distances(positions, normal):
    """Positions (n, 3) projected on the unit `normal` (mm)."""
    return np.asarray(positions, dtype=float) @ np.asarray(normal, dtype=float)


def affine_and_checks(first, positions, default_spacing):
    """Build the RAS affine of a stack and check its slice spacing.

    Parameters
    ----------
    first : medfast.dicom.slices.Slice
        Any slice of the stack (its orientation and pixel spacing are used).
    positions : (k, 3) ndarray
        ImagePositionPatient of each slice, in stack order (LPS).
    default_spacing : float or None
        Slice spacing for a single slice (SpacingBetweenSlices or
        SliceThickness).

    Returns
    -------
    affine : (4, 4) ndarray
        Voxel (i, j, k) -> RAS+ mm.
    problems : list of str
        Non-uniform spacing, missing slices, gantry tilt.
    tilt : float
        Angle in degrees between the slice step and the slice normal.
    distances : ndarray or None
        When the gaps vary by more than 0.2 mm: each slice's distance from
        the first along the normal (dcm2niix then uses the first step for
        the affine, and writes an equidistant copy, see :mod:`.equalize`).
    """
    row_dir, col_dir = first.orientation[:3], first.orientation[3:]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * first.pixel_spacing[1]
    lps[:3, 1] = col_dir * first.pixel_spacing[0]
    lps[:3, 3] = positions[0]
    problems = []
    tilt = 0.0
    distances = None
    if len(positions) > 1:
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
        normal = first.normal
        along = slice_distances(positions, normal)
        gaps = np.diff(along)
        mean = float(np.mean(gaps))
        median = float(np.median(gaps))
        if np.max(np.abs(gaps - gaps[0])) > SLICE_TOLERANCE:
            step = positions[1] - positions[0]
            distances = along - along[0]
        if np.max(np.abs(gaps - mean)) > SPACING_TOLERANCE * abs(mean) + 1e-4:
            big = np.flatnonzero(gaps > 1.5 * median)
            if big.size:
                missing = int(round(float(np.sum(gaps[big]) / median))) - big.size
                problems.append(
                    f"missing slices: {missing} gap(s) of about {median:.3g} mm "
                    f"(after slice {int(big[0]) + 1} of {len(positions)})")
            used = (f"the first, {gaps[0]:.4g} mm, as dcm2niix" if distances is not None
                    else f"the mean, {mean:.4g} mm")
            problems.append(f"non-uniform slice spacing ({gaps.min():.4g} to "
                            f"{gaps.max():.4g} mm); the affine uses {used}")
        cosine = abs(np.dot(step, normal)) / np.linalg.norm(step)
        tilt = float(np.degrees(np.arccos(min(1.0, cosine))))
        if tilt > TILT_TOLERANCE:
            problems.append(f"gantry tilt: slices are stacked {tilt:.2f} degrees "
                            "off their normal (sheared affine; "
                            "load_dicom(..., correct_tilt=True) resamples it)")
        else:
            tilt = 0.0
    else:
        step = first.normal * (default_spacing or 1.0)
    lps[:3, 2] = step
    return lps_to_ras_affine(lps), problems, tilt, distances


def untilted_affine(affine):
    """The affine with its slice axis turned onto the slice normal.

    Keeps the in-plane axes and the origin, and the slice spacing measured
    along the normal: the grid dcm2niix resamples a tilted CT onto.
    """
    out = np.array(affine, dtype=float)
    normal = np.cross(out[:3, 0], out[:3, 1])
    normal /= np.linalg.norm(normal)
    out[:3, 2] = normal * np.dot(out[:3, 2], normal)
    return out

"""NIfTI header conventions that several layers use (no I/O).

:mod:`medfast.image` (``to_nibabel``), :mod:`medfast.orientation` (``dim_info``
follows a reorientation) and :mod:`medfast.io.nifti` (reading, writing) all
need them, and the geometry layers sit below the formats: so they live here,
at the bottom, once.
"""

#: Largest dimension a NIfTI-1 header holds (a signed 16-bit integer); larger
#: images are written as NIfTI-2.
NIFTI1_MAX_DIM = 32767


def pack_dim_info(freq, phase, slice_):
    """NIfTI ``dim_info`` from the frequency, phase and slice axes.

    Parameters
    ----------
    freq, phase, slice_ : int
        Each the axis index + 1 (1, 2 or 3), or 0 for unknown.

    Returns
    -------
    int
        Three 2-bit fields: frequency in bits 0-1, phase in bits 2-3, slice
        in bits 4-5 (nibabel's ``set_dim_info`` layout).
    """
    return freq | (phase << 2) | (slice_ << 4)


def unpack_dim_info(dim_info):
    """The ``(freq, phase, slice)`` fields of NIfTI ``dim_info``, each the axis
    index + 1 or 0 for unknown (the inverse of :func:`pack_dim_info`)."""
    dim_info = int(dim_info)
    return tuple((dim_info >> shift) & 3 for shift in (0, 2, 4))

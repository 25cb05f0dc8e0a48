"""Which dtypes the compiled kernels read and write, and their codes.

The codes index the kernels' fused-type dispatch (``src/_kernels.pyx``);
bool inputs are read through a ``uint8`` view (numpy stores them as 0/1
bytes), bool outputs keep scipy's plain C cast.
"""
import numpy as np

#: Input dtypes read natively (no conversion), with their kernel codes.
INPUT_CODES = {
    np.dtype(np.bool_): 0,
    np.dtype(np.uint8): 0,
    np.dtype(np.int8): 1,
    np.dtype(np.uint16): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.uint32): 4,
    np.dtype(np.int32): 5,
    np.dtype(np.float32): 6,
    np.dtype(np.float64): 7,
}

#: Output dtypes written natively, with their kernel codes.
OUTPUT_CODES = {
    np.dtype(np.bool_): 0,
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.uint16): 3,
    np.dtype(np.int16): 4,
    np.dtype(np.uint32): 5,
    np.dtype(np.int32): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.float64): 8,
}


def kernel_view(array):
    """The array as the kernels read it: bool viewed as uint8, native byte
    order required (big-endian data is not native).

    Parameters
    ----------
    array : numpy.ndarray

    Returns
    -------
    numpy.ndarray
        A view (never a copy) of ``array``.
    """
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    return array

"""medfast: fast, correct resampling of medical images.

The resampling core, :mod:`medfast.ndimage`, is a drop-in for
``scipy.ndimage.affine_transform`` (and ``map_coordinates``, ``zoom``,
``shift``) with the same answers, multithreaded.
"""
from . import ndimage
from ._config import show_config
from ._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["ndimage", "show_config", "get_num_threads", "set_num_threads",
           "__version__"]

"""``medfast bench``: the built-in phantom resampled by medfast and by
scipy.ndimage, timed, and the answers compared byte for byte."""
import time

import numpy as np


def _best_time(func, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def rotation_about_last_axis(shape, degrees=10.0, scale=0.9):
    """The benchmark transform: rotation about the last axis times a scaling,
    centred on the volume.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape.
    degrees : float, optional
        Rotation angle.
    scale : float, optional
        Isotropic scaling factor.

    Returns
    -------
    matrix : ndarray, shape (3, 3)
    offset : ndarray, shape (3,)
        Such that output index ``o`` samples the input at ``matrix @ o + offset``
        and the centre maps onto itself.
    """
    theta = np.deg2rad(degrees)
    c, s = np.cos(theta), np.sin(theta)
    matrix = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) * scale
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    return matrix, centre - matrix @ centre


def bench(quick=False, threads=None, shape=(256, 256, 180)):
    """Resample the phantom with medfast and scipy; print timings.

    Parameters
    ----------
    quick : bool, optional
        Fewer repetitions (a few seconds in all).
    threads : int, optional
        Threads for medfast (default: all available cores).
    shape : tuple of 3 int, optional
        Phantom shape.

    Returns
    -------
    int
        Exit status: 0, or 1 if medfast's answer differs from scipy's.
    """
    from . import ndimage, get_num_threads
    from .phantom import shepp_logan
    try:
        import scipy.ndimage as scipy_ndimage
    except ImportError:
        scipy_ndimage = None

    threads = threads or get_num_threads()
    volume = shepp_logan(shape)
    matrix, offset = rotation_about_last_axis(volume.shape)
    print(f"medfast: resampling a {'x'.join(map(str, volume.shape))} float32 "
          f"Shepp-Logan phantom (built in)")
    print(f"transform: 10 degree rotation about the last axis x 0.9 scaling, "
          f"centred; medfast on {threads} thread(s), scipy on 1 (it has no threads)")
    print()
    print(f"{'order':<22}{'scipy.ndimage':>15}{'medfast':>12}{'speed-up':>11}   answers")
    status = 0
    runs = 3 if quick else 10
    for order, name in ((1, "1 (linear)"), (0, "0 (nearest)")):
        ndimage.affine_transform(volume, matrix, offset, order=order, threads=threads)
        t_mf, ours = _best_time(lambda order=order: ndimage.affine_transform(
            volume, matrix, offset, order=order, threads=threads), runs)
        if scipy_ndimage is None:
            print(f"{name:<22}{'(not installed)':>15}{t_mf * 1e3:>9.1f} ms")
            continue
        t_sp, ref = _best_time(lambda order=order: scipy_ndimage.affine_transform(
            volume, matrix, offset, order=order), 1 if quick else 3)
        same = np.array_equal(ours.view(np.uint32), ref.view(np.uint32))
        status |= not same
        print(f"{name:<22}{t_sp * 1e3:>12.1f} ms{t_mf * 1e3:>9.1f} ms"
              f"{t_sp / t_mf:>10.1f}x   {'identical' if same else 'DIFFERENT'}")
    if scipy_ndimage is None:
        print("\nscipy is not installed: pip install scipy to compare against it")
    return status

"""Built-in test data: a 3-D Shepp-Logan head phantom.

Used by ``medfast bench`` and the examples, so that the main job runs on a
fresh machine without downloading anything.
"""
import numpy as np

# Modified 3-D Shepp-Logan ellipsoids (Kak & Slaney, with Toft's higher
# contrast intensities): intensity, semi-axes (a, b, c), centre (x, y, z),
# rotation about z in degrees.  Coordinates span [-1, 1] on every axis.
_ELLIPSOIDS = (
    (1.0, (0.6900, 0.920, 0.810), (0.0, 0.0000, 0.00), 0.0),
    (-0.8, (0.6624, 0.874, 0.780), (0.0, -0.0184, 0.00), 0.0),
    (-0.2, (0.1100, 0.310, 0.220), (0.22, 0.0000, 0.00), -18.0),
    (-0.2, (0.1600, 0.410, 0.280), (-0.22, 0.0000, 0.00), 18.0),
    (0.1, (0.2100, 0.250, 0.410), (0.0, 0.3500, -0.15), 0.0),
    (0.1, (0.0460, 0.046, 0.050), (0.0, 0.1000, 0.25), 0.0),
    (0.1, (0.0460, 0.046, 0.050), (0.0, -0.1000, 0.25), 0.0),
    (0.1, (0.0460, 0.023, 0.050), (-0.08, -0.6050, 0.00), 0.0),
    (0.1, (0.0230, 0.023, 0.020), (0.0, -0.6060, 0.00), 0.0),
    (0.1, (0.0230, 0.046, 0.020), (0.06, -0.6050, 0.00), 0.0),
)


def shepp_logan(shape=(256, 256, 180), dtype=np.float32):
    """A 3-D Shepp-Logan head phantom.

    Parameters
    ----------
    shape : tuple of 3 int, optional
        Output shape (axis order x, y, z); default ``(256, 256, 180)``.
    dtype : numpy dtype, optional
        Output dtype.  Float dtypes hold intensities in [0, 1]; integer
        dtypes are scaled to ``0..1000`` (like CT-style integer data).

    Returns
    -------
    numpy.ndarray
        The phantom, C-contiguous.

    Examples
    --------
    >>> from medfast.phantom import shepp_logan
    >>> shepp_logan((32, 32, 16)).shape
    (32, 32, 16)
    """
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise ValueError(f"shape must be three positive sizes, got {shape!r}")
    axes = [np.linspace(-1.0, 1.0, int(n)) for n in shape]
    x, y, z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    volume = np.zeros(tuple(int(n) for n in shape), dtype=np.float32)
    for value, (a, b, c), (x0, y0, z0), phi in _ELLIPSOIDS:
        cos, sin = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
        xr = (x - x0) * cos + (y - y0) * sin
        yr = (y - y0) * cos - (x - x0) * sin
        inside = (xr / a) ** 2 + (yr / b) ** 2 + ((z - z0) / c) ** 2 <= 1.0
        volume[inside] += value
    np.clip(volume, 0.0, None, out=volume)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.round(volume * 1000).astype(dtype)
    return volume.astype(dtype, copy=False)

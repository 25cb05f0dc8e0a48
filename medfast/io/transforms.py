"""ITK and ANTs affine transform files -> 4x4 RAS+ world transforms.

:func:`load_transform` reads what ITK's ``TransformFileWriter`` (and so
SimpleITK's ``WriteTransform``, ANTs, 3D Slicer, elastix' ITK export) writes
for linear transforms:

* **text** (``.tfm``, ``.txt``): ``#Insight Transform File V1.0``, then per
  transform a ``Transform: <Kind>_<double|float>_3_3`` line, ``Parameters:``
  and ``FixedParameters:``; a ``CompositeTransform`` is followed by the
  transforms it chains;
* **MATLAB v4** (``.mat``, ITK's ``MatlabTransformIO``, ANTs' default
  affine output): two variables, ``<Kind>_<double|float>_3_3`` (the
  parameters) and ``fixed`` (the fixed parameters), read by a small reader
  here, so scipy is not needed (a MATLAB v5 file is read with
  :func:`scipy.io.loadmat` when scipy is installed).

The ITK convention
------------------
ITK's matrix transforms map a point ``x`` (LPS+ mm) to ``M @ x + offset``
with ``offset = translation + center - M @ center`` (``center``: the fixed
parameters).  A transform used to resample maps points of the fixed
(output) space to the moving (input) space, which is what
``medfast.resample(..., transform=T)`` expects, so the matrix returned here
passes straight to it.  The LPS -> RAS change is
:func:`medfast.orientation.lps_to_ras_transform`.
"""
import os
import re

import numpy as np

from ..orientation import lps_to_ras_transform
from ._paths import existing_path

__all__ = ["load_transform"]

_TEXT_MAGIC = b"#Insight Transform File"
_V5_MAGIC = b"MATLAB 5.0"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# <Kind>_<precision>_<input dim>_<output dim>, e.g. AffineTransform_double_3_3.
_NAME = re.compile(r"^([A-Za-z0-9]+)_(double|float)_(\d+)_(\d+)$")
# Kind -> (number of parameters, accepted numbers of fixed parameters).
_KINDS = {
    "AffineTransform": (12, (3,)),
    "MatrixOffsetTransformBase": (12, (3,)),
    "Rigid3DTransform": (12, (3,)),
    "Euler3DTransform": (6, (3, 4)),         # fixed: centre [+ ComputeZYX flag]
    "VersorRigid3DTransform": (6, (3,)),
    "Similarity3DTransform": (7, (3,)),
    "TranslationTransform": (3, (0,)),
    "IdentityTransform": (0, (0,)),
}
_SUPPORTED = ", ".join(_KINDS)
# MATLAB v4 precision digit -> numpy type (then made little/big-endian).
_V4_TYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}


def load_transform(path):
    """Read an ITK/ANTs affine transform file as a 4x4 RAS+ world transform.

    Parameters
    ----------
    path : str or os.PathLike
        An ITK text transform file (``.tfm``, ``.txt``) or an ITK/ANTs
        MATLAB ``.mat`` file, holding one 3-D transform of a supported kind
        (``AffineTransform``, ``MatrixOffsetTransformBase``,
        ``Rigid3DTransform``, ``Euler3DTransform``, ``VersorRigid3DTransform``,
        ``Similarity3DTransform``, ``TranslationTransform``,
        ``IdentityTransform``), or (text only) a ``CompositeTransform`` of
        them.  The content decides the format, not the extension.

    Returns
    -------
    ndarray, shape (4, 4), float64
        ``T`` mapping RAS+ points (mm) of the transform's fixed space to its
        moving space: ``T @ [x, y, z, 1]`` is ITK's ``TransformPoint`` of the
        same point in LPS+, converted back to RAS+.  This is the convention
        of ``medfast.resample(moving, like=fixed, transform=T)``, which then
        gives what ITK's resampling with this transform gives.  A composite
        transform is the product of its parts (applied last to first, as
        ITK does).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not an ITK transform file, holds a transform kind
        that is not affine or not supported, a 2-D (or other non-3-D)
        transform, too few or too many parameters, or is truncated; the
        message names the file and the problem.

    Examples
    --------
    >>> import medfast
    >>> T = medfast.load_transform("moving_to_fixed0GenericAffine.mat")  # doctest: +SKIP
    >>> out = medfast.resample(moving, like=fixed, transform=T)          # doctest: +SKIP
    """
    path = existing_path(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a transform file")
    with open(path, "rb") as f:
        data = f.read()
    if data.lstrip().startswith(_TEXT_MAGIC):
        transforms = _read_text(data, path)
    elif data.startswith(_HDF5_MAGIC):
        raise ValueError(
            f"{path}: an HDF5 (.h5) transform file, which is not supported; convert it "
            f"with SimpleITK: sitk.WriteTransform(sitk.ReadTransform(path), 'out.tfm')")
    elif data.startswith(_V5_MAGIC):
        transforms = _from_mat_variables(_read_mat_v5(path), path)
    else:
        transforms = _from_mat_variables(_read_mat_v4(data, path), path)
    matrix = np.eye(4)
    for kind, params, fixed in transforms:
        matrix = matrix @ _lps_matrix(kind, params, fixed, path)
    try:
        return lps_to_ras_transform(matrix)
    except ValueError as error:  # singular or overflowing
        raise ValueError(f"{path}: {error}") from None


# --------------------------------------------------------------------------
# Text files
# --------------------------------------------------------------------------
def _numbers(text, what, path, line_number):
    try:
        return np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: line {line_number}: {what} must be numbers, got "
                         f"{text.strip()[:80]!r}") from None


def _read_text(data, path):
    """[(name, parameters, fixed parameters)] in file order, composites
    expanded (the composite header itself dropped)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: an ITK transform file must be text (UTF-8)") from None
    entries = []  # [name, params or None, fixed or None, line number]
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep:
            raise ValueError(f"{path}: line {number}: expected 'Key: value', got {line[:80]!r}")
        if key == "Transform":
            entries.append([value.strip(), None, None, number])
        elif key in ("Parameters", "FixedParameters"):
            if not entries:
                raise ValueError(f"{path}: line {number}: {key} before any 'Transform:' line")
            slot = 1 if key == "Parameters" else 2
            if entries[-1][slot] is not None:
                raise ValueError(f"{path}: line {number}: a second {key} line for "
                                 f"{entries[-1][0]}")
            entries[-1][slot] = _numbers(value, key, path, number)
        else:
            raise ValueError(f"{path}: line {number}: unknown key {key!r} (expected "
                             f"Transform, Parameters or FixedParameters)")
    if not entries:
        raise ValueError(f"{path}: holds no transform (no 'Transform:' line)")
    first = _parse_name(entries[0][0], path)[0]
    if first == "CompositeTransform":
        entries = entries[1:]
        if not entries:
            raise ValueError(f"{path}: an empty CompositeTransform")
    elif len(entries) > 1:
        raise ValueError(f"{path}: holds {len(entries)} transforms that are not parts of "
                         f"a CompositeTransform; expected one")
    out = []
    for name, params, fixed, number in entries:
        if _parse_name(name, path)[0] == "CompositeTransform":
            raise ValueError(f"{path}: line {number}: a CompositeTransform inside a "
                             f"CompositeTransform is not supported")
        if params is None:
            raise ValueError(f"{path}: line {number}: {name} has no 'Parameters:' line "
                             f"(truncated file?)")
        out.append((name, params, np.zeros(0) if fixed is None else fixed))
    return out


# --------------------------------------------------------------------------
# MATLAB files
# --------------------------------------------------------------------------
def _read_mat_v4(data, path):
    """The variables of a MATLAB v4 file, {name: 2-D float64 array}.

    Each variable is a 20-byte header of five int32 (type ``MOPT``, rows,
    columns, imaginary flag, name length including its NUL), the name, and
    the real values in column-major order.  ``M`` (thousands digit) is 0 for
    little-endian, 1 for big-endian; ``P`` (tens) the precision; ``O`` and
    ``T`` are 0 for a full numeric matrix.
    """
    not_itk = (f"{path}: not an ITK transform file (neither '#Insight Transform "
               f"File' text nor an ITK MATLAB .mat file)")
    if not data:
        raise ValueError(f"{path}: empty file, not an ITK transform file")
    variables = {}
    pos = 0
    while pos < len(data):
        if len(data) - pos < 20:
            if not variables:
                raise ValueError(not_itk)
            raise ValueError(f"{path}: truncated MATLAB file ({len(data) - pos} bytes "
                             f"after the last variable, a header is 20)")
        for order in ("<", ">"):
            mopt, rows, cols, imag, namelen = (int(v) for v in np.frombuffer(
                data, dtype=f"{order}i4", count=5, offset=pos))
            if 0 <= mopt < 10000 and mopt // 1000 == (order == ">"):
                break
        else:
            if not variables:
                raise ValueError(not_itk)
            raise ValueError(f"{path}: corrupt MATLAB file (bad variable header at "
                             f"byte {pos})")
        precision, kind = (mopt // 10) % 10, mopt % 10
        if (mopt // 100) % 10 != 0 or kind != 0 or precision not in _V4_TYPES \
                or imag not in (0, 1) or rows < 0 or cols < 0 or not 0 < namelen <= 4096:
            if not variables:
                raise ValueError(not_itk)
            raise ValueError(f"{path}: unsupported MATLAB v4 variable at byte {pos} "
                             f"(type code {mopt}): expected a real numeric matrix")
        pos += 20
        name = data[pos:pos + namelen].split(b"\0", 1)[0]
        pos += namelen
        dtype = np.dtype(_V4_TYPES[precision]).newbyteorder(order)
        size = rows * cols * dtype.itemsize * (1 + imag)
        if len(data) - pos < size or len(name) == 0:
            raise ValueError(f"{path}: truncated MATLAB file (variable "
                             f"{name.decode('latin-1')!r} needs {size} bytes, "
                             f"{max(0, len(data) - pos)} left)")
        values = np.frombuffer(data, dtype=dtype, count=rows * cols, offset=pos)
        pos += size
        variables[name.decode("latin-1")] = (
            values.astype(np.float64).reshape((cols, rows)).T)
    return variables


def _read_mat_v5(path):
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ValueError(f"{path}: a MATLAB v5 file; ITK writes v4, and reading v5 "
                         f"needs scipy (pip install scipy)") from None
    try:
        raw = loadmat(path)
    except Exception as error:  # scipy raises many types for bad files
        raise ValueError(f"{path}: unreadable MATLAB v5 file ({error})") from None
    return {key: np.asarray(value, dtype=np.float64) for key, value in raw.items()
            if not key.startswith("__")}


def _from_mat_variables(variables, path):
    names = [key for key in variables if _NAME.match(key)]
    if len(names) != 1:
        found = ", ".join(sorted(variables)) or "none"
        raise ValueError(f"{path}: expected one transform variable such as "
                         f"'AffineTransform_double_3_3' (and 'fixed'), found {found}")
    name = names[0]
    if _parse_name(name, path)[0] == "CompositeTransform":
        raise ValueError(f"{path}: a CompositeTransform in a .mat file (ITK's MATLAB "
                         f"writer keeps only its last part); write it as a .tfm file")
    fixed = variables.get("fixed", np.zeros(0))
    return [(name, variables[name].ravel(order="F"), fixed.ravel(order="F"))]


# --------------------------------------------------------------------------
# Parameters -> LPS matrix
# --------------------------------------------------------------------------
def _parse_name(name, path):
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{path}: {name!r} is not an ITK transform name "
                         f"(like 'AffineTransform_double_3_3')")
    kind, _, n_in, n_out = match.groups()
    return kind, int(n_in), int(n_out)


def _versor(v):
    """ITK's rotation matrix of the versor with vector part `v` (w >= 0)."""
    norm = np.linalg.norm(v)
    if norm >= 1.0 - 1e-10:  # as VersorRigid3DTransform::SetParameters
        v = v / (norm + 1e-10 * norm)
    x, y, z = v
    w = np.sqrt(max(0.0, 1.0 - (x * x + y * y + z * z)))
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _euler(angles, zyx):
    """ITK's Euler3DTransform matrix: Rz Rx Ry (default) or Rz Ry Rx."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx if zyx else rz @ rx @ ry


def _lps_matrix(name, params, fixed, path):
    """The 4x4 LPS matrix ``[[M, offset], [0, 1]]`` of one ITK transform."""
    kind, n_in, n_out = _parse_name(name, path)
    if (n_in, n_out) != (3, 3):
        raise ValueError(f"{path}: {name} is a {n_in}-D -> {n_out}-D transform; "
                         f"only 3-D transforms (_3_3) are supported")
    if kind not in _KINDS:
        raise ValueError(f"{path}: transform kind {kind!r} is not supported (it may "
                         f"not be affine); supported: {_SUPPORTED}")
    n_params, n_fixed = _KINDS[kind]
    if params.size != n_params:
        raise ValueError(f"{path}: {name} needs {n_params} parameters, found "
                         f"{params.size}")
    if fixed.size not in n_fixed:
        raise ValueError(f"{path}: {name} needs {' or '.join(map(str, n_fixed))} fixed "
                         f"parameters (the centre), found {fixed.size}")
    if not (np.isfinite(params).all() and np.isfinite(fixed).all()):
        raise ValueError(f"{path}: {name} has non-finite parameters")
    linear, translation = np.eye(3), np.zeros(3)
    if n_params == 12:
        linear, translation = params[:9].reshape(3, 3), params[9:]
    elif kind == "Euler3DTransform":
        linear = _euler(params[:3], fixed.size == 4 and fixed[3] != 0)
        translation = params[3:]
    elif kind in ("VersorRigid3DTransform", "Similarity3DTransform"):
        linear = _versor(params[:3]) * (params[6] if n_params == 7 else 1.0)
        translation = params[3:6]
    elif kind == "TranslationTransform":
        translation = params
    center = fixed[:3] if fixed.size >= 3 else np.zeros(3)
    out = np.eye(4)
    out[:3, :3] = linear
    out[:3, 3] = translation + center - linear @ center
    return out

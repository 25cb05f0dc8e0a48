"""Drop-in replacements for ``scipy.ndimage`` interpolation functions.

``affine_transform``, ``map_coordinates``, ``zoom``, ``shift``,
``spline_filter`` and ``spline_filter1d`` take the same arguments as their
scipy namesakes and return the same values, computed with scipy's exact
sequence of floating-point operations (bit-identical).  Interpolation of
every spline order (0-5, scipy's default 3 included, with its prefilter) of
2-D and 3-D arrays runs in medfast's multithreaded compiled kernels; the
other cases (1-D or 4-D+ arrays, 64-bit integer data without prefilter)
are handed to scipy unchanged, so swapping the import never changes an
answer.  float16 data, which scipy rejects, are read as float32 and the
result is rounded once to float16.

Two keyword-only arguments are added: ``threads`` (default: every available
core, see :func:`medfast.set_num_threads`) and ``backend`` (``'cython'`` or
``'numba'``).
"""
import functools
import operator

import numpy as np

from . import _dtypes
from ._memory import check_allocation
from ._threads import check_numba_usable, resolve_threads, run_kernel

__all__ = ["affine_transform", "map_coordinates", "zoom", "shift",
           "spline_filter", "spline_filter1d", "NATIVE"]

#: Boundary modes and their kernel codes (scipy's NI_ExtendMode values;
#: 'grid-mirror' is scipy's alias of 'reflect').
MODES = {
    "nearest": 0,
    "wrap": 1,
    "reflect": 2,
    "grid-mirror": 2,
    "mirror": 3,
    "constant": 4,
    "grid-wrap": 5,
    "grid-constant": 6,
}

#: Kernel implementations selectable with ``backend=`` (identical results).
BACKENDS = ("cython", "numba")

#: The prefilter's boundary initialisation for each mode (scipy's
#: apply_filter: modes without an exact one of their own use 'mirror').
FILTER_KINDS = {
    "mirror": 0, "constant": 0, "grid-constant": 0, "wrap": 0,
    "grid-wrap": 1,
    "nearest": 2, "reflect": 2, "grid-mirror": 2,
}

#: Modes whose prefilter runs on the input padded by this many samples
#: (scipy's _prepad_for_spline_filter), and the numpy.pad mode of each.
PREPAD = 12
PREPAD_MODES = {"nearest": "edge", "grid-constant": "constant"}

#: What runs in medfast's own kernels; everything else is delegated to scipy.
#: Orders 2-5 with ``prefilter=True`` read a float64 prefiltered copy, so
#: they take any real input dtype.
NATIVE = {
    "orders": (0, 1, 2, 3, 4, 5),
    "ranks": (2, 3),
    "modes": tuple(MODES),
    "input_dtypes": tuple(sorted({d.name for d in _dtypes.INPUT_CODES})),
    "output_dtypes": tuple(sorted({d.name for d in _dtypes.OUTPUT_CODES})),
    "backends": BACKENDS,
}


# --------------------------------------------------------------------------
# Argument checking (clear errors that name the argument)
# --------------------------------------------------------------------------
def _check_input(input):
    array = np.asarray(input)
    if np.iscomplexobj(array):
        raise TypeError(
            f"input: complex data ({array.dtype}) is not supported; resample "
            "input.real and input.imag separately")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"input: dtype {array.dtype} is not a numeric type")
    if array.ndim < 1:
        raise ValueError("input: must have at least one dimension, got a 0-d array")
    if not array.dtype.isnative:
        # Byte-swapped data (big-endian NIfTI/Analyze files): one native copy
        # lets the kernels run; the values are unchanged.
        array = array.astype(array.dtype.newbyteorder("="))
    elif not array.flags.aligned:
        # Elements at addresses that are not a multiple of their size (views
        # into byte buffers): reading them through typed pointers is
        # undefined in C, so the kernels read an aligned copy (as scipy does).
        array = array.copy()
    return array


def _check_order(order):
    try:
        order = operator.index(order)
    except TypeError:
        raise TypeError(f"order must be an integer 0-5, got {order!r}") from None
    if not 0 <= order <= 5:
        raise ValueError(f"order must be between 0 and 5, got {order}")
    return order


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(
            f"mode {mode!r} is not supported; use one of {', '.join(MODES)}")
    return MODES[mode]


def _check_cval(cval):
    try:
        return float(cval)
    except (TypeError, ValueError):
        raise TypeError(f"cval must be a real number, got {cval!r}") from None


def _check_backend(backend):
    if backend is None:
        return None
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {BACKENDS} or None, got {backend!r}")
    return backend


def _check_shape(shape, name):
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {shape!r}") from None
    if any(n < 0 for n in shape):
        raise ValueError(f"{name} must not have negative sizes, got {shape}")
    return shape


def _finite_float_array(value, name):
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be real numbers, got {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf): {value!r}")
    return array


def _check_common(input, order, mode, cval, threads, backend):
    """The arguments every function here shares, checked and normalised."""
    return (_check_input(input), _check_order(order), _check_mode(mode),
            _check_cval(cval), resolve_threads(threads), _check_backend(backend))


def _per_axis(value, ndim, name):
    """A scalar broadcast to every axis, or a sequence with one per axis."""
    array = _finite_float_array(value, name)
    if array.ndim == 0:
        return np.full(ndim, float(array))
    if array.shape != (ndim,):
        raise ValueError(
            f"{name} must be a number or a sequence of {ndim} numbers (one per "
            f"axis), got shape {array.shape}")
    return array.copy()  # never a view of memory the output may overwrite


def _make_output(output, input, shape):
    """scipy's _get_output, with shape checks and an up-front memory check.

    Returns a fresh (uninitialised) or the caller's array.
    """
    if output is None:
        dtype = input.dtype.newbyteorder("=")  # as scipy: native byte order
    elif isinstance(output, np.ndarray):
        if output.shape != shape:
            raise ValueError(
                f"output: array has shape {output.shape} but the result has "
                f"shape {shape}")
        if output.dtype.kind not in "biuf":
            raise TypeError(f"output: dtype {output.dtype} is not supported")
        if not output.flags.writeable:
            raise ValueError("output: array is read-only")
        return output
    else:
        try:
            dtype = np.dtype(output)
        except TypeError:
            raise TypeError(
                f"output must be None, a dtype or an array, got {output!r}") from None
        if dtype.kind not in "biuf":
            raise TypeError(f"output: dtype {dtype} is not supported")
    check_allocation(shape, dtype, "output")
    return np.empty(shape, dtype=dtype)


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------
def _native(input, output, order, prefilter=False):
    """Whether the compiled kernels handle this call (``output`` possibly
    through a temporary, see :func:`_kernel_output`)."""
    filtered = order > 1 and prefilter  # the kernels read a float64 copy
    return (input.ndim in (2, 3) and 1 <= output.ndim <= 3
            and input.size > 0
            # the kernels index input axes and output rows with C ints
            and max(input.shape) + 2 * PREPAD < 2**31 and output.shape[-1] < 2**31
            and (filtered or input.dtype in _dtypes.INPUT_CODES
                 or input.dtype == np.float16)
            and (output.dtype.newbyteorder("=") in _dtypes.OUTPUT_CODES
                 or output.dtype == np.float16))


def _readable(input):
    """``input`` as the kernels read it: float16 (which scipy rejects)
    becomes float32, exactly."""
    return input.astype(np.float32) if input.dtype == np.float16 else input


def _no_self_overlap(array):
    """True when no two elements of ``array`` share memory (a sufficient
    test: each axis, by increasing stride, steps over everything the
    smaller axes span)."""
    extent = array.itemsize
    axes = sorted((abs(s), n) for n, s in zip(array.shape, array.strides) if n > 1)
    for stride, n in axes:
        if stride < extent:
            return False
        extent += stride * (n - 1)
    return True


def _kernel_output(output):
    """The array the kernels write: ``output`` itself, or a native-order,
    aligned temporary when ``output`` is byte-swapped, misaligned or has
    elements sharing memory (e.g. zero strides: parallel rows would race
    on them) or float16; :func:`_finish` copies it back."""
    if (output.dtype.isnative and output.flags.aligned
            and _no_self_overlap(output) and output.dtype != np.float16):
        return output
    # float16 results are computed in float64 and rounded once (_finish)
    dtype = np.dtype(np.float64) if output.dtype == np.float16 else output.dtype.newbyteorder("=")
    check_allocation(output.shape, dtype, "output (an aligned native-order copy)")
    return np.empty(output.shape, dtype)


def _finish(output, target):
    """``output`` holding the result the kernels wrote into ``target``."""
    if target is output:
        return output
    if _no_self_overlap(output):
        output[...] = target  # numpy's assignment swaps bytes as needed
    else:
        # One element after another in C order, as scipy writes them: where
        # elements share memory the last one wins, as in scipy.
        output.flat = target
    return output


def _kernels(backend, order=0):
    """The kernel module for ``backend`` (None: the compiled one, which needs
    no JIT warm-up; Numba when the extension is missing).  Spline orders 2-5
    exist only in the compiled kernels, whatever ``backend`` says."""
    if order > 1:
        try:
            from . import _kernels
        except ImportError:
            raise ImportError(
                f"order={order}: spline interpolation needs medfast's compiled "
                "kernels, which are not built; reinstall medfast (pip install .) "
                "or use order 0 or 1") from None
        return _kernels
    if backend in (None, "cython"):
        try:
            from . import _kernels
            return _kernels
        except ImportError:
            if backend == "cython":
                raise ImportError(
                    "backend='cython': medfast's compiled kernels are not built; "
                    "reinstall medfast (pip install .) or use backend='numba'"
                ) from None
    check_numba_usable()
    from . import _numba_kernels
    return _numba_kernels


def _as_3d(array):
    """View with leading length-1 axes added up to three dimensions."""
    return array[(np.newaxis,) * (3 - array.ndim)]


def _separate_if_overlapping(array, output):
    # Reading and writing the same memory in parallel would race; copy the
    # input (or coordinates) only in that rare case.
    if np.may_share_memory(array, output):
        return array.copy()
    return array


def _with_npad(kernel, npad):
    # The padding offset travels as a keyword (only the compiled kernels,
    # which run every order > 1, take it).
    return functools.partial(kernel, npad=npad) if npad else kernel


def _run_affine(input, matrix, offset, output, order, mode, cval, threads,
                backend, npad=0):
    kernels = _kernels(backend, order)
    rank = input.ndim
    out3 = _dtypes.kernel_view(_as_3d(output))
    m3 = np.zeros((rank, 3))
    m3[:, 3 - output.ndim:] = matrix
    run_kernel(_with_npad(kernels.affine, npad), _dtypes.kernel_view(input),
               _dtypes.INPUT_CODES[input.dtype], m3,
               np.ascontiguousarray(offset, dtype=np.float64), out3,
               _dtypes.OUTPUT_CODES[output.dtype], order, mode, cval,
               threads=threads)


def _run_tables(input, tables, output, order, mode, cval, threads, backend,
                npad=0):
    """Input coordinate h depends on output index h only (``tables[h]``,
    plus ``npad``)."""
    kernels = _kernels(backend, order)
    if npad:
        tables = [table + float(npad) for table in tables]
    if input.ndim == 3 and hasattr(kernels, "separable"):
        run_kernel(kernels.separable, _dtypes.kernel_view(input),
                   _dtypes.INPUT_CODES[input.dtype], list(tables),
                   _dtypes.kernel_view(output),
                   _dtypes.OUTPUT_CODES[output.dtype], order, mode, cval,
                   threads=threads)
        return
    # Broadcast views (zero strides) of the tables: no memory is used.
    coords = []
    for h, table in enumerate(tables):
        shape = [1] * input.ndim
        shape[h] = table.size
        coords.append(np.broadcast_to(table.reshape(shape), output.shape))
    _run_coordinates(input, coords, output, order, mode, cval, threads, backend)


def _run_coordinates(input, coords, output, order, mode, cval, threads, backend,
                     npad=0):
    kernels = _kernels(backend, order)
    run_kernel(_with_npad(kernels.coordinates, npad), _dtypes.kernel_view(input),
               _dtypes.INPUT_CODES[input.dtype], [_as_3d(c) for c in coords],
               _dtypes.kernel_view(_as_3d(output)),
               _dtypes.OUTPUT_CODES[output.dtype], order, mode, cval,
               threads=threads)


# --------------------------------------------------------------------------
# The B-spline prefilter (src/_splines.pyx)
# --------------------------------------------------------------------------
def _line_views(src, dst, axis):
    """3-D views of ``src`` and ``dst`` (one shape, 2-D or 3-D) with
    ``axis`` in the middle and, last, the other axis along which ``dst``'s
    neighbouring lines lie closest (the kernel filters those together)."""
    if src.ndim == 2:
        src, dst, axis = src[np.newaxis], dst[np.newaxis], axis + 1
    others = [h for h in range(3) if h != axis]
    lane = min(others, key=lambda h: (dst.shape[h] == 1, abs(dst.strides[h])))
    outer = others[0] if others[1] == lane else others[1]
    perm = (outer, axis, lane)
    return src.transpose(perm), dst.transpose(perm)


def _filter_axes(input, order, axes, output, mode, threads):
    """scipy's spline_filter1d along each of ``axes`` in turn, into the
    array ``output``: every pass in float64, its result stored in
    ``output``'s dtype (C casts, as scipy) and read back by the next.

    The first pass reads ``input`` in its own dtype (2-D and 3-D arrays of
    the kernels' dtypes); others are first copied into float64."""
    from . import _splines
    direct = (output.dtype == np.float64 and output.flags.c_contiguous
              and output.flags.aligned and output.flags.writeable
              and (output is input or not np.may_share_memory(output, input)))
    if direct:
        work = output
    else:
        check_allocation(input.shape, np.float64, "spline_filter (a float64 work copy)")
        work = np.empty(input.shape, np.float64)
    source = input
    if input.ndim not in (2, 3) or input.dtype not in _dtypes.INPUT_CODES:
        work[...] = input
        source = work
    for n, axis in enumerate(axes):
        if work.ndim in (2, 3):
            src, dst = _line_views(source, work, axis)
        else:  # any other number of dimensions: 3-D views of the copy
            shape = work.shape
            before = int(np.prod(shape[:axis], dtype=np.int64))
            after = int(np.prod(shape[axis + 1:], dtype=np.int64))
            src, dst = _line_views(work.reshape(before, shape[axis], after),
                                   work.reshape(before, shape[axis], after), 1)
        run_kernel(_splines.filter_axis, _dtypes.kernel_view(src),
                   _dtypes.INPUT_CODES[src.dtype], dst, order, FILTER_KINDS[mode],
                   threads=threads)
        source = work
        if not direct:
            output[...] = work
            if n + 1 < len(axes) and output.dtype != np.float64:
                work[...] = output
    return output


def _prefiltered(input, order, mode, cval, threads):
    """The float64 spline coefficients interpolation of ``order`` > 1 reads,
    and the padding they carry (scipy's _prepad_for_spline_filter, then
    spline_filter)."""
    npad = 0
    if mode in PREPAD_MODES:
        npad = PREPAD
        padded_shape = tuple(n + 2 * npad for n in input.shape)
        check_allocation(padded_shape, input.dtype, "prefilter (the padded input)")
        if mode == "grid-constant":
            try:
                input = np.pad(input, npad, mode="constant", constant_values=cval)
            except OverflowError:
                raise ValueError(
                    f"cval={cval!r} does not fit the input's dtype {input.dtype}: "
                    f"mode='grid-constant' with order={order} pads the input with "
                    "cval before the prefilter, as scipy does (scipy fails here "
                    "too); pass a cval in range or a float input") from None
        else:
            input = np.pad(input, npad, mode="edge")
    check_allocation(input.shape, np.float64, "prefilter (the spline coefficients)")
    coefficients = np.empty(input.shape, np.float64)
    _filter_axes(input, order, tuple(range(input.ndim)), coefficients, mode, threads)
    return coefficients, npad


def _spline_input(input, order, prefilter, mode, cval, threads):
    """What the kernels interpolate: the prefiltered coefficients for orders
    2-5 with ``prefilter``, else the input itself (padding 0)."""
    if order > 1 and prefilter:
        return _prefiltered(input, order, mode, cval, threads)
    return input, 0


def _scipy():
    try:
        import scipy.ndimage
    except ImportError:
        raise ImportError(
            "this call is outside medfast's native kernels (see "
            "medfast.ndimage.NATIVE) and is delegated to scipy, which is not "
            "installed: pip install scipy") from None
    return scipy.ndimage


def _zoom_shift_tables(out_shape, zoom=None, shift=None, grid_mode=False):
    """scipy's zoom_shift coordinates, per axis: ``(o + shift) * zoom``
    (or ``((o + shift) + 0.5) * zoom - 0.5`` in grid mode), in the same
    order of operations as scipy's C code."""
    tables = []
    for h, n in enumerate(out_shape):
        cc = np.arange(n, dtype=np.float64)
        if shift is not None:
            cc += shift[h]
        if zoom is not None:
            if grid_mode:
                cc += 0.5
                cc *= zoom[h]
                cc -= 0.5
            else:
                cc *= zoom[h]
        tables.append(cc)
    return tables


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def affine_transform(input, matrix, offset=0.0, output_shape=None, output=None,
                     order=3, mode="constant", cval=0.0, prefilter=True, *,
                     threads=None, backend=None):
    """Apply an affine transformation (drop-in for scipy.ndimage.affine_transform).

    Output index ``o`` takes the input value at ``matrix @ o + offset``,
    interpolated with splines of the requested order.

    Parameters
    ----------
    input : array_like
        The input array (real-valued).
    matrix : ndarray
        ``(ndim, ndim)`` linear part, homogeneous ``(ndim + 1, ndim + 1)`` or
        ``(ndim, ndim + 1)`` matrix (``offset`` then comes from its last
        column), or a 1-D array of the diagonal (scipy then computes the
        coordinate as ``(o + offset / matrix) * matrix``, as here).  With
        ``(ndim, k)`` the output has ``k`` dimensions.
    offset : float or sequence, optional
        Offset added to ``matrix @ o``; a scalar applies to every axis.
    output_shape : tuple of int, optional
        Shape of the output; default the shape of ``output`` if it is an
        array, else the input's.
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the returned array (default:
        the input's dtype).
    order : int, optional
        Spline order 0-5 (default 3, as scipy).  Every order runs in
        medfast's kernels; orders 2-5 also with ``backend='numba'``, where
        they run in the compiled (Cython) kernels, Numba having only 0 and 1.
    mode : {'constant', 'grid-constant', 'nearest', 'reflect', 'grid-mirror', \
'mirror', 'wrap', 'grid-wrap'}, optional
        How the input is extended beyond its boundaries, as in scipy.
    cval : float, optional
        Value outside the input for 'constant' and 'grid-constant'.
    prefilter : bool, optional
        For order > 1, interpolate the B-spline coefficients of ``input``
        (:func:`spline_filter` in float64, on the input padded by 12 samples
        for 'nearest' and 'grid-constant', as scipy) rather than ``input``
        itself (pass ``prefilter=False`` with coefficients computed once).
        Unused for orders 0 and 1.
    threads : int, optional
        Threads to use, at most the available cores (a larger count is
        capped); default :func:`medfast.get_num_threads`.  The result does
        not depend on it.
    backend : {'cython', 'numba'}, optional
        Kernel implementation; default the compiled Cython kernels (no JIT
        warm-up).  Both give identical results (orders 2-5 always run in
        the compiled kernels).

    Returns
    -------
    ndarray
        The transformed array (``output`` itself if an array was given).

    Raises
    ------
    TypeError
        Complex or non-numeric data, non-numeric arguments.
    ValueError
        Non-finite ``matrix`` or ``offset``, a matrix of the wrong shape, an
        ``output`` array of the wrong shape, a bad ``mode``, ``order`` or
        ``threads``.
    MemoryError
        If the output cannot fit in the available memory (checked before
        allocating).

    See Also
    --------
    scipy.ndimage.affine_transform : the reference implementation.

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import affine_transform
    >>> a = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> affine_transform(a, [[1, 0], [0, 1]], offset=[0, 1], order=1)
    array([[ 1.,  2.,  3.,  0.],
           [ 5.,  6.,  7.,  0.],
           [ 9., 10., 11.,  0.]], dtype=float32)
    """
    input, order, mode_code, cval, threads, backend = _check_common(
        input, order, mode, cval, threads, backend)
    matrix = _finite_float_array(matrix, "matrix")
    ndim = input.ndim
    if matrix.ndim not in (1, 2) or matrix.shape[0] < 1:
        raise ValueError(
            f"matrix must be 1-D (diagonal) or 2-D, got shape {matrix.shape}")
    if (matrix.ndim == 2 and matrix.shape[1] == ndim + 1
            and matrix.shape[0] in (ndim, ndim + 1)):
        if matrix.shape[0] == ndim + 1:
            expected = [0] * ndim + [1]
            if not np.all(matrix[ndim] == expected):
                raise ValueError(
                    f"matrix: expected a homogeneous transformation matrix with "
                    f"shape {matrix.shape} for image shape {input.shape}, but "
                    f"its bottom row was not equal to {expected}")
        offset = matrix[:ndim, ndim]
        matrix = matrix[:ndim, :ndim]
    if matrix.shape[0] != ndim:
        raise ValueError(
            f"matrix has {matrix.shape[0]} rows but input has {ndim} dimensions")
    if output_shape is None:
        output_shape = output.shape if isinstance(output, np.ndarray) else input.shape
    output_shape = _check_shape(output_shape, "output_shape")
    if len(output_shape) < 1:
        raise ValueError("output_shape must have at least one dimension")
    if matrix.ndim == 2 and matrix.shape[1] != len(output_shape):
        raise ValueError(
            f"matrix has {matrix.shape[1]} columns but the output has "
            f"{len(output_shape)} dimensions")
    if matrix.ndim == 1 and len(output_shape) != ndim:
        raise ValueError(
            f"a 1-D (diagonal) matrix needs an output of {ndim} dimensions, "
            f"got output_shape {output_shape}")
    offset = _per_axis(offset, ndim, "offset")
    output = _make_output(output, input, output_shape)
    input = _separate_if_overlapping(input, output)
    if not _native(input, output, order, prefilter):
        _scipy().affine_transform(input, matrix, offset, output_shape, output,
                                  order, mode, cval, prefilter)
        return output
    target = _kernel_output(output)
    input, npad = _spline_input(_readable(input), order, prefilter, mode, cval,
                                threads)
    if matrix.ndim == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            tables = _zoom_shift_tables(output_shape, zoom=matrix,
                                        shift=offset / matrix)
        _run_tables(input, tables, target, order, mode_code, cval, threads,
                    backend, npad)
    elif (ndim == 3 and matrix.shape == (3, 3)
          and np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0):
        # Axis-aligned: offset + o*m_hh equals scipy's full sum (the
        # off-diagonal terms add exact zeros), so the separable path applies.
        tables = [offset[h] + np.arange(output_shape[h], dtype=np.float64) * matrix[h, h]
                  for h in range(3)]
        _run_tables(input, tables, target, order, mode_code, cval, threads,
                    backend, npad)
    else:
        _run_affine(input, matrix, offset, target, order, mode_code, cval,
                    threads, backend, npad)
    return _finish(output, target)


def map_coordinates(input, coordinates, output=None, order=3, mode="constant",
                    cval=0.0, prefilter=True, *, threads=None, backend=None):
    """Sample an array at given coordinates (drop-in for scipy.ndimage.map_coordinates).

    Parameters
    ----------
    input : array_like
        The input array (real-valued).
    coordinates : array_like
        Shape ``(input.ndim, ...)``: for each output element, its coordinate
        along every input axis.  The output has shape ``coordinates.shape[1:]``.
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the result (default: input's).
    order : int, optional
        Spline order 0-5 (default 3), as for :func:`affine_transform`.
    mode : str, optional
        Boundary mode, as for :func:`affine_transform`.
    cval : float, optional
        Value outside the input for 'constant' and 'grid-constant'.
    prefilter : bool, optional
        Spline prefiltering for order > 1, as for :func:`affine_transform`.
    threads : int, optional
        Threads to use, at most the available cores; default
        :func:`medfast.get_num_threads`.
    backend : {'cython', 'numba'}, optional
        Kernel implementation (identical results).

    Returns
    -------
    ndarray
        The sampled values.  Coordinates that are NaN or infinite give
        ``cval`` (scipy's result there is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import map_coordinates
    >>> a = np.arange(12.).reshape(4, 3)
    >>> map_coordinates(a, [[0.5, 2], [0.5, 1]], order=1)
    array([2., 7.])
    """
    input, order, mode_code, cval, threads, backend = _check_common(
        input, order, mode, cval, threads, backend)
    coordinates = np.asarray(coordinates)
    if np.iscomplexobj(coordinates) or coordinates.dtype.kind not in "biuf":
        raise TypeError(
            f"coordinates must be real numbers, got dtype {coordinates.dtype}")
    if coordinates.ndim < 2 or coordinates.shape[0] != input.ndim:
        raise ValueError(
            f"coordinates must have shape ({input.ndim}, ...) for a "
            f"{input.ndim}-D input, got {coordinates.shape}")
    output_shape = coordinates.shape[1:]
    output = _make_output(output, input, output_shape)
    input = _separate_if_overlapping(input, output)
    coordinates = _separate_if_overlapping(coordinates, output)
    if not _native(input, output, order, prefilter):
        _scipy().map_coordinates(input, coordinates, output, order, mode, cval,
                                 prefilter)
        return output
    coords = [np.asarray(coordinates[h], dtype=np.float64) for h in range(input.ndim)]
    target = _kernel_output(output)
    input, npad = _spline_input(_readable(input), order, prefilter, mode, cval,
                                threads)
    _run_coordinates(input, coords, target, order, mode_code, cval, threads,
                     backend, npad)
    return _finish(output, target)


def zoom(input, zoom, output=None, order=3, mode="constant", cval=0.0,
         prefilter=True, *, grid_mode=False, threads=None, backend=None):
    """Zoom an array (drop-in for scipy.ndimage.zoom).

    Parameters
    ----------
    input : array_like
        The input array (real-valued).
    zoom : float or sequence
        Zoom factor per axis; the output shape is ``round(shape * zoom)``.
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the result (default: input's).
    order : int, optional
        Spline order 0-5 (default 3), as for :func:`affine_transform`.
    mode : str, optional
        Boundary mode, as for :func:`affine_transform`.
    cval : float, optional
        Value outside the input for 'constant' and 'grid-constant'.
    prefilter : bool, optional
        Spline prefiltering for order > 1, as for :func:`affine_transform`.
    grid_mode : bool, optional
        If True, zoom the pixel extents (edges) rather than the centres of
        the first and last samples, as scipy does.
    threads : int, optional
        Threads to use, at most the available cores; default
        :func:`medfast.get_num_threads`.
    backend : {'cython', 'numba'}, optional
        Kernel implementation (identical results).

    Returns
    -------
    ndarray
        The zoomed array.

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import zoom
    >>> zoom(np.array([[0., 1.], [2., 3.]]), 1.5, order=1)
    array([[0. , 0.5, 1. ],
           [1. , 1.5, 2. ],
           [2. , 2.5, 3. ]])
    """
    input, order, mode_code, cval, threads, backend = _check_common(
        input, order, mode, cval, threads, backend)
    factors = _per_axis(zoom, input.ndim, "zoom")
    output_shape = tuple(int(round(n * z)) for n, z in zip(input.shape, factors))
    if any(n < 0 for n in output_shape):
        raise ValueError(f"zoom must not be negative, got {zoom!r}")
    output = _make_output(output, input, output_shape)
    if np.all(factors == 1) and prefilter:
        output[...] = input  # scipy returns a plain copy here
        return output
    input = _separate_if_overlapping(input, output)
    if not _native(input, output, order, prefilter):
        _scipy().zoom(input, zoom, output, order, mode, cval, prefilter,
                      grid_mode=grid_mode)
        return output
    if grid_mode and mode in ("constant", "wrap"):
        import warnings
        suggest = "grid-constant" if mode == "constant" else "grid-wrap"
        warnings.warn(f"It is recommended to use mode = {suggest} instead of "
                      f"{mode} when grid_mode is True.", stacklevel=2)
    target = _kernel_output(output)
    div = np.array(output_shape)
    num = np.array(input.shape)
    if not grid_mode:
        div -= 1
        num -= 1
    # scipy: an axis zoomed to or from a single sample uses factor 1
    factors = np.divide(num, div, out=np.ones(input.ndim), where=div != 0)
    tables = _zoom_shift_tables(output_shape, zoom=factors, grid_mode=grid_mode)
    input, npad = _spline_input(_readable(input), order, prefilter, mode, cval,
                                threads)
    _run_tables(input, tables, target, order, mode_code, cval, threads, backend,
                npad)
    return _finish(output, target)


def shift(input, shift, output=None, order=3, mode="constant", cval=0.0,
          prefilter=True, *, threads=None, backend=None):
    """Shift an array (drop-in for scipy.ndimage.shift).

    Parameters
    ----------
    input : array_like
        The input array (real-valued).
    shift : float or sequence
        Shift along each axis (output index ``o`` samples ``o - shift``).
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the result (default: input's).
    order : int, optional
        Spline order 0-5 (default 3), as for :func:`affine_transform`.
    mode : str, optional
        Boundary mode, as for :func:`affine_transform`.
    cval : float, optional
        Value outside the input for 'constant' and 'grid-constant'.
    prefilter : bool, optional
        Spline prefiltering for order > 1, as for :func:`affine_transform`.
    threads : int, optional
        Threads to use, at most the available cores; default
        :func:`medfast.get_num_threads`.
    backend : {'cython', 'numba'}, optional
        Kernel implementation (identical results).

    Returns
    -------
    ndarray
        The shifted array.

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import shift
    >>> shift(np.array([1., 2., 3., 4.]).reshape(2, 2), [0, 1], order=0)
    array([[0., 1.],
           [0., 3.]])
    """
    input, order, mode_code, cval, threads, backend = _check_common(
        input, order, mode, cval, threads, backend)
    amounts = _per_axis(shift, input.ndim, "shift")
    output = _make_output(output, input, input.shape)
    input = _separate_if_overlapping(input, output)
    if not _native(input, output, order, prefilter):
        _scipy().shift(input, amounts, output, order, mode, cval, prefilter)
        return output
    target = _kernel_output(output)
    tables = _zoom_shift_tables(output.shape, shift=-amounts)
    input, npad = _spline_input(_readable(input), order, prefilter, mode, cval,
                                threads)
    _run_tables(input, tables, target, order, mode_code, cval, threads, backend,
                npad)
    return _finish(output, target)


def spline_filter1d(input, order=3, axis=-1, output=np.float64, mode="mirror", *,
                    threads=None):
    """B-spline prefilter along one axis (drop-in for scipy.ndimage.spline_filter1d).

    Every line along ``axis`` is filtered with scipy's recursive filter
    (its poles, gain and boundary initialisation for ``mode``) in float64,
    with scipy's operations in scipy's order: the result is scipy's bytes.
    Lines run in parallel.

    Parameters
    ----------
    input : array_like
        The input array (real-valued, any number of dimensions).
    order : int, optional
        Spline order 0-5 (default 3); 0 and 1 copy the input.
    axis : int, optional
        The axis to filter along (default the last).
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the result (default float64).
        Other dtypes receive the float64 result with C's conversion, as in
        scipy.
    mode : str, optional
        Boundary mode (default 'mirror'): 'mirror', 'constant',
        'grid-constant' and 'wrap' use the mirror initialisation,
        'grid-wrap' the periodic one, 'reflect', 'grid-mirror' and
        'nearest' the reflecting one, as in scipy.
    threads : int, optional
        Threads to use, at most the available cores; default
        :func:`medfast.get_num_threads`.  The result does not depend on it.

    Returns
    -------
    ndarray
        The filtered array (``output`` itself if an array was given).

    Raises
    ------
    TypeError
        Complex or non-numeric data.
    ValueError
        A bad ``order``, ``axis``, ``mode`` or ``threads``, an ``output``
        array of the wrong shape.

    See Also
    --------
    scipy.ndimage.spline_filter1d : the reference implementation.

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import spline_filter1d
    >>> spline_filter1d(np.array([0., 1., 0., 0.]), order=3)
    array([-0.93333333,  1.86666667, -0.53333333,  0.26666667])
    """
    input, order, _, _, threads, _ = _check_common(input, order, mode, 0.0, threads, None)
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    if not -input.ndim <= axis < input.ndim:
        raise ValueError(
            f"axis {axis} is out of range for a {input.ndim}-D input")
    output = _make_output(output, input, input.shape)
    if order < 2:
        output[...] = input
        return output
    return _filter_axes(input, order, (axis % input.ndim,), output, mode, threads)


def spline_filter(input, order=3, output=np.float64, mode="mirror", *, threads=None):
    """B-spline prefilter along every axis (drop-in for scipy.ndimage.spline_filter).

    :func:`spline_filter1d` along axis 0, 1, ... in turn, each pass storing
    its result in ``output``'s dtype and the next reading it back, as scipy
    does.  The coefficients it returns are what ``affine_transform`` & co.
    interpolate for ``order`` 2-5 (``prefilter=True`` computes them, or
    pass them with ``prefilter=False`` to reuse them across calls).

    Parameters
    ----------
    input : array_like
        The input array (real-valued, any number of dimensions).
    order : int, optional
        Spline order 2-5 (default 3).
    output : ndarray or dtype, optional
        Array to write into, or the dtype of the result (default float64).
    mode : str, optional
        Boundary mode (default 'mirror'), see :func:`spline_filter1d`.
    threads : int, optional
        Threads to use, at most the available cores; default
        :func:`medfast.get_num_threads`.

    Returns
    -------
    ndarray
        The spline coefficients (``output`` itself if an array was given).

    Raises
    ------
    TypeError
        Complex or non-numeric data.
    ValueError
        An ``order`` outside 2-5, a bad ``mode`` or ``threads``, an
        ``output`` array of the wrong shape.

    See Also
    --------
    scipy.ndimage.spline_filter : the reference implementation.

    Examples
    --------
    >>> import numpy as np
    >>> from medfast.ndimage import spline_filter
    >>> spline_filter(np.eye(3), order=2).round(3)
    array([[ 2.264, -1.125,  0.486],
           [-1.125,  2.375, -1.125],
           [ 0.486, -1.125,  2.264]])
    """
    input, order, _, _, threads, _ = _check_common(input, order, mode, 0.0, threads, None)
    if order < 2:
        raise ValueError(f"spline_filter: order must be between 2 and 5, got {order}")
    output = _make_output(output, input, input.shape)
    return _filter_axes(input, order, tuple(range(input.ndim)), output, mode, threads)

"""How many threads the resampling loops use, and running them safely.

Precedence (highest first): the ``threads=`` argument of a call,
:func:`set_num_threads`, the ``MEDFAST_NUM_THREADS`` environment variable,
then every core this process may run on (``os.sched_getaffinity``, which
respects taskset, cgroups cpusets and container limits, unlike
``os.cpu_count``).  A call never runs more threads than those cores.

GNU OpenMP (libgomp) keeps a pool of worker threads per calling thread and
has no fork handler: a child forked from a thread that has used the pool
inherits the pool's bookkeeping without its threads, and its next parallel
loop waits for them forever.  :func:`run_kernel` runs such a thread's calls
in a helper thread of the child, which starts a pool of its own.
"""
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

_override = None

# Per thread: ``pool`` once it has run a multithreaded compiled loop,
# ``stale_pool`` in a forked child whose copy of that thread it is.
_state = threading.local()
_helper = None  # this process's helper thread for the stale thread's calls
_helper_lock = threading.Lock()
# Numba's OpenMP layer terminates a forked child whose parent used it.
_numba_pool_forked = False


def available_cores():
    """Number of cores this process may run on.

    Returns
    -------
    int
        ``len(os.sched_getaffinity(0))`` where the platform has it,
        ``os.cpu_count()`` otherwise (at least 1).
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            hasattr(value, "__index__")):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def set_num_threads(n):
    """Set the default number of threads for medfast's loops.

    Parameters
    ----------
    n : int or None
        A positive thread count, or None to go back to the default
        (``MEDFAST_NUM_THREADS`` or all available cores).  Calls use at
        most the available cores whatever the count.

    Examples
    --------
    >>> import medfast
    >>> medfast.set_num_threads(1)
    >>> medfast.get_num_threads()
    1
    >>> medfast.set_num_threads(None)
    """
    global _override
    _override = None if n is None else _check_count(n, "set_num_threads(n)")


def get_num_threads():
    """The default number of threads for medfast's loops.

    Returns
    -------
    int
        The value set by :func:`set_num_threads`, else ``MEDFAST_NUM_THREADS``,
        else the number of available cores.
    """
    if _override is not None:
        return _override
    env = os.environ.get("MEDFAST_NUM_THREADS", "").strip()
    if env:
        try:
            return _check_count(int(env), "MEDFAST_NUM_THREADS")
        except ValueError:
            raise ValueError(
                f"MEDFAST_NUM_THREADS must be a positive integer, got {env!r}"
            ) from None
    return available_cores()


def resolve_threads(threads):
    """The thread count for one call.

    Parameters
    ----------
    threads : int or None
        The ``threads=`` argument; None means :func:`get_num_threads`.

    Returns
    -------
    int
        A positive thread count, at most :func:`available_cores`: more
        threads than cores only add start-up cost and memory for row
        buffers (``threads=10000`` runs on the available cores, it does not
        start 10,000 threads).
    """
    if threads is None:
        threads = get_num_threads()
    else:
        threads = _check_count(threads, "threads")
    return min(threads, available_cores())


def run_kernel(kernel, *args, threads):
    """Call ``kernel(*args, threads)``, a compiled loop that runs ``threads``
    OpenMP threads, in a way that cannot hang after ``fork()``.

    Parameters
    ----------
    kernel : callable
        A compiled entry point whose last argument is the thread count.
    *args
        Its other arguments.
    threads : int
        The thread count (see :func:`resolve_threads`).

    Returns
    -------
    object
        What ``kernel`` returns.
    """
    if threads > 1:
        if getattr(_state, "stale_pool", False):
            return _helper_thread().submit(kernel, *args, threads).result()
        _state.pool = True
    return kernel(*args, threads)


def _helper_thread():
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(1, thread_name_prefix="medfast-openmp")
        return _helper


def check_numba_usable():
    """Raise RuntimeError where Numba's parallel loops cannot run: in a
    process forked from one that had run them on GNU OpenMP (Numba would
    terminate the process)."""
    if _numba_pool_forked:
        raise RuntimeError(
            "backend='numba' cannot run in a process forked after Numba's GNU "
            "OpenMP threads had started (Numba would terminate it); use "
            "backend='cython' or the 'spawn' or 'forkserver' start method")


def _numba_gnu_openmp_started():
    numba = sys.modules.get("numba")
    if numba is None:
        return False
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel loop has run
        return False
    if layer != "omp":  # 'tbb' and 'workqueue' survive fork
        return False
    from numba.np.ufunc import omppool
    return omppool.openmp_vendor == "GNU"  # Intel's OpenMP survives fork


def _after_fork_in_child():
    # The parent's helper thread was not copied; the thread that forked (the
    # only one here) is stale if it had started an OpenMP pool.
    global _helper, _helper_lock, _numba_pool_forked
    _helper = None
    _helper_lock = threading.Lock()
    if getattr(_state, "pool", False):
        _state.stale_pool = True
    _numba_pool_forked = _numba_pool_forked or _numba_gnu_openmp_started()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)

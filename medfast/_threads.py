"""How many threads the resampling loops use.

Precedence (highest first): the ``threads=`` argument of a call,
:func:`set_num_threads`, the ``MEDFAST_NUM_THREADS`` environment variable,
then every core this process may run on (``os.sched_getaffinity``, which
respects taskset, cgroups cpusets and container limits, unlike
``os.cpu_count``).
"""
import os

_override = None


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
        (``MEDFAST_NUM_THREADS`` or all available cores).

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
        A positive thread count.
    """
    if threads is None:
        return get_num_threads()
    return _check_count(threads, "threads")

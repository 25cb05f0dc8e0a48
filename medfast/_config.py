"""Build and runtime configuration report (``medfast.show_config()``)."""
import platform
import sys


def config():
    """Build and runtime facts as a dict.

    Returns
    -------
    dict
        ``version``, ``python``, ``platform``, ``cython_kernels`` (compiled
        extension importable), ``openmp`` (kernels built multithreaded),
        ``numba`` (version or None), ``threads`` (default thread count),
        ``available_cores``.
    """
    from . import __version__
    from ._threads import available_cores, get_num_threads
    try:
        from . import _kernels
        compiled, openmp = True, bool(_kernels.HAVE_OPENMP)
    except ImportError:
        compiled, openmp = False, False
    try:
        import numba
        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cython_kernels": compiled,
        "openmp": openmp,
        "numba": numba_version,
        "threads": get_num_threads(),
        "available_cores": available_cores(),
    }


def show_config():
    """Print how medfast was built and how it will run.

    Says whether the compiled kernels are present and were built with OpenMP
    (if not, they run single-threaded), which Numba is available, and how
    many threads calls use by default.

    Examples
    --------
    >>> import medfast
    >>> medfast.show_config()  # doctest: +SKIP
    medfast 0.1.0
      compiled kernels : yes (OpenMP: yes, multithreaded)
      ...
    """
    c = config()
    if not c["cython_kernels"]:
        kernels = "no (using the Numba backend)"
    elif c["openmp"]:
        kernels = "yes (OpenMP: yes, multithreaded)"
    else:
        kernels = "yes (OpenMP: no, single-threaded: the compiler had no OpenMP)"
    print(f"medfast {c['version']}")
    print(f"  compiled kernels : {kernels}")
    print(f"  numba            : {c['numba'] or 'not installed'}")
    print(f"  default threads  : {c['threads']} (available cores: {c['available_cores']})")
    print(f"  python           : {c['python']} on {c['platform']}")

"""Atomic file writes, and claims on output names shared between processes.

:func:`atomic_write`: a temporary file in the same folder, then
``os.replace``.  A save that fails or is interrupted part-way leaves the
target as it was (absent, or the previous file) and no temporary file
behind.

:func:`claim`: an exclusive hold on an output name (a path without
extension) that processes writing into one folder respect, with a private
work folder for the files being written.  The hold is an ``flock`` on a
lock file ``.NAME.medfast-lock`` next to the name; the work folder is
``.NAME.medfast-tmp``.  The operating system drops the lock when its
process ends, however it ends, so what a killed process left is known to
be stale: :func:`sweep` removes it, and never what a live process holds.
"""
import contextlib
import os
import shutil
import tempfile

_LOCK = ".medfast-lock"
_WORK = ".medfast-tmp"


def _umask():
    # Read without changing it where Linux allows (os.umask is process-wide
    # and changing it, even briefly, races with other threads).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file next to `path`; on success it replaces `path`.

    Parameters
    ----------
    path : str
        The file to write.

    Yields
    ------
    file
        A binary file open for writing.  When the ``with`` block raises, the
        temporary file is deleted and `path` is left untouched.

    Raises
    ------
    FileNotFoundError
        If the folder of `path` does not exist.
    IsADirectoryError
        If `path` is a folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder, not a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file 0600; give it the mode open() would.
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _lock_and_work(base):
    folder, name = os.path.split(base)
    return (os.path.join(folder, "." + name + _LOCK), os.path.join(folder, "." + name + _WORK))


def _remove(path):
    """Remove a file, link or folder tree if present."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


class Claim:
    """An exclusive hold on an output name, from :func:`claim`.

    Attributes
    ----------
    base : str
        The name claimed (a path without extension).
    """

    def __init__(self, base, fd, lock):
        self.base = base
        self._fd = fd
        self._lock = lock
        self._work = _lock_and_work(base)[1]

    def workspace(self):
        """A new, empty folder private to this claim, next to `base`, for the
        files being written (what a killed writer left there is removed
        first).  :meth:`release` removes it."""
        _remove(self._work)
        os.mkdir(self._work, 0o700)
        return self._work

    def release(self):
        """Remove the work folder and the lock file, then drop the hold
        (the lock file goes first, so that no other process can lock it
        afterwards and believe it holds the name)."""
        if self._fd is None:
            return
        try:
            # Best effort: what cannot be removed now, the next sweep removes.
            with contextlib.suppress(OSError):
                _remove(self._work)
            with contextlib.suppress(OSError):
                os.unlink(self._lock)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(base, wait=False):
    """Claim an output name against every process that claims names this way.

    Parameters
    ----------
    base : str
        The name: a path without extension, in an existing folder.
    wait : bool, optional
        Wait while another process holds it (default: return None at once).

    Returns
    -------
    Claim or None
        The hold (release it with :meth:`Claim.release` or a ``with``
        block), or None when another live process holds the name and
        `wait` is false.

    Raises
    ------
    OSError
        If the lock file cannot be created (a read-only folder...) or the
        lock path is a symbolic link.

    Notes
    -----
    POSIX ``flock``: local file systems, and NFS where the server supports
    locks.  The lock file is unlinked before it is unlocked, and a process
    that locked a file checks that it is still the one at the lock path, so
    two processes can never both hold a name.
    """
    import fcntl  # POSIX only; imported here so that atomic_write works everywhere

    lock = _lock_and_work(base)[0]
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            try:
                current = os.stat(lock, follow_symlinks=False)
            except FileNotFoundError:
                current = None
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and os.path.samestat(os.fstat(fd), current):
            return Claim(base, fd, lock)
        os.close(fd)  # released and unlinked by its holder meanwhile: lock anew


def sweep(folder):
    """Remove the lock files and work folders of claims in `folder` that no
    live process holds (left by a process that was killed).

    Parameters
    ----------
    folder : str

    Returns
    -------
    list of str
        The names (paths without extension) whose leftovers were removed.
    """
    bases = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            for suffix in (_LOCK, _WORK):
                if (entry.name.startswith(".") and entry.name.endswith(suffix)
                        and len(entry.name) > len(suffix) + 1):
                    bases.add(os.path.join(folder, entry.name[1:-len(suffix)]))
    removed = []
    for base in sorted(bases):
        try:
            held = claim(base)
        except OSError:  # not ours to remove (a folder named like a lock file...)
            continue
        if held is not None:  # nobody holds it: its writer is gone
            held.release()
            removed.append(base)
    return removed

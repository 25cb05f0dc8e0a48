"""Atomic file writes: a temporary file in the same folder, then os.replace.

A save that fails or is interrupted part-way leaves the target as it was
(absent, or the previous file) and no temporary file behind.
"""
import contextlib
import os
import tempfile


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

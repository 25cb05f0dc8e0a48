"""Paths given by users: one normalisation for every reader."""
import os


def existing_path(path):
    """`path` (str, bytes or os.PathLike) as a str naming something that exists.

    Raises
    ------
    FileNotFoundError
        When nothing exists at `path` (the error names it).
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    return path

"""Look-ups on the header of a volume's first slice (:class:`VolumeHeader`),
shared by the sidecar, slice timing, diffusion and file naming.

Slices keep no headers (a folder of thousands of files would hold them
all), so the one file a volume's metadata comes from is read again here.
"""
from .header import read_header
from .values import short_manufacturer
from .vendors import siemens

__all__ = ["VolumeHeader"]


def _get(header, key, default=None):
    """``header.get(key)``, but a value that cannot be decoded reads as
    absent: a sidecar field is never worth failing a conversion."""
    try:
        value = header.get(key)
    except Exception:
        return default
    return default if value is None else value


def _in_groups(groups, keyword):
    """`keyword` in the functional groups (per-frame before shared): in the
    group itself or in the first item of one of its sequences, or None."""
    try:
        for group in groups:
            value = group.get(keyword)
            if value is not None and value != "":
                return value
            for _, items in group.sequences():
                if items:
                    value = items[0].get(keyword)
                    if value is not None and value != "":
                        return value
    except Exception:  # a corrupt element: as absent (see _get)
        return None
    return None


class VolumeHeader:
    """Look-ups on the header of a volume's first slice: its file's top
    level and, for enhanced files, its frame's functional groups.  The file
    is read again here (one file per volume): slices keep no headers."""

    def __init__(self, s):
        self.slice = s
        self.ds = read_header(s.file.path).top
        self.groups = []
        if s.file.frames > 1 or "PerFrameFunctionalGroupsSequence" in self.ds:
            frames = self.ds.sequence("PerFrameFunctionalGroupsSequence")
            if 0 <= s.frame < len(frames):
                self.groups.append(frames[s.frame])
            shared = self.ds.item("SharedFunctionalGroupsSequence")
            if shared is not None:
                self.groups.append(shared)
        self._csa = None  # parsed on first use

    def get(self, keyword):
        """`keyword`'s value at the top level, else in the frame's functional
        groups (see :meth:`in_groups`); None when absent or undecodable."""
        value = _get(self.ds, keyword)
        if value is not None and value != "":
            return value
        if self.groups:
            return _in_groups(self.groups, keyword)
        return None

    def top(self, keyword):
        """`keyword`'s value at the file's top level only, or None."""
        return _get(self.ds, keyword)

    def in_groups(self, keyword):
        """`keyword` in the frame's functional groups only (per-frame before
        shared), or None."""
        return _in_groups(self.groups, keyword) if self.groups else None

    @property
    def csa(self):
        """The Siemens CSA image header as {name: values} ({} for others)."""
        if self._csa is None:
            self._csa = _csa(self.ds) if self.manufacturer == "Siemens" else {}
        return self._csa

    @property
    def manufacturer(self):
        """dcm2niix's short vendor name ('Siemens', 'GE', ...), or None."""
        return _manufacturer(_get(self.ds, "Manufacturer"))

    def private(self, group, creator, element, vr=None):
        """A private element's value (found by its creator), or None."""
        try:
            return self.ds.private(group, creator, element, vr=vr)
        except Exception:  # corrupt
            return None


def _csa(ds):
    """The Siemens CSA image header, {} when absent or unreadable."""
    try:
        return siemens.csa_image_header(ds)
    except Exception:
        return {}


def _manufacturer(value):
    return short_manufacturer(value) or None

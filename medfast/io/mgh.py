"""FreeSurfer MGH images (``.mgh``, ``.mgz``) <-> :class:`Image`.

nibabel parses the header; medfast bounds what it reads (the header first,
then the voxels and footer it declares, never more) and writes through the
same atomic, fast-gzip path as NIfTI (:mod:`medfast.io.files`).
"""
import math
import os

import numpy as np

from .._memory import check_allocation
from ._read import as_image, inflate, reserve

#: Keys of ``meta['mgh']``: the footer's scan parameters.
MGH_FIELDS = ("tr", "flip_angle", "te", "ti")


def read(f, path, gz):
    """The image in the open MGH file `f` (gzip-compressed when `gz`).

    ``meta['mgh']`` holds :data:`MGH_FIELDS`.  Errors name `path`.
    """
    from nibabel.freesurfer import mghformat as mgh

    head = inflate(f, path, mgh.DATA_OFFSET, 0).data if gz else f.read(mgh.DATA_OFFSET)
    if len(head) < mgh.header_dtype.itemsize:
        raise ValueError(f"{path}: not an MGH file ({len(head)} bytes; an MGH header "
                         f"alone is {mgh.header_dtype.itemsize})")
    fields = np.frombuffer(head, mgh.header_dtype, 1)[0]
    shape, code = tuple(int(n) for n in fields["dims"]), int(fields["type"])
    if min(shape) < 1:
        raise ValueError(f"{path}: invalid MGH header (dimensions {shape})")
    if code not in mgh.data_type_codes.value_set("code"):
        raise ValueError(f"{path}: invalid MGH header (unknown data type {code})")
    dtype = mgh.data_type_codes.numpy_dtype[code].newbyteorder(">")
    # The header, the voxels, then the footer that holds TR, flip angle, TE
    # and TI (FreeSurfer's tags may follow: nibabel does not read them).
    end = mgh.DATA_OFFSET + math.prod(shape) * dtype.itemsize
    size = end + mgh.footer_dtype.itemsize
    f.seek(0)
    if gz:
        reserve(f, path, size, shape, dtype)
        buffer = inflate(f, path, size, 0).data
        held = len(buffer)
    else:
        held = os.fstat(f.fileno()).st_size
    if held < end:
        raise ValueError(f"{path}: truncated: the header describes {end} bytes (shape "
                         f"{shape}, {dtype}), the data hold {held}")
    if not gz:
        check_allocation(shape, dtype, what=path)
        buffer = np.fromfile(f, np.uint8, size)
    return _from_buffer(buffer, path)


def _from_buffer(buffer, path):
    from nibabel.freesurfer.mghformat import MGHImage

    try:
        img = MGHImage.from_bytes(buffer.tobytes())
        array = np.asanyarray(img.dataobj)
    except Exception as error:  # nibabel raises many types for bad files
        raise ValueError(f"{path}: invalid MGH file ({error})") from None
    fields = {key: float(img.header[key]) for key in MGH_FIELDS}
    return as_image(array, img.affine, {"mgh": fields}, path)


def parts(img):
    """The bytes of `img` as an MGH file: a list of buffers to write in turn.

    ``meta['mgh']`` (:data:`MGH_FIELDS`) goes to the footer.

    Raises
    ------
    TypeError
        If the dtype cannot be stored in MGH (only uint8, int16, int32 and
        float32 can).
    """
    from nibabel.freesurfer.mghformat import MGHError, MGHImage

    try:
        out = MGHImage(img.array, img.affine)
    except MGHError as error:
        raise TypeError(f"array: dtype {img.dtype} cannot be stored in MGH ({error}); "
                        f"convert it with astype first") from None
    for key, value in (img.meta.get("mgh") or {}).items():
        if key in MGH_FIELDS:
            out.header[key] = value
    return [memoryview(out.to_bytes())]

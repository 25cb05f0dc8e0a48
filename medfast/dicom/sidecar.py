"""Acquisition metadata: BIDS sidecar fields from the DICOM headers.

Field names and units follow BIDS and dcm2niix (times in seconds).
"""


def _value(ds, keyword):
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return _plain(value)


def _plain(value):
    for kind in (int, float):
        if isinstance(value, kind):
            return kind(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return int(number) if number.is_integer() and "." not in str(value) else number


def _seconds(ds, keyword):
    value = _value(ds, keyword)
    return value / 1000.0 if isinstance(value, (int, float)) else None


def bids_sidecar(volume):
    """BIDS sidecar fields of a volume.

    Parameters
    ----------
    volume : medfast.dicom.series.Volume

    Returns
    -------
    dict
        JSON-serialisable, in dcm2niix's key names.
    """
    ds = volume.first.file.dataset
    out = {}
    for key in ("Modality", "Manufacturer", "ManufacturersModelName",
                "MagneticFieldStrength", "SeriesDescription", "ProtocolName",
                "SeriesNumber", "SliceThickness", "SpacingBetweenSlices",
                "FlipAngle", "AcquisitionNumber", "BodyPartExamined",
                "StationName", "SoftwareVersions", "SeriesInstanceUID",
                "StudyInstanceUID"):
        value = _value(ds, key)
        if value is not None:
            out[key] = value
    for key in ("EchoTime", "RepetitionTime", "InversionTime"):
        value = _seconds(ds, key)
        if value is not None:
            out[key] = value
    image_type = list(volume.first.image_type)
    if image_type:
        out["ImageType"] = image_type
    return out

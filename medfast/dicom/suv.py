"""PET standardised uptake values: body-weight SUV (``suv='bw'``).

``SUVbw = activity concentration (Bq/ml) * weight (g) / injected dose
decayed to the reference time (Bq)``, the QIBA/Vendor-neutral formula:

* the dose and the injection time from RadiopharmaceuticalInformationSequence
  (RadionuclideTotalDose, RadionuclideHalfLife,
  RadiopharmaceuticalStartDateTime, else RadiopharmaceuticalStartTime on the
  SeriesDate); the weight from PatientWeight (kg);
* DecayCorrection ``START``: the images are decay-corrected to the series
  start (SeriesDate/SeriesTime), so the dose is decayed from injection to
  then, ``dose * 2 ** (-(series - injection) / half_life)``; ``ADMIN``: to
  the injection, so the dose is used as it is;
* Units must be ``BQML`` (``GML`` is SUV already: factor 1).

Anything missing or outside these cases raises one line naming the tag.
"""
from .values import datetime_seconds, number


def _required(ds, keyword, path, where=""):
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        raise ValueError(f"{path}: cannot compute SUV: {keyword}{where} is missing")
    return value


def _positive(ds, keyword, path, where=""):
    value = number(_required(ds, keyword, path, where))
    if value is None or value <= 0:
        raise ValueError(f"{path}: cannot compute SUV: {keyword}{where} is "
                         f"{ds.get(keyword)!s:.40} (a positive number is needed)")
    return value


def suv_bw_factor(path):
    """The factor taking a PET series' Bq/ml values to body-weight SUV.

    Parameters
    ----------
    path : str
        A file of the series (its header is read with pydicom).

    Returns
    -------
    factor : float
        Multiply the rescaled pixel values by it.
    fields : dict
        For the sidecar: ``Units`` ('g/ml'), ``SUVbwScaleFactor``,
        ``DecayCorrection``, ``InjectedRadioactivity`` (Bq),
        ``RadionuclideHalfLife`` (s), ``DecayTime`` (s from injection to
        the reference time).  Not the weight: it identifies the patient
        (the anonymised sidecar leaves PatientWeight out).

    Raises
    ------
    ValueError
        Naming the missing or unusable tag.
    """
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    units = str(_required(ds, "Units", path)).strip().upper()
    weight = _positive(ds, "PatientWeight", path)
    if units == "GML":
        return 1.0, {"Units": "g/ml", "SUVbwScaleFactor": 1.0}
    if units != "BQML":
        raise ValueError(f"{path}: cannot compute SUV: Units is {units} (BQML is needed)")
    sequence = _required(ds, "RadiopharmaceuticalInformationSequence", path)
    if not len(sequence):
        raise ValueError(f"{path}: cannot compute SUV: RadiopharmaceuticalInformationSequence "
                         "is empty")
    drug = sequence[0]
    where = " (RadiopharmaceuticalInformationSequence)"
    dose = _positive(drug, "RadionuclideTotalDose", path, where)
    half_life = _positive(drug, "RadionuclideHalfLife", path, where)
    correction = str(_required(ds, "DecayCorrection", path)).strip().upper()
    fields = {"DecayCorrection": correction, "InjectedRadioactivity": dose,
              "RadionuclideHalfLife": half_life}
    if correction == "START":
        injected = None
        if drug.get("RadiopharmaceuticalStartDateTime"):
            injected = datetime_seconds(drug.RadiopharmaceuticalStartDateTime)
        if injected is None:
            start = _required(drug, "RadiopharmaceuticalStartTime", path,
                              where + " (or RadiopharmaceuticalStartDateTime)")
            injected = datetime_seconds(ds.get("SeriesDate"), start)
        series = datetime_seconds(ds.get("SeriesDate"), _required(ds, "SeriesTime", path))
        if injected is None or series is None:
            raise ValueError(f"{path}: cannot compute SUV: the injection or series time "
                             "is malformed")
        if series < injected and not ds.get("SeriesDate"):
            series += 86400  # times without a date, across midnight
        decay_time = series - injected
        dose *= 2.0 ** (-decay_time / half_life)
        fields["DecayTime"] = decay_time
    elif correction != "ADMIN":
        raise ValueError(f"{path}: cannot compute SUV: DecayCorrection is {correction} "
                         "(START or ADMIN is needed)")
    factor = weight * 1000.0 / dose
    fields.update({"Units": "g/ml", "SUVbwScaleFactor": factor})
    return factor, fields

"""Real ICU vital signs from the PhysioNet/CinC Challenge 2019 (training set B), mapped to the
platform's vital types and labelled for early warning of sepsis.

Target and unit of evaluation (see docs/model.md):

- a window is an ICU hour in which at least one of heart rate, SpO2, temperature, systolic
  pressure or respiratory rate was charted (hours without a new vital sign are no scoring event);
- the clinical onset of sepsis is taken as 6 h after the first hour with `SepsisLabel` 1 (the
  challenge sets the label 6 h early);
- a window is positive from 6 h before that onset up to and including the onset hour, i.e. the
  question is "is sepsis onset due within the next 6 hours?"; windows after the onset are
  excluded, because an alert then is no longer an early warning;
- follow-up time is every ICU hour up to the onset (all hours for patients without sepsis); it
  is the denominator of alerts per patient-day.

Oxygen is inferred from FiO2 (> 0.21 oxygen, ≤ 0.21 air, missing where not charted; values
above 1 are percentages); consciousness is not recorded and stays missing.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np

from services.alerts.model.dataset import (
    EXCLUDED,
    NEGATIVE,
    POSITIVE,
    LabelledWindows,
    spread_exposure,
)
from services.alerts.model.table import FloatArray, IntArray, VitalsTable

DATA_ENV = "NAERVAGT_PHYSIONET_DATA"
DEFAULT_DATA = Path("/work/shared/data/physionet2019_setB_partial.psv.gz")

LABEL_LEAD_HOURS = 6.0
"""The challenge's `SepsisLabel` turns 1 this long before the clinical onset."""

AIR_FIO2 = 0.21

VITAL_COLUMNS: dict[str, str] = {
    "HR": "heart_rate",
    "O2Sat": "spo2",
    "Temp": "temperature",
    "SBP": "systolic_bp",
    "DBP": "diastolic_bp",
    "Resp": "respiratory_rate",
}
_NEWS2_VITALS = ("HR", "O2Sat", "Temp", "SBP", "Resp")
_REQUIRED = (*VITAL_COLUMNS, "FiO2", "ICULOS", "SepsisLabel")


class PhysionetFormatError(ValueError):
    """The file is not the challenge's pipe-separated table with a `patient` column."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def default_data_path() -> Path:
    """The data file named by $NAERVAGT_PHYSIONET_DATA, else the shared copy."""
    return Path(os.environ.get(DATA_ENV, str(DEFAULT_DATA)))


def on_oxygen_from_fio2(fio2: FloatArray) -> FloatArray:
    """1 where FiO2 shows supplemental oxygen, 0 for room air, NaN where unknown or implausible."""
    fraction = np.where(fio2 > 1.0, fio2 / 100.0, fio2)
    plausible = (fraction >= AIR_FIO2) & (fraction <= 1.0)
    return np.where(plausible, (fraction > AIR_FIO2 + 1e-9).astype(np.float64), np.nan)


def load_physionet(path: Path | None = None) -> LabelledWindows:
    """Read the challenge table and label every charted hour (see the module docstring)."""
    source = path if path is not None else default_data_path()
    with gzip.open(source, "rt", encoding="ascii") as stream:
        header = stream.readline().rstrip("\n").split("|")
        body = stream.read()
    if not header or header[0] != "patient":
        raise PhysionetFormatError(source, "first column must be 'patient'")
    absent = [name for name in _REQUIRED if name not in header]
    if absent:
        raise PhysionetFormatError(source, f"missing columns {absent}")
    # "p100001|..." → "100001|...": every field is then numeric and one parser reads it all.
    numeric = body.replace("\np", "\n")
    if numeric.startswith("p"):
        numeric = numeric[1:]
    columns = ("patient", *_REQUIRED)
    wanted = [header.index(name) for name in columns]
    try:
        raw = np.loadtxt(io.StringIO(numeric), delimiter="|", usecols=wanted, ndmin=2)
    except ValueError as error:
        raise PhysionetFormatError(source, str(error)) from error
    data = {name: raw[:, i] for i, name in enumerate(columns)}
    return label_hours(data)


def label_hours(data: dict[str, FloatArray]) -> LabelledWindows:
    """Build labelled windows from challenge columns (rows grouped by patient, hour order)."""
    number = data["patient"].astype(np.int64)
    hour = data["ICULOS"]
    order = np.lexsort((hour, number))
    number, hour = number[order], hour[order]
    label = data["SepsisLabel"][order] > 0.5
    numbers, patient = np.unique(number, return_inverse=True)
    patient = patient.astype(np.int64)
    patients = numbers.shape[0]

    first_label = np.full(patients, np.inf)
    np.minimum.at(first_label, patient[label], hour[label])
    onset = first_label + LABEL_LEAD_HOURS
    before_onset = hour <= onset[patient]
    target = np.where(label, POSITIVE, NEGATIVE).astype(np.int8)
    target[~before_onset] = EXCLUDED

    charted = np.zeros(hour.shape[0], dtype=np.bool_)
    for name in _NEWS2_VITALS:
        charted |= ~np.isnan(data[name][order])
    follow_up_days = np.bincount(patient[before_onset], minlength=patients) / 24.0
    exposure = spread_exposure(patient, charted & before_onset, follow_up_days=follow_up_days)
    episode: IntArray = np.where(target == POSITIVE, patient, -1).astype(np.int64)

    values = {vital: data[name][order] for name, vital in VITAL_COLUMNS.items()}
    values["on_oxygen"] = on_oxygen_from_fio2(data["FiO2"][order])
    table = VitalsTable(
        patient=patient,
        patient_ids=tuple(f"p{n:06d}" for n in numbers),
        time_h=hour.astype(np.float64),
        values=values,
        spo2_scale=np.ones(patients, dtype=np.int64),
    ).take(charted)
    return LabelledWindows(
        name="PhysioNet 2019 set B",
        table=table,
        patient_number=numbers,
        target=target[charted],
        episode=episode[charted],
        exposure_days=exposure[charted],
    )

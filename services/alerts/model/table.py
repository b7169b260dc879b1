"""A column table of vital-sign measurements: one row per distinct (patient, time), the form the
window features, the model and the batch scorer all take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.vitals import VitalType

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

VALUE_COLUMNS: tuple[str, ...] = tuple(vital.value for vital in VitalType)
"""Every vital type; `on_oxygen` holds 0/1 and `consciousness` an ACVPU code (A=0 … U=4)."""


class InvalidTable(ValueError):
    """Columns of different lengths, rows out of order or an unknown column."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VitalsTable:
    """Measurements in rows sorted by patient, then time; NaN where a type was not measured.

    `patient` indexes `patient_ids` (which is sorted, so row order is also the order of the
    ids); `time_h` is in hours on any fixed origin and strictly increases within a patient;
    `spo2_scale` gives each patient's NEWS2 SpO2 scale (1, or 2 for a prescribed 88–92 %).
    """

    patient: IntArray
    patient_ids: tuple[str, ...]
    time_h: FloatArray
    values: Mapping[str, FloatArray]
    spo2_scale: IntArray

    def __post_init__(self) -> None:
        rows = self.patient.shape[0]
        if self.time_h.shape != (rows,):
            raise InvalidTable(f"time_h has shape {self.time_h.shape}, expected ({rows},)")
        unknown = set(self.values) - set(VALUE_COLUMNS)
        if unknown:
            raise InvalidTable(f"unknown value columns {sorted(unknown)}")
        for name, column in self.values.items():
            if column.shape != (rows,):
                raise InvalidTable(f"{name} has shape {column.shape}, expected ({rows},)")
        if self.spo2_scale.shape != (len(self.patient_ids),):
            raise InvalidTable("spo2_scale needs one entry per patient")
        if rows and (self.patient.min() < 0 or self.patient.max() >= len(self.patient_ids)):
            raise InvalidTable("patient codes outside patient_ids")
        step = np.diff(self.patient)
        if (step < 0).any():
            raise InvalidTable("rows are not sorted by patient")
        if ((step == 0) & (np.diff(self.time_h) <= 0)).any():
            raise InvalidTable("times do not strictly increase within a patient")

    def __len__(self) -> int:
        return int(self.patient.shape[0])

    def column(self, name: str) -> FloatArray:
        """The column of a vital type, all NaN when the table never measured it."""
        if name not in VALUE_COLUMNS:
            raise InvalidTable(f"unknown value column {name!r}")
        found = self.values.get(name)
        return found if found is not None else np.full(len(self), np.nan)

    def row_spo2_scale(self) -> IntArray:
        return self.spo2_scale[self.patient]

    def take(self, rows: BoolArray) -> VitalsTable:
        """The rows where `rows` is true; patients keep their codes and ids."""
        return VitalsTable(
            patient=self.patient[rows],
            patient_ids=self.patient_ids,
            time_h=self.time_h[rows],
            values={name: column[rows] for name, column in self.values.items()},
            spo2_scale=self.spo2_scale,
        )


@dataclass(frozen=True, slots=True)
class LongReadings:
    """Readings in long form, one per (patient, time, type, value), in arrival order."""

    patient_id: npt.NDArray[np.str_]
    time_h: FloatArray
    type_index: IntArray  # index into VALUE_COLUMNS
    value: FloatArray


def table_from_long(
    readings: LongReadings, *, spo2_scale: Mapping[str, int] | None = None
) -> tuple[VitalsTable, IntArray]:
    """One row per distinct (patient, time); a repeated (patient, time, type) keeps the reading
    that came last. Returns the table and, per row, the index of its first reading."""
    scales = spo2_scale or {}
    ids, patient = np.unique(readings.patient_id, return_inverse=True)
    patient = patient.astype(np.int64)
    count = patient.shape[0]
    order = np.lexsort((np.arange(count), readings.time_h, patient))
    p, t = patient[order], readings.time_h[order]
    starts = np.ones(count, dtype=np.bool_)
    starts[1:] = (p[1:] != p[:-1]) | (t[1:] != t[:-1])
    row = np.cumsum(starts) - 1
    rows = int(starts.sum())

    values: dict[str, FloatArray] = {}
    for index, name in enumerate(VALUE_COLUMNS):
        chosen = np.flatnonzero(readings.type_index[order] == index)
        if chosen.size == 0:
            continue
        # Within one row, sorted order is arrival order: keep each row's last reading.
        last = np.ones(chosen.size, dtype=np.bool_)
        last[:-1] = row[chosen[1:]] != row[chosen[:-1]]
        column = np.full(rows, np.nan)
        column[row[chosen[last]]] = readings.value[order][chosen[last]]
        values[name] = column

    patient_ids = tuple(str(i) for i in ids)
    table = VitalsTable(
        patient=p[starts],
        patient_ids=patient_ids,
        time_h=t[starts],
        values=values,
        spo2_scale=np.asarray([scales.get(i, 1) for i in patient_ids], dtype=np.int64),
    )
    return table, order[starts].astype(np.int64)

"""Labelled windows: a vitals table plus, for every row, the prediction target, the episode it
belongs to and the follow-up time it stands for (for alerts per patient-day)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.alerts.model.split import is_held_out
from services.alerts.model.table import BoolArray, FloatArray, IntArray, VitalsTable

POSITIVE = 1
NEGATIVE = 0
EXCLUDED = -1
"""`target` values: excluded rows still feed later windows' features but are never scored."""


@dataclass(frozen=True, slots=True)
class LabelledWindows:
    """One candidate window per table row.

    `patient_number` is per patient (aligned with `table.patient_ids`) and decides the split;
    `episode` numbers the deterioration episode a positive row belongs to (-1 elsewhere);
    `exposure_days` spreads each patient's follow-up time over their scored rows, so the sum
    over flagged rows' patients gives patient-days and alerts per patient-day follow.
    """

    name: str
    table: VitalsTable
    patient_number: IntArray
    target: npt.NDArray[np.int8]
    episode: IntArray
    exposure_days: FloatArray

    def __post_init__(self) -> None:
        rows = len(self.table)
        for name in ("target", "episode", "exposure_days"):
            if getattr(self, name).shape != (rows,):
                raise ValueError(f"{name} needs one entry per row ({rows})")
        if self.patient_number.shape != (len(self.table.patient_ids),):
            raise ValueError("patient_number needs one entry per patient")

    def row_patient_number(self) -> IntArray:
        return self.patient_number[self.table.patient]

    def held_out_rows(self) -> BoolArray:
        return is_held_out(self.row_patient_number())

    def scored_rows(self) -> BoolArray:
        return np.asarray(self.target != EXCLUDED, dtype=np.bool_)


def spread_exposure(
    patient: IntArray, scored: BoolArray, *, follow_up_days: FloatArray
) -> FloatArray:
    """Share each patient's follow-up days equally among that patient's scored rows."""
    patients = follow_up_days.shape[0]
    counts = np.bincount(patient[scored], minlength=patients).astype(np.float64)
    share = np.divide(
        follow_up_days, counts, out=np.zeros(patients, dtype=np.float64), where=counts > 0
    )
    return np.where(scored, share[patient], 0.0)

"""The deterioration model on live windows: each patient's latest window as one feature row,
computed by the very function the model was trained with, then the model's risk and the
features that move it most, for many patients in one batch.

`compute_features` gives a row per distinct measurement time. The live window is the last row
of a patient, and that row depends only on the measurements of the last 72 hours (latest
values, slopes) and on each trended vital's last `BASELINE_MAX_MEASUREMENTS` measurements
within `BASELINE_LOOKBACK_HOURS` (the baseline), so the table holds just those: the row comes
out as it would from the patient's whole history, at a fraction of the cost.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from services.alerts.domain.news2 import CONSCIOUSNESS_CODES
from services.alerts.domain.window import Observation, PatientVitals
from services.alerts.model.features import (
    BASELINE_LOOKBACK_HOURS,
    BASELINE_MAX_MEASUREMENTS,
    SLOPE_SPANS_HOURS,
    TRENDED,
    WINDOW_HOURS,
    compute_features,
)
from services.alerts.model.table import (
    VALUE_COLUMNS,
    FloatArray,
    LongReadings,
    VitalsTable,
    table_from_long,
)
from shared.vitals import VitalType

_MARGIN = timedelta(seconds=1)  # wider than the features' own tolerance, so no edge is lost
_RECENT = timedelta(hours=max(WINDOW_HOURS, *(span for _, span in SLOPE_SPANS_HOURS)))
_BASELINE_REACH = timedelta(hours=BASELINE_LOOKBACK_HOURS)
_FLAGS: tuple[str, ...] = (str(VitalType.ON_OXYGEN), str(VitalType.CONSCIOUSNESS))
_COLUMN = {name: index for index, name in enumerate(VALUE_COLUMNS)}


class RiskModel(Protocol):
    """What live scoring needs of a deterioration model (artifact.DeteriorationModel has it)."""

    @property
    def version(self) -> str: ...
    @property
    def features(self) -> tuple[str, ...]: ...
    @property
    def used(self) -> tuple[int, ...]: ...
    @property
    def reference(self) -> FloatArray: ...
    @property
    def is_default(self) -> bool: ...
    def predict_proba(self, features: npt.NDArray[np.float64]) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class ModelRisk:
    """The model's probability for one window and the features that move it most, as (feature,
    change in log-odds when that feature alone is made typical); positive raises the risk.

    `is_default` says whether the model may set severities at all; `alert_threshold` is the
    probability at which it would alert (the NEWS2 ≥ 5 alert burden), when known.
    """

    version: str
    probability: float
    top_features: tuple[tuple[str, float], ...]
    is_default: bool
    alert_threshold: float | None = None


def _numeric(observation: Observation) -> float:
    value = observation.value
    if observation.type == VitalType.CONSCIOUSNESS:
        return float(CONSCIOUSNESS_CODES[str(value)])
    return float(value)


def _measured_at(observation: Observation) -> datetime:
    return observation.measured_at


def _needed(vitals: PatientVitals, end: datetime) -> list[Observation]:
    """The patient's readings that the features of the window ending at `end` depend on."""
    recent_from = end - _RECENT - _MARGIN
    kept: list[Observation] = []
    for type in TRENDED:
        readings = vitals.history(type, since=end - _BASELINE_REACH - _MARGIN)
        upto = bisect_right(readings, end, key=_measured_at)
        recent = bisect_right(readings, recent_from, hi=upto, key=_measured_at)
        # Everything recent, and before that the measurements a baseline can still reach.
        kept += readings[max(0, recent - BASELINE_MAX_MEASUREMENTS) : upto]
    for type in _FLAGS:
        readings = vitals.history(type, since=recent_from)
        kept += readings[: bisect_right(readings, end, key=_measured_at)]
    return kept


def feature_table(windows: Sequence[tuple[str, PatientVitals, datetime, int]]) -> VitalsTable:
    """A vitals table holding, for each (key, patient's readings, window end, SpO2 scale), what
    the window ending at `end` depends on, as the rows of a "patient" named by the key (the
    table's `patient_ids` are the keys); that patient's last row is the window.

    Keys must be unique (one patient may have windows at two ends), and every `end` the time of
    one of the patient's readings.
    """
    patient_ids: list[str] = []
    hours: list[float] = []
    kinds: list[int] = []
    values: list[float] = []
    for key, vitals, end, _ in windows:
        # Per type in arrival order, so a correction at the same time wins over what it fixes.
        for observation in _needed(vitals, end):
            patient_ids.append(key)
            hours.append(observation.measured_at.timestamp() / 3600.0)
            kinds.append(_COLUMN[observation.type])
            values.append(_numeric(observation))
    table, _ = table_from_long(
        LongReadings(
            patient_id=np.asarray(patient_ids, dtype=np.str_),
            time_h=np.asarray(hours, dtype=np.float64),
            type_index=np.asarray(kinds, dtype=np.int64),
            value=np.asarray(values, dtype=np.float64),
        ),
        spo2_scale={key: scale for key, _, _, scale in windows},
    )
    return table


def window_rows(table: VitalsTable) -> FloatArray:
    """The features of each key's last row (its window), in the table's `patient_ids` order."""
    matrix = compute_features(table).matrix
    if len(table) == 0:
        return matrix
    last = np.flatnonzero(np.append(table.patient[1:] != table.patient[:-1], True))
    return matrix[last]


def _log_odds(probability: FloatArray) -> FloatArray:
    clipped = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


def risks(
    model: RiskModel,
    rows: npt.NDArray[np.float64],
    *,
    top: int = 5,
    alert_threshold: float | None = None,
) -> list[ModelRisk]:
    """The model's risk of each feature row with its top features, in one model call.

    The top features are found as `DeteriorationModel.explain` finds them (single-feature
    occlusion: each used feature in turn set to its training median), for all rows at once.
    A feature already at its median leaves the row as it is, so its effect is exactly zero
    without asking the model.
    """
    matrix = np.asarray(rows, dtype=np.float64)
    count = matrix.shape[0]
    used = np.asarray(model.used, dtype=np.intp)
    reference = np.asarray(model.reference, dtype=np.float64)
    moved_row, moved_feature = np.nonzero(matrix[:, used] != reference[None, :])  # NaN moves
    variants = matrix[moved_row]
    variants[np.arange(moved_row.size), used[moved_feature]] = reference[moved_feature]
    probability = model.predict_proba(np.vstack([matrix, variants]))
    log_odds = _log_odds(probability)
    effects = np.zeros((count, used.size), dtype=np.float64)
    effects[moved_row, moved_feature] = log_odds[moved_row] - log_odds[count:]
    found: list[ModelRisk] = []
    for row in range(count):
        ranked = np.argsort(-np.abs(effects[row]), kind="stable")[:top]
        found.append(
            ModelRisk(
                version=model.version,
                probability=float(probability[row]),
                top_features=tuple(
                    (model.features[used[i]], float(effects[row, i])) for i in ranked
                ),
                is_default=model.is_default,
                alert_threshold=alert_threshold,
            )
        )
    return found

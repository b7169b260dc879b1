"""Window features of the deterioration model, computed for every row of a vitals table at once.

Each row of a `VitalsTable` is a window ending at that row's time. Every feature of a row uses
only that patient's measurements at or before the row's time, so a later measurement never
changes an earlier window (no look-ahead); training, evaluation and live scoring all call
`compute_features`. The features, in `FEATURES` order:

- `<vital>`: the latest value within `window_hours` (24 h) for heart rate, SpO2, respiratory
  rate, systolic pressure and temperature; NaN if none;
- `<vital>_missing`: 1 if that vital (or weight) has no value within the window, else 0;
- `<vital>_baseline_z`: (latest value − personal baseline) / spread, where the baseline is the
  median and the spread 1.4826 × the MAD of the patient's own last ≤48 measurements strictly
  before the window's time and within 30 days (at least 4 needed, else NaN); the spread has a
  floor per vital so a very steady patient does not turn noise into large deviations;
- `<vital>_slope_24h`, `<vital>_slope_72h`: least-squares slope in units per day of the
  measurements in the last 24 h / 72 h (at least 2 spanning an eighth of the span, else NaN);
  weight has only these, its deviation and its missing flag (a weight level says nothing
  across patients; a gain does);
- `news2_total` and `news2_<parameter>`: NEWS2 of the latest values (components NaN if missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.alerts.domain import news2
from services.alerts.model.table import FloatArray, IntArray, VitalsTable

WINDOW_HOURS = 24.0
SLOPE_SPANS_HOURS: tuple[tuple[str, float], ...] = (("24h", 24.0), ("72h", 72.0))
BASELINE_LOOKBACK_HOURS = 30 * 24.0
BASELINE_MAX_MEASUREMENTS = 48
BASELINE_MIN_MEASUREMENTS = 4
MAD_TO_SD = 1.4826
"""Scales the median absolute deviation to a standard deviation for normal data."""

VITALS: tuple[str, ...] = (
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "systolic_bp",
    "temperature",
)
TRENDED: tuple[str, ...] = (*VITALS, "weight")
SPREAD_FLOOR: dict[str, float] = {
    "heart_rate": 3.0,
    "spo2": 1.0,
    "respiratory_rate": 1.5,
    "systolic_bp": 5.0,
    "temperature": 0.2,
    "weight": 0.5,
}

FEATURES: tuple[str, ...] = (
    *VITALS,
    *(f"{name}_missing" for name in TRENDED),
    *(f"{name}_baseline_z" for name in TRENDED),
    *(f"{name}_slope_{label}" for label, _ in SLOPE_SPANS_HOURS for name in TRENDED),
    "news2_total",
    *(f"news2_{name}" for name in news2.PARAMETERS),
)

_EPSILON_HOURS = 1e-6
_CHUNK_ROWS = 32_768
_SLOPE_SCALE = 1000.0


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """The feature matrix (rows × `FEATURES`), and the NEWS2 of the latest values it used."""

    matrix: FloatArray
    news2: news2.News2Batch


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Orders every (patient, time) on one number line so a single sorted search finds windows.

    Patients are spaced further apart than the longest look-back, so a window reaching back
    from one patient's row can never take in the previous patient's measurements.
    """

    key: FloatArray
    minutes: IntArray  # whole minutes since the patient's first row, for exact slope sums

    @classmethod
    def of(cls, table: VitalsTable) -> _Timeline:
        if len(table) == 0:
            return cls(key=np.zeros(0), minutes=np.zeros(0, dtype=np.int64))
        origin = float(table.time_h.min())
        reach = max(BASELINE_LOOKBACK_HOURS, WINDOW_HOURS, *(s for _, s in SLOPE_SPANS_HOURS))
        spacing = float(table.time_h.max()) - origin + reach + 1.0
        key = table.patient.astype(np.float64) * spacing + (table.time_h - origin)
        first = np.ones(len(table), dtype=np.bool_)
        first[1:] = table.patient[1:] != table.patient[:-1]
        start = np.maximum.accumulate(np.where(first, np.arange(len(table)), 0))
        clock = np.round(table.time_h * 60.0).astype(np.int64)
        return cls(key=key, minutes=clock - clock[start])


def latest_within(table: VitalsTable, name: str, *, window_hours: float) -> FloatArray:
    """For each row, the patient's latest value of `name` at most `window_hours` old, or NaN."""
    values = table.column(name)
    rows = np.arange(len(table))
    last = np.maximum.accumulate(np.where(np.isnan(values), -1, rows)) if len(table) else rows
    found = last >= 0
    source = np.where(found, last, 0)
    found &= table.patient[source] == table.patient
    found &= table.time_h - table.time_h[source] <= window_hours + _EPSILON_HOURS
    return np.where(found, values[source], np.nan)


def news2_of_latest(table: VitalsTable, *, window_hours: float) -> news2.News2Batch:
    """NEWS2 of each row's window: the latest value of every parameter within `window_hours`."""
    latest = {
        name: latest_within(table, name, window_hours=window_hours)
        for name in (*VITALS, "on_oxygen", "consciousness")
    }
    return news2.score_batch(
        respiratory_rate=latest["respiratory_rate"],
        spo2=latest["spo2"],
        on_oxygen=latest["on_oxygen"],
        systolic_bp=latest["systolic_bp"],
        heart_rate=latest["heart_rate"],
        consciousness=latest["consciousness"],
        temperature=latest["temperature"],
        spo2_scale=table.row_spo2_scale().astype(np.float64),
    )


def _slopes(
    line: _Timeline, measured: IntArray, *, values: FloatArray, span_hours: float
) -> FloatArray:
    """Least-squares slope per day of the measurements in [t − span, t].

    The window sums come from prefix sums over whole minutes and thousandths of a unit in
    int64, which are exact (a wrapped prefix still differences to the exact window sum), so a
    row's slope never depends on rows outside its window, not even by rounding.
    """
    key, minutes = line.key[measured], line.minutes[measured]
    scaled = np.round(values * _SLOPE_SCALE).astype(np.int64)
    low = np.searchsorted(key, line.key - span_hours - _EPSILON_HOURS, side="left")
    high = np.searchsorted(key, line.key + _EPSILON_HOURS, side="right")
    n = (high - low).astype(np.float64)

    def window_sum(series: IntArray) -> FloatArray:
        prefix = np.zeros(series.shape[0] + 1, dtype=np.int64)
        np.cumsum(series, out=prefix[1:])
        return (prefix[high] - prefix[low]).astype(np.float64)

    s_t, s_v = window_sum(minutes), window_sum(scaled)
    s_tt, s_tv = window_sum(minutes * minutes), window_sum(minutes * scaled)
    enough = n >= 2
    if minutes.size:
        first = minutes[np.clip(low, 0, minutes.size - 1)]
        last = minutes[np.clip(high - 1, 0, minutes.size - 1)]
        enough &= (last - first) >= span_hours * 60.0 / 8.0
    else:
        enough &= False
    count = np.maximum(n, 1.0)
    spread = s_tt - s_t * s_t / count
    covariance = s_tv - s_t * s_v / count
    usable = enough & (spread > 0)
    per_minute = covariance / np.where(usable, spread, 1.0)
    return np.where(usable, per_minute * 1440.0 / _SLOPE_SCALE, np.nan)


def _sorted_median(sorted_rows: FloatArray, counts: IntArray) -> FloatArray:
    """Median of each row whose first `counts` entries are its sorted values (rest +inf)."""
    rows = np.arange(sorted_rows.shape[0])
    k = np.maximum(counts, 1)
    middle = 0.5 * (sorted_rows[rows, (k - 1) // 2] + sorted_rows[rows, k // 2])
    return np.asarray(middle, dtype=np.float64)


def _baseline(
    line: _Timeline, measured: IntArray, *, values: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of each row's earlier measurements (strictly before the row's time)."""
    key = line.key[measured]
    high = np.searchsorted(key, line.key - _EPSILON_HOURS, side="left")
    low = np.searchsorted(key, line.key - BASELINE_LOOKBACK_HOURS - _EPSILON_HOURS, side="left")
    median = np.full(line.key.shape[0], np.nan)
    mad = np.full(line.key.shape[0], np.nan)
    if values.size == 0:
        return median, mad
    offsets = np.arange(-BASELINE_MAX_MEASUREMENTS, 0)
    for start in range(0, line.key.shape[0], _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        index = high[part, None] + offsets[None, :]
        usable = index >= low[part, None]
        window = np.where(usable, values[np.clip(index, 0, values.size - 1)], np.inf)
        counts = usable.sum(axis=1)
        window.sort(axis=1)
        # A row with no earlier measurement gets a finite stand-in, so inf - inf never occurs.
        centre = np.where(counts > 0, _sorted_median(window, counts), 0.0)
        spread = np.abs(window - centre[:, None])
        spread.sort(axis=1)
        enough = counts >= BASELINE_MIN_MEASUREMENTS
        median[part] = np.where(enough, centre, np.nan)
        mad[part] = np.where(enough, _sorted_median(spread, counts), np.nan)
    return median, mad


def compute_features(table: VitalsTable, *, window_hours: float = WINDOW_HOURS) -> WindowFeatures:
    """Features of every row of `table` as a (rows × len(FEATURES)) float matrix."""
    line = _Timeline.of(table)
    latest = {name: latest_within(table, name, window_hours=window_hours) for name in TRENDED}
    columns: dict[str, FloatArray] = {name: latest[name] for name in VITALS}
    for name in TRENDED:
        raw = table.column(name)
        measured = np.flatnonzero(~np.isnan(raw))
        observed = raw[measured]
        columns[f"{name}_missing"] = np.isnan(latest[name]).astype(np.float64)
        centre, mad = _baseline(line, measured, values=observed)
        spread = np.maximum(MAD_TO_SD * mad, SPREAD_FLOOR[name])
        columns[f"{name}_baseline_z"] = (latest[name] - centre) / spread
        for label, span in SLOPE_SPANS_HOURS:
            columns[f"{name}_slope_{label}"] = _slopes(
                line, measured, values=observed, span_hours=span
            )

    scores = news2_of_latest(table, window_hours=window_hours)
    columns["news2_total"] = scores.total.astype(np.float64)
    for name in news2.PARAMETERS:
        component = scores.components[name].astype(np.float64)
        columns[f"news2_{name}"] = np.where(scores.present[name], component, np.nan)

    matrix = np.empty((len(table), len(FEATURES)), dtype=np.float64)
    for i, name in enumerate(FEATURES):
        matrix[:, i] = columns[name]
    return WindowFeatures(matrix=matrix, news2=scores)

"""Window features: no look-ahead, personal baselines and slopes as a clinician would read them."""

from __future__ import annotations

import numpy as np
import pytest

from services.alerts.model.features import FEATURES, compute_features, latest_within
from services.alerts.model.table import VitalsTable


def make_table(
    hours: list[list[float]],
    *,
    heart_rate: list[list[float]] | None = None,
    spo2: list[list[float]] | None = None,
    weight: list[list[float]] | None = None,
) -> VitalsTable:
    """A table of one or more patients: per patient a list of hours and matching values."""
    patient = np.concatenate([np.full(len(h), i) for i, h in enumerate(hours)]).astype(np.int64)
    values = {}
    for name, series in (("heart_rate", heart_rate), ("spo2", spo2), ("weight", weight)):
        if series is not None:
            values[name] = np.concatenate([np.asarray(s, dtype=float) for s in series])
    return VitalsTable(
        patient=patient,
        patient_ids=tuple(f"p{i}" for i in range(len(hours))),
        time_h=np.concatenate([np.asarray(h, dtype=float) for h in hours]),
        values=values,
        spo2_scale=np.ones(len(hours), dtype=np.int64),
    )


def feature(table: VitalsTable, name: str) -> np.ndarray:
    return compute_features(table).matrix[:, FEATURES.index(name)]


def random_table(seed: int) -> VitalsTable:
    rng = np.random.default_rng(seed)
    hours, rates, sats = [], [], []
    for _ in range(3):
        n = int(rng.integers(20, 60))
        t = np.cumsum(rng.uniform(0.5, 14.0, n))
        hr = rng.normal(80, 10, n)
        hr[rng.random(n) < 0.3] = np.nan
        sat = rng.normal(94, 2, n)
        sat[rng.random(n) < 0.3] = np.nan
        hours.append(list(t))
        rates.append(list(hr))
        sats.append(list(sat))
    return make_table(hours, heart_rate=rates, spo2=sats)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changing_a_later_measurement_leaves_earlier_windows_unchanged(seed: int) -> None:
    table = random_table(seed)
    before = compute_features(table).matrix
    rng = np.random.default_rng(seed + 100)
    first_of_second = int(np.flatnonzero(table.patient == 1)[0])
    last_of_second = int(np.flatnonzero(table.patient == 1)[-1])
    changed_row = int(rng.integers(first_of_second + 5, last_of_second))
    altered = dict(table.values)
    altered["heart_rate"] = table.values["heart_rate"].copy()
    altered["heart_rate"][changed_row] = 180.0
    altered["spo2"] = table.values["spo2"].copy()
    altered["spo2"][changed_row] = 80.0
    after = compute_features(
        VitalsTable(table.patient, table.patient_ids, table.time_h, altered, table.spo2_scale)
    ).matrix

    earlier = np.arange(len(table)) < changed_row
    np.testing.assert_array_equal(after[earlier], before[earlier])
    # ...and the change does show up in its own window and the patient's later windows.
    assert not np.array_equal(after[changed_row], before[changed_row], equal_nan=True)
    # Other patients are never affected.
    third = table.patient == 2
    np.testing.assert_array_equal(after[third], before[third])


def test_appending_later_rows_leaves_every_existing_row_unchanged() -> None:
    table = random_table(7)
    whole = compute_features(table).matrix
    cut = np.ones(len(table), dtype=bool)
    cut[np.flatnonzero(table.patient == 0)[-10:]] = False
    shortened = compute_features(table.take(cut)).matrix
    np.testing.assert_array_equal(shortened, whole[cut])


def test_baseline_deviation_uses_the_patients_own_earlier_median_and_mad() -> None:
    # Earlier pulses 70, 72, 74, 76: median 73, MAD 2 → spread max(1.4826·2, floor 3) = 3.
    table = make_table([[0, 6, 12, 18, 24]], heart_rate=[[70, 72, 74, 76, 90]])
    z = feature(table, "heart_rate_baseline_z")
    assert z[4] == pytest.approx((90 - 73) / 3.0)
    # Fewer than four earlier measurements: no baseline yet.
    assert np.isnan(z[:4]).all()


def test_a_steady_patient_at_spo2_90_is_not_deviating_from_their_own_baseline() -> None:
    hours = [float(h) for h in range(0, 120, 12)]
    table = make_table([hours], spo2=[[90, 91, 90, 89, 90, 91, 90, 90, 89, 90]])
    z = feature(table, "spo2_baseline_z")
    assert np.nanmax(np.abs(z)) <= 1.0
    # NEWS2 still scores the absolute value: SpO2 90 on Scale 1 is 3 points.
    assert feature(table, "news2_spo2")[-1] == 3


def test_slope_is_in_units_per_day_over_the_span() -> None:
    table = make_table([[0, 12, 24, 36]], heart_rate=[[80, 86, 92, 98]])
    assert feature(table, "heart_rate_slope_24h")[3] == pytest.approx(12.0)
    assert feature(table, "heart_rate_slope_72h")[3] == pytest.approx(12.0)
    # One measurement is no trend.
    assert np.isnan(feature(table, "heart_rate_slope_24h")[0])


def test_weight_gain_of_three_kg_over_three_days_shows_as_a_slope() -> None:
    table = make_table([[0, 24, 48, 72]], weight=[[80.0, 81.0, 82.0, 83.0]])
    assert feature(table, "weight_slope_72h")[3] == pytest.approx(1.0)


def test_a_value_older_than_the_window_is_missing() -> None:
    table = make_table([[0, 10, 30]], heart_rate=[[70, np.nan, np.nan]])
    latest = latest_within(table, "heart_rate", window_hours=24.0)
    assert latest[1] == 70
    assert np.isnan(latest[2])
    assert feature(table, "heart_rate_missing").tolist() == [0.0, 0.0, 1.0]


def test_a_window_never_takes_the_previous_patients_values() -> None:
    table = make_table([[0, 1, 2, 3, 4], [5]], heart_rate=[[70, 70, 70, 70, 70], [np.nan]])
    matrix = compute_features(table).matrix
    assert np.isnan(matrix[5, FEATURES.index("heart_rate")])
    assert np.isnan(matrix[5, FEATURES.index("heart_rate_baseline_z")])

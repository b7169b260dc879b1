"""A patient's learned baseline: median and MAD over a trailing period, robust to outliers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.domain.baseline import learn_baseline
from services.alerts.domain.window import InvalidObservation, Observation

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def daily(type: str, values: list[float]) -> list[Observation]:
    return [Observation(type, value, T0 + i * DAY) for i, value in enumerate(values)]


def test_median_and_mad_of_the_trailing_period() -> None:
    readings = daily("heart_rate", [70, 72, 68, 74, 66, 71, 69])
    baseline = learn_baseline(readings, end=T0 + 6 * DAY)
    assert baseline is not None
    # sorted 66 68 69 70 71 72 74 → median 70; |deviations| 0 1 1 2 2 4 4 → MAD 2
    assert (baseline.median, baseline.mad, baseline.count) == (70, 2, 7)
    assert baseline.trusted
    # robust z = (76 - 70) / (1.4826 * 2)
    assert baseline.deviation(76) == pytest.approx(6 / 2.9652)
    assert baseline.deviation(70) == 0


def test_a_few_outliers_barely_move_the_baseline() -> None:
    steady = [95, 96, 95, 94, 96, 95, 95, 96, 94, 95]
    with_outliers = daily("spo2", [*steady, 70, 99])
    baseline = learn_baseline(with_outliers, end=T0 + 11 * DAY)
    assert baseline is not None
    assert baseline.median == 95
    # an ordinary SD would be inflated to about 7 by the 70 and flag nothing;
    # the robust spread keeps a drop to 89 clearly abnormal
    deviation = baseline.deviation(89)
    assert deviation is not None
    assert deviation < -4


def test_only_the_trailing_period_counts() -> None:
    readings = daily("weight", [60.0] * 10 + [80.0] * 7)
    baseline = learn_baseline(readings, end=T0 + 16 * DAY, period=7 * DAY)
    assert baseline is not None
    assert (baseline.median, baseline.count) == (80.0, 7)


def test_untrusted_until_enough_readings() -> None:
    readings = daily("systolic_bp", [130, 135, 128])
    baseline = learn_baseline(readings, end=T0 + 2 * DAY, min_readings=4)
    assert baseline is not None
    assert not baseline.trusted
    assert baseline.deviation(180) is None


def test_no_readings_no_baseline() -> None:
    assert learn_baseline([], end=T0) is None
    old = daily("spo2", [95, 96])
    assert learn_baseline(old, end=T0 + 30 * DAY) is None


def test_unvarying_readings_use_the_minimum_spread() -> None:
    baseline = learn_baseline(daily("spo2", [97] * 8), end=T0 + 7 * DAY)
    assert baseline is not None
    assert baseline.mad == 0
    # one SpO2 point below a perfectly steady 97 is one spread unit, not infinitely abnormal
    assert baseline.deviation(96) == pytest.approx(-1.0)


def test_mixed_or_non_numeric_readings_are_refused() -> None:
    with pytest.raises(InvalidObservation):
        learn_baseline([*daily("spo2", [95]), *daily("heart_rate", [70])], end=T0 + DAY)
    with pytest.raises(InvalidObservation):
        learn_baseline(daily("on_oxygen", [True]), end=T0)

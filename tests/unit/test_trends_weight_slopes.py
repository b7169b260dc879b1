"""The heart-failure weight-gain rule and least-squares slopes over 24 h and 72 h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.domain.trends import slope, slope_24h, slope_72h, weight_gain
from services.alerts.domain.window import InvalidObservation, Observation

T0 = datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def weights(*kg: float, step: timedelta = DAY) -> list[Observation]:
    return [Observation("weight", value, T0 + i * step) for i, value in enumerate(kg)]


def test_more_than_two_kg_in_three_days_is_flagged() -> None:
    gain = weight_gain(weights(80.0, 80.5, 81.2, 82.1), end=T0 + 3 * DAY)
    assert gain is not None
    assert gain.kg == pytest.approx(2.1)
    assert gain.exceeded
    assert gain.lowest.measured_at == T0


def test_exactly_two_kg_is_not_above_the_limit() -> None:
    gain = weight_gain(weights(80.0, 81.0, 82.0), end=T0 + 2 * DAY)
    assert gain is not None
    assert gain.kg == pytest.approx(2.0)
    assert not gain.exceeded


def test_gain_is_measured_from_the_lowest_recent_weight() -> None:
    # a diuretic dip to 79 then fluid back on: +2.5 kg from the dip within three days
    gain = weight_gain(weights(80.0, 79.0, 80.3, 81.5), end=T0 + 3 * DAY)
    assert gain is not None
    assert gain.kg == pytest.approx(2.5)
    assert gain.exceeded


def test_a_slow_gain_over_a_longer_time_is_not_flagged() -> None:
    # +0.6 kg a day for a week: never more than 2 kg within three days
    gain = weight_gain(weights(*(80 + 0.6 * day for day in range(8))), end=T0 + 7 * DAY)
    assert gain is not None
    assert gain.kg == pytest.approx(1.8)
    assert not gain.exceeded


def test_a_morning_weighing_three_days_ago_counts_even_if_a_little_earlier() -> None:
    readings = [
        Observation("weight", 80.0, T0 - timedelta(minutes=40)),
        Observation("weight", 82.5, T0 + 3 * DAY),
    ]
    gain = weight_gain(readings, end=T0 + 3 * DAY)
    assert gain is not None
    assert gain.exceeded


def test_limit_and_period_are_configurable() -> None:
    readings = weights(80.0, 81.0, 81.6, 81.6, 81.6, 81.7)
    assert weight_gain(readings, end=T0 + 5 * DAY) is not None
    assert not weight_gain(readings, end=T0 + 5 * DAY).exceeded  # type: ignore[union-attr]
    wide = weight_gain(readings, end=T0 + 5 * DAY, period=5 * DAY, limit_kg=1.5)
    assert wide is not None
    assert wide.kg == pytest.approx(1.7)
    assert wide.exceeded


def test_weight_gain_needs_a_weighing_to_compare_with() -> None:
    assert weight_gain(weights(80.0), end=T0) is None
    assert weight_gain(weights(80.0, 85.0, step=10 * DAY), end=T0 + 10 * DAY) is None


def test_weighings_after_the_end_are_not_used() -> None:
    gain = weight_gain(weights(80.0, 80.2, 84.0), end=T0 + DAY)
    assert gain is not None
    assert gain.latest.value == 80.2
    assert not gain.exceeded


def test_slope_per_hour_over_24_hours() -> None:
    # SpO2 falling half a point per hour, read every 4 hours
    readings = [Observation("spo2", 96 - 0.5 * h, T0 + h * HOUR) for h in range(0, 24, 4)]
    result = slope_24h(readings, end=T0 + 20 * HOUR)
    assert result is not None
    assert result.rate == pytest.approx(-0.5)
    assert result.points == 6
    assert float(result) == pytest.approx(-0.5)


def test_slope_per_day_over_72_hours_ignores_older_points() -> None:
    old = [Observation("weight", 70.0, T0 - 5 * DAY)]
    recent = [Observation("weight", 80 + 0.4 * d, T0 + d * DAY) for d in range(3)]
    result = slope_72h([*old, *recent], end=T0 + 2 * DAY)
    assert result is not None
    assert result.rate == pytest.approx(0.4)
    assert result.points == 3


def test_least_squares_through_scattered_points() -> None:
    # points (0,1) (1,3) (2,2) (3,5): slope = 1.1 by hand
    readings = [
        Observation("heart_rate", y, T0 + x * HOUR) for x, y in [(0, 1), (1, 3), (2, 2), (3, 5)]
    ]
    result = slope(readings, end=T0 + 3 * HOUR, span=6 * HOUR, per=HOUR)
    assert result is not None
    assert result.rate == pytest.approx(1.1)


def test_no_slope_from_too_few_points() -> None:
    readings = [Observation("spo2", 95, T0), Observation("spo2", 93, T0 + HOUR)]
    assert slope_24h(readings, end=T0 + 2 * HOUR) is None
    assert slope_24h(readings, end=T0 + 2 * HOUR, min_points=2) is not None
    same_moment = [Observation("spo2", v, T0) for v in (95, 93, 94)]
    assert slope_24h(same_moment, end=T0) is None


def test_trends_refuse_non_numeric_readings() -> None:
    with pytest.raises(InvalidObservation):
        slope_24h([Observation("consciousness", "A", T0)], end=T0)

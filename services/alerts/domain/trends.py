"""Trends in a patient's readings: the heart-failure weight-gain rule and least-squares slopes.

>>> from datetime import UTC
>>> day = timedelta(days=1)
>>> t = datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
>>> kg = [80.0, 80.6, 81.5, 82.3]
>>> weights = [Observation("weight", w, t + i * day) for i, w in enumerate(kg)]
>>> gain = weight_gain(weights, end=t + 3 * day)
>>> round(gain.kg, 1), gain.exceeded
(2.3, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.domain.window import Observation, numeric


def _until(observations: Iterable[Observation], *, end: datetime) -> list[Observation]:
    """Readings measured at or before `end`, oldest first; every one must be a number."""
    readings = [obs for obs in observations if obs.measured_at <= end]
    for obs in readings:
        numeric(obs)
    return sorted(readings, key=lambda obs: obs.measured_at)


@dataclass(frozen=True, slots=True)
class WeightGain:
    """The rise from the lowest weight in the period before the latest weighing to that weighing."""

    kg: float
    lowest: Observation
    latest: Observation
    limit_kg: float
    period: timedelta

    @property
    def exceeded(self) -> bool:
        return self.kg > self.limit_kg


def weight_gain(
    weights: Iterable[Observation],
    *,
    end: datetime,
    limit_kg: float = 2.0,
    period: timedelta = timedelta(days=3),
    slack: timedelta = timedelta(hours=6),
) -> WeightGain | None:
    """Weight gained over `period` up to the latest weighing at or before `end`.

    Heart-failure patients are told to report a gain of more than 2 kg in 3 days. The latest
    weight is compared with the lowest weight measured in the `period` before it, so a gain counts
    whichever earlier weighing it is measured from. Home weighings happen "in the morning" rather
    than at one minute, so a weighing up to `slack` older than the period still counts as one
    `period` ago. None when there is no earlier weighing to compare with.
    """
    readings = _until(weights, end=end)
    if len(readings) < 2:
        return None
    latest = readings[-1]
    since = latest.measured_at - period - slack
    earlier = [obs for obs in readings[:-1] if since <= obs.measured_at < latest.measured_at]
    if not earlier:
        return None
    lowest = min(earlier, key=numeric)
    return WeightGain(
        kg=numeric(latest) - numeric(lowest),
        lowest=lowest,
        latest=latest,
        limit_kg=limit_kg,
        period=period,
    )


@dataclass(frozen=True, slots=True)
class Slope:
    """A least-squares rate of change, in the reading's unit per `per`."""

    rate: float
    per: timedelta
    points: int
    span: timedelta

    def __float__(self) -> float:
        return self.rate


def slope(
    observations: Iterable[Observation],
    *,
    end: datetime,
    span: timedelta,
    per: timedelta,
    min_points: int = 3,
) -> Slope | None:
    """Least-squares slope of the readings within `(end - span, end]`, in units per `per`.

    None when fewer than `min_points` readings fall in the span or they were all taken at one
    moment, since no line is then determined.
    """
    start = end - span
    readings = [obs for obs in _until(observations, end=end) if obs.measured_at > start]
    if len(readings) < max(min_points, 2):
        return None
    first = readings[0].measured_at
    xs = [(obs.measured_at - first) / per for obs in readings]
    ys = [numeric(obs) for obs in readings]
    x_mean = math.fsum(xs) / len(xs)
    y_mean = math.fsum(ys) / len(ys)
    spread = math.fsum((x - x_mean) ** 2 for x in xs)
    if spread == 0.0:
        return None
    rate = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / spread
    return Slope(rate=rate, per=per, points=len(readings), span=span)


def slope_24h(
    observations: Iterable[Observation], *, end: datetime, min_points: int = 3
) -> Slope | None:
    """Change per hour over the last 24 hours."""
    return slope(
        observations,
        end=end,
        span=timedelta(hours=24),
        per=timedelta(hours=1),
        min_points=min_points,
    )


def slope_72h(
    observations: Iterable[Observation], *, end: datetime, min_points: int = 3
) -> Slope | None:
    """Change per day over the last 72 hours."""
    return slope(
        observations,
        end=end,
        span=timedelta(hours=72),
        per=timedelta(days=1),
        min_points=min_points,
    )

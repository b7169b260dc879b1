"""A window seen against the patient's own frame of reference: deviations from their personal
baseline, red/yellow levels under their reference ranges, and the trends of their readings.

What a type's readings say up to its latest reading (the baseline before it, the slopes over the
24 and 72 hours up to it) changes only when a reading of that type arrives, so it is worked out
per type (`TypeFindings`) and can be kept between windows: `findings` reuses what it is given
when the latest reading is the same.

>>> from datetime import UTC
>>> end = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
>>> window = Window(end, timedelta(hours=12), {"spo2": 89}, {"spo2": end})
>>> [(f.type, f.level.value) for f in levels(window, {"spo2": Limits(88, 90)})]
[('spo2', 'yellow')]
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.domain.baseline import MIN_SPREAD, Baseline, learn_baseline
from services.alerts.domain.thresholds import CONDITION_GROUPS, Level, Limits, classify
from services.alerts.domain.trends import Slope, WeightGain, slope_24h, slope_72h, weight_gain
from services.alerts.domain.window import Observation, PatientVitals, Window
from shared.vitals import VitalType

NUMERIC_TYPES: tuple[str, ...] = tuple(str(vital) for vital in MIN_SPREAD)
"""Reading types that are numbers on a scale: the ones with baselines, ranges and slopes."""

_SLACK = timedelta(hours=6)  # as trends.weight_gain: a morning weighing counts as "a day ago"
_SLOPE_POINTS = 3  # trends.slope's default minimum
_SPAN_24H = timedelta(hours=24)
_SPAN_72H = timedelta(hours=72)


def condition_group(condition: str | None) -> str:
    """The reference-range group of a patient's recorded condition ('default' when unknown)."""
    return condition if condition in CONDITION_GROUPS else "default"


@dataclass(frozen=True, slots=True)
class TypeFindings:
    """What one type's readings say up to its latest reading, measured at `at`: the baseline of
    the readings before it, and the slopes over the 24 h (per hour) and 72 h (per day) up to it.
    """

    type: str
    at: datetime
    baseline: Baseline | None
    slope_24h: Slope | None
    slope_72h: Slope | None


def latest_until(vitals: PatientVitals, type: str, end: datetime | None) -> Observation | None:
    """The latest reading of `type` measured at or before `end` (at all, if `end` is None)."""
    latest = vitals.latest(type)
    if latest is None or end is None or latest.measured_at <= end:
        return latest
    readings = vitals.history(type)
    upto = bisect_right(readings, end, key=_measured_at)
    return readings[upto - 1] if upto else None


def type_findings(
    vitals: PatientVitals,
    type: str,
    *,
    end: datetime | None = None,
    baseline_period: timedelta = timedelta(days=14),
    min_readings: int = 7,
) -> TypeFindings | None:
    """The findings of a numeric type up to its latest reading at or before `end`; None if it
    has none.

    The baseline is learned from readings strictly before that reading, so a reading never
    vouches for itself.
    """
    latest = latest_until(vitals, type, end)
    if latest is None or type not in NUMERIC_TYPES:
        return None
    at = latest.measured_at
    readings = vitals.history(type, since=at - max(baseline_period, _SPAN_72H))
    before = bisect_left(readings, at, key=_measured_at)
    earlier = readings[bisect_right(readings, at - baseline_period, key=_measured_at) : before]
    baseline = learn_baseline(earlier, end=at, period=baseline_period, min_readings=min_readings)
    # A slope needs three readings in its span; most home types have fewer, so count first.
    per_day = per_hour = None
    upto = bisect_right(readings, at, key=_measured_at)
    days = readings[bisect_right(readings, at - _SPAN_72H, key=_measured_at) : upto]
    if len(days) >= _SLOPE_POINTS and (per_day := slope_72h(days, end=at)) is not None:
        day = days[bisect_right(days, at - _SPAN_24H, key=_measured_at) :]
        if len(day) >= _SLOPE_POINTS:
            per_hour = slope_24h(day, end=at)
    return TypeFindings(type, at, baseline, per_hour, per_day)


def _measured_at(observation: Observation) -> datetime:
    return observation.measured_at


def findings(
    vitals: PatientVitals,
    types: Iterable[str],
    *,
    end: datetime | None = None,
    known: Mapping[str, TypeFindings] | None = None,
    baseline_period: timedelta = timedelta(days=14),
    min_readings: int = 7,
) -> dict[str, TypeFindings]:
    """The findings of each numeric type in `types` up to `end`, taken from `known` where the
    type's latest reading is still the one they were worked out for."""
    found: dict[str, TypeFindings] = {}
    for type in dict.fromkeys(types):
        latest = latest_until(vitals, type, end)
        if latest is None or type not in NUMERIC_TYPES:
            continue
        kept = (known or {}).get(type)
        if kept is not None and kept.at == latest.measured_at:
            found[type] = kept
        elif (
            new := type_findings(
                vitals, type, end=end, baseline_period=baseline_period, min_readings=min_readings
            )
        ) is not None:
            found[type] = new
    return found


@dataclass(frozen=True, slots=True)
class Deviation:
    """A window value against the patient's baseline learned from their earlier readings."""

    type: str
    value: float
    measured_at: datetime
    baseline: Baseline
    z: float | None  # None while the baseline is not yet trusted


def deviations(window: Window, found: Mapping[str, TypeFindings]) -> list[Deviation]:
    """Each numeric window value against the baseline of the readings before it; a type with
    no earlier reading in the baseline period is left out."""
    result: list[Deviation] = []
    for type in window.present:
        one = found.get(type)
        if one is None or one.baseline is None or one.at != window.measured_at[type]:
            continue
        value = float(window.values[type])
        result.append(Deviation(type, value, one.at, one.baseline, one.baseline.deviation(value)))
    return result


@dataclass(frozen=True, slots=True)
class LevelFinding:
    """A window value classified green, yellow or red under the patient's limits."""

    type: str
    value: float
    level: Level
    limits: Limits


def levels(window: Window, limits: Mapping[str, Limits]) -> list[LevelFinding]:
    """Green, yellow or red for every numeric window value that has limits."""
    return [
        LevelFinding(type, value, classify(value, limits[type]), limits[type])
        for type in window.present
        if type in NUMERIC_TYPES and type in limits
        for value in (float(window.values[type]),)
    ]


@dataclass(frozen=True, slots=True)
class WeightRule:
    """Report a weight gain above `limit_kg` within `period` (fluid retention)."""

    limit_kg: float
    period: timedelta


WEIGHT_RULES: dict[str, WeightRule] = {
    # The heart-failure advice to patients: more than 2 kg in 3 days.
    "heart_failure": WeightRule(limit_kg=2.0, period=timedelta(days=3)),
}


@dataclass(frozen=True, slots=True)
class Trends:
    """Rates of change per type (24 h: per hour; 72 h: per day) up to each type's latest
    reading, and the result of the patient's weight rule."""

    slopes_24h: dict[str, Slope]
    slopes_72h: dict[str, Slope]
    weight_rule: WeightRule | None
    weight_gain: WeightGain | None


def trends(
    vitals: PatientVitals, found: Mapping[str, TypeFindings], *, end: datetime, group: str
) -> Trends:
    """The slopes in `found`, and the group's weight rule (if it has one) at `end`."""
    slopes_24h = {t: f.slope_24h for t, f in found.items() if f.slope_24h is not None}
    slopes_72h = {t: f.slope_72h for t, f in found.items() if f.slope_72h is not None}
    rule = WEIGHT_RULES.get(group)
    gain = None
    latest = latest_until(vitals, VitalType.WEIGHT, end)
    if rule is not None and latest is not None:
        since = latest.measured_at - rule.period - _SLACK - timedelta(microseconds=1)
        weights = vitals.history(VitalType.WEIGHT, since=since)
        gain = weight_gain(weights, end=end, limit_kg=rule.limit_kg, period=rule.period)
    return Trends(slopes_24h, slopes_72h, rule, gain)

"""Turns a scored window into an explained risk assessment: what was used and why it scored.

`explain` gives the NEWS2 part. `assess` adds what the patient's own frame of reference says
(reference-range levels, deviations from the personal baseline, trends) and the model's risk,
and decides each assessment's severity:

- the NEWS2 assessment's severity is the NEWS2 band. Only a model whose evaluation made it the
  default (`ModelRisk.is_default`) may raise it, to "medium" at its alert threshold; otherwise
  its probability is reported for information only. Levels, deviations and trends explain, they
  do not change the severity;
- a new weighing of a patient whose condition group has a weight rule (heart failure: more than
  2 kg in 3 days) gives a "trend" assessment: "low-medium" above the limit, else "low", so an
  open trend alert can resolve once the weight settles;
- overdue measurements give a "missing_measurement" assessment of severity "low".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from services.alerts.domain import personal
from services.alerts.domain.hours import COPENHAGEN
from services.alerts.domain.missing import Overdue
from services.alerts.domain.model_risk import ModelRisk
from services.alerts.domain.news2 import BANDS, News2Score, score
from services.alerts.domain.personal import Deviation, LevelFinding, Trends, TypeFindings
from services.alerts.domain.thresholds import Level, Limits
from services.alerts.domain.trends import Slope
from services.alerts.domain.window import Observation, PatientVitals, Value, Window
from shared.vitals import VitalType

_LABEL = {
    "respiratory_rate": ("respiration rate", "/min"),
    "spo2": ("SpO2", "%"),
    "air_or_oxygen": ("oxygen", ""),
    "systolic_bp": ("systolic pressure", "mmHg"),
    "heart_rate": ("pulse", "/min"),
    "consciousness": ("consciousness", ""),
    "temperature": ("temperature", "°C"),
}
# NEWS2 parameter -> the reading type that feeds it.
_SOURCE = {"air_or_oxygen": "on_oxygen"}
# Reading type -> how a clinician names it and its unit.
_READING = {
    "heart_rate": ("pulse", "/min"),
    "spo2": ("SpO2", "%"),
    "respiratory_rate": ("respiration rate", "/min"),
    "systolic_bp": ("systolic pressure", "mmHg"),
    "diastolic_bp": ("diastolic pressure", "mmHg"),
    "temperature": ("temperature", "°C"),
    "weight": ("weight", "kg"),
    "glucose": ("glucose", "mmol/L"),
    "on_oxygen": ("oxygen", ""),
    "consciousness": ("consciousness", ""),
}
_CLOSE_UNITS = ("%", "°C", "/min")

Kind = Literal["news2", "missing_measurement", "trend"]


@dataclass(frozen=True, slots=True)
class Explained:
    score: News2Score
    values: dict[str, tuple[float | bool | str, datetime]]
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class AssessmentFields:
    """Everything an assessment says, before it is given an id and a patient."""

    kind: Kind
    window_end: datetime
    severity: str
    news2: News2Score | None = None
    values: dict[str, tuple[Value, datetime]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    model: ModelRisk | None = None
    reasons: tuple[str, ...] = ()


def _describe(parameter: str, value: float | bool | str, points: int) -> str:
    label, unit = _LABEL[parameter]
    if parameter == "air_or_oxygen":
        shown = "on supplemental oxygen" if value else "on air"
        return f"{shown} ({points} points)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    spacer = "" if unit in ("%", "°C", "/min") else " "
    return f"{label} {value}{spacer}{unit} ({points} points)"


def explain(window: Window) -> Explained:
    """Score the window with NEWS2 and say, in clinical words, which values drove the score."""
    result = score(window.news2_inputs())
    reasons = [
        f"NEWS2 {result.total} ({result.band})"
        + (", 3 points in a single parameter" if result.single_parameter_3 else "")
        + (f"; SpO2 scale {window.spo2_scale}" if window.spo2_scale == 2 else "")
    ]
    for parameter, points in sorted(result.components.items(), key=lambda kv: -kv[1]):
        if points > 0:
            source = _SOURCE.get(parameter, parameter)
            reasons.append(_describe(parameter, window.values[source], points))
    if result.missing:
        reasons.append("not measured in the window: " + ", ".join(result.missing))
    values = {t: (v, window.measured_at[t]) for t, v in window.values.items()}
    return Explained(result, values, reasons)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _amount(type: str, value: float) -> str:
    """'SpO2 89%', 'weight 82.3 kg'."""
    label, unit = _READING.get(type, (type, ""))
    spacer = "" if unit in _CLOSE_UNITS or not unit else " "
    return f"{label} {_number(value)}{spacer}{unit}"


def _unit(type: str, value: float) -> str:
    """A bare quantity in the type's unit: '90%', '2 kg'."""
    unit = _READING.get(type, (type, ""))[1]
    spacer = "" if unit in _CLOSE_UNITS or not unit else " "
    return f"{_number(value)}{spacer}{unit}"


def _local(moment: datetime) -> str:
    return moment.astimezone(COPENHAGEN).strftime("%Y-%m-%d %H:%M")


def _crossed(finding: LevelFinding) -> str:
    """Which of the patient's limits the value is past, e.g. 'yellow below 90%'."""
    limits: Limits = finding.limits
    colour = finding.level.value
    low, high = (
        (limits.red_low, limits.red_high)
        if finding.level is Level.RED
        else (limits.yellow_low, limits.yellow_high)
    )
    if low is not None and finding.value < low:
        return f"{colour} below {_unit(finding.type, low)}"
    assert high is not None  # a non-green value is past one of its colour's limits
    return f"{colour} above {_unit(finding.type, high)}"


def level_reasons(found: Sequence[LevelFinding]) -> list[str]:
    """The values outside the patient's green range, red first."""
    outside = sorted(
        (f for f in found if f.level is not Level.GREEN), key=lambda f: f.level is not Level.RED
    )
    return [
        f"{_amount(f.type, f.value)} is {f.level.value} for this patient ({_crossed(f)})"
        for f in outside
    ]


def deviation_reasons(found: Sequence[Deviation], *, z_limit: float) -> list[str]:
    """The values at least `z_limit` robust standard deviations from the patient's baseline."""
    reasons = []
    for d in sorted(found, key=lambda d: -abs(d.z or 0.0)):
        if d.z is None or abs(d.z) < z_limit:
            continue
        side = "above" if d.z > 0 else "below"
        days = round(d.baseline.period / timedelta(days=1))
        reasons.append(
            f"{_amount(d.type, d.value)} is {abs(d.z):.1f} SD {side} this patient's baseline "
            f"({_unit(d.type, d.baseline.median)}, median of {d.baseline.count} readings "
            f"over {days} days)"
        )
    return reasons


def _rate(type: str, slope: Slope, per: str) -> str:
    """'SpO2 -0.25% per hour'."""
    label, unit = _READING.get(type, (type, ""))
    spacer = "" if unit in _CLOSE_UNITS or not unit else " "
    return f"{label} {slope.rate:+.2f}{spacer}{unit} per {per}"


def trend_reasons(found: Trends) -> list[str]:
    """Slopes over 24 h (per hour) and 72 h (per day), and a weight gain above its limit."""
    reasons = []
    if found.slopes_24h:
        reasons.append(
            "24 h trend: " + "; ".join(_rate(t, s, "hour") for t, s in _in_order(found.slopes_24h))
        )
    if found.slopes_72h:
        reasons.append(
            "72 h trend: " + "; ".join(_rate(t, s, "day") for t, s in _in_order(found.slopes_72h))
        )
    gain = found.weight_gain
    if gain is not None and gain.exceeded:
        reasons.append(_weight_gain(found))
    return reasons


def _in_order(slopes: Mapping[str, Slope]) -> list[tuple[str, Slope]]:
    order = {str(vital): position for position, vital in enumerate(VitalType)}
    return sorted(slopes.items(), key=lambda kv: order.get(kv[0], len(order)))


def _weight_gain(found: Trends) -> str:
    gain, rule = found.weight_gain, found.weight_rule
    assert gain is not None and rule is not None
    days = round(rule.period / timedelta(days=1))
    change = (
        f"weight {gain.kg:+.1f} kg in {days} days: {_number(float(gain.lowest.value))} kg "
        f"({_local(gain.lowest.measured_at)}) to {_number(float(gain.latest.value))} kg "
        f"({_local(gain.latest.measured_at)}, Danish time)"
    )
    limit = f"more than {_number(rule.limit_kg)} kg in {days} days"
    if gain.exceeded:
        return f"{change}; above the heart-failure limit of {limit}"
    return f"{change}; within the heart-failure limit of {limit}"


def model_reasons(model: ModelRisk, *, severity: str, band: str) -> list[str]:
    """What the model said and what, if anything, it changed."""
    risk = f"deterioration model {model.version}: risk {model.probability:.3f}"
    if not model.is_default:
        said = (
            f"{risk}, for information only; the severity is the NEWS2 band "
            "(the model is not the default)"
        )
    elif model.alert_threshold is None:
        said = f"{risk}; no alert threshold is known, so the severity is the NEWS2 band"
    elif severity != band:
        said = (
            f"{risk}, at or above its alert threshold {model.alert_threshold:.3f}: "
            f"severity raised from {band} to {severity}"
        )
    else:
        side = "at or above" if model.probability >= model.alert_threshold else "below"
        said = f"{risk}, {side} its alert threshold {model.alert_threshold:.3f}"
    reasons = [said]
    if model.top_features:
        reasons.append(
            "model's top features (change in log-odds): "
            + ", ".join(f"{name} {effect:+.2f}" for name, effect in model.top_features)
        )
    return reasons


def _model_severity(band: str, model: ModelRisk | None) -> str:
    if (
        model is None
        or not model.is_default
        or model.alert_threshold is None
        or model.probability < model.alert_threshold
    ):
        return band
    return BANDS[max(BANDS.index(band), BANDS.index("medium"))]


def assess(
    window: Window,
    *,
    deviations: Sequence[Deviation],
    levels: Sequence[LevelFinding],
    trends: Trends,
    model: ModelRisk | None,
    new_weighing: bool = False,
    z_limit: float = 2.0,
) -> list[AssessmentFields]:
    """The assessments of one patient's window: NEWS2 with its explanation, and a weight trend
    when `new_weighing` and the patient's group has a weight rule."""
    explained = explain(window)
    band = explained.score.band
    severity = _model_severity(band, model)
    reasons = [
        *explained.reasons,
        *level_reasons(levels),
        *deviation_reasons(deviations, z_limit=z_limit),
        *trend_reasons(trends),
        *(model_reasons(model, severity=severity, band=band) if model is not None else []),
    ]
    found = [
        AssessmentFields(
            kind="news2",
            window_end=window.end,
            severity=severity,
            news2=explained.score,
            values=explained.values,
            missing=explained.score.missing,
            model=model,
            reasons=tuple(reasons),
        )
    ]
    gain = trends.weight_gain
    if new_weighing and gain is not None:
        weight_reasons = [_weight_gain(trends)]
        if (per_day := trends.slopes_72h.get(VitalType.WEIGHT)) is not None:
            weight_reasons.append(
                f"72 h trend: {_rate(VitalType.WEIGHT, per_day, 'day')} "
                f"({per_day.points} weighings)"
            )
        found.append(
            AssessmentFields(
                kind="trend",
                window_end=gain.latest.measured_at,
                severity="low-medium" if gain.exceeded else "low",
                values={VitalType.WEIGHT: (gain.latest.value, gain.latest.measured_at)},
                reasons=tuple(weight_reasons),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    """How far back baselines look, when they are trusted and what deviation is worth saying."""

    baseline_period: timedelta = timedelta(days=14)
    baseline_min_readings: int = 7
    z_limit: float = 2.0


def window_ends(
    new: Iterable[Observation], *, newest: datetime, length: timedelta
) -> list[tuple[datetime, frozenset[str]]]:
    """Where to score a patient after `new` readings arrived together: at their newest reading
    `newest`, and at any new reading that window (`length` long) and those after it leave out,
    so that every new reading lies in a scored window. Oldest first, each with the types of the
    new readings in it.

    Readings close together (a measurement session, a burst under load) are scored once, at
    the newest; a late reading from yesterday gets a window of its own.
    """
    times = sorted({o.measured_at for o in new}, reverse=True)
    ends = [newest]
    for at in times:
        if at <= ends[-1] - length:
            ends.append(at)
    ends.reverse()
    return [
        (end, frozenset(o.type for o in new if end - length < o.measured_at <= end)) for end in ends
    ]


def trended_types(window: Window) -> tuple[str, ...]:
    """The types whose baselines and slopes explain a window: those measured in it, and weight,
    weighed once a day."""
    return (*window.present, VitalType.WEIGHT)


def assess_patient(
    window: Window,
    vitals: PatientVitals,
    *,
    limits: Mapping[str, Limits],
    group: str,
    model: ModelRisk | None,
    new_types: frozenset[str] = frozenset(),
    policy: ScoringPolicy,
    found: Mapping[str, TypeFindings] | None = None,
) -> list[AssessmentFields]:
    """`assess` with the levels, deviations and trends worked out from the patient's readings;
    `new_types` are the reading types that just arrived; `found` are the findings of
    `trended_types(window)` when the caller keeps them between windows."""
    if found is None:
        found = personal.findings(
            vitals,
            trended_types(window),
            end=window.end,
            baseline_period=policy.baseline_period,
            min_readings=policy.baseline_min_readings,
        )
    return assess(
        window,
        deviations=personal.deviations(window, found),
        levels=personal.levels(window, limits),
        trends=personal.trends(vitals, found, end=window.end, group=group),
        model=model,
        new_weighing=VitalType.WEIGHT in new_types,
        z_limit=policy.z_limit,
    )


def missing_assessment(items: Sequence[Overdue], *, now: datetime) -> AssessmentFields:
    """A low-priority task: the patient's expected measurements that are overdue."""
    reasons = []
    for item in items:
        label = _READING.get(item.type, (item.type, ""))[0]
        hours = item.cadence / timedelta(hours=1)
        every = f"{_number(hours)} h"
        periods = "1 period" if item.periods == 1 else f"{item.periods} periods"
        reasons.append(
            f"no {label} since {_local(item.last_measured)} (Danish time); expected every "
            f"{every}, {periods} missed"
        )
    return AssessmentFields(
        kind="missing_measurement",
        window_end=now,
        severity="low",
        missing=tuple(item.type for item in items),
        reasons=tuple(reasons),
    )

"""Per-patient red/yellow limits for each vital type, with defaults per condition group.

As in the Danish national telemedicine programme, each patient has a green/yellow/red range per
parameter, starting from the defaults of their condition group and adjusted by their clinician.
A limit belongs to the better side: with a yellow lower limit of 90 % SpO2, 90 is green and 89.9
yellow; with a yellow upper limit of 38.0 °C, 38.0 is green and 38.1 yellow.

>>> limits = patient_limits("copd", {"spo2": {"red_low": 86}})
>>> classify(87, limits["spo2"]), classify(85, limits["spo2"])
(<Level.YELLOW: 'yellow'>, <Level.RED: 'red'>)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum

from shared.vitals import VitalType


class Level(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one parameter; None means that side has no limit of that colour."""

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one limit, addressed as `<vital type>.<limit>`, e.g. `spo2.red_low`."""

    field: str
    message: str


class InvalidLimits(ValueError):
    """Limits that cannot be used; `errors` says which and why, field by field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def classify(value: float, limits: Limits) -> Level:
    """Green, yellow or red for `value` under `limits`."""
    if (limits.red_low is not None and value < limits.red_low) or (
        limits.red_high is not None and value > limits.red_high
    ):
        return Level.RED
    if (limits.yellow_low is not None and value < limits.yellow_low) or (
        limits.yellow_high is not None and value > limits.yellow_high
    ):
        return Level.YELLOW
    return Level.GREEN


# Starting points for a clinician to adjust, not prescriptions. Weight has no absolute limits:
# its rule is the gain over days (see trends).
_DEFAULT: dict[str, Limits] = {
    VitalType.SPO2: Limits(red_low=92, yellow_low=94),
    VitalType.HEART_RATE: Limits(red_low=40, yellow_low=50, yellow_high=100, red_high=130),
    VitalType.RESPIRATORY_RATE: Limits(red_low=9, yellow_low=12, yellow_high=20, red_high=24),
    VitalType.SYSTOLIC_BP: Limits(red_low=90, yellow_low=100, yellow_high=160, red_high=180),
    VitalType.DIASTOLIC_BP: Limits(yellow_high=100, red_high=110),
    VitalType.TEMPERATURE: Limits(red_low=35.0, yellow_low=36.0, yellow_high=38.0, red_high=39.0),
    VitalType.GLUCOSE: Limits(red_low=3.0, yellow_low=4.0, yellow_high=14.0, red_high=20.0),
}

_GROUP_CHANGES: dict[str, dict[str, Limits]] = {
    "default": {},
    # Chronic hypoxaemia: the programme's KOL limits, SpO2 yellow below 90 and red below 88.
    "copd": {
        VitalType.SPO2: Limits(red_low=88, yellow_low=90),
        VitalType.RESPIRATORY_RATE: Limits(red_low=9, yellow_low=12, yellow_high=24, red_high=28),
        VitalType.HEART_RATE: Limits(red_low=40, yellow_low=50, yellow_high=110, red_high=130),
    },
    # Rate- and pressure-lowering treatment makes low values the concern.
    "heart_failure": {
        VitalType.SYSTOLIC_BP: Limits(red_low=85, yellow_low=95, yellow_high=160, red_high=180),
        VitalType.HEART_RATE: Limits(red_low=40, yellow_low=50, yellow_high=100, red_high=120),
        VitalType.SPO2: Limits(red_low=90, yellow_low=92),
    },
    "diabetes": {
        VitalType.GLUCOSE: Limits(red_low=3.0, yellow_low=4.0, yellow_high=15.0, red_high=20.0),
    },
    # Older bodies mount a smaller fever and tolerate low pressure worse.
    "frail": {
        VitalType.TEMPERATURE: Limits(
            red_low=35.5, yellow_low=36.0, yellow_high=37.8, red_high=38.5
        ),
        VitalType.SYSTOLIC_BP: Limits(red_low=100, yellow_low=110, yellow_high=170, red_high=190),
    },
}

CONDITION_GROUPS: tuple[str, ...] = tuple(_GROUP_CHANGES)


class UnknownConditionGroup(ValueError):
    def __init__(self, group: str) -> None:
        super().__init__(f"unknown condition group {group!r}; known: {', '.join(CONDITION_GROUPS)}")
        self.group = group


def defaults_for(group: str) -> dict[str, Limits]:
    """The default limits of a condition group, per vital type."""
    if group not in _GROUP_CHANGES:
        raise UnknownConditionGroup(group)
    merged = {str(vital): limits for vital, limits in _DEFAULT.items()}
    merged.update({str(vital): limits for vital, limits in _GROUP_CHANGES[group].items()})
    return merged


def _problems(vital: str, limits: Limits) -> list[FieldError]:
    values = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    given = {name: value for name, value in values.items() if value is not None}
    not_finite = [name for name, value in given.items() if not math.isfinite(value)]
    if not_finite:
        return [FieldError(f"{vital}.{name}", "must be a finite number") for name in not_finite]
    errors: list[FieldError] = []
    red_low, yellow_low = given.get("red_low"), given.get("yellow_low")
    yellow_high, red_high = given.get("yellow_high"), given.get("red_high")
    if red_low is not None and yellow_low is not None and red_low > yellow_low:
        errors.append(
            FieldError(f"{vital}.red_low", f"must not be above yellow_low ({yellow_low})")
        )
    if red_high is not None and yellow_high is not None and red_high < yellow_high:
        errors.append(
            FieldError(f"{vital}.red_high", f"must not be below yellow_high ({yellow_high})")
        )
    for low_name in ("red_low", "yellow_low"):
        for high_name in ("yellow_high", "red_high"):
            low, high = given.get(low_name), given.get(high_name)
            if low is not None and high is not None and low >= high:
                errors.append(
                    FieldError(f"{vital}.{low_name}", f"must be below {high_name} ({high})")
                )
    return errors


def validate(limits: Mapping[str, Limits]) -> list[FieldError]:
    """Every problem with a set of limits: red must lie outside yellow, and low below high."""
    return [error for vital, one in limits.items() for error in _problems(vital, one)]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge(
    defaults: Mapping[str, Limits], overrides: Mapping[str, Mapping[str, float | None]]
) -> dict[str, Limits]:
    """Clinician overrides laid over defaults, limit by limit; raises `InvalidLimits`.

    An override names only the limits it changes (`{"spo2": {"red_low": 85}}`); an explicit None
    removes that limit. Types without defaults may be given limits of their own.
    """
    errors: list[FieldError] = []
    merged = dict(defaults)
    for vital, changes in overrides.items():
        malformed = [
            FieldError(f"{vital}.{name}", f"not a limit; expected one of {', '.join(LIMIT_FIELDS)}")
            for name in changes
            if name not in LIMIT_FIELDS
        ] + [
            FieldError(f"{vital}.{name}", "must be a number or null")
            for name, value in changes.items()
            if name in LIMIT_FIELDS and value is not None and not _is_number(value)
        ]
        if malformed:
            errors += malformed
            continue
        merged[vital] = replace(
            merged.get(vital, Limits()),
            **{name: None if value is None else float(value) for name, value in changes.items()},
        )
    # Malformed overrides were left out above, so the rest is still checked in the same pass.
    errors += validate(merged)
    if errors:
        raise InvalidLimits(errors)
    return merged


def patient_limits(
    group: str, overrides: Mapping[str, Mapping[str, float | None]] | None = None
) -> dict[str, Limits]:
    """A patient's limits: their condition group's defaults with their clinician's overrides."""
    return merge(defaults_for(group), overrides or {})

"""Per-patient red/yellow limits: defaults per condition group, overrides, validation."""

from __future__ import annotations

import math

import pytest

from services.alerts.domain.thresholds import (
    CONDITION_GROUPS,
    FieldError,
    InvalidLimits,
    Level,
    Limits,
    UnknownConditionGroup,
    classify,
    defaults_for,
    merge,
    patient_limits,
    validate,
)

TEMPERATURE = Limits(red_low=35.0, yellow_low=36.0, yellow_high=38.0, red_high=39.0)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (34.9, Level.RED),
        (35.0, Level.YELLOW),
        (35.9, Level.YELLOW),
        (36.0, Level.GREEN),
        (38.0, Level.GREEN),
        (38.1, Level.YELLOW),
        (39.0, Level.YELLOW),
        (39.1, Level.RED),
    ],
)
def test_a_limit_belongs_to_the_better_side(value: float, level: Level) -> None:
    assert classify(value, TEMPERATURE) == level


def test_a_side_without_limits_is_always_green() -> None:
    assert classify(50, Limits(yellow_high=100, red_high=110)) == Level.GREEN
    assert classify(200, Limits()) == Level.GREEN


@pytest.mark.parametrize(
    ("spo2", "level"), [(90, "green"), (89, "yellow"), (88, "yellow"), (87, "red")]
)
def test_copd_spo2_yellow_below_90_red_below_88(spo2: float, level: str) -> None:
    assert classify(spo2, defaults_for("copd")["spo2"]) == level


def test_the_same_spo2_is_red_by_default_but_yellow_for_copd() -> None:
    assert classify(89, defaults_for("default")["spo2"]) == Level.RED
    assert classify(89, defaults_for("copd")["spo2"]) == Level.YELLOW


def test_every_group_has_valid_defaults() -> None:
    assert set(CONDITION_GROUPS) == {"copd", "heart_failure", "diabetes", "frail", "default"}
    for group in CONDITION_GROUPS:
        limits = defaults_for(group)
        assert validate(limits) == []
        assert {"spo2", "heart_rate", "systolic_bp", "temperature"} <= set(limits)


def test_unknown_group_is_refused() -> None:
    with pytest.raises(UnknownConditionGroup) as refused:
        defaults_for("asthma")
    assert refused.value.group == "asthma"


def test_overrides_change_only_the_limits_they_name() -> None:
    limits = patient_limits("copd", {"spo2": {"red_low": 85, "yellow_low": 88}})
    assert limits["spo2"] == Limits(red_low=85, yellow_low=88)
    assert limits["heart_rate"] == defaults_for("copd")["heart_rate"]
    assert classify(86, limits["spo2"]) == Level.YELLOW


def test_an_override_can_remove_a_limit_or_add_a_type() -> None:
    limits = patient_limits(
        "default",
        {"heart_rate": {"yellow_high": None}, "weight": {"yellow_high": 95, "red_high": 100}},
    )
    assert limits["heart_rate"].yellow_high is None
    assert classify(120, limits["heart_rate"]) == Level.GREEN
    assert classify(97, limits["weight"]) == Level.YELLOW


def test_defaults_are_not_changed_by_overrides() -> None:
    patient_limits("copd", {"spo2": {"red_low": 80}})
    assert defaults_for("copd")["spo2"].red_low == 88


def errors_of(group: str, overrides: dict[str, dict[str, float | None]]) -> list[FieldError]:
    with pytest.raises(InvalidLimits) as refused:
        patient_limits(group, overrides)
    return refused.value.errors


def test_red_must_lie_outside_yellow() -> None:
    errors = errors_of("copd", {"spo2": {"red_low": 91}})
    assert [e.field for e in errors] == ["spo2.red_low"]
    errors = errors_of("default", {"temperature": {"red_high": 37.5}})
    assert [e.field for e in errors] == ["temperature.red_high"]


def test_low_limits_must_be_below_high_limits() -> None:
    errors = errors_of("default", {"heart_rate": {"yellow_low": 105}})
    assert "heart_rate.yellow_low" in [e.field for e in errors]


def test_every_bad_field_is_reported_at_once() -> None:
    errors = errors_of(
        "default",
        {
            "spo2": {"red_lo": 85, "yellow_low": "90"},  # type: ignore[dict-item]
            "glucose": {"red_high": math.inf},
        },
    )
    assert {e.field for e in errors} == {"spo2.red_lo", "spo2.yellow_low", "glucose.red_high"}


def test_validate_reports_non_finite_limits() -> None:
    errors = validate({"spo2": Limits(red_low=math.nan, yellow_low=90)})
    assert errors == [FieldError("spo2.red_low", "must be a finite number")]


def test_merge_over_explicit_defaults() -> None:
    merged = merge({"spo2": Limits(red_low=88, yellow_low=90)}, {"spo2": {"yellow_low": 92}})
    assert merged == {"spo2": Limits(red_low=88, yellow_low=92)}

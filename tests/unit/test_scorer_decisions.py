"""What a scored window says beyond NEWS2: the patient's own baseline, their reference ranges,
their trends, the weight rule of heart failure, and the model's risk and whether it counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.domain.assessment import (
    AssessmentFields,
    ScoringPolicy,
    assess_patient,
    window_ends,
)
from services.alerts.domain.model_risk import ModelRisk
from services.alerts.domain.thresholds import patient_limits
from services.alerts.domain.window import Observation, PatientVitals

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = ScoringPolicy()


def vitals(*readings: tuple[str, float | bool | str, datetime]) -> PatientVitals:
    held = PatientVitals(retention=timedelta(days=30))
    for type, value, at in readings:
        held.add(Observation(type, value, at))
    return held


def scored(
    held: PatientVitals,
    *,
    group: str = "default",
    overrides: dict[str, dict[str, float | None]] | None = None,
    model: ModelRisk | None = None,
    new_types: frozenset[str] = frozenset(),
    scale: int = 1,
) -> list[AssessmentFields]:
    end = max(o.measured_at for t in held.types() if (o := held.latest(t)) is not None)
    window = held.window(end, timedelta(hours=12), spo2_scale=scale)
    return assess_patient(
        window,
        held,
        limits=patient_limits(group, overrides),
        group=group,
        model=model,
        new_types=new_types,
        policy=POLICY,
    )


def news2_of(found: list[AssessmentFields]) -> AssessmentFields:
    (news2,) = [f for f in found if f.kind == "news2"]
    return news2


def steady_pulse(days: int = 10, value: float = 70.0) -> list[tuple[str, float, datetime]]:
    return [("heart_rate", value + (i % 3) - 1, NOW - (days - i) * DAY) for i in range(days)]


def test_a_pulse_far_above_the_patients_own_normal_is_explained() -> None:
    found = news2_of(scored(vitals(*steady_pulse(), ("heart_rate", 88, NOW))))
    # 88/min scores 0 in NEWS2, but for this patient it is far from their usual 70.
    assert found.news2 is not None and found.news2.components["heart_rate"] == 0
    (reason,) = [r for r in found.reasons if "baseline" in r]
    assert reason.startswith("pulse 88/min is")
    assert "SD above this patient's baseline (70/min, median of 10 readings over 14 days)" in reason


def test_a_value_close_to_the_baseline_or_an_untrusted_baseline_says_nothing() -> None:
    close = news2_of(scored(vitals(*steady_pulse(), ("heart_rate", 71, NOW))))
    assert not any("baseline" in r for r in close.reasons)
    # Three earlier readings are too few to know the patient's normal.
    young = news2_of(scored(vitals(*steady_pulse(days=3), ("heart_rate", 110, NOW))))
    assert not any("baseline" in r for r in young.reasons)


def test_reference_ranges_of_the_condition_group_classify_the_values() -> None:
    held = vitals(("spo2", 89, NOW), ("heart_rate", 80, NOW))
    copd = news2_of(scored(held, group="copd"))
    assert "SpO2 89% is yellow for this patient (yellow below 90%)" in copd.reasons
    plain = news2_of(scored(held))
    assert any(
        r.startswith("SpO2 89% is red for this patient (red below 92%") for r in plain.reasons
    )
    assert not any(r.startswith("pulse") and "for this patient" in r for r in plain.reasons)


def test_a_clinicians_override_changes_the_classification_but_not_the_severity() -> None:
    held = vitals(("spo2", 89, NOW))
    found = news2_of(scored(held, group="copd", overrides={"spo2": {"red_low": 90}}))
    assert any(
        r.startswith("SpO2 89% is red for this patient (red below 90%") for r in found.reasons
    )
    assert found.news2 is not None
    assert found.severity == found.news2.band == "low-medium"  # SpO2 89 scores 3


def heart_failure_weights(*kg: float) -> PatientVitals:
    start = NOW - (len(kg) - 1) * DAY
    return vitals(*(("weight", value, start + i * DAY) for i, value in enumerate(kg)))


def test_heart_failure_weight_gain_over_two_kg_in_three_days_is_a_trend() -> None:
    found = scored(
        heart_failure_weights(80.0, 80.6, 81.5, 82.3),
        group="heart_failure",
        new_types=frozenset({"weight"}),
    )
    (trend,) = [f for f in found if f.kind == "trend"]
    assert trend.severity == "low-medium"
    assert trend.window_end == NOW
    assert trend.values["weight"] == (82.3, NOW)
    assert trend.reasons[0].startswith("weight +2.3 kg in 3 days: 80 kg")
    assert "above the heart-failure limit of more than 2 kg in 3 days" in trend.reasons[0]
    assert any(r.startswith("72 h trend: weight +0.") for r in trend.reasons)


def test_a_weight_within_the_limit_gives_a_low_trend_that_lets_an_alert_settle() -> None:
    found = scored(
        heart_failure_weights(80.0, 80.2, 80.1, 80.4),
        group="heart_failure",
        new_types=frozenset({"weight"}),
    )
    (trend,) = [f for f in found if f.kind == "trend"]
    assert trend.severity == "low"
    assert "within the heart-failure limit" in trend.reasons[0]


def test_the_weight_rule_is_for_heart_failure_and_for_new_weighings_only() -> None:
    gaining = heart_failure_weights(80.0, 80.6, 81.5, 82.3)
    other_group = scored(gaining, group="copd", new_types=frozenset({"weight"}))
    assert [f.kind for f in other_group] == ["news2"]
    no_new_weighing = scored(gaining, group="heart_failure", new_types=frozenset({"spo2"}))
    assert [f.kind for f in no_new_weighing] == ["news2"]
    # The NEWS2 assessment still mentions the gain while it exceeds the limit.
    assert any("above the heart-failure limit" in r for r in news2_of(no_new_weighing).reasons)


def test_slopes_over_24_and_72_hours_are_in_the_explanation() -> None:
    falling = [("spo2", 97 - i, NOW - (6 - i) * timedelta(hours=4)) for i in range(7)]
    found = news2_of(scored(vitals(*falling)))
    (day,) = [r for r in found.reasons if r.startswith("24 h trend:")]
    assert "SpO2 -0.25% per hour" in day  # one point every four hours
    (days,) = [r for r in found.reasons if r.startswith("72 h trend:")]
    assert "SpO2 -6.00% per day" in days


def information_only(probability: float) -> ModelRisk:
    return ModelRisk(
        version="1.0.0",
        probability=probability,
        top_features=(("temperature", 1.81), ("news2_total", 1.31)),
        is_default=False,
        alert_threshold=0.014,
    )


def test_a_model_that_is_not_the_default_is_reported_for_information_only() -> None:
    found = news2_of(
        scored(vitals(("heart_rate", 80, NOW), ("spo2", 97, NOW)), model=information_only(0.6))
    )
    assert found.model is not None and found.model.version == "1.0.0"
    assert found.severity == "low"  # the NEWS2 band, whatever the model says
    assert any(
        r.startswith("deterioration model 1.0.0: risk 0.600, for information only")
        for r in found.reasons
    )
    assert "model's top features (change in log-odds): temperature +1.81, news2_total +1.31" in (
        found.reasons
    )


@pytest.mark.parametrize(("probability", "severity"), [(0.02, "medium"), (0.01, "low")])
def test_a_default_model_raises_the_severity_at_its_alert_threshold(
    probability: float, severity: str
) -> None:
    default = ModelRisk("2.0.0", probability, (), is_default=True, alert_threshold=0.014)
    found = news2_of(scored(vitals(("heart_rate", 80, NOW)), model=default))
    assert found.severity == severity
    assert found.news2 is not None and found.news2.band == "low"


def test_a_default_model_never_lowers_a_high_news2() -> None:
    default = ModelRisk("2.0.0", 0.5, (), is_default=True, alert_threshold=0.014)
    held = vitals(("respiratory_rate", 26, NOW), ("spo2", 90, NOW), ("heart_rate", 135, NOW))
    assert news2_of(scored(held, model=default)).severity == "high"


def test_readings_that_arrive_together_are_scored_once_at_the_newest() -> None:
    session = [Observation("spo2", 95, NOW - timedelta(minutes=m)) for m in (0, 3, 40)]
    ends = window_ends(session, newest=NOW, length=timedelta(hours=12))
    assert ends == [(NOW, frozenset({"spo2"}))]


def test_a_reading_the_newest_window_leaves_out_gets_a_window_of_its_own() -> None:
    yesterday = NOW - timedelta(hours=20)
    new = [
        Observation("weight", 82.0, NOW),
        Observation("spo2", 88, yesterday),
        Observation("heart_rate", 120, yesterday - timedelta(hours=2)),  # in yesterday's window
    ]
    ends = window_ends(new, newest=NOW, length=timedelta(hours=12))
    assert ends == [
        (yesterday, frozenset({"spo2", "heart_rate"})),
        (NOW, frozenset({"weight"})),
    ]


def test_a_late_reading_alone_is_scored_where_it_was_measured() -> None:
    late = Observation("temperature", 39.2, NOW - 3 * DAY)
    ends = window_ends([late], newest=NOW, length=timedelta(hours=12))
    # The newest window is scored too: it is the patient's current state.
    assert [end for end, _ in ends] == [NOW - 3 * DAY, NOW]
    assert ends[1][1] == frozenset()

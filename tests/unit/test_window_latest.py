"""Scoring windows over sparse home readings, and the per-patient reading store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.news2 import News2Inputs, score
from services.alerts.domain.window import (
    NEWS2_TYPES,
    InvalidObservation,
    Observation,
    PatientVitals,
    latest_window,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def reading(type: str, value: float | bool | str, hours: float) -> Observation:
    return Observation(type, value, at(hours))


def test_latest_value_of_each_type_within_the_window() -> None:
    readings = [
        reading("spo2", 91, 0),
        reading("spo2", 94, 2),
        reading("heart_rate", 88, 1),
        reading("weight", 81.4, 1.5),
    ]
    window = latest_window(readings, end=at(3), length=6 * HOUR)
    assert window.values == {"spo2": 94, "heart_rate": 88, "weight": 81.4}
    assert window.measured_at["spo2"] == at(2)
    assert window.present == ("heart_rate", "spo2", "weight")
    assert window.missing == (
        "respiratory_rate",
        "on_oxygen",
        "systolic_bp",
        "consciousness",
        "temperature",
    )
    assert window.age("spo2") == HOUR
    assert window.age("temperature") is None


def test_window_excludes_its_start_and_includes_its_end() -> None:
    readings = [
        reading("spo2", 90, -3),  # exactly at end - length: outside
        reading("heart_rate", 70, 3),  # exactly at end: inside
        reading("temperature", 38.4, 3.01),  # after end: outside
    ]
    window = latest_window(readings, end=at(3), length=6 * HOUR)
    assert window.values == {"heart_rate": 70}
    assert window.start == at(-3)


def test_nothing_is_carried_in_from_before_the_window() -> None:
    window = latest_window([reading("spo2", 85, 0)], end=at(30), length=24 * HOUR)
    assert "spo2" in window.missing
    assert window.news2_inputs().spo2 is None


def test_a_late_reading_does_not_replace_a_newer_one() -> None:
    readings = [reading("spo2", 96, 2), reading("spo2", 86, 1)]  # the older one arrives last
    assert latest_window(readings, end=at(3), length=6 * HOUR).values["spo2"] == 96


def test_a_later_arrival_with_the_same_time_is_a_correction() -> None:
    readings = [reading("heart_rate", 150, 1), reading("heart_rate", 75, 1)]
    assert latest_window(readings, end=at(3), length=6 * HOUR).values["heart_rate"] == 75
    vitals = PatientVitals()
    for observation in readings:
        vitals.add(observation)
    assert vitals.window(at(3), 6 * HOUR).values["heart_rate"] == 75


def test_a_redelivered_reading_does_not_undo_a_correction() -> None:
    original, correction = reading("heart_rate", 150, 1), reading("heart_rate", 75, 1)
    window = latest_window([original, correction, original], end=at(3), length=6 * HOUR)
    assert window.values["heart_rate"] == 75


def test_readings_in_other_time_zones_are_compared_as_instants() -> None:
    copenhagen_summer = timezone(timedelta(hours=2))
    # 11:30 at +02:00 is 09:30 UTC: newer than 09:00 UTC although its wall clock says 11:30
    newer = Observation("spo2", 97, datetime(2024, 3, 1, 11, 30, tzinfo=copenhagen_summer))
    window = latest_window([newer, reading("spo2", 92, 1)], end=at(2), length=6 * HOUR)
    assert window.values["spo2"] == 97


def test_news2_inputs_carry_only_what_was_measured() -> None:
    readings = [
        reading("respiratory_rate", 23, 0),
        reading("spo2", 90, 0.5),
        reading("on_oxygen", True, 0.5),
        reading("consciousness", "A", 1),
        reading("weight", 90.0, 1),
    ]
    window = latest_window(readings, end=at(1), length=4 * HOUR, spo2_scale=2)
    inputs = window.news2_inputs()
    assert inputs == News2Inputs(
        respiratory_rate=23.0, spo2=90.0, on_oxygen=True, consciousness="A", spo2_scale=2
    )
    assert score(inputs).missing == ("systolic_bp", "heart_rate", "temperature")


def test_window_can_expect_other_types() -> None:
    window = latest_window(
        [reading("weight", 80.0, 0)], end=at(1), length=HOUR * 2, expected=("weight", "glucose")
    )
    assert window.missing == ("glucose",)


@pytest.mark.parametrize(
    ("type", "value"),
    [
        ("spo2", math.nan),
        ("temperature", math.inf),
        ("heart_rate", True),
        ("heart_rate", "72"),
        ("on_oxygen", 1.0),
        ("consciousness", "confused"),
    ],
)
def test_readings_of_the_wrong_kind_are_refused(type: str, value: float | bool | str) -> None:
    with pytest.raises(InvalidObservation) as refused:
        Observation(type, value, T0)
    assert (refused.value.type, refused.value.value) == (type, value)


def test_a_reading_without_a_time_zone_is_refused() -> None:
    with pytest.raises(InvalidObservation):
        Observation("spo2", 95, datetime(2024, 3, 1, 8, 0))


@pytest.mark.parametrize("length", [timedelta(0), -HOUR])
def test_a_window_needs_a_positive_length(length: timedelta) -> None:
    with pytest.raises(InvalidObservation):
        latest_window([], end=T0, length=length)
    with pytest.raises(InvalidObservation):
        PatientVitals().window(T0, length)


def test_patient_vitals_keep_the_newest_value_when_readings_arrive_late() -> None:
    vitals = PatientVitals()
    assert vitals.add(reading("spo2", 95, 2)) is True
    assert vitals.add(reading("spo2", 88, 1)) is False
    assert vitals.latest("spo2") == reading("spo2", 95, 2)
    assert vitals.window(at(3), 6 * HOUR).values["spo2"] == 95
    assert [obs.value for obs in vitals.history("spo2")] == [88, 95]


def test_patient_vitals_ignore_a_redelivered_reading() -> None:
    vitals = PatientVitals()
    vitals.add(reading("heart_rate", 80, 1))
    assert vitals.add(reading("heart_rate", 80, 1)) is False
    assert len(vitals.history("heart_rate")) == 1


def test_patient_vitals_forget_readings_past_retention() -> None:
    vitals = PatientVitals(retention=timedelta(days=14))
    vitals.add(reading("weight", 80.0, 0))
    vitals.add(reading("weight", 80.5, 24 * 10))
    vitals.add(reading("spo2", 95, 24 * 15))
    assert [obs.value for obs in vitals.history("weight")] == [80.5]
    # older than the horizon when it arrives: dropped
    assert vitals.add(reading("weight", 79.0, 0.5)) is False
    assert len(vitals.history("weight")) == 1


def test_patient_vitals_bound_each_type_by_count() -> None:
    vitals = PatientVitals(max_per_type=3)
    for hour in range(5):
        vitals.add(reading("heart_rate", 60 + hour, hour))
    assert [obs.value for obs in vitals.history("heart_rate")] == [62, 63, 64]


def test_patient_vitals_history_since() -> None:
    vitals = PatientVitals()
    for hour in range(4):
        vitals.add(reading("weight", 80 + hour, hour))
    assert [obs.value for obs in vitals.history("weight", since=at(1))] == [82, 83]
    assert vitals.history("glucose") == ()
    assert vitals.types() == ("weight",)


def test_patient_vitals_window_in_the_past() -> None:
    vitals = PatientVitals()
    vitals.add(reading("spo2", 93, 1))
    vitals.add(reading("spo2", 89, 5))
    assert vitals.window(at(2), 2 * HOUR).values == {"spo2": 93}


observations = st.lists(
    st.builds(
        Observation,
        type=st.sampled_from(["spo2", "heart_rate", "temperature"]),
        value=st.integers(30, 100).map(float),
        measured_at=st.integers(0, 48 * 60).map(lambda minute: T0 + timedelta(minutes=minute)),
    ),
    max_size=60,
)


@given(
    readings=observations,
    end_minute=st.integers(0, 50 * 60),
    length_minutes=st.integers(1, 30 * 60),
)
def test_incremental_store_and_one_shot_window_agree(
    readings: list[Observation], end_minute: int, length_minutes: int
) -> None:
    vitals = PatientVitals()
    for observation in readings:
        vitals.add(observation)
    end = T0 + timedelta(minutes=end_minute)
    length = timedelta(minutes=length_minutes)
    incremental = vitals.window(end, length)
    one_shot = latest_window(readings, end=end, length=length)
    assert incremental.values == one_shot.values
    assert incremental.measured_at == one_shot.measured_at
    assert incremental.missing == one_shot.missing
    for type in NEWS2_TYPES:
        held = [obs for obs in readings if obs.type == type and obs.measured_at <= end]
        if type in one_shot.values:
            assert one_shot.measured_at[type] == max(obs.measured_at for obs in held)

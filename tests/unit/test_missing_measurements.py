"""An expected measurement that does not come is a signal: reported when it is due, once per
missed period, and only for what the patient actually measures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.domain.assessment import missing_assessment
from services.alerts.domain.missing import InvalidCadence, cadences, not_yet_reported, overdue

LAST = datetime(2026, 1, 14, 7, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAILY = {"spo2": timedelta(hours=24), "heart_rate": timedelta(hours=24)}


def test_nothing_is_due_within_the_cadence() -> None:
    seen = {"spo2": LAST, "heart_rate": LAST}
    assert overdue(seen, DAILY, now=LAST + 23 * HOUR) == []


def test_a_measurement_a_full_cadence_old_is_due_from_that_moment() -> None:
    seen = {"spo2": LAST, "heart_rate": LAST + 20 * HOUR}
    (item,) = overdue(seen, DAILY, now=LAST + 24 * HOUR)
    assert (item.type, item.due_at, item.periods) == ("spo2", LAST + 24 * HOUR, 1)


def test_each_further_missed_period_starts_a_new_one() -> None:
    (item,) = overdue({"spo2": LAST}, DAILY, now=LAST + 50 * HOUR)
    assert (item.due_at, item.periods) == (LAST + 48 * HOUR, 2)


def test_a_type_the_patient_never_measured_is_not_expected() -> None:
    assert overdue({"weight": LAST}, DAILY, now=LAST + 72 * HOUR) == []


def test_a_patient_gone_quiet_for_longer_than_the_lookback_is_no_longer_chased() -> None:
    seen = {"spo2": LAST}
    later = LAST + timedelta(days=31)
    assert overdue(seen, DAILY, now=later, give_up_after=timedelta(days=30)) == []
    assert overdue(seen, DAILY, now=later, give_up_after=timedelta(days=40)) != []


def test_a_period_is_reported_once() -> None:
    seen = {"spo2": LAST}
    first = overdue(seen, DAILY, now=LAST + 25 * HOUR)
    assert not_yet_reported(first, {}) == first
    reported = {o.type: o.due_at for o in first}
    # A minute later, and an hour later, the same period is due: nothing new to say.
    for later in (LAST + 25 * HOUR + timedelta(minutes=1), LAST + 26 * HOUR):
        assert not_yet_reported(overdue(seen, DAILY, now=later), reported) == []
    # The next missed period is new.
    next_period = overdue(seen, DAILY, now=LAST + 49 * HOUR)
    assert [o.periods for o in not_yet_reported(next_period, reported)] == [2]


def test_a_new_measurement_ends_the_period_and_a_later_gap_is_reported_again() -> None:
    reported = {o.type: o.due_at for o in overdue({"spo2": LAST}, DAILY, now=LAST + 30 * HOUR)}
    measured_again = LAST + 31 * HOUR
    assert overdue({"spo2": measured_again}, DAILY, now=LAST + 40 * HOUR) == []
    again = overdue({"spo2": measured_again}, DAILY, now=measured_again + 25 * HOUR)
    assert not_yet_reported(again, reported) == again


def test_patient_cadences_override_the_defaults_and_none_means_not_expected() -> None:
    merged = cadences({"spo2": 24, "heart_rate": 24}, {"weight": 24, "heart_rate": None})
    assert merged == {"spo2": timedelta(hours=24), "weight": timedelta(hours=24)}


@pytest.mark.parametrize("hours", [0, -1, True, "24"])
def test_a_cadence_must_be_a_positive_number_of_hours(hours: object) -> None:
    with pytest.raises(InvalidCadence) as raised:
        cadences({}, {"spo2": hours})  # type: ignore[dict-item]
    assert raised.value.type == "spo2"


def test_the_assessment_is_a_low_priority_task_naming_what_is_missing() -> None:
    now = LAST + 49 * HOUR
    fields = missing_assessment(overdue({"spo2": LAST}, DAILY, now=now), now=now)
    assert (fields.kind, fields.severity, fields.missing) == (
        "missing_measurement",
        "low",
        ("spo2",),
    )
    assert fields.news2 is None
    # 07:30 UTC is 08:30 in Copenhagen in winter.
    assert fields.reasons == (
        "no SpO2 since 2026-01-14 08:30 (Danish time); expected every 24 h, 2 periods missed",
    )

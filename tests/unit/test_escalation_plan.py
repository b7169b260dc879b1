"""Escalation plans: deadlines along a route, what is due when, and daylight-saving nights."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.alerts.domain.escalation import (
    Escalation,
    current_deadline,
    deadlines,
    due,
    next_step,
    open_escalation,
)
from services.alerts.domain.hours import COPENHAGEN, NaiveDatetimeError
from services.alerts.domain.routing import Route, Step

EMERGENCY = Step(
    kind="emergency_112", org_id=None, name="Ring 112", phone="112", ack_timeout_s=None
)
ACUTE_5_MIN = Step(
    kind="acute_team", org_id="akut-fyn-syd", name="Akutteam Sydfyn", phone=None, ack_timeout_s=300
)
OOH_10_MIN = Step(
    kind="out_of_hours",
    org_id="ooh-syddanmark",
    name="Lægevagten Region Syddanmark",
    phone="70 11 07 07",
    ack_timeout_s=600,
)
ACUTE_15_MIN = ACUTE_5_MIN.model_copy(update={"ack_timeout_s": 900})
TASK = Step(
    kind="task_list", org_id="akut-fyn-syd", name="Opgaveliste", phone=None, ack_timeout_s=None
)

HIGH = Route(chain=[EMERGENCY, ACUTE_5_MIN, OOH_10_MIN])
MEDIUM = Route(chain=[ACUTE_15_MIN, OOH_10_MIN])
TASK_ONLY = Route(chain=[TASK])

# Tuesday 10 September 2024, 10:00 in Copenhagen (summer time) is 08:00 UTC.
OPENED = datetime(2024, 9, 10, 10, 0, tzinfo=COPENHAGEN)


def utc(
    hour: int, minute: int, second: int = 0, *, day: tuple[int, int, int] = (2024, 9, 10)
) -> datetime:
    return datetime(*day, hour, minute, second, tzinfo=UTC)


def test_deadlines_add_up_the_ack_timeouts_along_the_chain() -> None:
    plan = deadlines(HIGH, opened_at=OPENED)
    assert [(p.index, p.step.kind, p.paged_at, p.deadline) for p in plan] == [
        (0, "emergency_112", utc(8, 0), utc(8, 0)),
        (1, "acute_team", utc(8, 0), utc(8, 5)),
        (2, "out_of_hours", utc(8, 5), utc(8, 15)),
    ]


def test_a_last_step_without_a_timeout_never_expires() -> None:
    plan = deadlines(TASK_ONLY, opened_at=OPENED)
    assert [(p.paged_at, p.deadline) for p in plan] == [(utc(8, 0), None)]
    escalation, page_now = open_escalation("a-task", TASK_ONLY, opened_at=OPENED)
    assert page_now == (TASK,)
    assert current_deadline(escalation) is None
    assert due([escalation], utc(23, 59)) == []


def test_a_high_alert_pages_112_advice_and_the_acute_team_at_once() -> None:
    escalation, page_now = open_escalation("a-high", HIGH, opened_at=OPENED)
    assert page_now == (EMERGENCY, ACUTE_5_MIN)
    assert escalation.current_index == 1
    assert current_deadline(escalation) == utc(8, 5)
    assert due([escalation], OPENED) == []


def test_a_medium_alert_pages_only_the_acute_team_at_first() -> None:
    escalation, page_now = open_escalation("a-medium", MEDIUM, opened_at=OPENED)
    assert page_now == (ACUTE_15_MIN,)
    assert escalation.current_index == 0


def test_an_unacknowledged_step_escalates_at_its_deadline_and_not_before() -> None:
    escalation, _ = open_escalation("a-high", HIGH, opened_at=OPENED)
    assert due([escalation], utc(8, 4, 59)) == []
    [decision] = due([escalation], utc(8, 5))
    assert decision.alert_id == "a-high"
    assert (decision.from_index, decision.to_index) == (1, 2)
    assert decision.notify == (OOH_10_MIN,)
    assert decision.deadline == utc(8, 5)
    assert decision.exhausted is False


def test_the_last_step_expiring_unacknowledged_exhausts_the_chain() -> None:
    on_last = Escalation(alert_id="a-high", route=HIGH, opened_at=OPENED, current_index=2)
    assert due([on_last], utc(8, 14, 59)) == []
    [decision] = due([on_last], utc(8, 15))
    assert (decision.from_index, decision.to_index, decision.notify) == (2, 2, ())
    assert decision.exhausted is True
    assert due([replace(on_last, exhausted=True)], utc(9, 0)) == []


def test_an_escalation_that_fell_behind_catches_up_in_one_decision() -> None:
    escalation, _ = open_escalation("a-high", HIGH, opened_at=OPENED)
    [decision] = due([escalation], utc(8, 20))
    assert (decision.from_index, decision.to_index) == (1, 2)
    assert decision.notify == (OOH_10_MIN,)
    assert decision.exhausted is True


def test_acknowledged_alerts_are_never_due() -> None:
    escalation, _ = open_escalation("a-medium", MEDIUM, opened_at=OPENED)
    assert due([replace(escalation, acknowledged=True)], utc(12, 0)) == []


def test_due_decides_for_each_alert_on_its_own() -> None:
    high, _ = open_escalation("a-high", HIGH, opened_at=OPENED)
    medium, _ = open_escalation("a-medium", MEDIUM, opened_at=OPENED)
    # At 08:10 UTC the high alert's acute team (5 min) has expired, the medium one's (15) not.
    decisions = due([high, medium], utc(8, 10))
    assert [(d.alert_id, d.to_index) for d in decisions] == [("a-high", 2)]


def test_next_step_walks_the_chain_and_stops_at_its_end() -> None:
    assert next_step(HIGH, 0) == 1
    assert next_step(HIGH, 1) == 2
    assert next_step(HIGH, 2) is None
    with pytest.raises(IndexError):
        next_step(HIGH, 3)


def test_a_timeout_across_the_autumn_night_lasts_its_real_length() -> None:
    # Sunday 27 October 2024: 02:50 summer time (00:50 UTC) plus 15 minutes is 01:05 UTC,
    # which the clock shows as 02:05 winter time, not 03:05.
    opened = datetime(2024, 10, 27, 2, 50, fold=0, tzinfo=COPENHAGEN)
    escalation, _ = open_escalation("a-night", MEDIUM, opened_at=opened)
    deadline = current_deadline(escalation)
    assert deadline == datetime(2024, 10, 27, 1, 5, tzinfo=UTC)
    assert deadline is not None
    assert deadline.astimezone(COPENHAGEN).strftime("%H:%M %Z") == "02:05 CET"
    assert due([escalation], datetime(2024, 10, 27, 1, 4, 59, tzinfo=UTC)) == []
    assert len(due([escalation], datetime(2024, 10, 27, 1, 5, tzinfo=UTC))) == 1


def test_a_timeout_across_the_spring_night_lasts_its_real_length() -> None:
    # Sunday 30 March 2025: 01:50 winter time (00:50 UTC) plus 15 minutes is 01:05 UTC,
    # which the clock shows as 03:05 summer time.
    opened = datetime(2025, 3, 30, 1, 50, tzinfo=COPENHAGEN)
    escalation, _ = open_escalation("a-spring", MEDIUM, opened_at=opened)
    deadline = current_deadline(escalation)
    assert deadline == datetime(2025, 3, 30, 1, 5, tzinfo=UTC)
    assert deadline is not None
    assert deadline.astimezone(COPENHAGEN).strftime("%H:%M %Z") == "03:05 CEST"


def test_naive_times_are_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        deadlines(HIGH, opened_at=datetime(2024, 9, 10, 10, 0))
    escalation, _ = open_escalation("a-high", HIGH, opened_at=OPENED)
    with pytest.raises(NaiveDatetimeError):
        due([escalation], datetime(2024, 9, 10, 10, 5))

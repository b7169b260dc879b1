"""Escalation timers as stored for an alert, and what a due timer does to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.domain.escalation import on_due, timers
from services.alerts.domain.hours import COPENHAGEN
from services.alerts.domain.routing import Route, Step

EMERGENCY = Step(
    kind="emergency_112", org_id=None, name="Ring 112", phone="112", ack_timeout_s=None
)
ACUTE = Step(kind="acute_team", org_id="akut", name="Akutteam", phone=None, ack_timeout_s=300)
OOH = Step(kind="out_of_hours", org_id="ooh", name="Lægevagten", phone=None, ack_timeout_s=600)
GP = Step(kind="gp", org_id="gp", name="Lægehuset", phone=None, ack_timeout_s=7200)
TASK = Step(kind="task_list", org_id="akut", name="Opgaveliste", phone=None, ack_timeout_s=None)

START = datetime(2024, 9, 10, 8, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


def test_a_high_alert_pages_112_and_the_acute_team_then_waits_on_timers() -> None:
    rows = timers(Route(chain=[EMERGENCY, ACUTE, OOH]), start=START)
    assert [(r.index, r.step, r.due_at, r.deadline, r.paged_now) for r in rows] == [
        (0, EMERGENCY, at(0), at(0), True),
        (1, ACUTE, at(0), at(300), True),
        (2, OOH, at(300), at(900), False),
        # Nobody acknowledged by the last deadline: the operators are told.
        (3, None, at(900), None, False),
    ]


def test_a_gp_first_route_waits_the_practice_timeout_before_the_acute_team() -> None:
    rows = timers(Route(chain=[GP, ACUTE]), start=START)
    assert [(r.step, r.due_at, r.paged_now) for r in rows] == [
        (GP, at(0), True),
        (ACUTE, at(7200), False),
        (None, at(7500), False),
    ]


def test_a_task_list_is_paged_once_and_never_times_out() -> None:
    [row] = timers(Route(chain=[TASK]), start=START)
    assert (row.step, row.paged_now, row.deadline) == (TASK, True, None)


def test_timers_across_the_spring_night_keep_their_real_length() -> None:
    # Sunday 31 March 2024, 01:58 winter time: five minutes later the clock shows 03:03.
    start = datetime(2024, 3, 31, 1, 58, tzinfo=COPENHAGEN)
    rows = timers(Route(chain=[ACUTE, OOH]), start=start)
    assert rows[1].due_at == datetime(2024, 3, 31, 1, 3, tzinfo=UTC)
    assert rows[1].due_at.astimezone(COPENHAGEN).hour == 3


def test_a_due_timer_fires_only_for_an_open_unsnoozed_alert() -> None:
    assert on_due(status="open", snoozed_until=None, now=START).action == "fire"
    assert on_due(status="open", snoozed_until=at(-1), now=START).action == "fire"
    deferred = on_due(status="open", snoozed_until=at(60), now=START)
    assert (deferred.action, deferred.until) == ("defer", at(60))


@pytest.mark.parametrize("status", ["acknowledged", "resolved"])
def test_a_due_timer_of_an_acknowledged_or_resolved_alert_is_cancelled(status: str) -> None:
    assert on_due(status=status, snoozed_until=None, now=START).action == "cancel"

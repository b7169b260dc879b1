"""The alert lifecycle rules: clinicians' actions, assessments, snooze and auto-resolve."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.hours import NaiveDatetimeError
from services.alerts.domain.lifecycle import (
    AlertState,
    Transition,
    TransitionRefused,
    acknowledge,
    assign,
    auto_resolve,
    note,
    on_assessment,
    resolve,
    snooze,
)
from shared.errors import InvalidInput

T0 = datetime(2024, 9, 10, 8, 0, tzinfo=UTC)
OPEN_HIGH = AlertState("open", "high")
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def assessed(
    current: AlertState | None,
    severity: str,
    *,
    total: int | None = None,
    at: datetime = T0,
    after: timedelta | None = HOUR,
) -> tuple[Transition | None, AlertState | None]:
    news2 = (
        total if total is not None else {"low": 0, "low-medium": 3, "medium": 5}.get(severity, 7)
    )
    outcome = on_assessment(
        current,
        severity=severity,
        news2_total=news2,
        min_low_total=3,
        at=at,
        auto_resolve_after=after,
    )
    return outcome.transition, outcome.state


# --- clinicians' actions ----------------------------------------------------------------------


def test_acknowledging_an_open_alert_stops_its_escalation() -> None:
    t = acknowledge(OPEN_HIGH)
    assert (t.change, t.state.status, t.escalation) == ("acknowledged", "acknowledged", "cancel")


@pytest.mark.parametrize("status", ["acknowledged", "resolved"])
def test_only_an_open_alert_can_be_acknowledged(status: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        acknowledge(replace(OPEN_HIGH, status=status))
    assert refused.value.status == 409
    assert refused.value.alert_status == status


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_an_open_or_acknowledged_alert_resolves_with_its_reason(status: str) -> None:
    t = resolve(replace(OPEN_HIGH, status=status), reason="seen at home, stable")
    assert (t.change, t.state.status, t.escalation) == ("resolved", "resolved", "cancel")
    assert t.detail == {"reason": "seen at home, stable"}


def test_a_resolved_alert_is_closed_to_everything_but_notes() -> None:
    closed = AlertState("resolved", "medium")
    for action in (
        lambda: acknowledge(closed),
        lambda: resolve(closed),
        lambda: assign(closed, assignee="nurse-1", name="Nurse One"),
        lambda: snooze(closed, until=T0 + HOUR, at=T0, longest=DAY),
    ):
        with pytest.raises(TransitionRefused):
            action()
    assert note(closed, text="follow-up call done").state == closed


def test_assigning_names_the_clinician_and_keeps_status_and_escalation() -> None:
    t = assign(OPEN_HIGH, assignee="nurse-7", name="Karen Holm")
    assert t.state == replace(OPEN_HIGH, assigned_to="nurse-7", assigned_name="Karen Holm")
    assert t.escalation == "keep"
    assert t.detail == {"assigned_to": "nurse-7", "assigned_name": "Karen Holm", "previous": None}
    again = assign(t.state, assignee="nurse-8", name="Ole Berg")
    assert again.detail["previous"] == "nurse-7"
    with pytest.raises(TransitionRefused):
        assign(t.state, assignee="nurse-7", name="Karen Holm")


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001])
def test_a_note_needs_some_text_and_not_too_much(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        note(OPEN_HIGH, text=text)
    assert refused.value.problems[0].field == "text"


def test_a_note_is_stored_trimmed() -> None:
    assert note(OPEN_HIGH, text="  called the patient \n").detail == {"text": "called the patient"}


def test_a_snooze_stops_the_escalation_clock_for_its_length() -> None:
    t = snooze(OPEN_HIGH, until=T0 + minutes(30), at=T0, longest=DAY)
    assert t.state.snoozed_until == T0 + minutes(30)
    assert (t.escalation, t.defer_by) == ("defer", minutes(30))


def test_snoozing_again_moves_the_clock_by_the_difference_only() -> None:
    first = snooze(OPEN_HIGH, until=T0 + minutes(30), at=T0, longest=DAY)
    longer = snooze(first.state, until=T0 + minutes(50), at=T0 + minutes(10), longest=DAY)
    assert longer.defer_by == minutes(20)
    shorter = snooze(first.state, until=T0 + minutes(20), at=T0 + minutes(10), longest=DAY)
    assert shorter.defer_by == -minutes(10)
    # A snooze that has already ended no longer holds the clock.
    after_end = snooze(first.state, until=T0 + minutes(60), at=T0 + minutes(40), longest=DAY)
    assert after_end.defer_by == minutes(20)


@pytest.mark.parametrize(
    ("until", "field_message"),
    [(T0, "in the past"), (T0 - minutes(1), "in the past"), (T0 + DAY + minutes(1), "at most")],
)
def test_a_snooze_must_end_in_the_future_and_not_too_far(
    until: datetime, field_message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        snooze(OPEN_HIGH, until=until, at=T0, longest=DAY)
    assert refused.value.problems[0].field == "until"
    assert field_message in refused.value.problems[0].message


def test_a_snooze_without_a_time_zone_is_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        snooze(OPEN_HIGH, until=datetime(2024, 9, 10, 12, 0), at=T0, longest=DAY)


# --- assessments ------------------------------------------------------------------------------


def test_an_alerting_assessment_without_an_alert_raises_one() -> None:
    t, _ = assessed(None, "medium")
    assert t is not None
    assert (t.change, t.state, t.escalation) == ("raised", AlertState("open", "medium"), "replan")


@pytest.mark.parametrize(("severity", "total"), [("low", 0), ("low", 2)])
def test_a_normal_assessment_without_an_alert_does_nothing(severity: str, total: int) -> None:
    assert assessed(None, severity, total=total) == (None, None)


def test_a_low_news2_from_the_threshold_alerts() -> None:
    t, _ = assessed(None, "low", total=3)
    assert t is not None and t.change == "raised"


def test_a_worse_assessment_worsens_and_replans_the_escalation() -> None:
    t, _ = assessed(AlertState("open", "medium"), "high")
    assert t is not None
    assert (t.change, t.state.severity, t.escalation) == ("worsened", "high", "replan")
    assert t.detail == {"from_severity": "medium"}


def test_a_worse_assessment_reopens_an_acknowledged_alert_and_ends_its_snooze() -> None:
    current = AlertState("acknowledged", "low-medium", snoozed_until=T0 + HOUR)
    t, _ = assessed(current, "medium")
    assert t is not None
    assert t.state.status == "open"
    assert t.state.snoozed_until is None
    assert t.detail == {"from_severity": "low-medium", "snooze_ended": True, "reopened": True}


@pytest.mark.parametrize("severity", ["medium", "low-medium"])
def test_an_assessment_no_worse_than_the_alert_changes_nothing(severity: str) -> None:
    assert assessed(AlertState("open", "medium"), severity) == (None, None)


def test_normal_readings_start_the_quiet_period_and_resolve_it_after_the_setting() -> None:
    current = AlertState("open", "medium")
    t, state = assessed(current, "low", total=1, at=T0)
    assert t is None and state == replace(current, normal_since=T0)
    assert state is not None
    assert assessed(state, "low", total=0, at=T0 + minutes(59)) == (None, None)
    resolved, _ = assessed(state, "low", total=0, at=T0 + minutes(60))
    assert resolved is not None
    assert (resolved.change, resolved.state.status, resolved.escalation) == (
        "resolved",
        "resolved",
        "cancel",
    )
    assert resolved.detail["automatic"] is True


def test_an_alerting_reading_breaks_the_quiet_period() -> None:
    quiet = AlertState("acknowledged", "medium", normal_since=T0)
    t, state = assessed(quiet, "low-medium", at=T0 + minutes(30))
    assert t is None and state == replace(quiet, normal_since=None)


def test_without_the_setting_alerts_never_resolve_by_themselves() -> None:
    quiet = AlertState("open", "medium", normal_since=T0)
    assert assessed(quiet, "low", total=0, at=T0 + DAY * 30, after=None) == (None, None)
    assert auto_resolve(quiet, now=T0 + DAY * 30, after=None) is None


def test_the_sweep_resolves_a_quiet_alert_only_once_the_period_has_passed() -> None:
    quiet = AlertState("acknowledged", "high", normal_since=T0)
    assert auto_resolve(quiet, now=T0 + minutes(59), after=HOUR) is None
    t = auto_resolve(quiet, now=T0 + HOUR, after=HOUR)
    assert t is not None and t.state.status == "resolved"
    assert auto_resolve(AlertState("open", "high"), now=T0 + DAY, after=HOUR) is None


# --- the machine as a whole -------------------------------------------------------------------

ACTIONS = st.sampled_from(["ack", "resolve", "assign", "note", "snooze", "worse", "normal"])
SEVERITY_ORDER = ["low-medium", "medium", "high"]


def step(state: AlertState, action: str, at: datetime) -> tuple[Transition | None, AlertState]:
    """Apply one action as the service would: the transition (None when refused or quiet) and
    the state that follows."""
    try:
        if action == "ack":
            t = acknowledge(state)
        elif action == "resolve":
            t = resolve(state)
        elif action == "assign":
            name = "b" if state.assigned_to == "a" else "a"
            t = assign(state, assignee=name, name=name.upper())
        elif action == "note":
            t = note(state, text="checked")
        elif action == "snooze":
            t = snooze(state, until=at + minutes(15), at=at, longest=DAY)
        elif state.status == "resolved":
            return None, state  # assessments go to a new alert once this one is resolved
        elif action == "worse":
            index = SEVERITY_ORDER.index(state.severity)
            t, quiet = assessed(state, SEVERITY_ORDER[min(index + 1, 2)], at=at)
            if t is None:
                return None, quiet or state
        else:
            t, quiet = assessed(state, "low", total=0, at=at, after=minutes(30))
            if t is None:
                return None, quiet or state
    except TransitionRefused:
        return None, state
    return t, t.state


@given(st.lists(ACTIONS, max_size=30))
def test_any_sequence_keeps_the_lifecycle_rules(actions: list[str]) -> None:
    state = AlertState("open", "low-medium")
    at = T0
    for action in actions:
        at += minutes(10)
        before = state
        t, state = step(state, action, at)
        if t is None:
            continue
        # A resolved alert never changes again, except by notes.
        if before.status == "resolved":
            assert t.change == "noted" and state == before
        # Only an open alert is acknowledged; acknowledging and resolving stop escalation.
        if t.change == "acknowledged":
            assert before.status == "open"
        if t.change in ("acknowledged", "resolved"):
            assert t.escalation == "cancel" and state.snoozed_until is None
        # Severity only ever rises while an alert lives.
        assert SEVERITY_ORDER.index(state.severity) >= SEVERITY_ORDER.index(before.severity)
        # A worsening always leaves the alert open, unsnoozed and escalating again.
        if t.change == "worsened":
            assert state.status == "open" and state.snoozed_until is None
            assert t.escalation == "replan"
        # Quiet readings resolve an alert only after the whole quiet period.
        if t.change == "resolved" and t.detail.get("automatic"):
            assert before.normal_since is not None
            assert at - before.normal_since >= minutes(30)

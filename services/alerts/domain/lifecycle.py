"""The alert lifecycle as rules: which transitions an alert may take and what each one changes.
Pure: the clock is an argument; the engine and the HTTP handlers only translate.

::

    (none) ──raised──▶ open ──acknowledged──▶ acknowledged ──resolved──▶ resolved
                        ▲  └──────────────resolved───────────────────────▲
                        └──worsened── acknowledged                       │
                   open/acknowledged ──normal for N minutes (system)─────┘

Assign, note and snooze keep the status. A snooze stops the escalation clock until it ends; a
worsening ends it at once, reopens an acknowledged alert and re-plans the escalation for the
new severity. Acknowledging or resolving cancels every pending escalation step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from services.alerts.domain.alerting import OpenAlert, alerting_severity, decide
from services.alerts.domain.hours import NaiveDatetimeError
from shared.errors import Conflict, FieldProblem, InvalidInput

Status = Literal["open", "acknowledged", "resolved"]
Change = Literal[
    "raised", "worsened", "acknowledged", "escalated", "resolved", "noted", "assigned", "snoozed"
]
# What a transition does to the alert's pending escalation steps.
EscalationEffect = Literal["keep", "cancel", "replan", "defer"]

NOTE_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the rules need to know of an alert."""

    status: Status
    severity: str
    assigned_to: str | None = None
    assigned_name: str | None = None
    snoozed_until: datetime | None = None
    normal_since: datetime | None = None

    def snoozed_at(self, at: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > at


@dataclass(frozen=True, slots=True)
class Transition:
    """A change to record: the new state, what happens to the escalation, and the detail that
    goes with the event (note text, assignee, snooze end, reason)."""

    change: Change
    state: AlertState
    escalation: EscalationEffect = "keep"
    defer_by: timedelta = timedelta(0)
    detail: dict[str, Any] = field(default_factory=dict)


class TransitionRefused(Conflict):
    """The alert's status does not allow the action (acknowledging a resolved alert)."""

    def __init__(self, action: str, status: str, reason: str) -> None:
        super().__init__(f"cannot {action} this alert: {reason}")
        self.action = action
        self.alert_status = status


def _aware(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise NaiveDatetimeError(at)
    return at


def _not_resolved(state: AlertState, action: str) -> None:
    if state.status == "resolved":
        raise TransitionRefused(action, state.status, "it is already resolved")


def acknowledge(state: AlertState) -> Transition:
    """A clinician takes the alert: nobody further is paged for it."""
    _not_resolved(state, "acknowledge")
    if state.status == "acknowledged":
        raise TransitionRefused("acknowledge", state.status, "it is already acknowledged")
    return Transition(
        "acknowledged",
        replace(state, status="acknowledged", snoozed_until=None),
        escalation="cancel",
    )


def resolve(state: AlertState, *, reason: str | None = None) -> Transition:
    """A clinician closes the alert, from open or acknowledged."""
    _not_resolved(state, "resolve")
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    return Transition(
        "resolved",
        replace(state, status="resolved", snoozed_until=None, normal_since=None),
        escalation="cancel",
        detail=detail,
    )


def assign(state: AlertState, *, assignee: str, name: str) -> Transition:
    """Hand the alert to a named clinician; the status and the escalation are unchanged."""
    _not_resolved(state, "assign")
    if state.assigned_to == assignee:
        raise TransitionRefused("assign", state.status, f"it is already assigned to {name}")
    return Transition(
        "assigned",
        replace(state, assigned_to=assignee, assigned_name=name),
        detail={
            "assigned_to": assignee,
            "assigned_name": name,
            "previous": state.assigned_to,
        },
    )


def note(state: AlertState, *, text: str) -> Transition:
    """Add a free-text note; allowed in every status, a resolved alert included."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > NOTE_MAX_CHARS:
        raise InvalidInput(
            "a note needs text",
            [FieldProblem("text", f"between 1 and {NOTE_MAX_CHARS} characters")],
        )
    return Transition("noted", state, detail={"text": cleaned})


def snooze(state: AlertState, *, until: datetime, at: datetime, longest: timedelta) -> Transition:
    """Silence the alert until ``until``: its escalation clock stands still meanwhile.

    Snoozing again moves the end; the pending escalation steps move by the same amount, so the
    clock stays stopped for exactly the snoozed time.
    """
    _not_resolved(state, "snooze")
    until, at = _aware(until), _aware(at)
    if until <= at:
        raise InvalidInput(
            "a snooze must end in the future", [FieldProblem("until", "in the past")]
        )
    if until - at > longest:
        raise InvalidInput(
            "snooze too long",
            [FieldProblem("until", f"at most {int(longest.total_seconds() // 60)} minutes ahead")],
        )
    stopped_from = state.snoozed_until if state.snoozed_at(at) else at
    assert stopped_from is not None
    return Transition(
        "snoozed",
        replace(state, snoozed_until=until),
        escalation="defer",
        defer_by=until - stopped_from,
        detail={"until": until.isoformat()},
    )


@dataclass(frozen=True, slots=True)
class Assessed:
    """What one assessment does to the alert of its patient and kind: a transition to record,
    or only a quiet change of state (when the readings turned normal), or nothing."""

    transition: Transition | None
    state: AlertState | None


def on_assessment(
    current: AlertState | None,
    *,
    severity: str,
    news2_total: int | None,
    min_low_total: int,
    at: datetime,
    auto_resolve_after: timedelta | None,
    kind: str = "news2",
) -> Assessed:
    """Apply an assessment made at ``at`` (the end of its window) to the current alert.

    - none open and alerting: raise;
    - worse than the open alert: worsen (reopen, end the snooze, re-plan the escalation);
    - alerting but not worse: the run of normal readings, if any, is broken;
    - below the alerting threshold: the run of normal readings starts or goes on, and once it
      lasted ``auto_resolve_after`` the alert resolves by itself.
    """
    _aware(at)
    alerting = alerting_severity(severity, news2_total, min_low_total=min_low_total, kind=kind)
    if current is None:
        if not alerting:
            return Assessed(None, None)
        return Assessed(
            Transition("raised", AlertState("open", severity), escalation="replan"), None
        )
    if alerting:
        decision = decide(
            OpenAlert(current.severity),
            severity=severity,
            news2_total=news2_total,
            min_low_total=min_low_total,
            kind=kind,
        )
        if decision.action == "worsen":
            detail: dict[str, Any] = {"from_severity": current.severity}
            if current.snoozed_at(at):
                detail["snooze_ended"] = True
            if current.status == "acknowledged":
                detail["reopened"] = True
            return Assessed(
                Transition(
                    "worsened",
                    replace(
                        current,
                        status="open",
                        severity=severity,
                        snoozed_until=None,
                        normal_since=None,
                    ),
                    escalation="replan",
                    detail=detail,
                ),
                None,
            )
        if current.normal_since is not None:
            return Assessed(None, replace(current, normal_since=None))
        return Assessed(None, None)
    normal_since = current.normal_since or at
    resolved = auto_resolve(
        replace(current, normal_since=normal_since), now=at, after=auto_resolve_after
    )
    if resolved is not None:
        return Assessed(resolved, None)
    if current.normal_since is None:
        return Assessed(None, replace(current, normal_since=at))
    return Assessed(None, None)


def auto_resolve(state: AlertState, *, now: datetime, after: timedelta | None) -> Transition | None:
    """The system resolves an alert whose patient has been below the alerting threshold for
    ``after`` (None: never)."""
    if after is None or state.normal_since is None or state.status == "resolved":
        return None
    if _aware(now) - state.normal_since < after:
        return None
    minutes = after.total_seconds() / 60
    return Transition(
        "resolved",
        replace(state, status="resolved", snoozed_until=None, normal_since=None),
        escalation="cancel",
        detail={
            "automatic": True,
            "reason": f"below the alerting threshold since {state.normal_since.isoformat()} "
            f"({minutes:g} minutes or more)",
        },
    )

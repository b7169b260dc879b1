"""Escalation plans: when each step of a route is paged and by when it must acknowledge, and
which unacknowledged alerts are due to move on. Pure: the clock is an argument.

Step ``i`` is paged when step ``i-1``'s deadline passes; its deadline is ``opened_at`` plus the
ack timeouts of steps ``0..i``. A step without a timeout (advice to call 112) is paged together
with the step after it; the last step, if it has no timeout, never expires. Deadlines are
computed in UTC, so a timeout spanning a daylight-saving change lasts its real length.

The service stores a route as durable :func:`timers` when an alert is raised or worsens, and
decides each timer that comes due with :func:`on_due`.

Example::

    >>> escalation, page_now = open_escalation("a-1", route, opened_at=opened)
    >>> for decision in due(open_escalations, now=now):
    ...     page(decision.notify)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from services.alerts.domain.hours import NaiveDatetimeError
from services.alerts.domain.routing import Route, Step


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step of a route on the clock (UTC); ``deadline`` None means it never expires."""

    index: int
    step: Step
    paged_at: datetime
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an open alert stands on its route; ``exhausted`` once its last step expired."""

    alert_id: str
    route: Route
    opened_at: datetime
    current_index: int = 0
    acknowledged: bool = False
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class EscalationDue:
    """A decision for one alert: page ``notify`` and move to ``to_index``.

    ``exhausted`` says the last step's deadline passed unacknowledged as well: nobody further
    is left on the chain, and the operator must step in.
    """

    alert_id: str
    from_index: int
    to_index: int
    notify: tuple[Step, ...]
    deadline: datetime
    exhausted: bool


def _utc(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise NaiveDatetimeError(at)
    return at.astimezone(UTC)


def deadlines(route: Route, *, opened_at: datetime) -> list[PlannedStep]:
    """The whole route on the clock, from the moment the alert opened."""
    plan: list[PlannedStep] = []
    paged_at = _utc(opened_at)
    last = len(route.chain) - 1
    for index, step in enumerate(route.chain):
        if step.ack_timeout_s is not None:
            deadline: datetime | None = paged_at + timedelta(seconds=step.ack_timeout_s)
        elif index < last:
            deadline = paged_at
        else:
            deadline = None
        plan.append(PlannedStep(index=index, step=step, paged_at=paged_at, deadline=deadline))
        if deadline is not None:
            paged_at = deadline
    return plan


def open_escalation(
    alert_id: str, route: Route, *, opened_at: datetime
) -> tuple[Escalation, tuple[Step, ...]]:
    """The escalation of a newly opened alert and the steps to page at once: those without a
    timeout up to and including the first that waits for an acknowledgement (advice to call
    112 and the acute team, for a high alert). The escalation stands on that last one."""
    plan = deadlines(route, opened_at=opened_at)
    start = _utc(opened_at)
    index = 0
    while index + 1 < len(plan) and plan[index + 1].paged_at <= start:
        index += 1
    escalation = Escalation(
        alert_id=alert_id, route=route, opened_at=opened_at, current_index=index
    )
    return escalation, tuple(route.chain[: index + 1])


def next_step(route: Route, current_index: int) -> int | None:
    """The index of the step after ``current_index``, or None at the end of the chain."""
    if current_index < 0 or current_index >= len(route.chain):
        raise IndexError(f"step {current_index} is outside a chain of {len(route.chain)}")
    following = current_index + 1
    return following if following < len(route.chain) else None


def current_deadline(escalation: Escalation) -> datetime | None:
    """When the current step expires (UTC), or None if nothing is left to wait for."""
    if escalation.acknowledged or escalation.exhausted:
        return None
    plan = deadlines(escalation.route, opened_at=escalation.opened_at)
    return plan[escalation.current_index].deadline


def due(escalations: Iterable[Escalation], now: datetime) -> list[EscalationDue]:
    """Decisions for the unacknowledged alerts whose current step has expired at ``now``.

    An alert whose escalation fell behind (the service was down) catches up in one decision:
    every step whose turn has come is paged, and it lands on the latest of them.
    """
    now_utc = _utc(now)
    decisions: list[EscalationDue] = []
    for escalation in escalations:
        expired_at = current_deadline(escalation)
        if expired_at is None or expired_at > now_utc:
            continue
        plan = deadlines(escalation.route, opened_at=escalation.opened_at)
        to_index = escalation.current_index
        notify: list[Step] = []
        while (following := next_step(escalation.route, to_index)) is not None:
            if plan[following].paged_at > now_utc:
                break
            to_index = following
            notify.append(plan[following].step)
        last = plan[to_index]
        exhausted = (
            next_step(escalation.route, to_index) is None
            and last.deadline is not None
            and last.deadline <= now_utc
        )
        decisions.append(
            EscalationDue(
                alert_id=escalation.alert_id,
                from_index=escalation.current_index,
                to_index=to_index,
                notify=tuple(notify),
                deadline=expired_at,
                exhausted=exhausted,
            )
        )
    return decisions


@dataclass(frozen=True, slots=True)
class Timer:
    """One durable escalation timer of an alert: page ``step`` at ``due_at``.

    ``step`` None is the last timer of a chain whose final responder has a timeout: it goes off
    when nobody on the chain acknowledged, so that the operators step in.
    """

    index: int
    step: Step | None
    due_at: datetime
    deadline: datetime | None
    paged_now: bool


def timers(route: Route, *, start: datetime) -> list[Timer]:
    """The timers to store when an alert is raised or worsened at ``start``: the responders
    paged at once (``paged_now``), those paged later, and the chain running out."""
    plan = deadlines(route, opened_at=start)
    start_utc = _utc(start)
    result = [
        Timer(
            index=p.index,
            step=p.step,
            due_at=p.paged_at,
            deadline=p.deadline,
            paged_now=p.paged_at <= start_utc,
        )
        for p in plan
    ]
    last = plan[-1]
    if last.deadline is not None:
        result.append(
            Timer(index=len(plan), step=None, due_at=last.deadline, deadline=None, paged_now=False)
        )
    return result


@dataclass(frozen=True, slots=True)
class DueTimer:
    """What to do with a timer that has come due: ``fire`` it, ``cancel`` it (the alert is no
    longer open), or ``defer`` it to ``until`` (the alert is snoozed)."""

    action: Literal["fire", "cancel", "defer"]
    until: datetime | None = None


def on_due(*, status: str, snoozed_until: datetime | None, now: datetime) -> DueTimer:
    """Decide a due timer against the alert's state as read under its lock."""
    if status != "open":
        return DueTimer("cancel")
    if snoozed_until is not None and _utc(snoozed_until) > _utc(now):
        return DueTimer("defer", snoozed_until)
    return DueTimer("fire")

"""Alert transitions in PostgreSQL: lock the alert, apply a lifecycle rule, and store the new
state, its effect on the escalation timers and the event — in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.alerts import escalations
from services.alerts.domain.lifecycle import AlertState, Transition, auto_resolve
from services.alerts.history import record_change
from shared.db import database_errors
from shared.errors import NotFound
from shared.events import AlertChanged

AUTO_RESOLVER = "system:auto-resolve"

_STATE_COLUMNS = "status, severity, assigned_to, assigned_name, snoozed_until, normal_since"


def state_from_row(row: Any) -> AlertState:
    return AlertState(
        status=row["status"],
        severity=row["severity"],
        assigned_to=row["assigned_to"],
        assigned_name=row["assigned_name"],
        snoozed_until=row["snoozed_until"],
        normal_since=row["normal_since"],
    )


async def save_state(
    conn: asyncpg.Connection,
    alert_id: uuid.UUID,
    transition: Transition,
    *,
    actor: str,
    at: datetime,
) -> None:
    """Write the transition's new state onto the alert row (with who and when for an
    acknowledgement, a resolution or an assignment)."""
    state = transition.state
    await conn.execute(
        """UPDATE alerts
              SET status = $2, severity = $3, assigned_to = $4, assigned_name = $5,
                  snoozed_until = $6, normal_since = $7, updated_at = $8,
                  assigned_at = CASE WHEN $9 = 'assigned' THEN $8 ELSE assigned_at END,
                  acknowledged_at = CASE WHEN $9 = 'acknowledged' THEN $8 ELSE acknowledged_at END,
                  acknowledged_by = CASE WHEN $9 = 'acknowledged' THEN $10 ELSE acknowledged_by END,
                  resolved_at = CASE WHEN $9 = 'resolved' THEN $8 ELSE resolved_at END,
                  resolved_by = CASE WHEN $9 = 'resolved' THEN $10 ELSE resolved_by END
            WHERE alert_id = $1""",
        alert_id,
        state.status,
        state.severity,
        state.assigned_to,
        state.assigned_name,
        state.snoozed_until,
        state.normal_since,
        at,
        transition.change,
        actor,
    )


async def apply_timers(
    conn: asyncpg.Connection, alert_id: uuid.UUID, transition: Transition, *, at: datetime
) -> None:
    """Cancel or defer the pending escalation timers as the transition says (a re-plan is the
    engine's, which knows the new route)."""
    if transition.escalation == "cancel":
        await escalations.cancel(conn, alert_id=alert_id, at=at, reason=transition.change)
    elif transition.escalation == "defer" and transition.defer_by:
        await escalations.defer(conn, alert_id=alert_id, by=transition.defer_by)


async def act(
    pool: asyncpg.Pool,
    *,
    alert_id: uuid.UUID,
    org_id: str,
    actor: str,
    rule: Callable[[AlertState, datetime], Transition],
    alerts_topic: str,
) -> AlertChanged:
    """Apply a clinician's action to an alert of a patient ``org_id`` is responsible for.

    Raises NotFound for an alert outside the organisation (its existence is not disclosed),
    and whatever the rule raises when the action is not allowed.
    """
    async with database_errors("changing an alert"), pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""SELECT {_STATE_COLUMNS} FROM alerts a
                 WHERE a.alert_id = $1
                   AND EXISTS (SELECT 1 FROM patient_orgs po
                                WHERE po.patient_id = a.patient_id AND po.org_id = $2)
                   FOR UPDATE OF a""",
            alert_id,
            org_id,
        )
        if row is None:
            raise NotFound("no such alert for your organisation")
        at = datetime.now(UTC)
        transition = rule(state_from_row(row), at)
        await save_state(conn, alert_id, transition, actor=actor, at=at)
        await apply_timers(conn, alert_id, transition, at=at)
        return await record_change(
            conn,
            alert_id=alert_id,
            change=transition.change,
            actor=actor,
            alerts_topic=alerts_topic,
            detail=transition.detail or None,
            at=at,
        )


async def auto_resolve_due(
    pool: asyncpg.Pool,
    *,
    after: timedelta | None,
    alerts_topic: str,
    now: datetime | None = None,
    limit: int = 200,
) -> list[AlertChanged]:
    """Resolve the alerts whose patients have been below the alerting threshold for ``after``
    even though no further assessment came to say so."""
    if after is None:
        return []
    now = now or datetime.now(UTC)
    resolved: list[AlertChanged] = []
    async with (
        database_errors("auto-resolving alerts"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        rows = await conn.fetch(
            f"""SELECT alert_id, {_STATE_COLUMNS} FROM alerts
                 WHERE status <> 'resolved' AND normal_since <= $1
                 ORDER BY normal_since LIMIT $2
                 FOR UPDATE SKIP LOCKED""",
            now - after,
            limit,
        )
        for row in rows:
            transition = auto_resolve(state_from_row(row), now=now, after=after)
            if transition is None:
                continue
            await save_state(conn, row["alert_id"], transition, actor=AUTO_RESOLVER, at=now)
            await apply_timers(conn, row["alert_id"], transition, at=now)
            resolved.append(
                await record_change(
                    conn,
                    alert_id=row["alert_id"],
                    change=transition.change,
                    actor=AUTO_RESOLVER,
                    alerts_topic=alerts_topic,
                    detail=transition.detail,
                    at=now,
                )
            )
    return resolved

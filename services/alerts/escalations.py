"""Durable escalation timers: stored with the alert's transition, fired by a scheduler that any
number of instances may run at once.

The scheduler claims alerts that have due timers with ``FOR UPDATE SKIP LOCKED`` — the lock a
clinician's acknowledgement also takes, always the alert before its timers, so the two never
deadlock — then reads the timers again under that lock and fires each at most once: the
'escalated' event, the timer's 'fired' mark and the outbox row commit together. A scheduler that
dies before its commit leaves the timers pending for the next run; once committed, a timer is
never fired again. An acknowledged or resolved alert's timers are cancelled with that
transition, and the scheduler cancels rather than fires any it still finds.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.alerts import alert_metrics
from services.alerts.domain.escalation import Timer, on_due
from services.alerts.history import record_change
from shared.db import database_errors
from shared.events import AlertChanged

log = logging.getLogger(__name__)

ACTOR = "system:escalation"
EXHAUSTED = "exhausted"


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def store(
    conn: asyncpg.Connection,
    *,
    alert_id: uuid.UUID,
    timers: Sequence[Timer],
    seq: int,
    at: datetime,
) -> int:
    """Store a new plan's timers (those paged at once as fired by event ``seq``); return the
    plan's number. The caller cancels the previous plan first."""
    plan: int = await conn.fetchval(
        "SELECT coalesce(max(plan), 0) + 1 FROM escalation_steps WHERE alert_id = $1", alert_id
    )
    await conn.executemany(
        """INSERT INTO escalation_steps (alert_id, plan, step_index, kind, step, due_at, deadline,
               status, fired_at, fired_by, seq)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [
            (
                alert_id,
                plan,
                t.index,
                t.step.kind if t.step is not None else EXHAUSTED,
                t.step.to_json() if t.step is not None else None,
                t.due_at,
                t.deadline,
                "fired" if t.paged_now else "pending",
                at if t.paged_now else None,
                "transition" if t.paged_now else None,
                seq if t.paged_now else None,
            )
            for t in timers
        ],
    )
    return plan


async def cancel(
    conn: asyncpg.Connection, *, alert_id: uuid.UUID, at: datetime, reason: str
) -> int:
    """Cancel the alert's pending timers; return how many there were."""
    result: str = await conn.execute(
        "UPDATE escalation_steps SET status = 'cancelled', cancelled_at = $2, cancel_reason = $3 "
        "WHERE alert_id = $1 AND status = 'pending'",
        alert_id,
        at,
        reason,
    )
    return int(result.split()[-1])


async def defer(conn: asyncpg.Connection, *, alert_id: uuid.UUID, by: timedelta) -> int:
    """Move the alert's pending timers by ``by`` (a snooze stops the escalation clock)."""
    result: str = await conn.execute(
        "UPDATE escalation_steps SET due_at = due_at + $2, deadline = deadline + $2 "
        "WHERE alert_id = $1 AND status = 'pending'",
        alert_id,
        by,
    )
    return int(result.split()[-1])


def _detail(row: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "plan": row["plan"],
        "step": row["step_index"],
        "responder": row["step"],
        "due_at": row["due_at"].isoformat(),
        "deadline": row["deadline"].isoformat() if row["deadline"] else None,
    }
    if row["kind"] == EXHAUSTED:
        detail["exhausted"] = True
    return detail


async def fire_due(
    pool: asyncpg.Pool,
    *,
    alerts_topic: str,
    now: datetime | None = None,
    limit: int = 200,
    instance: str = "",
) -> list[AlertChanged]:
    """Fire the timers due at ``now`` of up to ``limit`` alerts; return the events recorded."""
    now = now or datetime.now(UTC)
    fired: list[AlertChanged] = []
    async with database_errors("firing escalations"), pool.acquire() as conn, conn.transaction():
        alerts = await conn.fetch(
            """SELECT alert_id, status, snoozed_until FROM alerts
                WHERE alert_id IN (SELECT alert_id FROM escalation_steps
                                    WHERE status = 'pending' AND due_at <= $1)
                ORDER BY alert_id LIMIT $2
                FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        if not alerts:
            return fired
        by_id = {a["alert_id"]: a for a in alerts}
        # Read again under the alerts' locks: a timer fired or cancelled since is not pending.
        timers = await conn.fetch(
            """SELECT * FROM escalation_steps
                WHERE alert_id = ANY($1::uuid[]) AND status = 'pending' AND due_at <= $2
                ORDER BY due_at, alert_id, step_index
                FOR UPDATE""",
            list(by_id),
            now,
        )
        for timer in timers:
            alert = by_id[timer["alert_id"]]
            decision = on_due(status=alert["status"], snoozed_until=alert["snoozed_until"], now=now)
            if decision.action == "cancel":
                await conn.execute(
                    "UPDATE escalation_steps SET status = 'cancelled', cancelled_at = $2, "
                    "cancel_reason = $3 WHERE id = $1",
                    timer["id"],
                    now,
                    f"alert {alert['status']}",
                )
                continue
            if decision.action == "defer":
                await conn.execute(
                    "UPDATE escalation_steps SET due_at = $2 WHERE id = $1",
                    timer["id"],
                    decision.until,
                )
                continue
            event = await record_change(
                conn,
                alert_id=timer["alert_id"],
                change="escalated",
                actor=ACTOR,
                alerts_topic=alerts_topic,
                detail=_detail(timer),
                at=now,
            )
            await conn.execute(
                "UPDATE escalation_steps SET status = 'fired', fired_at = $2, fired_by = $3, "
                "seq = $4 WHERE id = $1",
                timer["id"],
                now,
                instance or instance_name(),
                event.seq,
            )
            fired.append(event)
            lateness = (now - timer["due_at"]).total_seconds()
            alert_metrics.escalations_fired.labels(timer["kind"]).inc()
            alert_metrics.escalation_lateness.observe(max(lateness, 0.0))
            extra = {
                "alert_id": str(timer["alert_id"]),
                "step": timer["step_index"],
                "kind": timer["kind"],
                "org_id": (timer["step"] or {}).get("org_id"),
                "lateness_s": round(lateness, 3),
            }
            if timer["kind"] == EXHAUSTED:
                log.warning("no responder acknowledged the alert; operator needed", extra=extra)
            else:
                log.info("alert escalated", extra=extra)
    return fired


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    """When the earliest pending timer is due, or None."""
    async with database_errors("reading the next escalation deadline"):
        due: datetime | None = await pool.fetchval(
            "SELECT min(due_at) FROM escalation_steps WHERE status = 'pending'"
        )
    return due

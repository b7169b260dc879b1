"""The alert engine: applies assessments to alerts in PostgreSQL, with history and outbox.

Each batch is one transaction: the alert rows, their append-only events, their escalation
timers and the outbox rows that will carry the events to ``naervagt.alerts.v1`` commit together,
so no transition is lost, none is published without being stored, and no raised alert is left
without its escalation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from services.alerts import escalations
from services.alerts.care_store import CareStore
from services.alerts.domain.escalation import timers
from services.alerts.domain.lifecycle import Transition, on_assessment
from services.alerts.domain.routing import RoutingPolicy
from services.alerts.history import alert_view, record_change
from services.alerts.lifecycle import AUTO_RESOLVER, apply_timers, save_state, state_from_row
from services.alerts.responders import Router, route_key
from shared.db import database_errors
from shared.events import AlertChanged, RiskAssessed

__all__ = ["ACTOR_SYSTEM", "alert_view", "apply_assessments", "record_change"]

ACTOR_SYSTEM = "system:scorer"


async def _raise_or_worsen(
    conn: asyncpg.Connection,
    a: RiskAssessed,
    transition: Transition,
    *,
    alert_id: uuid.UUID | None,
    router: Router,
    alerts_topic: str,
    now: datetime,
) -> AlertChanged:
    news2 = a.news2.model_dump() if a.news2 else None
    route = await router.route(
        conn, a.patient_id, severity_or_kind=route_key(a.kind, a.severity), at=now
    )
    routed = {**route.to_json(), "at": now.isoformat()}
    if alert_id is None:
        alert_id = uuid.uuid4()
        await conn.execute(
            """INSERT INTO alerts (alert_id, patient_id, kind, dedup_key, status, severity,
                   news2, reasons, assessment, opened_at, updated_at, route)
               VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $9, $10)""",
            alert_id,
            a.patient_id,
            a.kind,
            f"{a.patient_id}:{a.kind}",
            a.severity,
            news2,
            a.reasons,
            a.model_dump(mode="json"),
            now,
            routed,
        )
    else:
        await save_state(conn, alert_id, transition, actor=ACTOR_SYSTEM, at=now)
        await conn.execute(
            "UPDATE alerts SET news2 = $2, reasons = $3, assessment = $4, route = $5 "
            "WHERE alert_id = $1",
            alert_id,
            news2,
            a.reasons,
            a.model_dump(mode="json"),
            routed,
        )
        await escalations.cancel(conn, alert_id=alert_id, at=now, reason="replanned")
    plan = timers(route, start=now)
    detail = {
        **transition.detail,
        "route": route.to_json(),
        "paged": [t.step.to_json() for t in plan if t.paged_now and t.step is not None],
    }
    event = await record_change(
        conn,
        alert_id=alert_id,
        change=transition.change,
        actor=ACTOR_SYSTEM,
        alerts_topic=alerts_topic,
        detail=detail,
        at=now,
    )
    await escalations.store(conn, alert_id=alert_id, timers=plan, seq=event.seq, at=now)
    return event


async def apply_assessments(
    pool: asyncpg.Pool,
    assessments: Sequence[RiskAssessed],
    *,
    alerts_topic: str,
    min_low_total: int,
    router: Router | None = None,
    auto_resolve_after: timedelta | None = None,
) -> list[AlertChanged]:
    """Raise, worsen or auto-resolve the alert of each assessment's patient and kind.

    Without a ``router`` the default routing policy is used with an uncached care structure.
    """
    router = router or Router(CareStore(ttl_s=0), RoutingPolicy())
    changes: list[AlertChanged] = []
    async with database_errors("applying assessments"), pool.acquire() as conn, conn.transaction():
        for a in assessments:
            row = await conn.fetchrow(
                "SELECT alert_id, status, severity, assigned_to, assigned_name, snoozed_until, "
                "normal_since FROM alerts WHERE dedup_key = $1 AND status <> 'resolved' "
                "FOR UPDATE",
                f"{a.patient_id}:{a.kind}",
            )
            outcome = on_assessment(
                state_from_row(row) if row else None,
                severity=a.severity,
                news2_total=a.news2.total if a.news2 else None,
                min_low_total=min_low_total,
                at=a.window_end,
                auto_resolve_after=auto_resolve_after,
                kind=a.kind,
            )
            transition = outcome.transition
            if transition is None:
                if row is not None and outcome.state is not None:
                    await conn.execute(
                        "UPDATE alerts SET normal_since = $2 WHERE alert_id = $1",
                        row["alert_id"],
                        outcome.state.normal_since,
                    )
                continue
            now = datetime.now(UTC)
            if transition.escalation == "replan":
                changes.append(
                    await _raise_or_worsen(
                        conn,
                        a,
                        transition,
                        alert_id=row["alert_id"] if row else None,
                        router=router,
                        alerts_topic=alerts_topic,
                        now=now,
                    )
                )
                continue
            assert row is not None  # only an existing alert resolves
            alert_id = row["alert_id"]
            await save_state(conn, alert_id, transition, actor=AUTO_RESOLVER, at=now)
            await apply_timers(conn, alert_id, transition, at=now)
            changes.append(
                await record_change(
                    conn,
                    alert_id=alert_id,
                    change=transition.change,
                    actor=AUTO_RESOLVER,
                    alerts_topic=alerts_topic,
                    detail=transition.detail,
                    at=now,
                )
            )
    return changes

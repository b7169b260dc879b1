"""The alert engine: applies assessments to alerts in PostgreSQL, with history and outbox.

Each batch is one transaction: the alert rows, their append-only events and the outbox rows
that will carry them to ``naervagt.alerts.v1`` commit together, so no transition is lost and
none is published without being stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.alerts.domain.alerting import OpenAlert, decide
from shared.db import database_errors
from shared.events import AlertChanged, AlertView, News2Part, RiskAssessed
from shared.outbox import enqueue

ACTOR_SYSTEM = "system:scorer"


def alert_view(row: Any) -> AlertView:
    return AlertView(
        id=str(row["alert_id"]),
        patient_id=row["patient_id"],
        kind=row["kind"],
        status=row["status"],
        severity=row["severity"],
        news2=News2Part.model_validate(row["news2"]) if row["news2"] else None,
        reasons=list(row["reasons"]),
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
    )


async def record_change(
    conn: asyncpg.Connection,
    *,
    alert_id: uuid.UUID,
    change: str,
    actor: str,
    alerts_topic: str,
) -> AlertChanged:
    """Append the alert's current state as an event and queue it for publication."""
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", alert_id)
    view = alert_view(row)
    org_ids = [
        r["org_id"]
        for r in await conn.fetch(
            "SELECT org_id FROM patient_orgs WHERE patient_id = $1", view.patient_id
        )
    ]
    at = datetime.now(UTC)
    seq = await conn.fetchval(
        "INSERT INTO alert_events (alert_id, change, actor, at, body) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        alert_id,
        change,
        actor,
        at,
        view.model_dump(mode="json"),
    )
    event = AlertChanged(
        seq=seq,
        change=change,
        actor=actor,
        at=at,
        alert=view,
        org_ids=org_ids,
    )
    await enqueue(
        conn,
        topic=alerts_topic,
        key=view.patient_id,
        ce_type=AlertChanged.ce_type,
        body=event.model_dump(mode="json"),
    )
    return event


async def apply_assessments(
    pool: asyncpg.Pool,
    assessments: Sequence[RiskAssessed],
    *,
    alerts_topic: str,
    min_low_total: int,
) -> list[AlertChanged]:
    changes: list[AlertChanged] = []
    async with database_errors("applying assessments"), pool.acquire() as conn, conn.transaction():
        for a in assessments:
            dedup_key = f"{a.patient_id}:{a.kind}"
            row = await conn.fetchrow(
                "SELECT alert_id, severity FROM alerts "
                "WHERE dedup_key = $1 AND status <> 'resolved' FOR UPDATE",
                dedup_key,
            )
            current = OpenAlert(row["severity"]) if row else None
            decision = decide(
                current,
                severity=a.severity,
                news2_total=a.news2.total if a.news2 else None,
                min_low_total=min_low_total,
            )
            if decision.action == "none":
                continue
            now = datetime.now(UTC)
            news2 = a.news2.model_dump() if a.news2 else None
            if decision.action == "raise":
                alert_id = uuid.uuid4()
                await conn.execute(
                    """INSERT INTO alerts (alert_id, patient_id, kind, dedup_key, status, severity,
                           news2, reasons, assessment, opened_at, updated_at)
                       VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $9)""",
                    alert_id,
                    a.patient_id,
                    a.kind,
                    dedup_key,
                    decision.severity,
                    news2,
                    a.reasons,
                    a.model_dump(mode="json"),
                    now,
                )
                change = "raised"
            else:
                alert_id = row["alert_id"]
                # A worse condition ends an acknowledgement: the alert is open again.
                await conn.execute(
                    """UPDATE alerts SET severity = $2, news2 = $3, reasons = $4, assessment = $5,
                           status = 'open', updated_at = $6 WHERE alert_id = $1""",
                    alert_id,
                    decision.severity,
                    news2,
                    a.reasons,
                    a.model_dump(mode="json"),
                    now,
                )
                change = "worsened"
            changes.append(
                await record_change(
                    conn,
                    alert_id=alert_id,
                    change=change,
                    actor=ACTOR_SYSTEM,
                    alerts_topic=alerts_topic,
                )
            )
    return changes

"""The append-only history of alert transitions: every change is stored as an ``alert_events``
row with who and when, queued on the outbox for the alerts topic, and queued for the webhooks of
the organisations responsible for the patient — all in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.alerts import alert_metrics, webhooks
from shared.events import AlertChanged, AlertView, News2Part
from shared.outbox import enqueue


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
        acknowledged_by=row.get("acknowledged_by"),
        assigned_to=row.get("assigned_to"),
        assigned_name=row.get("assigned_name"),
        snoozed_until=row.get("snoozed_until"),
    )


async def record_change(
    conn: asyncpg.Connection,
    *,
    alert_id: uuid.UUID,
    change: str,
    actor: str,
    alerts_topic: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AlertChanged:
    """Append the alert's current state as an event and queue it for publication.

    ``detail`` (the note, the assignee, the responder paged) is stored with the event and
    travels in the published body as an extra ``detail`` key.
    """
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", alert_id)
    view = alert_view(row)
    org_ids = [
        r["org_id"]
        for r in await conn.fetch(
            "SELECT org_id FROM patient_orgs WHERE patient_id = $1 ORDER BY org_id",
            view.patient_id,
        )
    ]
    at = at or datetime.now(UTC)
    seq = await conn.fetchval(
        "INSERT INTO alert_events (alert_id, change, actor, at, body, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        alert_id,
        change,
        actor,
        at,
        view.model_dump(mode="json"),
        detail,
    )
    event = AlertChanged(
        seq=seq,
        change=change,
        actor=actor,
        at=at,
        alert=view,
        org_ids=org_ids,
    )
    body = event.model_dump(mode="json")
    if detail:
        body["detail"] = detail
    await enqueue(
        conn,
        topic=alerts_topic,
        key=view.patient_id,
        ce_type=AlertChanged.ce_type,
        body=body,
    )
    await webhooks.enqueue_deliveries(conn, seq=seq, org_ids=org_ids, change=change)
    alert_metrics.alert_transitions.labels(change).inc()
    return event

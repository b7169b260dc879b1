"""The live console fan-out: alert changes from the alerts topic to each clinician's WebSocket.

Every instance reads the whole alerts topic (no consumer group) and hands each change to the
connected clinicians of the organisations responsible for the patient. Each connection has its
own bounded queue, so one slow browser never holds up the others; an overflowing one is closed
and resynchronises from its last ``seq`` when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from shared.auth import Principal
from shared.errors import PoisonMessage
from shared.events import AlertChanged
from shared.kafka import decode

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000


def console_message(seq: int, change: str, alert: dict[str, Any]) -> dict[str, Any]:
    news2 = alert.get("news2") or None
    return {
        "type": "alert",
        "seq": seq,
        "change": change,
        "alert": {
            "id": alert["id"],
            "patient_id": alert["patient_id"],
            "kind": alert["kind"],
            "status": alert["status"],
            "severity": alert["severity"],
            "news2": (
                {"total": news2["total"], "components": news2["components"]} if news2 else None
            ),
            "reasons": alert["reasons"],
            "opened_at": alert["opened_at"],
            "updated_at": alert["updated_at"],
            "acknowledged_by": alert.get("acknowledged_by"),
            "assigned_to": alert.get("assigned_to"),
            "assigned_name": alert.get("assigned_name"),
            "snoozed_until": alert.get("snoozed_until"),
        },
    }


@dataclass(eq=False)
class ConsoleClient:
    principal: Principal
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    # Sequence numbers already sent in the snapshot, so a change racing it is not shown twice.
    snapshot_seqs: set[int] = field(default_factory=set)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class ConsoleHub:
    def __init__(self) -> None:
        self._clients: set[ConsoleClient] = set()

    def attach(self, client: ConsoleClient) -> None:
        self._clients.add(client)

    def detach(self, client: ConsoleClient) -> None:
        self._clients.discard(client)

    def deliver(self, event: AlertChanged) -> int:
        """Queue the change for every client allowed to see it; return how many got it."""
        message = console_message(event.seq, event.change, event.alert.model_dump(mode="json"))
        orgs = set(event.org_ids)
        delivered = 0
        for client in self._clients:
            if client.principal.org_id not in orgs or event.seq in client.snapshot_seqs:
                continue
            try:
                client.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                client.overflowed.set()
        return delivered


async def snapshot(pool: asyncpg.Pool, org_id: str, *, since: int | None) -> list[dict[str, Any]]:
    """Messages that bring a console up to date: every change after ``since``, or else the
    current state of every open alert of the organisation's patients."""
    if since is not None:
        rows = await pool.fetch(
            """SELECT e.seq, e.change, e.body FROM alert_events e
                 JOIN alerts a USING (alert_id)
                 JOIN patient_orgs po ON po.patient_id = a.patient_id AND po.org_id = $1
                WHERE e.seq > $2 ORDER BY e.seq LIMIT 10000""",
            org_id,
            since,
        )
    else:
        rows = await pool.fetch(
            """SELECT DISTINCT ON (a.alert_id) e.seq, e.change, e.body FROM alerts a
                 JOIN patient_orgs po ON po.patient_id = a.patient_id AND po.org_id = $1
                 JOIN alert_events e ON e.alert_id = a.alert_id
                WHERE a.status <> 'resolved'
                ORDER BY a.alert_id, e.seq DESC""",
            org_id,
        )
        rows = sorted(rows, key=lambda r: r["seq"])
    return [console_message(r["seq"], r["change"], r["body"]) for r in rows]


async def fan_out(consumer: AIOKafkaConsumer, hub: ConsoleHub, started: asyncio.Event) -> None:
    """Read the alerts topic from its end for as long as the service runs."""
    await consumer.start()
    started.set()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(AlertChanged, record)
                    except PoisonMessage as poison:
                        log.warning(
                            "undecodable alert change skipped",
                            extra={"reason": poison.message[:300]},
                        )
                        continue
                    hub.deliver(event)
    finally:
        await consumer.stop()

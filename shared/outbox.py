"""The transactional outbox: events are written with the state change and published after.

``relay`` publishes pending rows in order and deletes them once the broker acknowledged; rows
are locked with SKIP LOCKED so several instances can relay at once without sending twice.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.db import database_errors
from shared.kafka import Outgoing, Publisher, cloudevent_headers


async def enqueue(
    conn: asyncpg.Connection, *, topic: str, key: str, ce_type: str, body: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO outbox (topic, key, ce_type, body) VALUES ($1, $2, $3, $4)",
        topic,
        key,
        ce_type,
        body,
    )


async def relay(pool: asyncpg.Pool, publisher: Publisher, *, source: str, limit: int = 500) -> int:
    """Publish up to ``limit`` pending events; return how many were published."""
    async with database_errors("relaying the outbox"), pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, topic, key, ce_type, body FROM outbox ORDER BY id LIMIT $1 "
            "FOR UPDATE SKIP LOCKED",
            limit,
        )
        if not rows:
            return 0
        await publisher.publish(
            [
                Outgoing(
                    topic=r["topic"],
                    key=r["key"],
                    value=json.dumps(r["body"]).encode(),
                    headers=cloudevent_headers(
                        r["ce_type"], source=source, subject=r["key"], event_id=f"outbox-{r['id']}"
                    ),
                )
                for r in rows
            ]
        )
        await conn.execute(
            "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
    return len(rows)

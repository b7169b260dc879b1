"""Accepting readings: deduplicate, publish, and answer only once the broker acknowledged.

The receipts of new readings are inserted in a transaction that stays open while the broker
acknowledges; a broker failure rolls them back, so the device's retry is accepted, not counted
as a duplicate. Two concurrent requests carrying the same reading serialise on its receipt row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.ingest.domain.validation import Reading
from shared.db import database_errors
from shared.events import ReadingAccepted
from shared.kafka import Publisher, outgoing

SOURCE = "/naervagt/ingest"


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int
    duplicates: int


async def accept(
    pool: asyncpg.Pool,
    publisher: Publisher,
    *,
    topic: str,
    device_id: str,
    patient_id: str,
    readings: Sequence[Reading],
) -> Outcome:
    if not readings:
        return Outcome(0, 0)
    received_at = datetime.now(UTC)
    async with database_errors("accepting readings"), pool.acquire() as conn, conn.transaction():
        fresh = {
            r["reading_id"]
            for r in await conn.fetch(
                """INSERT INTO reading_receipts (device_id, reading_id)
                   SELECT $1, unnest($2::text[])
                   ON CONFLICT DO NOTHING RETURNING reading_id""",
                device_id,
                [r.reading_id for r in readings],
            )
        }
        messages = [
            outgoing(
                topic,
                patient_id,
                ReadingAccepted(
                    device_id=device_id,
                    reading_id=r.reading_id,
                    patient_id=patient_id,
                    type=r.type,
                    value=r.value,
                    unit=r.unit,
                    measured_at=r.measured_at,
                    received_at=received_at,
                    late=r.late,
                ),
                source=SOURCE,
                subject=r.reading_id,
            )
            for r in readings
            if r.reading_id in fresh
        ]
        await publisher.publish(messages)
    return Outcome(accepted=len(messages), duplicates=len(readings) - len(messages))

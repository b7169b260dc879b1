"""Stores accepted readings in PostgreSQL in batches (COPY), idempotent on (device, reading)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.db import database_errors
from shared.events import ReadingAccepted
from shared.kafka import Delivery

_COLUMNS = (
    "device_id",
    "reading_id",
    "patient_id",
    "type",
    "value_num",
    "value_text",
    "unit",
    "measured_at",
    "received_at",
    "late",
)


def _row(e: ReadingAccepted) -> tuple[object, ...]:
    if isinstance(e.value, bool | float | int):
        number, text = float(e.value), None
    else:
        number, text = None, e.value
    return (
        e.device_id,
        e.reading_id,
        e.patient_id,
        e.type.value,
        number,
        text,
        e.unit,
        e.measured_at,
        e.received_at,
        e.late,
    )


async def store_readings(
    pool: asyncpg.Pool, deliveries: Sequence[Delivery[ReadingAccepted]]
) -> int:
    """Write the batch; return how many rows were new. Replayed rows are ignored."""
    async with database_errors("storing readings"), pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_readings "
            "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(
            "incoming_readings", records=[_row(d.event) for d in deliveries], columns=_COLUMNS
        )
        status = await conn.execute(
            "INSERT INTO readings SELECT * FROM incoming_readings ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])

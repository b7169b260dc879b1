"""Stores accepted readings in PostgreSQL in batches (COPY), idempotent on (device, reading).

The readings table is partitioned by month; before writing, the store makes sure the partition
of every month in the batch exists (``ensure_readings_partition`` in migration 0002), so that
readings never pile up in the default partition.

When the broker's log goes back (an in-memory broker restarted), the consumer's position and
its committed offsets point into a log that no longer exists and would skip the start of the
new one; :class:`Rewinder` moves it back to the beginning instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

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


def month_of(moment: datetime) -> tuple[int, int]:
    """The (year, month) in UTC holding ``moment``: which partition it belongs to."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.year, moment.month


class ReadingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._months: set[tuple[int, int]] = set()  # partitions known to exist

    async def store(self, deliveries: Sequence[Delivery[ReadingAccepted]]) -> int:
        """Write the batch; return how many rows were new. Replayed rows are ignored."""
        if not deliveries:
            return 0
        rows = [_row(d.event) for d in deliveries]
        months = {month_of(d.event.measured_at) for d in deliveries} - self._months
        async with database_errors("storing readings"), self._pool.acquire() as conn:
            for year, month in sorted(months):
                first_day = datetime(year, month, 1, tzinfo=UTC)
                await conn.execute("SELECT ensure_readings_partition($1)", first_day)
                self._months.add((year, month))
            async with conn.transaction():
                await conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS incoming_readings "
                    "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                await conn.copy_records_to_table(
                    "incoming_readings", records=rows, columns=_COLUMNS
                )
                status = await conn.execute(
                    "INSERT INTO readings SELECT * FROM incoming_readings ON CONFLICT DO NOTHING"
                )
        return int(status.rsplit(" ", 1)[-1])


class Rewinder(ConsumerRebalanceListener):  # type: ignore[misc]
    """Moves the consumer to the beginning of a topic whose log was seen to go back.

    It rewinds at once, and again on every partition assignment for ``window_s`` afterwards:
    the group re-forms on the new broker some time after the loss, and would otherwise resume
    from offsets committed against the old log.
    """

    def __init__(self, consumer: AIOKafkaConsumer, *, topic: str, window_s: float) -> None:
        self._consumer = consumer
        self._topic = topic
        self._window_s = window_s
        self._until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def log_reset(self, topic: str) -> None:
        if topic != self._topic:
            return
        self._until = time.monotonic() + self._window_s
        task = asyncio.create_task(self._rewind(self._consumer.assignment()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if time.monotonic() < self._until:
            await self._rewind(assigned)

    async def _rewind(self, partitions: set[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self._topic]
        if mine:
            # The assignment may have changed meanwhile; the next assignment rewinds then.
            with contextlib.suppress(IllegalStateError):
                await self._consumer.seek_to_beginning(*mine)

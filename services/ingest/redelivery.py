"""Publishing again the readings a broker acknowledged and then lost.

A broker that keeps its log in memory (the embedded Tansu) loses every message on a restart,
including readings it acknowledged that the store had not yet consumed. The publisher notices
the loss when a partition's offsets go back; then, once every request in flight at that moment
has committed or rolled back, the receipts of the last ``lookback_s`` seconds that have no
stored reading are published again from the event each receipt keeps. The store is idempotent,
so a reading sent again that was not lost after all is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from services.ingest.intake import headers_template, reading_message
from services.ingest.publishing import ReadingPublisher
from shared.db import database_errors
from shared.errors import Unavailable

log = logging.getLogger(__name__)

_LOCK = 0x696E67657374  # "ingest": one pass at a time across instances
_CHUNK = 5_000


class Redelivery:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: ReadingPublisher,
        *,
        topic: str,
        lookback_s: float,
        wait_s: float,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._topic = topic
        self._lookback_s = lookback_s
        self._wait_s = wait_s
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def log_reset(self, topic: str) -> None:
        """Called by the publisher when a topic's log went back."""
        if topic == self._topic:
            self._wanted.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="readings-redelivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self._wait_s)  # let requests in flight at the reset settle
            self._wanted.clear()
            try:
                count = await self._redeliver()
            except (Unavailable, asyncpg.PostgresError) as exc:
                log.warning("redelivery failed, will retry", extra={"error": repr(exc)})
                self._wanted.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            log.log(
                logging.WARNING if count else logging.INFO,
                "readings lost by the broker published again",
                extra={"count": count},
            )

    async def _redeliver(self) -> int:
        """Publish every recent receipt whose reading is not stored; return how many."""
        count = 0
        async with (
            database_errors("finding readings the broker lost"),
            self._pool.acquire() as conn,
            conn.transaction(),
        ):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            cursor = conn.cursor(
                """SELECT r.device_id, r.reading_id, r.patient_id, r.event
                   FROM reading_receipts r
                   WHERE r.received_at > now() - make_interval(secs => $1)
                     AND r.event IS NOT NULL
                     AND NOT EXISTS (
                         SELECT 1 FROM readings s
                         WHERE s.device_id = r.device_id AND s.reading_id = r.reading_id
                           AND s.measured_at = r.measured_at)""",
                float(self._lookback_s),
                prefetch=_CHUNK,
            )
            chunk = []
            template = headers_template()
            async for row in cursor:
                chunk.append(
                    reading_message(
                        template,
                        device_id=row["device_id"],
                        reading_id=row["reading_id"],
                        patient_id=row["patient_id"],
                        event=row["event"],
                    )
                )
                if len(chunk) >= _CHUNK:
                    await self._publisher.publish(self._topic, chunk)
                    count += len(chunk)
                    chunk = []
            await self._publisher.publish(self._topic, chunk)
            count += len(chunk)
        return count

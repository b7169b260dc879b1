"""Writes what the signaling hub reports — who joined, admitted, denied or left which room, and
when a room filled or emptied — to PostgreSQL, in order, off the hub's synchronous path.

Only membership is recorded: no media, no signaling content, no chat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.video import rooms_store
from services.video.signaling import MembershipAudit
from shared import audit
from shared.audit import AuditEntry
from shared.auth import Principal
from shared.errors import Unavailable

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
BATCH = 200
RETRIES = 5


@dataclass(frozen=True)
class _Occupancy:
    room_id: str
    occupied: bool
    at: float


_Item = MembershipAudit | _Occupancy


class MembershipRecorder:
    """A queue the hub fills synchronously and one task drains into the database, in order."""

    def __init__(self, pool: asyncpg.Pool, *, empty_expiry: timedelta) -> None:
        self._pool = pool
        self._empty_expiry = empty_expiry
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None

    # The hub's hooks (synchronous, never raise into the call).

    def audit(self, entry: MembershipAudit) -> None:
        self._put(entry)

    def occupancy(self, room_id: str, occupied: bool, at: float) -> None:
        self._put(_Occupancy(room_id, occupied, at))

    def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.error("membership record dropped: the database is far behind")

    # Lifecycle.

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="video-membership")

    async def stop(self, *, drain_s: float = 5.0) -> None:
        """Write what is queued (bounded in time), then stop."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(drain_s):
                await self._queue.join()
        except TimeoutError:
            log.warning("membership records left unwritten", extra={"count": self._queue.qsize()})
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write_with_retry(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_with_retry(self, batch: list[_Item]) -> None:
        delay = 0.2
        for attempt in range(RETRIES):
            try:
                await self._write(batch)
                return
            except Unavailable as exc:
                if attempt == RETRIES - 1:
                    log.error(
                        "membership records lost", extra={"count": len(batch), "error": exc.message}
                    )
                    return
                await asyncio.sleep(delay)
                delay *= 2

    async def _write(self, batch: list[_Item]) -> None:
        audits = [item for item in batch if isinstance(item, MembershipAudit)]
        rooms = await rooms_store.rooms_by_id(self._pool, sorted({a.room_id for a in audits}))
        entries = [_entry(a, rooms.get(a.room_id)) for a in audits]
        await audit.record(self._pool, entries)
        for item in batch:
            if isinstance(item, _Occupancy):
                await rooms_store.set_occupancy(
                    self._pool,
                    item.room_id,
                    occupied=item.occupied,
                    at=datetime.fromtimestamp(item.at, UTC),
                    empty_expiry=self._empty_expiry,
                )


def _entry(change: MembershipAudit, room: rooms_store.RoomRecord | None) -> AuditEntry:
    actor = change.by or change.peer
    detail: dict[str, object] = {
        "room_id": change.room_id,
        "at": datetime.fromtimestamp(change.at, UTC).isoformat(),
        "peer": {k: change.peer[k] for k in ("peer_id", "role", "display_name", "subject")},
    }
    if room is not None and room.consult_id is not None:
        detail["consult_id"] = str(room.consult_id)
    return AuditEntry(
        actor=Principal(
            subject=actor["subject"],
            role=actor["role"],
            org_id=room.org_id if room is not None else "",
        ),
        action=f"video.{change.event}",
        patient_id=room.patient_id if room is not None else None,
        reason="video consultation membership",
        detail=detail,
    )

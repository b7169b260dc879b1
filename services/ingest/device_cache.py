"""Active devices held in memory, so a device request costs no database round trip.

Every instance listens on a Postgres channel; rotating or revoking a device notifies it (at
commit), and each instance drops the device at once. While the listening connection is down
nothing is cached, so a missed notification can never keep a revoked device alive; a time limit
on every entry is a further bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Generic, TypeVar

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "ingest_devices"

V = TypeVar("V")


class DeviceCache(Generic[V]):
    def __init__(self, pool: asyncpg.Pool, *, max_entries: int, ttl_s: float) -> None:
        self._pool = pool
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._epoch = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def epoch(self) -> int:
        """Changes whenever entries may have been invalidated; see :meth:`put`."""
        return self._epoch

    def get(self, device_id: str) -> V | None:
        found = self._entries.get(device_id)
        if found is None or not self._listening:
            return None
        expires, value = found
        if expires < time.monotonic():
            del self._entries[device_id]
            return None
        self._entries.move_to_end(device_id)
        return value

    def put(self, device_id: str, value: V, *, epoch: int) -> None:
        """Cache what was read from the database while the epoch was ``epoch``: a rotation or
        revocation noticed meanwhile may concern it, and then it is not kept."""
        if not self._listening or epoch != self._epoch:
            return
        self._entries[device_id] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(device_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, device_id: str) -> None:
        self._epoch += 1
        self._entries.pop(device_id, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="device-cache-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            lost = asyncio.Event()
            try:
                async with self._pool.acquire() as conn:
                    conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                    await conn.add_listener(CHANNEL, self._notified)
                    try:
                        self._reset(listening=True)
                        backoff = 0.5
                        await lost.wait()
                    finally:
                        self._reset(listening=False)
                        with contextlib.suppress(
                            OSError, asyncpg.PostgresError, asyncpg.InterfaceError
                        ):
                            await conn.remove_listener(CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("device cache not listening", extra={"error": repr(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.drop(payload)

    def _reset(self, *, listening: bool) -> None:
        self._listening = listening
        self._epoch += 1
        self._entries.clear()

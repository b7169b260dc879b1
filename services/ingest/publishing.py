"""Publishing readings: acknowledged batches per partition, within a bounded wait.

Concurrent requests append their messages to one open record batch per partition; a batch goes
to the producer as soon as the partition's previous batch is on its way, so batches grow with
the load while a lone request waits only for the broker. The partition is Kafka's default for
the key (murmur2), so every reading of a patient stays in order on one partition.

The producer is (re)created lazily: a failed start answers 503 at once, and a producer whose
sending has broken down is replaced. Every acknowledgement's offset is checked: an offset below
one acknowledged earlier on the same partition means the broker lost its log (an in-memory
broker restarted), and the ``on_log_reset`` listeners are told, so the lost readings can be
sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import murmur2

from shared import metrics
from shared.errors import Unavailable
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
_HASH_CACHE_MAX = 100_000


class Message(NamedTuple):
    key: bytes
    value: bytes
    headers: Headers


class _Batch:
    """An open or sealed record batch for one partition, and the future its senders await."""

    __slots__ = ("builder", "count", "done")

    def __init__(self, builder: Any, done: asyncio.Future[None]) -> None:
        self.builder = builder
        self.count = 0
        self.done = done


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Marks an exception as seen even when every waiter has already given up.
    if not future.cancelled():
        future.exception()


class ReadingPublisher:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        client_id: str,
        timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._log_reset_listeners: list[Callable[[str], None]] = []
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._batches: dict[tuple[str, int], deque[_Batch]] = {}
        self._flushers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._hashes: dict[bytes, int] = {}
        self._acked: dict[tuple[str, int], int] = {}  # highest offset acknowledged
        self._failing_since: float | None = None

    def on_log_reset(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(topic)`` whenever a topic's log is seen to go back."""
        self._log_reset_listeners.append(listener)

    async def start(self) -> None:
        """Connect now if the broker is there; otherwise the first publish will try again."""
        with contextlib.suppress(Unavailable):
            await self._ready_producer()

    async def stop(self) -> None:
        for task in list(self._flushers.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), self._timeout_s)
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._retire(producer)
        if self._retiring:
            await asyncio.wait(self._retiring)

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Return once the broker acknowledged every message; raise :class:`Unavailable` if
        it did not within the timeout (some may still arrive: consumers are idempotent)."""
        if not messages:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = await self._ready_producer()
                partitions = await self._partitions(producer, topic)
                pending = {
                    id(batch.done): batch.done
                    for batch in self._append(topic, partitions, messages, producer)
                }
                await asyncio.wait(pending.values())
                for done in pending.values():
                    done.result()
        except (KafkaError, TimeoutError, OSError) as exc:
            self._failed(exc)
            raise Unavailable(
                f"event broker unavailable while publishing: {type(exc).__name__}",
                retry_after_s=self._retry_after_s,
            ) from exc
        self._failing_since = None
        metrics.messages_published.labels(topic).inc(len(messages))

    def partition_of(self, key: bytes, partitions: Sequence[int]) -> int:
        """Kafka's default partitioner: murmur2 of the key over the sorted partition ids."""
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= _HASH_CACHE_MAX:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]

    # --- internals -------------------------------------------------------------------------

    async def _ready_producer(self) -> AIOKafkaProducer:
        producer = self._producer
        if producer is not None:
            return producer
        async with self._starting:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.bootstrap_servers,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=self._settings.enable_idempotence,
                request_timeout_ms=self._settings.request_timeout_ms,
                linger_ms=0,
                max_batch_size=512 * 1024,
            )
            try:
                await producer.start()
            except BaseException as exc:
                await self._retire(producer)
                if isinstance(exc, KafkaError | OSError):
                    self._failed(exc)
                    raise Unavailable(
                        f"event broker unavailable while connecting: {type(exc).__name__}",
                        retry_after_s=self._retry_after_s,
                    ) from exc
                raise
            self._producer = producer
            return producer

    async def _partitions(self, producer: AIOKafkaProducer, topic: str) -> list[int]:
        known = producer.client.cluster.partitions_for_topic(topic)
        if not known:
            known = await producer.partitions_for(topic)
        return sorted(known)

    def _append(
        self,
        topic: str,
        partitions: list[int],
        messages: Sequence[Message],
        producer: AIOKafkaProducer,
    ) -> list[_Batch]:
        touched: list[_Batch] = []
        for message in messages:
            slot = (topic, self.partition_of(message.key, partitions))
            queue = self._batches.get(slot)
            if queue is None:
                queue = self._batches[slot] = deque()
            batch = queue[-1] if queue else None
            if batch is None or not self._add(batch, message):
                batch = _Batch(producer.create_batch(), asyncio.get_running_loop().create_future())
                batch.done.add_done_callback(_retrieve)
                queue.append(batch)
                if not self._add(batch, message):
                    raise ValueError("a message larger than the producer's batch size")
            if not touched or touched[-1] is not batch:
                touched.append(batch)
            if slot not in self._flushers:
                self._flushers[slot] = asyncio.create_task(self._flush(slot))
        return touched

    @staticmethod
    def _add(batch: _Batch, message: Message) -> bool:
        added = batch.builder.append(
            timestamp=None, key=message.key, value=message.value, headers=message.headers
        )
        if added is None:
            return False
        batch.count += 1
        return True

    async def _flush(self, slot: tuple[str, int]) -> None:
        topic, partition = slot
        try:
            while queue := self._batches.get(slot):
                batch = queue.popleft()
                if not queue:
                    del self._batches[slot]
                producer = self._producer
                if producer is None:
                    batch.done.set_exception(KafkaTimeoutError("no producer"))
                    continue
                try:
                    # Waits until the partition's previous batch is on its way to the broker.
                    delivery = await producer.send_batch(batch.builder, topic, partition=partition)
                except Exception as exc:
                    if not batch.done.done():
                        batch.done.set_exception(exc)
                    if not isinstance(exc, KafkaTimeoutError):
                        self._replace(producer, exc)
                    continue
                delivery.add_done_callback(
                    lambda outcome, batch=batch: self._delivered(slot, batch, outcome)
                )
        finally:
            del self._flushers[slot]
            if self._batches.get(slot):  # appended after the loop's last look
                self._flushers[slot] = asyncio.create_task(self._flush(slot))

    def _delivered(
        self, slot: tuple[str, int], batch: _Batch, outcome: asyncio.Future[Any]
    ) -> None:
        if batch.done.done():
            return
        if outcome.cancelled():
            batch.done.set_exception(KafkaTimeoutError("delivery cancelled"))
            return
        exc = outcome.exception()
        if exc is not None:
            batch.done.set_exception(exc)
            return
        metadata = outcome.result()
        offset = getattr(metadata, "offset", None)
        if isinstance(offset, int) and offset >= 0:
            highest = self._acked.get(slot)
            if highest is not None and offset <= highest:
                log.warning(
                    "the broker's log went back: readings it acknowledged may be lost",
                    extra={"topic": slot[0], "partition": slot[1], "offset": offset},
                )
                for listener in self._log_reset_listeners:
                    listener(slot[0])
            self._acked[slot] = offset + batch.count - 1
        batch.done.set_result(None)

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > 2 * self._timeout_s and self._producer is not None:
            # Failing for this long although the client reconnects by itself: start afresh.
            self._replace(self._producer, exc)

    def _replace(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        if self._producer is not producer:
            return
        log.warning("replacing the Kafka producer", extra={"error": repr(exc)})
        self._producer = None
        self._failing_since = time.monotonic()
        task = asyncio.create_task(self._retire(producer))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, producer: AIOKafkaProducer) -> None:
        # stop() waits for pending batches, which expire after the request timeout at worst.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), self._settings.request_timeout_ms / 1000 + 2)

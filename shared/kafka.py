"""The Kafka adapter: an acknowledged publisher, and a consumer loop deciding each message's fate.

Delivery is at least once: the publisher returns only after the broker acknowledged
(``acks=all``); the consumer commits a partition's offset only after the handler's effect is
durable, sends poison messages to the dead-letter topic, and retries transient failures without
committing. Driver errors are translated to :class:`~shared.errors.Unavailable` here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import BaseModel, ValidationError

from shared import metrics
from shared.errors import PoisonMessage, Unavailable
from shared.events import Event
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
E = TypeVar("E", bound=BaseModel)


def cloudevent_headers(
    ce_type: str, *, source: str, subject: str, event_id: str | None = None
) -> Headers:
    """CloudEvents 1.0 attributes in binary content mode."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_type", ce_type.encode()),
        ("ce_source", source.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: str
    value: bytes
    headers: Headers


def outgoing(topic: str, key: str, event: Event, *, source: str, subject: str) -> Outgoing:
    return Outgoing(
        topic=topic,
        key=key,
        value=event.model_dump_json().encode(),
        headers=cloudevent_headers(event.ce_type, source=source, subject=subject),
    )


@asynccontextmanager
async def broker_errors(action: str) -> AsyncIterator[None]:
    """Translate the Kafka client's errors (and time-outs) into :class:`Unavailable`."""
    try:
        yield
    except (KafkaError, TimeoutError, OSError) as exc:
        raise Unavailable(f"event broker unavailable while {action}: {type(exc).__name__}") from exc


class Publisher:
    """Publishes events and returns only when the broker has acknowledged every one of them."""

    def __init__(self, settings: KafkaSettings, *, client_id: str) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=settings.enable_idempotence,
            request_timeout_ms=settings.request_timeout_ms,
            linger_ms=2,
            max_batch_size=256 * 1024,
        )
        self._deadline_s = settings.request_timeout_ms / 1000 + 1

    async def start(self) -> None:
        async with broker_errors("connecting"):
            await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Send all; raise :class:`Unavailable` unless the broker acknowledged each one in time."""
        if not messages:
            return
        async with broker_errors("publishing"), asyncio.timeout(self._deadline_s):
            futures = [
                await self._producer.send(m.topic, m.value, key=m.key.encode(), headers=m.headers)
                for m in messages
            ]
            await asyncio.gather(*futures)
        for m in messages:
            metrics.messages_published.labels(m.topic).inc()

    async def publish_raw(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers
    ) -> None:
        async with broker_errors("publishing"), asyncio.timeout(self._deadline_s):
            fut = await self._producer.send(topic, value, key=key, headers=headers)
            await fut


async def ensure_topics(settings: KafkaSettings, topics: Sequence[str]) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=settings.request_timeout_ms,
    )
    async with broker_errors("creating topics"):
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                    await admin.create_topics(
                        [
                            NewTopic(t, settings.partitions, settings.replication_factor)
                            for t in missing
                        ]
                    )
            return missing
        finally:
            await admin.close()


async def list_topics(settings: KafkaSettings) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    async with broker_errors("listing topics"):
        await admin.start()
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()


def make_consumer(
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    group_id: str | None,
    client_id: str,
    offset_reset: str = "earliest",
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset=offset_reset,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        request_timeout_ms=max(settings.request_timeout_ms, settings.session_timeout_ms + 5000),
        max_poll_records=2000,
    )


@dataclass(frozen=True, slots=True)
class Delivery(Generic[E]):
    """A decoded message with where it came from (for logs and the dead-letter topic)."""

    event: E
    topic: str
    partition: int
    offset: int
    key: str | None


def decode(model: type[E], record: Any) -> E:
    try:
        return model.model_validate_json(record.value)
    except (ValidationError, ValueError, TypeError) as exc:
        raise PoisonMessage(f"undecodable {model.__name__}: {exc}") from exc


class ConsumerLoop(Generic[E]):
    """Consumes a topic in batches and commits each partition only after ``handle`` succeeded.

    Fates: decoded and handled -> commit; undecodable -> dead-letter topic, then commit;
    any other failure -> back off and fetch the same records again (no commit).
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        model: type[E],
        handle: Callable[[list[Delivery[E]]], Awaitable[None]],
        publisher: Publisher,
        deadletter_topic: str,
        name: str,
    ) -> None:
        self._consumer = consumer
        self._model = model
        self._handle = handle
        self._publisher = publisher
        self._deadletter = deadletter_topic
        self._name = name
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._consumer.start()
                break
            except (KafkaError, OSError) as exc:
                log.warning(
                    "consumer cannot start yet", extra={"consumer": self._name, "error": repr(exc)}
                )
                await self._wait_stopping(backoff)
                backoff = min(backoff * 2, 5.0)
        else:
            return
        self.ready.set()
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    if not await self._process(tp, records):
                        await self._wait_stopping(1.0)
        finally:
            await self._consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    async def _wait_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _process(self, tp: TopicPartition, records: list[Any]) -> bool:
        deliveries: list[Delivery[E]] = []
        try:
            for record in records:
                try:
                    event = decode(self._model, record)
                except PoisonMessage as poison:
                    await self._dead_letter(record, poison)
                    continue
                key = record.key.decode(errors="replace") if record.key is not None else None
                deliveries.append(Delivery(event, tp.topic, tp.partition, record.offset, key))
            if deliveries:
                await self._handle(deliveries)
            await self._consumer.commit({tp: records[-1].offset + 1})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "batch not processed, will retry",
                extra={
                    "consumer": self._name,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": records[0].offset,
                    "error": repr(exc),
                },
            )
            metrics.messages_consumed.labels(tp.topic, "retry").inc(len(records))
            self._consumer.seek(tp, records[0].offset)
            return False
        metrics.messages_consumed.labels(tp.topic, "done").inc(len(deliveries))
        return True

    async def _dead_letter(self, record: Any, poison: PoisonMessage) -> None:
        log.warning(
            "poison message sent to the dead-letter topic",
            extra={
                "consumer": self._name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": poison.message[:500],
            },
        )
        headers: Headers = list(record.headers or [])
        headers += [
            ("dlq_reason", poison.message[:1000].encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer", self._name.encode()),
        ]
        body = json.dumps(
            {
                "reason": poison.message[:1000],
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "value": (record.value or b"").decode(errors="replace"),
            }
        ).encode()
        await self._publisher.publish_raw(
            self._deadletter, key=record.key, value=body, headers=headers
        )
        metrics.messages_consumed.labels(record.topic, "deadletter").inc()

"""The consumer loop decides every message's fate: done, poison (dead-letter), or retry."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import ReadingAccepted
from shared.kafka import ConsumerLoop, Delivery, Publisher, make_consumer, outgoing
from shared.vitals import VitalType


def reading(n: int) -> ReadingAccepted:
    now = datetime.now(UTC)
    return ReadingAccepted(
        device_id="dev-1",
        reading_id=f"r-{n}",
        patient_id="pt-1",
        type=VitalType.SPO2,
        value=95.0,
        unit="%",
        measured_at=now,
        received_at=now,
    )


async def test_poison_goes_to_dead_letter_and_a_failing_batch_is_retried(infra):
    publisher = Publisher(infra.kafka, client_id="test")
    await publisher.start()
    topics = infra.topics
    await publisher.publish(
        [outgoing(topics.readings, "pt-1", reading(1), source="t", subject="r")]
    )
    await publisher.publish_raw(topics.readings, key=b"pt-1", value=b"{not json", headers=[])
    await publisher.publish(
        [outgoing(topics.readings, "pt-1", reading(2), source="t", subject="r")]
    )

    handled: list[str] = []
    attempts = 0
    done = asyncio.Event()

    async def handle(deliveries: list[Delivery[ReadingAccepted]]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database briefly away")  # transient: must be retried
        handled.extend(d.event.reading_id for d in deliveries)
        if "r-2" in handled:
            done.set()

    group = f"g-{infra.suffix}"
    loop = ConsumerLoop(
        make_consumer(infra.kafka, topics=[topics.readings], group_id=group, client_id="t"),
        model=ReadingAccepted,
        handle=handle,
        publisher=publisher,
        deadletter_topic=topics.deadletter,
        name="test",
    )
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(done.wait(), 60)
    loop.stop()
    await asyncio.wait_for(task, 30)

    assert handled == ["r-1", "r-2"]  # each once, after the retry, in order

    dead = AIOKafkaConsumer(
        topics.deadletter,
        bootstrap_servers=infra.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await dead.start()
    try:
        record = await asyncio.wait_for(dead.getone(), 30)
    finally:
        await dead.stop()
    body = json.loads(record.value)
    assert body["value"] == "{not json"
    assert "undecodable ReadingAccepted" in body["reason"]
    assert dict(record.headers)["dlq_topic"] == topics.readings.encode()
    assert record.key == b"pt-1"

    # Every partition's offset was committed up to its end, poison included.
    again = AIOKafkaConsumer(bootstrap_servers=infra.kafka.bootstrap_servers, group_id=group)
    await again.start()
    try:
        partitions = [
            TopicPartition(topics.readings, p)
            for p in again.partitions_for_topic(topics.readings) or set()
        ]
        ends = await again.end_offsets(partitions)
        written = {tp: end for tp, end in ends.items() if end > 0}
        committed = {tp: await again.committed(tp) for tp in written}
    finally:
        await again.stop()
        await publisher.stop()
    assert sum(written.values()) == 3
    assert committed == written

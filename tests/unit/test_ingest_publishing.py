"""Readings go to the partition Kafka's default partitioner picks for the patient's key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.publishing import ReadingPublisher
from shared.settings import KafkaSettings


@given(st.binary(min_size=1, max_size=64), st.sets(st.integers(0, 200), min_size=1, max_size=64))
def test_the_partition_is_the_one_kafkas_default_partitioner_picks(
    key: bytes, partitions: set[int]
) -> None:
    publisher = ReadingPublisher(
        KafkaSettings(bootstrap_servers="unused:9092"),
        client_id="test",
        timeout_s=1,
        retry_after_s=1,
    )
    ordered = sorted(partitions)
    expected = DefaultPartitioner()(key, ordered, ordered)
    assert publisher.partition_of(key, ordered) == expected
    assert publisher.partition_of(key, ordered) == expected  # and again, from the cache

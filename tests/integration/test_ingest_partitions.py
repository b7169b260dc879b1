"""Readings partitioned by month: the migration moves what was stored before, and the store
puts every reading in its month's partition, idempotently."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.ingest.store import ReadingStore
from shared import migrate
from shared.events import ReadingAccepted
from shared.kafka import Delivery
from shared.vitals import VitalType


@pytest.fixture
async def fresh_database(database: str, pool: Any) -> AsyncIterator[asyncpg.Connection]:
    """A database of its own, with only the foundation migration applied."""
    name = f"ingest_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE DATABASE {name}")
    conn = await asyncpg.connect(database, database=name)
    try:
        foundation = next(m for m in migrate.available() if m.version == 1)
        await conn.execute(foundation.sql)
        yield conn
    finally:
        await conn.close()
        await pool.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_the_migration_moves_stored_readings_into_monthly_partitions(fresh_database):
    conn = fresh_database
    stored = [
        ("dev-1", "a", datetime(2023, 3, 31, 23, 30, tzinfo=UTC)),
        ("dev-1", "b", datetime(2023, 4, 1, 0, 30, tzinfo=UTC)),
        ("dev-2", "a", datetime(2023, 4, 15, 12, 0, tzinfo=UTC)),
    ]
    await conn.executemany(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, unit, "
        "measured_at, received_at) VALUES ($1, $2, 'pt-1', 'heart_rate', 70, '/min', $3, $3)",
        stored,
    )
    migration = next(m for m in migrate.available() if m.version == 2)
    async with conn.transaction():
        await conn.execute(migration.sql)

    rows = await conn.fetch(
        "SELECT device_id, reading_id, tableoid::regclass::text AS part FROM readings "
        "ORDER BY device_id, reading_id"
    )
    assert [(r["device_id"], r["reading_id"], r["part"]) for r in rows] == [
        ("dev-1", "a", "readings_2023_03"),
        ("dev-1", "b", "readings_2023_04"),
        ("dev-2", "a", "readings_2023_04"),
    ]
    assert await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'readings'") == b"p"
    this_month = datetime.now(UTC).strftime("readings_%Y_%m")
    assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", this_month)
    # A reading sent again carries the same measured_at: still one row.
    inserted = await conn.execute(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, unit, "
        "measured_at, received_at) VALUES ('dev-1', 'a', 'pt-1', 'heart_rate', 70, '/min', "
        "$1, $1) ON CONFLICT DO NOTHING",
        stored[0][2],
    )
    assert inserted == "INSERT 0 0"


def delivery(device_id: str, reading_id: str, measured_at: datetime, offset: int) -> Any:
    event = ReadingAccepted(
        device_id=device_id,
        reading_id=reading_id,
        patient_id="pt-partitions",
        type=VitalType.SPO2,
        value=95.0,
        unit="%",
        measured_at=measured_at,
        received_at=measured_at + timedelta(minutes=1),
    )
    return Delivery(event, "readings", 0, offset, "pt-partitions")


async def test_the_store_writes_each_reading_into_its_months_partition(pool):
    device_id = f"dev-{uuid.uuid4().hex[:12]}"
    # A month no other test writes to; one of its readings already sits in the default
    # partition, as it would had it arrived before the month's partition existed.
    early = datetime(2001, 3, 10, 8, 0, tzinfo=UTC)
    await pool.execute(
        "INSERT INTO readings_default (device_id, reading_id, patient_id, type, value_num, "
        "unit, measured_at, received_at) VALUES ($1, 'early', 'pt-partitions', 'spo2', 95, "
        "'%', $2, $2)",
        device_id,
        early,
    )
    batch = [
        delivery(device_id, "m1", datetime(2001, 3, 31, 23, 59, tzinfo=UTC), 1),
        delivery(device_id, "m2", datetime(2001, 4, 1, 0, 0, tzinfo=UTC), 2),
    ]
    store = ReadingStore(pool)
    assert await store.store(batch) == 2
    assert await store.store(batch) == 0  # delivered again: nothing new
    rows = await pool.fetch(
        "SELECT reading_id, tableoid::regclass::text AS part FROM readings "
        "WHERE device_id = $1 ORDER BY reading_id",
        device_id,
    )
    assert [(r["reading_id"], r["part"]) for r in rows] == [
        ("early", "readings_2001_03"),
        ("m1", "readings_2001_03"),
        ("m2", "readings_2001_04"),
    ]

"""Nothing accepted is lost and nothing is stored twice, even when the broker dies mid-load.

These tests run their own embedded broker (the session's one must not be restarted under the
other tests); the embedded broker keeps its log in memory, so a restart loses every message,
acknowledged or not, and the topics must be created again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.device_client import DeviceClient
from shared.infra.broker import EmbeddedBroker
from shared.infra.processes import free_port
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings

DEVICES = 6
PER_BATCH = 20


class OwnBroker:
    def __init__(self) -> None:
        self.broker = EmbeddedBroker(port=free_port())
        self.drains: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        process = await self.broker.start()
        self.drains.append(asyncio.create_task(_drain(process)))

    async def stop(self) -> None:
        # The broker may exit on its own just as stop() gives up waiting and kills it.
        with contextlib.suppress(ProcessLookupError):
            await self.broker.stop()


async def _drain(process: asyncio.subprocess.Process) -> None:
    if process.stdout is not None:
        async for _ in process.stdout:
            pass


@pytest.fixture
async def own_broker() -> AsyncIterator[OwnBroker]:
    own = OwnBroker()
    await own.start()
    yield own
    await own.stop()
    await asyncio.gather(*own.drains)


@pytest.fixture
async def setup(own_broker, infra, care, pool, serve, http) -> dict[str, Any]:
    kafka = KafkaSettings(
        bootstrap_servers=own_broker.broker.bootstrap_servers,
        partitions=4,
        request_timeout_ms=2_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(kafka, infra.topics.all())
    settings = IngestSettings(
        port=0,
        secret_key=SecretStr("d" * 40),
        store_group=f"store-{infra.suffix}",
        publish_timeout_s=2.0,
        retry_after_s=1,
        rate_per_s=1_000,
        rate_burst=1_000,
        kafka=kafka,
        topics=infra.topics,
        database=infra.database,
        auth=infra.auth,
    )
    base = await serve(create_app(settings))
    # More patients than partitions, so every partition carries readings.
    patients = [f"{care.patient_id}-{n}" for n in range(DEVICES)]
    municipality = await pool.fetchval(
        "SELECT municipality FROM patients WHERE patient_id = $1", care.patient_id
    )
    await pool.executemany(
        "INSERT INTO patients (patient_id, municipality, region) VALUES ($1, $2, 'syddanmark')",
        [(p, municipality) for p in patients],
    )
    devices = []
    for patient_id in patients:
        async with http.post(
            f"{base}/v1/admin/devices",
            json={"patient_id": patient_id, "kind": "wearable"},
            headers={"Authorization": f"Bearer {infra.token('operator', 'platform')}"},
        ) as response:
            assert response.status == 201
            created = await response.json()
        devices.append(DeviceClient(base, created["device_id"], created["secret"]))
    return {"base": base, "devices": devices, "kafka": kafka, "topics": infra.topics}


@dataclass
class Tally:
    sent: set[tuple[str, str]] = field(default_factory=set)
    accepted: set[tuple[str, str]] = field(default_factory=set)
    unavailable: int = 0
    batches: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    target: int = 0
    refused: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def accepted_batch(self) -> None:
        self.batches += 1
        if self.batches >= self.target:
            self.enough.set()

    async def until_batches(self, count: int) -> None:
        self.target, self.enough = count, asyncio.Event()
        if self.batches >= count:
            return
        await asyncio.wait_for(self.enough.wait(), 120)


async def run_device(client: DeviceClient, session: aiohttp.ClientSession, tally: Tally) -> None:
    """Send batches until told to stop; retry each on 503 (after Retry-After) until accepted."""
    while not tally.stop.is_set():
        now = datetime.now(UTC).isoformat()
        batch = [
            {
                "reading_id": uuid.uuid4().hex,
                "type": "heart_rate",
                "value": 60 + n,
                "unit": "/min",
                "measured_at": now,
            }
            for n in range(PER_BATCH)
        ]
        tally.sent.update((client.device_id, r["reading_id"]) for r in batch)
        body = json.dumps({"readings": batch}).encode()
        while True:
            try:
                async with session.post(
                    f"{client.base_url}/v1/readings", data=body, headers=client.signed_headers(body)
                ) as response:
                    status = response.status
                    answer = await response.json()
                    retry_after = float(response.headers.get("Retry-After", "1"))
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
                continue
            if status == 202:
                assert answer["rejected"] == []
                assert answer["accepted"] + answer["duplicates"] == PER_BATCH
                tally.accepted.update((client.device_id, r["reading_id"]) for r in batch)
                break
            assert status == 503, answer
            assert answer["error"] == "unavailable"
            tally.unavailable += 1
            tally.refused.set()
            await asyncio.sleep(retry_after)
        tally.accepted_batch()
        await asyncio.sleep(0.02)  # a device's pace


async def stored(pool: Any, device_ids: list[str]) -> list[tuple[str, str, int]]:
    rows = await pool.fetch(
        "SELECT device_id, reading_id, count(*) AS n FROM readings "
        "WHERE device_id = ANY($1::text[]) GROUP BY device_id, reading_id",
        device_ids,
    )
    return [(r["device_id"], r["reading_id"], r["n"]) for r in rows]


async def wait_until_stored(pool: Any, device_ids: list[str], expected: int) -> list[Any]:
    async def poll() -> list[Any]:
        while True:
            rows = await stored(pool, device_ids)
            if len(rows) >= expected:
                return rows
            await asyncio.sleep(0.25)

    try:
        return await asyncio.wait_for(poll(), 90)
    except TimeoutError:
        return await stored(pool, device_ids)


async def test_broker_restart_under_load_loses_nothing_and_stores_nothing_twice(
    setup, own_broker, pool
):
    devices: list[DeviceClient] = setup["devices"]
    tally = Tally()
    timeout = aiohttp.ClientTimeout(total=20)  # a request that hangs longer fails the test
    async with aiohttp.ClientSession(timeout=timeout) as session:
        load = asyncio.gather(*(run_device(d, session, tally) for d in devices))
        try:
            await tally.until_batches(60)
            try:
                # stop() lets the broker serve for a grace period, then kills it.
                await own_broker.stop()
                await asyncio.wait_for(tally.refused.wait(), 60)
            finally:
                await own_broker.start()
            await ensure_topics(setup["kafka"], setup["topics"].all())
            await tally.until_batches(tally.batches + 60)
        finally:
            tally.stop.set()  # each device finishes the batch in hand
            await asyncio.wait_for(load, 120)

    device_ids = [d.device_id for d in devices]
    rows = await wait_until_stored(pool, device_ids, len(tally.sent))
    assert tally.unavailable > 0  # the outage was felt, and answered with 503
    assert tally.accepted == tally.sent
    assert {(d, r) for d, r, _ in rows} == tally.sent
    assert all(n == 1 for _, _, n in rows)
    receipts = await pool.fetchval(
        "SELECT count(*) FROM reading_receipts WHERE device_id = ANY($1::text[])", device_ids
    )
    assert receipts == len(tally.sent)


async def test_with_the_broker_down_requests_get_503_and_leave_nothing_behind(
    setup, own_broker, pool, http
):
    device: DeviceClient = setup["devices"][0]
    now = datetime.now(UTC).isoformat()
    batch = [{"reading_id": "down-1", "type": "spo2", "value": 93, "unit": "%", "measured_at": now}]
    observation = {
        "resourceType": "Observation",
        "identifier": [{"value": "down-2"}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": now,
        "valueQuantity": {"value": 70, "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    native = json.dumps({"readings": batch}).encode()
    fhir = json.dumps(observation).encode()
    native_headers = device.signed_headers(native)
    fhir_headers = {**device.signed_headers(fhir), "Content-Type": "application/fhir+json"}
    await own_broker.stop()
    try:
        async with http.post(
            f"{device.base_url}/v1/readings", data=native, headers=native_headers
        ) as response:
            assert response.status == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["error"] == "unavailable"
        async with http.post(
            f"{device.base_url}/fhir/Observation", data=fhir, headers=fhir_headers
        ) as response:
            assert (response.status, response.content_type) == (503, "application/fhir+json")
            assert int(response.headers["Retry-After"]) >= 1
            outcome = await response.json(content_type=None)
            assert outcome["issue"][0]["code"] == "transient"
        receipts = await pool.fetchval(
            "SELECT count(*) FROM reading_receipts WHERE device_id = $1", device.device_id
        )
        assert receipts == 0
    finally:
        await own_broker.start()
    await ensure_topics(setup["kafka"], setup["topics"].all())

    async def retry(url: str, body: bytes, headers: dict[str, str]) -> int:
        # The very same signed request: one that got 503 is not a replay.
        while True:
            async with http.post(url, data=body, headers=headers) as response:
                if response.status != 503:
                    return response.status
                await asyncio.sleep(float(response.headers["Retry-After"]))

    assert await retry(f"{device.base_url}/v1/readings", native, native_headers) == 202
    assert await retry(f"{device.base_url}/fhir/Observation", fhir, fhir_headers) == 201
    rows = await wait_until_stored(pool, [device.device_id], 2)
    assert sorted((r, n) for _, r, n in rows) == [("down-1", 1), ("down-2", 1)]

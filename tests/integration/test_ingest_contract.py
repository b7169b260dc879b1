"""The device contract of POST /v1/readings, against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.device_client import DeviceClient


@pytest.fixture
async def ingest(infra, serve) -> str:
    settings = IngestSettings(
        port=0,
        secret_key=SecretStr("s" * 40),
        store_group=f"store-{infra.suffix}",
        **infra.common(),
    )
    return await serve(create_app(settings))


@pytest.fixture
async def device(ingest, infra, care, http) -> DeviceClient:
    async with http.post(
        f"{ingest}/v1/admin/devices",
        json={"patient_id": care.patient_id, "kind": "blood-pressure-monitor"},
        headers={"Authorization": f"Bearer {infra.token('operator', 'platform')}"},
    ) as response:
        assert response.status == 201
        created = await response.json()
    return DeviceClient(ingest, created["device_id"], created["secret"])


def reading(
    reading_id: str, type_: str = "heart_rate", value: Any = 72, unit: str = "/min"
) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "type": type_,
        "value": value,
        "unit": unit,
        "measured_at": datetime.now(UTC).isoformat(),
    }


async def receipts(pool, device_id: str) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM reading_receipts WHERE device_id = $1", device_id)
    )


async def test_wrong_signature_is_refused_and_nothing_is_accepted(device, http, pool):
    body = json.dumps({"readings": [reading("r1")]}).encode()
    headers = device.signed_headers(body)
    headers["X-Signature"] = "0" * 64
    async with http.post(f"{device.base_url}/v1/readings", data=body, headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "bad_signature"
    assert await receipts(pool, device.device_id) == 0


async def test_stale_timestamp_is_refused(device, http):
    body = json.dumps({"readings": [reading("r1")]}).encode()
    headers = device.signed_headers(body, timestamp=int(time.time()) - 301)
    async with http.post(f"{device.base_url}/v1/readings", data=body, headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "stale_timestamp"


async def test_revoked_device_is_refused_at_once(device, http, infra):
    async with http.post(
        f"{device.base_url}/v1/admin/devices/{device.device_id}/revoke",
        headers={"Authorization": f"Bearer {infra.token('operator', 'platform')}"},
    ) as response:
        assert response.status == 200
    status, body = await device.post(http, [reading("r1")])
    assert status == 401
    assert body["error"] == "unknown_device"


async def test_admin_api_needs_an_operator(ingest, http, infra, care):
    async with http.post(
        f"{ingest}/v1/admin/devices",
        json={"patient_id": care.patient_id},
        headers={"Authorization": f"Bearer {infra.token('nurse', care.acute_team)}"},
    ) as response:
        assert response.status == 403


async def test_bad_items_are_rejected_field_by_field_and_good_ones_accepted(device, http):
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, body = await device.post(
        http,
        [
            reading("ok-1"),
            reading("bad-unit", unit="furlongs"),
            {**reading("future"), "measured_at": future},
            reading("too-high", "spo2", 140, "%"),
        ],
    )
    assert status == 202
    assert body["accepted"] == 1
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3]
    assert rejected[1]["errors"][0]["field"] == "unit"
    assert rejected[2]["errors"][0]["field"] == "measured_at"
    assert rejected[3]["errors"][0]["field"] == "value"


async def test_nothing_accepted_is_a_422_with_the_same_shape(device, http):
    status, body = await device.post(http, [reading("x", "pulse", 72, "/min")])
    assert status == 422
    assert body["accepted"] == 0
    assert body["rejected"][0]["errors"][0]["field"] == "type"


async def test_body_that_is_not_json_is_a_400(device, http):
    body = b"{not json"
    async with http.post(
        f"{device.base_url}/v1/readings", data=body, headers=device.signed_headers(body)
    ) as response:
        assert response.status == 400


async def test_a_resent_batch_counts_as_duplicates_and_is_stored_once(device, http, pool):
    batch = [reading("dup-1"), reading("dup-2", "spo2", 96, "%")]
    first = await device.post(http, batch)
    # A device re-sending a batch signs it again, at a later moment.
    body = json.dumps({"readings": batch}).encode()
    headers = device.signed_headers(body, timestamp=int(time.time()) + 1)
    async with http.post(f"{device.base_url}/v1/readings", data=body, headers=headers) as response:
        again = (response.status, await response.json())
    assert first == (202, {"accepted": 2, "duplicates": 0, "rejected": []})
    assert again == (202, {"accepted": 0, "duplicates": 2, "rejected": []})

    async def stored() -> int:
        while True:
            count = await pool.fetchval(
                "SELECT count(*) FROM readings WHERE device_id = $1", device.device_id
            )
            if count >= 2:
                return int(count)
            await asyncio.sleep(0.05)

    assert await asyncio.wait_for(stored(), 30) == 2
    row = await pool.fetchrow(
        "SELECT value_num, unit FROM readings WHERE device_id = $1 AND reading_id = 'dup-2'",
        device.device_id,
    )
    assert (row["value_num"], row["unit"]) == (96.0, "%")

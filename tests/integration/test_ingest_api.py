"""The ingest API a device, an operator and a clinician meet: device administration, request
hardening (size, count, replay, rate), the readings stream and clinicians' reads — against the
real broker and database, with one ingest service shared by the module."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from fhir.resources.R4B.bundle import Bundle
from pydantic import SecretStr

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared import db
from shared.auth import Principal, issue_token, sign_request
from shared.device_client import DeviceClient
from shared.infra.processes import free_port
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings

BURST = 4


@dataclass
class World:
    base: str
    pool: Any
    jwt_secret: str
    secret_key: str
    topics: TopicSettings
    org: str
    other_org: str
    patient: str
    other_patient: str

    def auth(self, role: str, org: str | None = None) -> dict[str, str]:
        principal = Principal(f"{role}-1", role, org or self.org)
        return {"Authorization": f"Bearer {issue_token(self.jwt_secret, principal)}"}


@pytest.fixture(scope="module")
async def world(new_infra, care_seeder, database) -> AsyncIterator[World]:
    infra = await new_infra()
    s, topics = infra.suffix, infra.topics
    jwt_secret = infra.auth.jwt_secret.get_secret_value()
    secret_key = secrets.token_urlsafe(32)
    settings = IngestSettings(
        port=0,
        secret_key=SecretStr(secret_key),
        store_group=f"store-{s}",
        max_body_bytes=256 * 1024,
        offload_bytes=16 * 1024,
        rate_per_s=0.5,
        rate_burst=BURST,
        **infra.common(),
    )
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pool = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=3))
    w = World(
        f"http://127.0.0.1:{port}",
        pool,
        jwt_secret,
        secret_key,
        topics,
        f"akut-a-{s}",
        f"akut-b-{s}",
        f"pt-a-{s}",
        f"pt-b-{s}",
    )
    await care_seeder(pool, s)
    yield w
    await runner.cleanup()
    await pool.close()


async def register(
    http: aiohttp.ClientSession, world: World, body: dict[str, Any]
) -> tuple[int, Any]:
    async with http.post(
        f"{world.base}/v1/admin/devices", json=body, headers=world.auth("operator", "platform")
    ) as response:
        return response.status, await response.json()


@pytest.fixture
async def device(world, http) -> DeviceClient:
    status, created = await register(http, world, {"patient_id": world.patient, "kind": "wearable"})
    assert status == 201
    return DeviceClient(world.base, created["device_id"], created["secret"])


def reading(
    reading_id: str,
    type_: str = "heart_rate",
    value: Any = 72,
    unit: str = "/min",
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "type": type_,
        "value": value,
        "unit": unit,
        "measured_at": (at or datetime.now(UTC)).isoformat(),
    }


async def post_raw(
    http: aiohttp.ClientSession, device: DeviceClient, body: bytes, headers: dict[str, str]
) -> tuple[int, Any, Any]:
    async with http.post(f"{device.base_url}/v1/readings", data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


async def stored_count(pool: Any, device_id: str, expected: int) -> int:
    async def poll() -> int:
        while True:
            count = int(
                await pool.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", device_id)
            )
            if count >= expected:
                return count
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), 30)


# --- device administration -----------------------------------------------------------------


async def test_a_registered_device_is_listed_without_its_secret(world, http):
    status, created = await register(
        http,
        world,
        {"patient_id": world.patient, "kind": "pulse-oximeter", "model": "PO-3", "serial": "A1"},
    )
    assert status == 201
    assert set(created) == {"device_id", "secret"}
    async with http.get(
        f"{world.base}/v1/admin/devices",
        params={"patient_id": world.patient, "active": "true"},
        headers=world.auth("operator", "platform"),
    ) as response:
        listing = await response.json()
    (mine,) = [d for d in listing["devices"] if d["device_id"] == created["device_id"]]
    assert mine["kind"] == "pulse-oximeter"
    assert (mine["model"], mine["serial"], mine["revoked_at"]) == ("PO-3", "A1", None)
    assert created["secret"] not in json.dumps(listing)
    sealed = await world.pool.fetchval(
        "SELECT secret_ciphertext FROM devices WHERE device_id = $1", created["device_id"]
    )
    assert created["secret"].encode() not in sealed


async def test_registration_errors_name_each_field(world, http):
    status, body = await register(
        http, world, {"kind": "Not A Slug!", "colour": "blue", "serial": ""}
    )
    assert status == 422
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"patient_id", "kind", "colour", "serial"}

    status, body = await register(http, world, {"patient_id": "pt-nobody"})
    assert status == 422
    assert body["errors"] == [{"field": "patient_id", "message": "no patient has this id"}]


async def test_one_physical_device_is_registered_to_one_patient_at_a_time(world, http):
    serial = uuid.uuid4().hex
    first = {"patient_id": world.patient, "kind": "scale", "model": "W1", "serial": serial}
    status, created = await register(http, world, first)
    assert status == 201
    status, body = await register(http, world, {**first, "patient_id": world.other_patient})
    assert status == 409
    assert created["device_id"] in body["message"]
    async with http.post(
        f"{world.base}/v1/admin/devices/{created['device_id']}/revoke",
        headers=world.auth("operator", "platform"),
    ) as response:
        assert response.status == 200
    status, _ = await register(http, world, {**first, "patient_id": world.other_patient})
    assert status == 201


async def test_a_rotated_secret_replaces_the_old_one_at_once(world, http, device):
    async with http.post(
        f"{world.base}/v1/admin/devices/{device.device_id}/rotate",
        headers=world.auth("operator", "platform"),
    ) as response:
        assert response.status == 200
        rotated = await response.json()
    assert rotated["secret"] != device.secret
    status, body = await device.post(http, [reading("r1")])
    assert (status, body["error"]) == (401, "bad_signature")
    renewed = DeviceClient(world.base, device.device_id, rotated["secret"])
    status, body = await renewed.post(http, [reading("r1")])
    assert (status, body["accepted"]) == (202, 1)


async def test_unknown_devices_are_not_found_and_admin_needs_an_operator(world, http, device):
    for action in ("rotate", "revoke"):
        async with http.post(
            f"{world.base}/v1/admin/devices/dev-nope/{action}",
            headers=world.auth("operator", "platform"),
        ) as response:
            assert response.status == 404
    async with http.get(
        f"{world.base}/v1/admin/devices/{device.device_id}", headers=world.auth("nurse")
    ) as response:
        assert response.status == 403
    async with http.get(f"{world.base}/v1/admin/devices") as response:
        assert response.status == 401


# --- hardening -----------------------------------------------------------------------------


async def test_a_body_over_the_size_limit_is_refused_with_413(world, http, device):
    body = json.dumps({"readings": [reading(f"r{n}") for n in range(3000)]}).encode()
    assert len(body) > 256 * 1024
    status, answer, _ = await post_raw(http, device, body, device.signed_headers(body))
    assert (status, answer["error"]) == (413, "payload_too_large")


async def test_more_than_5000_readings_in_one_request_is_refused_with_413(world, http, device):
    body = json.dumps({"readings": [{}] * 5001}).encode()
    status, answer, _ = await post_raw(http, device, body, device.signed_headers(body))
    assert (status, answer["error"]) == (413, "payload_too_large")
    assert "5000" in answer["message"]


async def test_a_large_batch_is_validated_and_accepted_whole(world, http, device, pool):
    batch = [reading(f"big-{n}", "spo2", 90 + n % 10, "%") for n in range(400)]
    status, answer = await device.post(http, batch)
    assert (status, answer["accepted"], answer["rejected"]) == (202, 400, [])
    assert await stored_count(pool, device.device_id, 400) == 400


async def test_the_same_signed_request_twice_is_a_replay(world, http, device, pool):
    body = json.dumps({"readings": [reading("once")]}).encode()
    headers = device.signed_headers(body)
    first, _, _ = await post_raw(http, device, body, headers)
    status, answer, _ = await post_raw(http, device, body, headers)
    assert first == 202
    assert (status, answer["message"]) == (401, "replayed request")


async def test_a_device_over_its_rate_is_told_when_to_come_back(world, http, device):
    statuses = []
    for n in range(BURST + 1):
        status, _ = await device.post(http, [reading(f"rate-{n}")])
        statuses.append(status)
    assert statuses[:BURST] == [202] * BURST
    body = json.dumps({"readings": [reading("rate-x")]}).encode()
    status, answer, headers = await post_raw(http, device, body, device.signed_headers(body))
    assert (status, answer["error"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1


async def test_a_body_with_unknown_fields_is_refused_field_by_field(world, http, device):
    status, answer = await post_signed(http, device, {"readings": [reading("u")], "extra": 1})
    assert status == 422
    assert answer["errors"] == [
        {"field": "extra", "message": "unknown field; the body holds only readings"}
    ]


async def post_signed(
    http: aiohttp.ClientSession, device: DeviceClient, document: Any
) -> tuple[int, Any]:
    body = json.dumps(document).encode()
    status, answer, _ = await post_raw(http, device, body, device.signed_headers(body))
    return status, answer


# --- the readings stream -------------------------------------------------------------------


def stream_headers(device: DeviceClient, *, secret: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = sign_request(secret or device.secret, ts, b"GET /v1/stream")
    return {"X-Device-Id": device.device_id, "X-Timestamp": ts, "X-Signature": signature}


async def test_each_stream_message_is_answered_and_a_bad_one_leaves_it_open(
    world, http, device, pool
):
    async with http.ws_connect(f"{world.base}/v1/stream", headers=stream_headers(device)) as ws:
        await ws.send_json({"readings": [reading("s1"), reading("s2", "spo2", 97, "%")]})
        assert await ws.receive_json() == {"accepted": 2, "duplicates": 0, "rejected": []}
        await ws.send_str("{not json")
        error = await ws.receive_json()
        assert error["error"] == "bad_json"
        await ws.send_json({"readings": [reading("s2", "spo2", 97, "%"), reading("s3", "pulse")]})
        answer = await ws.receive_json()
        assert (answer["accepted"], answer["duplicates"]) == (0, 1)
        assert answer["rejected"][0]["errors"][0]["field"] == "type"
    assert await stored_count(pool, device.device_id, 2) == 2


async def test_a_stream_needs_a_valid_signature(world, http, device):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(
            f"{world.base}/v1/stream", headers=stream_headers(device, secret="wrong")
        )
    assert refused.value.status == 401


async def test_revoking_a_device_closes_its_stream(world, http, device):
    async with http.ws_connect(f"{world.base}/v1/stream", headers=stream_headers(device)) as ws:
        await ws.send_json({"readings": [reading("before")]})
        assert (await ws.receive_json())["accepted"] == 1
        async with http.post(
            f"{world.base}/v1/admin/devices/{device.device_id}/revoke",
            headers=world.auth("operator", "platform"),
        ) as response:
            assert response.status == 200
        await ws.send_json({"readings": [reading("after")]})
        assert (await ws.receive_json())["error"] == "unknown_device"
        closing = await ws.receive()
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


# --- clinicians' reads ---------------------------------------------------------------------


async def test_a_nurse_reads_her_patients_readings_in_canonical_units(world, http, device, pool):
    now = datetime.now(UTC).replace(microsecond=0)
    batch = [
        reading("t-old", "temperature", 98.6, "[degF]", at=now - timedelta(hours=3)),
        reading("g-new", "glucose", 108, "mg/dL", at=now - timedelta(hours=1)),
        reading("hr-new", "heart_rate", 80, "bpm", at=now - timedelta(minutes=30)),
        reading("o2", "on_oxygen", True, "1", at=now - timedelta(minutes=20)),
    ]
    status, _ = await device.post(http, batch)
    assert status == 202
    await stored_count(pool, device.device_id, 4)
    url = f"{world.base}/v1/patients/{world.patient}/readings"
    async with http.get(url, headers=world.auth("nurse")) as response:
        assert response.status == 200
        everything = await response.json()
    mine = [r for r in everything["readings"] if r["device_id"] == device.device_id]
    assert [(r["reading_id"], r["value"], r["unit"]) for r in mine] == [
        ("t-old", 37.0, "Cel"),
        ("g-new", 6.0, "mmol/L"),
        ("hr-new", 80.0, "/min"),
        ("o2", True, "1"),
    ]
    since = (now - timedelta(hours=2)).isoformat()
    async with http.get(
        url, params={"type": "glucose,temperature", "from": since}, headers=world.auth("gp")
    ) as response:
        filtered = await response.json()
    assert [
        r["reading_id"] for r in filtered["readings"] if r["device_id"] == device.device_id
    ] == ["g-new"]
    audit = await pool.fetch(
        "SELECT actor, role, action FROM audit_log WHERE patient_id = $1 ORDER BY id", world.patient
    )
    assert [(a["role"], a["action"]) for a in audit][-2:] == [
        ("nurse", "readings.read"),
        ("gp", "readings.read"),
    ]


async def test_pages_follow_the_next_link_without_gaps(world, http, device, pool):
    at = datetime.now(UTC) - timedelta(days=2)
    batch = [reading(f"p{n}", at=at) for n in range(5)]  # one moment: the cursor must cope
    status, _ = await device.post(http, batch)
    assert status == 202
    await stored_count(pool, device.device_id, 5)
    seen: list[str] = []
    url: str | None = (
        f"{world.base}/v1/patients/{world.patient}/readings?"
        f"from={(at - timedelta(seconds=1)).isoformat().replace('+', '%2B')}"
        f"&to={(at + timedelta(seconds=1)).isoformat().replace('+', '%2B')}&limit=2"
    )
    while url is not None:
        async with http.get(url, headers=world.auth("nurse")) as response:
            page = await response.json()
        assert len(page["readings"]) <= 2
        seen += [r["reading_id"] for r in page["readings"] if r["device_id"] == device.device_id]
        url = world.base + page["next"] if page["next"] else None
    assert sorted(seen) == [f"p{n}" for n in range(5)]


async def test_another_organisation_sees_no_such_patient(world, http, pool):
    before = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE patient_id = $1", world.patient
    )
    url = f"{world.base}/v1/patients/{world.patient}/readings"
    async with http.get(url, headers=world.auth("nurse", world.other_org)) as response:
        assert response.status == 404
        assert "readings" not in await response.json()
    async with http.get(url, headers=world.auth("operator", world.org)) as response:
        assert response.status == 403
    after = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE patient_id = $1", world.patient
    )
    assert after == before


async def test_bad_query_parameters_are_named(world, http):
    url = f"{world.base}/v1/patients/{world.patient}/readings"
    params = {"type": "pulse", "from": "yesterday", "limit": "0", "colour": "red"}
    async with http.get(url, params=params, headers=world.auth("nurse")) as response:
        assert response.status == 422
        fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {"type", "from", "limit", "colour"}


# --- FHIR ----------------------------------------------------------------------------------

FHIR_JSON = "application/fhir+json"


def heart_rate_observation(
    identifier: str, value: float = 44, *, at: datetime | None = None
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:example:readings", "value": identifier}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/ignored-when-absent"},
        "effectiveDateTime": (at or datetime.now(UTC)).isoformat(),
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "/min"},
    }


async def post_fhir(
    http: aiohttp.ClientSession,
    device: DeviceClient,
    path: str,
    document: Any,
    *,
    content_type: str = FHIR_JSON,
    timestamp: int | None = None,
) -> tuple[int, Any, Any]:
    body = json.dumps(document).encode()
    headers = {**device.signed_headers(body, timestamp=timestamp), "Content-Type": content_type}
    async with http.post(f"{device.base_url}{path}", data=body, headers=headers) as response:
        assert response.content_type == FHIR_JSON
        return response.status, await response.json(content_type=None), response.headers


def observation_for(world: World, identifier: str, **kwargs: Any) -> dict[str, Any]:
    resource = heart_rate_observation(identifier, **kwargs)
    resource["subject"] = {"reference": f"Patient/{world.patient}"}
    return resource


async def test_a_fhir_observation_is_created_where_location_says(world, http, device, pool):
    resource = observation_for(world, "obs-1")
    status, outcome, headers = await post_fhir(http, device, "/fhir/Observation", resource)
    assert status == 201
    assert outcome["resourceType"] == "OperationOutcome"
    location = headers["Location"]
    assert location.startswith(f"/fhir/Observation/{device.device_id}.")
    assert world.patient not in location and device.secret not in location
    await stored_count(pool, device.device_id, 1)

    again, outcome, headers = await post_fhir(
        http, device, "/fhir/Observation", resource, timestamp=int(time.time()) + 1
    )
    assert again == 200  # received before; not stored twice
    assert outcome["issue"][0]["code"] == "duplicate"
    assert headers["Location"] == location
    assert await stored_count(pool, device.device_id, 1) == 1


async def test_a_fhir_batch_answers_each_entry(world, http, device, pool):
    bad = observation_for(world, "obs-bad", value=900)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": observation_for(world, "obs-good"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    status, answer, _ = await post_fhir(http, device, "/fhir", bundle)
    assert status == 200
    assert answer["type"] == "batch-response"
    good, refused = answer["entry"]
    assert good["response"]["status"] == "201 Created"
    assert good["response"]["location"].startswith("/fhir/Observation/")
    assert refused["response"]["status"] == "400 Bad Request"
    issue = refused["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.valueQuantity.value"]
    assert await stored_count(pool, device.device_id, 1) == 1


async def test_a_fhir_transaction_with_a_bad_entry_accepts_nothing(world, http, device, pool):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation_for(world, "tx-1"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": observation_for(world, "tx-2", value=-5),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    status, outcome, _ = await post_fhir(http, device, "/fhir", bundle)
    assert (status, outcome["resourceType"]) == (400, "OperationOutcome")
    receipts = await pool.fetchval(
        "SELECT count(*) FROM reading_receipts WHERE device_id = $1", device.device_id
    )
    assert receipts == 0


async def test_every_fhir_error_is_an_operation_outcome(world, http, device):
    resource = observation_for(world, "e-1")
    body = json.dumps(resource).encode()
    headers = {**device.signed_headers(body), "Content-Type": FHIR_JSON, "X-Signature": "0" * 64}
    async with http.post(f"{world.base}/fhir/Observation", data=body, headers=headers) as response:
        assert (response.status, response.content_type) == (401, FHIR_JSON)
        assert (await response.json(content_type=None))["issue"][0]["code"] == "login"

    status, outcome, _ = await post_fhir(
        http, device, "/fhir/Observation", resource, content_type="text/plain"
    )
    assert (status, outcome["resourceType"]) == (415, "OperationOutcome")

    status, outcome, _ = await post_fhir(
        http, device, "/fhir/Observation", {"resourceType": "Bundle", "type": "batch"}
    )
    assert (status, outcome["resourceType"]) == (400, "OperationOutcome")

    huge = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": resource}] * 2000}
    status, outcome, _ = await post_fhir(http, device, "/fhir", huge)
    assert (status, outcome["issue"][0]["code"]) == (413, "too-costly")

    async with http.get(f"{world.base}/fhir/Patient/x") as response:
        assert (response.status, response.content_type) == (404, FHIR_JSON)
        assert (await response.json(content_type=None))["issue"][0]["code"] == "not-found"

    statuses = []
    for n in range(BURST + 1):
        status, outcome, headers = await post_fhir(
            http, device, "/fhir/Observation", observation_for(world, f"e-r{n}")
        )
        statuses.append(status)
    assert statuses[-1] == 429
    assert outcome["issue"][0]["code"] == "throttled"
    assert int(headers["Retry-After"]) >= 1


async def test_fhir_search_returns_a_scoped_searchset(world, http, device, pool):
    now = datetime.now(UTC).replace(microsecond=0)
    earlier = now - timedelta(days=3)
    status, _ = await device.post(
        http,
        [
            reading("fs-hr-old", "heart_rate", 61, "/min", at=earlier),
            reading("fs-hr", "heart_rate", 62, "/min", at=now - timedelta(minutes=5)),
            reading("fs-spo2", "spo2", 95, "%", at=now - timedelta(minutes=5)),
            reading("fs-sys", "systolic_bp", 130, "mm[Hg]", at=now - timedelta(minutes=5)),
        ],
    )
    assert status == 202
    await stored_count(pool, device.device_id, 4)
    params = [
        ("patient", f"Patient/{world.patient}"),
        ("code", "http://loinc.org|8867-4,85354-9"),
        ("date", f"ge{(now - timedelta(days=1)).isoformat()}"),
        ("date", f"le{now.isoformat()}"),
        ("_sort", "date"),
    ]
    async with http.get(
        f"{world.base}/fhir/Observation", params=params, headers=world.auth("specialist")
    ) as response:
        assert (response.status, response.content_type) == (200, FHIR_JSON)
        bundle = await response.json(content_type=None)
    Bundle.model_validate(bundle)  # a valid FHIR R4 Bundle, Observations and all
    assert bundle["type"] == "searchset"
    matches = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    mine = [o for o in matches if o["identifier"][0]["system"].endswith(device.device_id)]
    assert sorted(o["identifier"][0]["value"] for o in mine) == ["fs-hr", "fs-sys"]
    assert all(o["subject"]["reference"] == f"Patient/{world.patient}" for o in matches)
    (note,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "_sort" in note["resource"]["issue"][0]["diagnostics"]

    async with http.get(
        f"{world.base}/fhir/Observation",
        params={"patient": world.patient},
        headers=world.auth("nurse", world.other_org),
    ) as response:
        assert response.status == 404
        assert (await response.json(content_type=None))["resourceType"] == "OperationOutcome"


async def test_fhir_search_pages_and_refuses_bad_dates(world, http, device, pool):
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    status, _ = await device.post(http, [reading(f"fp{n}", at=at) for n in range(3)])
    assert status == 202
    await stored_count(pool, device.device_id, 3)
    url: str | None = f"{world.base}/fhir/Observation?" + urlencode(
        [("patient", world.patient), ("date", f"eq{at.date().isoformat()}"), ("_count", "2")]
    )
    seen: list[str] = []
    while url is not None:
        async with http.get(url, headers=world.auth("nurse")) as response:
            bundle = await response.json(content_type=None)
        seen += [
            e["resource"]["identifier"][0]["value"]
            for e in bundle.get("entry", [])
            if e["resource"]["identifier"][0]["system"].endswith(device.device_id)
        ]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert sorted(seen) == ["fp0", "fp1", "fp2"]

    async with http.get(
        f"{world.base}/fhir/Observation",
        params={"patient": world.patient, "date": "ap2024"},
        headers=world.auth("nurse"),
    ) as response:
        assert response.status == 400
        outcome = await response.json(content_type=None)
    assert any("date" in issue["diagnostics"] for issue in outcome["issue"])


# --- several instances, concurrent requests ------------------------------------------------


async def test_a_device_revoked_on_one_instance_is_refused_at_once_by_another(
    world, http, device, broker, database
):
    other_settings = IngestSettings(
        port=0,
        secret_key=SecretStr(world.secret_key),
        store_enabled=False,
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=4),
        topics=world.topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=3),
        auth=AuthSettings(jwt_secret=SecretStr(world.jwt_secret)),
    )
    runner = web.AppRunner(create_app(other_settings), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        other = DeviceClient(f"http://127.0.0.1:{port}", device.device_id, device.secret)
        status, _ = await other.post(http, [reading("b-1")])
        assert status == 202  # the other instance now holds the device in memory
        async with http.post(
            f"{world.base}/v1/admin/devices/{device.device_id}/revoke",
            headers=world.auth("operator", "platform"),
        ) as response:
            assert response.status == 200
        status, body = await other.post(http, [reading("b-2")])
        assert (status, body["error"]) == (401, "unknown_device")
    finally:
        await runner.cleanup()


async def test_concurrent_requests_with_the_same_readings_accept_each_once(
    world, http, device, pool
):
    batch = [reading(f"c-{n}") for n in range(20)]
    body = json.dumps({"readings": batch}).encode()
    now = int(time.time())
    answers = await asyncio.gather(
        *(
            post_raw(http, device, body, device.signed_headers(body, timestamp=now - n))
            for n in range(BURST)
        )
    )
    assert [status for status, _, _ in answers] == [202] * BURST
    assert sum(answer["accepted"] for _, answer, _ in answers) == 20
    assert sum(answer["duplicates"] for _, answer, _ in answers) == 20 * (BURST - 1)
    assert await stored_count(pool, device.device_id, 20) == 20
    receipts = await pool.fetchval(
        "SELECT count(*) FROM reading_receipts WHERE device_id = $1", device.device_id
    )
    assert receipts == 20

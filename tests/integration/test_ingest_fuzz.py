"""Property-based fuzzing of every route in the OpenAPI document: no request, however odd,
gets a 5xx; documented JSON answers match their schema; FHIR routes answer FHIR.

Bodies come from the document's own request schemas, from plausible readings, and from
arbitrary JSON and bytes; requests are signed right, signed wrong or not at
all; tokens are right, of the wrong organisation or role, or garbage. Real broker and database.
"""

from __future__ import annotations

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from services.ingest import schemas
from services.ingest.app import create_app
from services.ingest.domain.plausibility import PLAUSIBLE
from services.ingest.openapi import openapi_document
from services.ingest.settings import IngestSettings
from shared import db
from shared.auth import Principal, issue_token, sign_request
from shared.infra.processes import free_port
from shared.settings import DatabaseSettings
from shared.vitals import CANONICAL_UNIT, VitalType

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
FHIR_JSON = "application/fhir+json"
MOMENTS = [0]  # stream timestamps used so far


@dataclass
class Target:
    base: str
    jwt_secret: str
    org: str
    other_org: str
    patient: str
    device_id: str
    secret: str
    spare_id: str
    session: aiohttp.ClientSession


@pytest.fixture(scope="module")
async def target(new_infra, care_seeder, database) -> AsyncIterator[Target]:
    infra = await new_infra()
    s = infra.suffix
    jwt_secret = infra.auth.jwt_secret.get_secret_value()
    settings_ = IngestSettings(
        port=0,
        secret_key=SecretStr(secrets.token_urlsafe(32)),
        store_group=f"store-{s}",
        max_body_bytes=64 * 1024,
        offload_bytes=8 * 1024,
        rate_per_s=10_000,
        rate_burst=10_000,
        **infra.common(),
    )
    runner = web.AppRunner(create_app(settings_), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    pool = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=2))
    care = await care_seeder(pool, s)
    org, other_org, patient = care.acute_team, care.other_acute_team, care.patient_id
    await pool.close()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        operator = issue_token(jwt_secret, Principal("op", "operator", "platform"))
        created = []
        for _ in range(2):
            async with session.post(
                f"{base}/v1/admin/devices",
                json={"patient_id": patient, "kind": "home-gateway"},
                headers={"Authorization": f"Bearer {operator}"},
            ) as response:
                assert response.status == 201
                created.append(await response.json())
        device, spare = created
        yield Target(
            base,
            jwt_secret,
            org,
            other_org,
            patient,
            device["device_id"],
            device["secret"],
            spare["device_id"],
            session,
        )
    await runner.cleanup()


# --- what to send --------------------------------------------------------------------------


def inline(schema: Any) -> Any:
    """The schema with every component reference replaced by the component itself."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return inline(SCHEMAS[ref.rsplit("/", 1)[1]])
        return {k: inline(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline(v) for v in schema]
    return schema


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for the (inlined) JSON Schema subset pydantic writes; lists kept short."""
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([from_schema(s) for s in schema.get("anyOf", schema.get("oneOf"))])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = {k: from_schema(v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {})), min_size=low, max_size=low + 4)
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: low <= len(text) <= high
            )
        return st.text(min_size=low, max_size=high)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "integer":
        return st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    device_signed: bool
    body_schema: dict[str, Any] | None
    query: tuple[str, ...]
    responses: dict[str, Any]


OPERATIONS = [
    Operation(
        method=method.upper(),
        path=path,
        device_signed=any("deviceSignature" in s for s in spec.get("security", [])),
        body_schema=next(
            (inline(c["schema"]) for c in spec.get("requestBody", {}).get("content", {}).values()),
            None,
        ),
        query=tuple(p["name"] for p in spec.get("parameters", []) if p["in"] == "query"),
        responses=spec["responses"],
    )
    for path, item in DOCUMENT["paths"].items()
    for method, spec in item.items()
]


def likely(draw: st.DrawFn, fitting: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """Mostly what the route expects, so the fuzzing reaches deep; now and then anything."""
    return draw(fitting) if draw(st.integers(0, 9)) < 7 else draw(odd)


@st.composite
def plausible_reading(draw: st.DrawFn) -> dict[str, Any]:
    """A reading that is often valid, and otherwise wrong in one or two ways."""
    vital = draw(st.sampled_from(list(VitalType)))
    low, high = PLAUSIBLE.get(vital, (0.0, 1.0))
    value: Any = {
        VitalType.ON_OXYGEN: draw(st.booleans()),
        VitalType.CONSCIOUSNESS: draw(st.sampled_from(["A", "C", "V", "P", "U", "X"])),
    }.get(vital, likely(draw, st.floats(low, high), st.floats(-10, 1000)))
    unit = likely(
        draw, st.just(CANONICAL_UNIT[vital]), st.sampled_from(["bpm", "[degF]", "kPa", "furlong"])
    )
    ago = likely(draw, st.integers(-60, 86400), st.integers(-3600, 40 * 86400))
    return {
        "reading_id": uuid.uuid4().hex,
        "type": vital.value,
        "value": value,
        "unit": unit,
        "measured_at": (datetime.now(UTC) - timedelta(seconds=ago)).isoformat(),
    }


def plausible_readings() -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(plausible_reading(), min_size=1, max_size=4).map(
        lambda readings: {"readings": readings}
    )


def fhir_observation(code: str, value: Any, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": uuid.uuid4().hex,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "/min"},
    }


fhir_bodies = st.builds(
    fhir_observation,
    st.sampled_from(["8867-4", "8867-4", "85354-9", "0000-0"]),
    st.integers(30, 200) | st.integers(-5, 400) | st.text(max_size=5),
    st.builds(lambda: datetime.now(UTC).isoformat()) | st.sampled_from(["2024-05", "tomorrow"]),
) | st.builds(
    lambda kind, entries: {"resourceType": "Bundle", "type": kind, "entry": entries},
    st.sampled_from(["batch", "transaction", "collection", "searchset"]),
    st.lists(
        st.builds(lambda r: {"resource": r, "request": {"method": "POST"}}, json_values), max_size=3
    ),
)


def fitting_body(operation: Operation, patient: str) -> st.SearchStrategy[Any]:
    if operation.path == "/v1/readings":
        return plausible_readings()
    if operation.path.startswith("/fhir"):
        return fhir_bodies
    if operation.path == "/v1/admin/devices":
        return from_schema(operation.body_schema or {}).map(
            lambda document: {**document, "patient_id": patient}
        )
    return from_schema(operation.body_schema or {})


def fitting_auth(operation: Operation) -> str:
    if operation.device_signed:
        return "device"
    return "operator" if "/admin/" in operation.path else "nurse"


QUERY_VALUES = {
    "patient": ["{patient}", "Patient/{patient}"],
    "patient_id": ["{patient}"],
    "code": ["8867-4", "http://loinc.org|85354-9", "spo2,heart_rate"],
    "type": ["spo2", "heart_rate,temperature"],
    "date": ["ge2024-01-01", "lt2030-01-01T00:00:00Z", "eq2026-11"],
    "from": ["2024-01-01T00:00:00Z"],
    "to": ["2030-01-01T00:00:00+01:00"],
    "_count": ["1", "50"],
    "limit": ["1", "50"],
    "active": ["true", "false"],
}


@st.composite
def requests(draw: st.DrawFn, target: Target) -> tuple[Operation, str, dict[str, str], bytes]:
    operation = draw(st.sampled_from(OPERATIONS))
    path = operation.path
    # Admin changes go to a spare device, so the one signing requests stays usable.
    device = target.spare_id if path.endswith(("/rotate", "/revoke")) else target.device_id
    for name, real in (("device_id", device), ("patient_id", target.patient)):
        odd = st.sampled_from(["x", "%20", "a" * 300, "dev-0"])
        path = path.replace("{" + name + "}", likely(draw, st.just(real), odd))
    names = likely(
        draw,
        st.lists(st.sampled_from(operation.query), max_size=3) if operation.query else st.just([]),
        st.lists(st.sampled_from([*operation.query, "junk", "_sort"]), max_size=4),
    )
    query = []
    for name in names:
        known = [v.format(patient=target.patient) for v in QUERY_VALUES.get(name, ["1"])]
        query.append((name, likely(draw, st.sampled_from(known), st.text(max_size=30))))
    body = b""
    if operation.body_schema is not None:
        document = likely(draw, fitting_body(operation, target.patient), json_values)
        body = likely(draw, st.just(json.dumps(document).encode()), st.binary(max_size=200))
    headers: dict[str, str] = {}
    fitting_type = FHIR_JSON if path.startswith("/fhir") else "application/json"
    content_type = likely(
        draw, st.just(fitting_type), st.sampled_from([FHIR_JSON, "text/plain", None])
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth = likely(
        draw,
        st.just(fitting_auth(operation)),
        st.sampled_from(["device-wrong", "none", "operator", "nurse", "other-org", "garbage"]),
    )
    if auth.startswith("device"):
        ts = str(int(time.time()))
        signed = body if operation.path != "/v1/stream" else b"GET /v1/stream"
        signature = sign_request(target.secret, ts, signed)
        if auth == "device-wrong":
            signature = signature[::-1]
        headers |= {"X-Device-Id": target.device_id, "X-Timestamp": ts, "X-Signature": signature}
    elif auth in ("operator", "nurse", "other-org"):
        org = target.other_org if auth == "other-org" else target.org
        role = "operator" if auth == "operator" else "nurse"
        token = issue_token(target.jwt_secret, Principal("fuzz", role, org))
        headers["Authorization"] = f"Bearer {token}"
    elif auth == "garbage":
        headers["Authorization"] = draw(st.sampled_from(["Bearer x.y.z", "Basic abc", "Bearer"]))
    if query:
        path = f"{path}?{urlencode(query)}"
    return operation, path, headers, body


def check_schema(operation: Operation, status: int, document: Any) -> None:
    """The answer matches (one of) the models the document names for its status."""
    spec = operation.responses.get(str(status))
    if spec is None:
        return
    content = spec.get("content", {}).get("application/json")
    if content is None:
        return
    names = [ref.rsplit("/", 1)[1] for ref in _refs(content["schema"])]
    failures = []
    for name in names:
        try:
            getattr(schemas, name).model_validate(document)
            return
        except ValueError as exc:
            failures.append(exc)
    raise AssertionError(f"{status} answer matches none of {names}: {failures}")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_request_gets_a_server_error(target: Target, data: st.DataObject) -> None:
    operation, path, headers, body = data.draw(requests(target))
    async with target.session.request(
        operation.method, target.base + path, data=body, headers=headers
    ) as response:
        status = response.status
        raw = await response.read()
        content_type = response.content_type
    assert status < 500, (operation.method, path, status, raw[:300])
    if path.startswith("/fhir"):
        assert content_type == FHIR_JSON
        assert json.loads(raw)["resourceType"] in ("OperationOutcome", "Bundle")
    elif content_type == "application/json":
        check_schema(operation, status, json.loads(raw))


@settings(max_examples=60, deadline=None)
@given(messages=st.lists(plausible_readings() | json_values, min_size=1, max_size=5))
async def test_no_stream_message_breaks_the_stream(target: Target, messages: list[Any]) -> None:
    # A stream's signature covers only its moment: each connection needs a moment of its own.
    MOMENTS.append(max(int(time.time()) - 250, MOMENTS[-1] + 1))
    ts = str(MOMENTS[-1])
    headers = {
        "X-Device-Id": target.device_id,
        "X-Timestamp": ts,
        "X-Signature": sign_request(target.secret, ts, b"GET /v1/stream"),
    }
    async with target.session.ws_connect(f"{target.base}/v1/stream", headers=headers) as ws:
        for message in messages:
            await ws.send_str(json.dumps(message))
            answer = await ws.receive_json()
            shape = schemas.StreamErrorOut if "error" in answer else schemas.ReadingsResult
            shape.model_validate(answer)
        assert not ws.closed


async def test_the_document_is_served_and_is_openapi_3_1(target: Target) -> None:
    async with target.session.get(f"{target.base}/openapi.json") as response:
        assert response.status == 200
        served = await response.json()
    assert served == json.loads(json.dumps(DOCUMENT))
    assert served["openapi"].startswith("3.1")
    referenced = {ref.rsplit("/", 1)[1] for ref in _refs(served)}
    assert referenced <= set(SCHEMAS)
    assert {"ReadingsRequest", "ReadingsResult", "DeviceRegistration"} <= referenced
    for path, item in served["paths"].items():
        for method, spec in item.items():
            assert spec["responses"], (method, path)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []

"""Ingest HTTP handlers: translate requests to the domain and the domain's answers to JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from services.ingest import queries
from services.ingest.devices import ActiveDevice, Device, DeviceRegistry
from services.ingest.domain.reading_query import native_query
from services.ingest.domain.validation import Reading, Rejection, validate_batch
from services.ingest.gate import DeviceGate
from services.ingest.intake import Intake
from services.ingest.publishing import ReadingPublisher
from services.ingest.schemas import (
    DeviceCredentials,
    DeviceList,
    DeviceOut,
    DeviceRegistration,
    DeviceRevoked,
    FieldErrorOut,
    PatientReadings,
    ReadingsResult,
    RejectionOut,
    StoredReading,
    parse_body,
)
from services.ingest.settings import IngestSettings
from shared.errors import FieldProblem, InvalidInput, PayloadTooLarge, Unavailable
from shared.http import bearer, parse_json
from shared.lifecycle import POOL

SETTINGS = web.AppKey("ingest_settings", IngestSettings)
REGISTRY = web.AppKey("device_registry", DeviceRegistry)
GATE = web.AppKey("device_gate", DeviceGate)
READINGS = web.AppKey("reading_publisher", ReadingPublisher)
INTAKE = web.AppKey("intake", Intake)

T = TypeVar("T")


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The whole body, or 413 as soon as it grows past ``max_bytes``."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def off_loop_if_large(settings: IngestSettings, size: int, work: Callable[[], T]) -> T:
    """Run CPU-heavy decoding and validation of a large body on a worker thread."""
    if size > settings.offload_bytes:
        return await asyncio.to_thread(work)
    return work()


def readings_list(document: Any, *, limit: int) -> list[Any]:
    if not isinstance(document, dict):
        raise InvalidInput("body must be a JSON object", [FieldProblem("", "expected an object")])
    unknown = [
        FieldProblem(name, "unknown field; the body holds only readings")
        for name in document
        if name != "readings"
    ]
    items = document.get("readings")
    if not isinstance(items, list):
        problem = FieldProblem("readings", "expected a list")
        raise InvalidInput("body must hold a readings list", [problem, *unknown])
    if unknown:
        raise InvalidInput("body has unknown fields", unknown)
    if not items:
        raise InvalidInput(
            "no readings", [FieldProblem("readings", "must contain at least one reading")]
        )
    if len(items) > limit:
        raise PayloadTooLarge(f"at most {limit} readings per request, got {len(items)}")
    return items


def validate_readings(
    settings: IngestSettings, device: ActiveDevice, items: list[Any]
) -> tuple[list[Reading], list[Rejection]]:
    return validate_batch(
        items,
        patient_id=device.patient_id,
        now=datetime.now(UTC),
        late_limit=timedelta(days=settings.late_limit_days),
    )


async def take_batch(app: web.Application, device: ActiveDevice, body: bytes) -> ReadingsResult:
    """Decode, validate and accept one native batch (a request body or a stream message)."""
    settings = app[SETTINGS]

    def decode() -> tuple[list[Reading], list[Rejection]]:
        items = readings_list(parse_json(body), limit=settings.max_readings)
        return validate_readings(settings, device, items)

    readings, rejections = await off_loop_if_large(settings, len(body), decode)
    outcome = await app[INTAKE].accept(
        device_id=device.device_id, patient_id=device.patient_id, readings=readings
    )
    return ReadingsResult(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=[
            RejectionOut(
                index=r.index,
                reading_id=r.reading_id,
                errors=[FieldErrorOut(field=e.field, message=e.message) for e in r.errors],
            )
            for r in rejections
        ],
    )


async def post_readings(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    gate = request.app[GATE]
    body = await read_body(request, max_bytes=settings.max_body_bytes)
    admitted = await gate.admit(request.headers, body)
    try:
        result = await take_batch(request.app, admitted.device, body)
    except Unavailable:
        gate.release(admitted)
        raise
    status = 422 if result.accepted == 0 and result.duplicates == 0 else 202
    return web.json_response(result.model_dump(mode="json"), status=status)


# --- device administration (operators) -----------------------------------------------------


def _device_json(device: Device) -> dict[str, Any]:
    return DeviceOut(
        device_id=device.device_id,
        patient_id=device.patient_id,
        kind=device.kind,
        model=device.model,
        serial=device.serial,
        created_at=device.created_at,
        rotated_at=device.rotated_at,
        revoked_at=device.revoked_at,
    ).model_dump(mode="json")


async def register_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    body = await read_body(request, max_bytes=16 * 1024)
    registration = parse_body(DeviceRegistration, parse_json(body))
    credentials = await request.app[REGISTRY].register(
        patient_id=registration.patient_id,
        kind=registration.kind,
        model=registration.model,
        serial=registration.serial,
    )
    answer = DeviceCredentials(device_id=credentials.device_id, secret=credentials.secret)
    return web.json_response(answer.model_dump(), status=201, headers={"Cache-Control": "no-store"})


_TRUTH = {"true": True, "false": False}


async def list_devices(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    problems = [
        FieldProblem(name, "unknown parameter; accepted: patient_id, active")
        for name in request.query
        if name not in ("patient_id", "active")
    ]
    active_text = request.query.get("active")
    if active_text is not None and active_text not in _TRUTH:
        problems.append(FieldProblem("active", "must be true or false"))
    if problems:
        raise InvalidInput("invalid query parameters", problems)
    devices = await request.app[REGISTRY].list(
        patient_id=request.query.get("patient_id"),
        active=_TRUTH[active_text] if active_text is not None else None,
    )
    listing = DeviceList.model_validate({"devices": [_device_json(d) for d in devices]})
    return web.json_response(listing.model_dump(mode="json"))


async def get_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    device = await request.app[REGISTRY].get(request.match_info["device_id"])
    return web.json_response(_device_json(device))


async def rotate_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    credentials = await request.app[REGISTRY].rotate(request.match_info["device_id"])
    answer = DeviceCredentials(device_id=credentials.device_id, secret=credentials.secret)
    return web.json_response(answer.model_dump(), headers={"Cache-Control": "no-store"})


async def revoke_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    device_id = request.match_info["device_id"]
    await request.app[REGISTRY].revoke(device_id)
    return web.json_response(DeviceRevoked(device_id=device_id).model_dump())


# --- clinicians' reads ---------------------------------------------------------------------


async def get_patient_readings(request: web.Request) -> web.Response:
    principal = bearer(request)
    settings = request.app[SETTINGS]
    patient_id = request.match_info["patient_id"]
    parameters = list(request.query.items())
    query = native_query(patient_id, parameters, page_max=settings.query_page_max)
    page, following = await queries.patient_readings(
        request.app[POOL],
        principal,
        query,
        action="readings.read",
        reason=request.headers.get("X-Access-Reason", "readings query"),
    )
    next_url = None
    if following is not None:
        kept = [(k, v) for k, v in parameters if k != "after"]
        next_url = f"{request.path}?{urlencode([*kept, ('after', following.encode())])}"
    answer = PatientReadings(
        patient_id=patient_id,
        readings=[
            StoredReading(
                device_id=r.device_id,
                reading_id=r.reading_id,
                type=r.type,
                value=r.value,
                unit=r.unit,
                measured_at=r.measured_at,
                received_at=r.received_at,
                late=r.late,
            )
            for r in page
        ],
        next=next_url,
    )
    return web.json_response(answer.model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/readings", post_readings)
    app.router.add_post("/v1/admin/devices", register_device)
    app.router.add_get("/v1/admin/devices", list_devices)
    app.router.add_get("/v1/admin/devices/{device_id}", get_device)
    app.router.add_post("/v1/admin/devices/{device_id}/rotate", rotate_device)
    app.router.add_post("/v1/admin/devices/{device_id}/revoke", revoke_device)
    app.router.add_get("/v1/patients/{patient_id}/readings", get_patient_readings)

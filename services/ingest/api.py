"""Ingest HTTP handlers: translate requests to the domain and the domain's answers to JSON."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from services.ingest.devices import ActiveDevice, DeviceRegistry
from services.ingest.domain.validation import Rejection, validate_batch
from services.ingest.intake import accept
from services.ingest.settings import IngestSettings
from shared.auth import check_timestamp, verify_signature
from shared.errors import AuthError, FieldProblem, InvalidInput, PayloadTooLarge, UnknownDevice
from shared.http import bearer, parse_json, read_json
from shared.lifecycle import POOL, PUBLISHER

SETTINGS = web.AppKey("ingest_settings", IngestSettings)
REGISTRY = web.AppKey("device_registry", DeviceRegistry)


async def authenticate_device(request: web.Request, body: bytes) -> ActiveDevice:
    """The device that signed this request; 401 for anything short of a valid signature."""
    settings = request.app[SETTINGS]
    device_id = request.headers.get("X-Device-Id", "")
    timestamp = request.headers.get("X-Timestamp", "")
    signature = request.headers.get("X-Signature", "")
    if not (device_id and timestamp and signature):
        raise AuthError("X-Device-Id, X-Timestamp and X-Signature headers are required")
    check_timestamp(timestamp, now=time.time(), max_skew_s=settings.clock_skew_s)
    device = await request.app[REGISTRY].active(device_id)
    if device is None:
        raise UnknownDevice(device_id)
    verify_signature(device.secret, timestamp, body, signature)
    return device


def _rejection_json(r: Rejection) -> dict[str, Any]:
    return {
        "index": r.index,
        "reading_id": r.reading_id,
        "errors": [{"field": e.field, "message": e.message} for e in r.errors],
    }


def _readings_list(document: Any, *, limit: int) -> list[Any]:
    if not isinstance(document, dict):
        raise InvalidInput("body must be a JSON object", [FieldProblem("", "expected an object")])
    items = document.get("readings")
    if not isinstance(items, list):
        raise InvalidInput(
            "body must hold a readings list", [FieldProblem("readings", "expected a list")]
        )
    if not items:
        raise InvalidInput(
            "no readings", [FieldProblem("readings", "must contain at least one reading")]
        )
    if len(items) > limit:
        raise PayloadTooLarge(f"at most {limit} readings per request, got {len(items)}")
    return items


async def post_readings(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await request.content.read(settings.max_body_bytes + 1)
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body larger than {settings.max_body_bytes} bytes")
    device = await authenticate_device(request, body)
    items = _readings_list(parse_json(body), limit=settings.max_readings)
    readings, rejections = validate_batch(
        items,
        patient_id=device.patient_id,
        now=datetime.now(UTC),
        late_limit=timedelta(days=settings.late_limit_days),
    )
    outcome = await accept(
        request.app[POOL],
        request.app[PUBLISHER],
        topic=settings.topics.readings,
        device_id=device.device_id,
        patient_id=device.patient_id,
        readings=readings,
    )
    status = 422 if outcome.accepted == 0 and outcome.duplicates == 0 else 202
    return web.json_response(
        {
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": [_rejection_json(r) for r in rejections],
        },
        status=status,
    )


def _text_field(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidInput(
            f"invalid {name}",
            [FieldProblem(name, "must be a non-empty string of at most 128 characters")],
        )
    return value.strip()


async def register_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    _, document = await read_json(request, max_bytes=16 * 1024)
    if not isinstance(document, dict):
        raise InvalidInput("body must be a JSON object", [FieldProblem("", "expected an object")])
    patient_id = _text_field(document, "patient_id", required=True)
    assert patient_id is not None
    credentials = await request.app[REGISTRY].register(
        patient_id=patient_id,
        kind=_text_field(document, "kind", required=False) or "gateway",
        model=_text_field(document, "model", required=False),
        serial=_text_field(document, "serial", required=False),
    )
    return web.json_response(
        {"device_id": credentials.device_id, "secret": credentials.secret}, status=201
    )


async def list_devices(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    devices = await request.app[REGISTRY].list(patient_id=request.query.get("patient_id"))
    return web.json_response({"devices": [d.to_json() for d in devices]})


async def rotate_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    credentials = await request.app[REGISTRY].rotate(request.match_info["device_id"])
    return web.json_response({"device_id": credentials.device_id, "secret": credentials.secret})


async def revoke_device(request: web.Request) -> web.Response:
    bearer(request).require("operator")
    await request.app[REGISTRY].revoke(request.match_info["device_id"])
    return web.json_response({"device_id": request.match_info["device_id"], "revoked": True})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/readings", post_readings)
    app.router.add_post("/v1/admin/devices", register_device)
    app.router.add_get("/v1/admin/devices", list_devices)
    app.router.add_post("/v1/admin/devices/{device_id}/rotate", rotate_device)
    app.router.add_post("/v1/admin/devices/{device_id}/revoke", revoke_device)

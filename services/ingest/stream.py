"""GET /v1/stream: a WebSocket for continuous wearables, one native batch per message.

The device signs ``"{X-Timestamp}\\nGET /v1/stream"`` in the upgrade request's headers; each
text message is a body as for POST /v1/readings and is answered, in order, with its own
``{accepted, duplicates, rejected}`` once the broker acknowledged it, or with an error message
(``{error, message, ...}``) that leaves the stream open. A revoked device's stream is closed.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from services.ingest.api import GATE, SETTINGS, take_batch
from services.ingest.devices import ActiveDevice
from services.ingest.gate import STREAM_SIGNED_TEXT
from services.ingest.schemas import FieldErrorOut, StreamErrorOut
from shared.errors import InvalidInput, NaervagtError, RateLimited, Unavailable, UnknownDevice
from shared.http import track

log = logging.getLogger(__name__)

_HEARTBEAT_S = 30.0


def _error(exc: NaervagtError) -> dict[str, Any]:
    problems = exc.problems if isinstance(exc, InvalidInput) else ()
    return StreamErrorOut(
        error=exc.code,
        message=exc.message,
        errors=[FieldErrorOut(field=p.field, message=p.message) for p in problems] or None,
        retry_after_s=exc.retry_after_s if isinstance(exc, RateLimited | Unavailable) else None,
    ).model_dump(mode="json", exclude_none=True)


async def _answer(app: web.Application, device: ActiveDevice, data: bytes) -> dict[str, Any]:
    gate = app[GATE]
    try:
        if not await gate.still_active(device.device_id):
            raise UnknownDevice(device.device_id)
        gate.throttle(device.device_id)
        result = await take_batch(app, device, data)
    except NaervagtError as exc:
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            log.exception("stream message failed", extra={"device_id": device.device_id})
        return _error(exc)
    return result.model_dump(mode="json")


async def stream(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    gate = request.app[GATE]
    # Refused before the upgrade, so the device sees a plain 401 or 429.
    admitted = await gate.admit(request.headers, STREAM_SIGNED_TEXT)
    device = admitted.device
    ws = web.WebSocketResponse(heartbeat=_HEARTBEAT_S, max_msg_size=settings.max_body_bytes)
    await ws.prepare(request)
    track(request, ws)
    async for message in ws:
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        data = message.data.encode() if message.type is WSMsgType.TEXT else message.data
        answer = await _answer(request.app, device, data)
        await ws.send_json(answer)
        if answer.get("error") == UnknownDevice.code:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"device revoked")
            break
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/stream", stream)

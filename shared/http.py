"""What every service's HTTP side shares: error translation, health, readiness, metrics, auth."""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import typedefs as aiohttp_typedefs
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import metrics
from shared.auth import Principal, verify_token
from shared.errors import (
    InvalidInput,
    InvalidToken,
    NaervagtError,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from shared.settings import AuthSettings

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[Mapping[str, bool]]]
Middleware = aiohttp_typedefs.Middleware
READINESS = web.AppKey("readiness", list[ReadinessCheck])
AUTH = web.AppKey("auth_settings", AuthSettings)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse[bool]])


def error_body(
    code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def error_response(exc: NaervagtError) -> web.Response:
    errors = [p.to_json() for p in exc.problems] if isinstance(exc, InvalidInput) else None
    response = web.json_response(error_body(exc.code, exc.message, errors), status=exc.status)
    if isinstance(exc, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    route = request.match_info.route.resource
    route_name = route.canonical if route is not None else "unmatched"
    started = time.perf_counter()
    try:
        response = await handler(request)
    except NaervagtError as exc:
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            log.exception("request failed", extra={"route": route_name})
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.empty_body:
            raise
        response = web.json_response(
            error_body(exc.reason.lower().replace(" ", "_"), exc.reason), status=exc.status
        )
        for name in ("Allow", "Location"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    metrics.http_requests.labels(route_name, request.method, str(response.status)).inc()
    metrics.http_latency.labels(route_name, request.method).observe(time.perf_counter() - started)
    return response


async def read_json(request: web.Request, *, max_bytes: int) -> tuple[bytes, Any]:
    """The raw body and its decoded JSON: 413 past ``max_bytes``, 400 for a body not JSON."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):  # read() returns what has arrived
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    return body, parse_json(body)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadJson(str(exc)) from exc


class BadJson(InvalidInput):
    status = 400
    code = "bad_json"

    def __init__(self, detail: str) -> None:
        super().__init__("body is not valid JSON", [])
        self.detail = detail


def bearer(request: web.Request) -> Principal:
    """The clinician or operator behind the request's ``Authorization: Bearer`` token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("an Authorization: Bearer token is required")
    auth = request.app[AUTH]
    return verify_token(auth.jwt_secret.get_secret_value(), token.strip(), issuer=auth.jwt_issuer)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, bool] = {}
    for check in request.app[READINESS]:
        checks.update(await check())
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def cors_middleware(origins: Sequence[str]) -> Middleware:
    """Let the listed browser origins (another service's page) call this API with a token."""
    allowed = frozenset(origins)

    @web.middleware
    async def cors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin not in allowed:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return cors


def base_app(
    auth: AuthSettings,
    *,
    client_max_size: int = 4 * 1024 * 1024,
    cors_origins: Sequence[str] = (),
) -> web.Application:
    """An application with error translation and the health, readiness and metrics endpoints."""
    middlewares: list[Middleware] = [error_middleware]
    if cors_origins:
        middlewares.insert(0, cors_middleware(cors_origins))
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    app[READINESS] = []
    app[AUTH] = auth
    app[WEBSOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def track(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Remember an open WebSocket so that shutdown closes it with 1001 (going away)."""
    request.app[WEBSOCKETS].add(ws)


async def close_websockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse[bool]] = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutting down")

"""FHIR R4 endpoints: device-signed Observations and Bundles in, Observation search out.

Every answer on a ``/fhir`` path is FHIR: errors of any kind (401, 404, 413, 429, 503...) are
OperationOutcomes with ``Content-Type: application/fhir+json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from services.ingest import queries
from services.ingest.api import (
    GATE,
    INTAKE,
    SETTINGS,
    off_loop_if_large,
    read_body,
    validate_readings,
)
from services.ingest.devices import ActiveDevice
from services.ingest.domain.fhir import (
    FHIR_CONTENT_TYPE,
    FhirRequest,
    Settled,
    parse_fhir,
    respond,
    settle,
)
from services.ingest.domain.fhir_outcome import Issue, operation_outcome
from services.ingest.domain.fhir_search import observation_id, parse_search, searchset
from services.ingest.domain.validation import Reading
from shared.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NaervagtError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from shared.http import BadJson, bearer, parse_json
from shared.lifecycle import POOL

LOCAL_ZONE = web.AppKey("fhir_local_zone", ZoneInfo)
"""Dates without a UTC offset in searches are read in this zone (Europe/Copenhagen)."""

log = logging.getLogger(__name__)


class BadFhirRequest(InvalidInput):
    """FHIR answers a request it cannot act on, or a search it cannot run, with 400."""

    status = 400
    code = "bad_request"


_ACCEPTED_TYPES: Final = (FHIR_CONTENT_TYPE, "application/json")
_ISSUE_CODE: Final[list[tuple[type[NaervagtError], str]]] = [
    (PayloadTooLarge, "too-costly"),
    (BadJson, "structure"),
    (InvalidInput, "invalid"),
    (AuthError, "login"),
    (Forbidden, "forbidden"),
    (NotFound, "not-found"),
    (Conflict, "conflict"),
    (RateLimited, "throttled"),
    (Unavailable, "transient"),
]
_HTTP_ISSUE_CODE: Final = {404: "not-found", 405: "not-supported", 415: "not-supported"}


def fhir_response(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type=FHIR_CONTENT_TYPE,
        charset="utf-8",
        headers=headers,
    )


def _outcome_for(exc: NaervagtError) -> dict[str, Any]:
    code = next((c for kind, c in _ISSUE_CODE if isinstance(exc, kind)), "exception")
    problems = exc.problems if isinstance(exc, InvalidInput) else ()
    issues = [
        Issue("error", code, f"{p.field}: {p.message}" if p.field else p.message) for p in problems
    ]
    return operation_outcome([Issue("error", code, exc.message), *issues])


@web.middleware
async def fhir_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """On /fhir paths, turn every error into an OperationOutcome."""
    if not request.path.startswith("/fhir"):
        return await handler(request)
    try:
        return await handler(request)
    except NaervagtError as exc:
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            log.exception("request failed", extra={"route": request.path})
        headers = {}
        if isinstance(exc, RateLimited | Unavailable):
            headers["Retry-After"] = str(exc.retry_after_s)
        return fhir_response(exc.status, _outcome_for(exc), **headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_ISSUE_CODE.get(exc.status, "processing")
        outcome = operation_outcome([Issue("error", code, exc.reason)])
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return fhir_response(exc.status, outcome, **headers)
    except Exception:
        log.exception("request failed", extra={"route": request.path})
        outcome = operation_outcome([Issue("fatal", "exception", "internal error")])
        return fhir_response(500, outcome)


# --- device-signed writes ------------------------------------------------------------------


def _check_content_type(request: web.Request) -> None:
    if request.content_type not in _ACCEPTED_TYPES:
        raise web.HTTPUnsupportedMediaType(
            reason=f"Content-Type must be {FHIR_CONTENT_TYPE}, got {request.content_type!r}"
        )


def observation_path(reading: Reading, device: ActiveDevice) -> str:
    return f"/fhir/Observation/{observation_id(device.device_id, reading.reading_id)}"


async def _take(request: web.Request, *, lone_observation: bool) -> web.Response:
    _check_content_type(request)
    settings = request.app[SETTINGS]
    body = await read_body(request, max_bytes=settings.max_body_bytes)
    admitted = await request.app[GATE].admit(request.headers, body)
    device = admitted.device

    def decode() -> tuple[FhirRequest, Settled]:
        document = parse_json(body)
        if lone_observation and (
            not isinstance(document, dict) or document.get("resourceType") != "Observation"
        ):
            raise BadFhirRequest("this endpoint takes one Observation; post Bundles to /fhir")
        fhir = parse_fhir(document)
        items = fhir.native_items()
        if len(items) > settings.max_readings:
            raise PayloadTooLarge(
                f"at most {settings.max_readings} readings per request, got {len(items)}"
            )
        readings, rejections = validate_readings(settings, device, items)
        return fhir, settle(fhir, readings=readings, rejections=rejections)

    fhir, settled = await off_loop_if_large(settings, len(body), decode)
    try:
        outcome = await request.app[INTAKE].accept(
            device_id=device.device_id, patient_id=device.patient_id, readings=settled.readings
        )
    except Unavailable:
        request.app[GATE].release(admitted)
        raise
    if not settled.results:  # refused as a whole
        return fhir_response(settled.http_status, settled.body)
    status, answer = respond(
        fhir,
        settled.results,
        duplicates=outcome.duplicate_ids,
        location=lambda reading: observation_path(reading, device),
    )
    headers = {}
    if fhir.bundle_type is None and settled.readings:
        headers["Location"] = observation_path(settled.readings[0], device)
    return fhir_response(status, answer, **headers)


async def post_observation(request: web.Request) -> web.Response:
    return await _take(request, lone_observation=True)


async def post_bundle(request: web.Request) -> web.Response:
    return await _take(request, lone_observation=False)


# --- clinicians' search --------------------------------------------------------------------


async def search_observations(request: web.Request) -> web.Response:
    principal = bearer(request)
    settings = request.app[SETTINGS]
    parameters = list(request.query.items())
    try:
        search = parse_search(
            parameters, local=request.app[LOCAL_ZONE], page_max=settings.query_page_max
        )
    except InvalidInput as exc:
        raise BadFhirRequest(exc.message, exc.problems) from exc
    page, following = await queries.patient_readings(
        request.app[POOL],
        principal,
        search.query,
        action="fhir.observation.search",
        reason=request.headers.get("X-Access-Reason", "FHIR Observation search"),
    )
    base = f"{request.url.origin()}/fhir"
    self_url = f"{base}/Observation?{urlencode(search.used)}"
    next_url = None
    if following is not None:
        next_url = f"{self_url}&{urlencode([('_cursor', following.encode())])}"
    bundle = searchset(
        page, base_url=base, self_url=self_url, next_url=next_url, ignored=search.ignored
    )
    return fhir_response(200, bundle)


def add_routes(app: web.Application) -> None:
    app[LOCAL_ZONE] = ZoneInfo("Europe/Copenhagen")
    app.middlewares.append(fhir_errors)
    app.router.add_post("/fhir/Observation", post_observation)
    app.router.add_get("/fhir/Observation", search_observations)
    app.router.add_post("/fhir", post_bundle)

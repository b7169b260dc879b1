"""Video HTTP handlers: consultation requests, presence, rooms, invitations and vital signs.

Handlers translate only: they authenticate, parse, call the stores and the domain, respond.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from services.video import consults, presence, rooms_store
from services.video.domain.consults import (
    ConsultStatus,
    parse_request,
    parse_specialty,
    parse_status,
)
from services.video.domain.invites import display_name, join_url, parse_invite
from services.video.domain.presence import parse_update
from services.video.domain.rooms import HOST_ROLES, Role
from services.video.domain.tokens import (
    JoinClaims,
    TokenError,
    check_room,
    issue_join_token,
    verify_join_token,
)
from services.video.domain.vitals_panel import StoredReading, panel
from services.video.settings import VideoSettings
from services.video.signaling import close_room
from shared import audit
from shared.audit import AuditEntry
from shared.auth import CLINICIAN_ROLES, Principal, issue_token
from shared.db import database_errors
from shared.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidToken,
    NotFound,
    Unavailable,
)
from shared.http import bearer, read_json
from shared.lifecycle import POOL, PUBLISHER
from shared.outbox import relay

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("video_settings", VideoSettings)
JOIN_KEY = web.AppKey("video_join_key", bytes)
SOURCE = "/naervagt/video"
MAX_BODY_BYTES = 16 * 1024

_ROLE_NAMES = {"nurse": "Nurse", "gp": "GP", "specialist": "Specialist"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def clinician(request: web.Request) -> Principal:
    principal = bearer(request)
    principal.require(*CLINICIAN_ROLES)
    return principal


async def _body(request: web.Request, *, optional: bool = False) -> Any:
    if optional and not request.can_read_body:
        return {}
    _, document = await read_json(request, max_bytes=MAX_BODY_BYTES)
    return document


def _base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_url
    return configured if configured else f"{request.scheme}://{request.host}"


async def _publish_soon(request: web.Request) -> None:
    """Publish the outbox now; if the broker is down, the scheduler's sweep publishes later."""
    with contextlib.suppress(Unavailable):
        await relay(request.app[POOL], request.app[PUBLISHER], source=SOURCE)


async def _name_for(request: web.Request, principal: Principal, document: Any) -> str:
    """The display name a clinician asked for, else their organisation's name."""
    if isinstance(document, dict) and "display_name" in document:
        problems: list[FieldProblem] = []
        name = display_name(document["display_name"], problems)
        if name is None:
            raise InvalidInput("the display name is not valid", problems)
        return name
    async with database_errors("reading an organisation"):
        org_name = await request.app[POOL].fetchval(
            "SELECT name FROM organisations WHERE org_id = $1", principal.org_id
        )
    fallback = _ROLE_NAMES.get(principal.role, principal.role)
    return org_name[:80].strip() if isinstance(org_name, str) and org_name.strip() else fallback


def _host_token(
    request: web.Request, room_id: str, *, role: str, name: str, subject: str, ttl_s: int
) -> dict[str, Any]:
    now = time.time()
    token = issue_join_token(
        key=request.app[JOIN_KEY],
        room_id=room_id,
        role=role,
        display_name=name,
        subject=subject,
        ttl_s=ttl_s,
        now=now,
    )
    return {
        "room_id": room_id,
        "token": token,
        "join_url": join_url(_base_url(request), token),
        "expires_at": datetime.fromtimestamp(int(now) + ttl_s, UTC).isoformat(),
    }


# -- consultation requests ---------------------------------------------------------------------


async def post_consult(request: web.Request) -> web.Response:
    principal = clinician(request)
    settings = request.app[SETTINGS]
    wanted = parse_request(await _body(request), specialties=settings.specialties)
    consult = await consults.request(
        request.app[POOL],
        principal,
        wanted,
        now=utcnow(),
        acute_after=timedelta(seconds=settings.acute_escalation_s),
        topic=settings.topics.consults,
    )
    await _publish_soon(request)
    return web.json_response(consult.view(), status=201)


async def list_consults(request: web.Request) -> web.Response:
    principal = clinician(request)
    settings = request.app[SETTINGS]
    default = ConsultStatus.WAITING if principal.role == "specialist" else None
    found = await consults.listing(
        request.app[POOL],
        principal,
        status=parse_status(request.query.get("status"), default=default),
        specialty=parse_specialty(request.query.get("specialty"), specialties=settings.specialties),
    )
    return web.json_response({"consults": [c.view() for c in found]})


async def get_consult(request: web.Request) -> web.Response:
    principal = clinician(request)
    consult = await consults.read(request.app[POOL], principal, request.match_info["consult_id"])
    return web.json_response(consult.view())


async def accept_consult(request: web.Request) -> web.Response:
    principal = clinician(request)
    settings = request.app[SETTINGS]
    document = await _body(request, optional=True)
    name = await _name_for(request, principal, document)
    consult, room = await consults.accept(
        request.app[POOL],
        principal,
        request.match_info["consult_id"],
        now=utcnow(),
        topic=settings.topics.consults,
        room_unused_expiry=timedelta(seconds=settings.room_unused_expiry_s),
    )
    await _publish_soon(request)
    joining = _host_token(
        request,
        room.room_id,
        role=Role.SPECIALIST,
        name=name,
        subject=principal.subject,
        ttl_s=settings.host_token_ttl_s,
    )
    return web.json_response({"consult_id": str(consult.consult_id), **joining})


async def join_consult(request: web.Request) -> web.Response:
    principal = clinician(request)
    settings = request.app[SETTINGS]
    document = await _body(request, optional=True)
    consult = await consults.joinable(
        request.app[POOL], principal, request.match_info["consult_id"]
    )
    assert consult.room_id is not None
    room = await rooms_store.get_room(request.app[POOL], consult.room_id)
    if room is None or not room.is_open(utcnow()):
        raise Conflict("the consultation's room is closed")
    joining = _host_token(
        request,
        consult.room_id,
        role=principal.role,
        name=await _name_for(request, principal, document),
        subject=principal.subject,
        ttl_s=settings.host_token_ttl_s,
    )
    return web.json_response({"consult_id": str(consult.consult_id), **joining})


async def cancel_consult(request: web.Request) -> web.Response:
    principal = clinician(request)
    consult = await consults.cancel(
        request.app[POOL],
        principal,
        request.match_info["consult_id"],
        now=utcnow(),
        topic=request.app[SETTINGS].topics.consults,
    )
    await _publish_soon(request)
    return web.json_response(consult.view())


# -- presence ----------------------------------------------------------------------------------


async def put_presence(request: web.Request) -> web.Response:
    principal = clinician(request)
    pool = request.app[POOL]
    offered = await presence.offered_by(pool, principal)
    change = parse_update(await _body(request), offered=offered)
    body = await presence.update(pool, principal, change, offered=offered, now=utcnow())
    return web.json_response(body)


async def get_presence(request: web.Request) -> web.Response:
    clinician(request)
    settings = request.app[SETTINGS]
    body = await presence.board(
        request.app[POOL],
        specialty=parse_specialty(request.query.get("specialty"), specialties=settings.specialties),
        now=utcnow(),
        ttl=timedelta(seconds=settings.presence_ttl_s),
    )
    return web.json_response(body)


# -- rooms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """Who acts for a room: a clinician of its organisation, or a host's join token."""

    subject: str
    role: str
    org_id: str
    room: rooms_store.RoomRecord


def _bearer_text(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("an Authorization: Bearer token is required")
    return token.strip()


def _join_claims(request: web.Request, room_id: str) -> JoinClaims:
    try:
        claims = verify_join_token(
            _bearer_text(request), key=request.app[JOIN_KEY], now=time.time()
        )
        check_room(claims, room_id)
    except TokenError as exc:
        raise InvalidToken(f"join token refused: {exc.reason}") from exc
    return claims


async def _open_room(request: web.Request, room_id: str) -> rooms_store.RoomRecord:
    room = await rooms_store.get_room(request.app[POOL], room_id)
    if room is None:
        raise NotFound("no such room")
    if not room.is_open(utcnow()):
        raise NotFound("the room is closed")
    return room


async def room_host(request: web.Request) -> Host:
    """The host behind the request: a clinician JWT (three dot-separated parts) of the room's
    organisation, or a join token of this room in a host role."""
    room_id = request.match_info["room_id"]
    if _bearer_text(request).count(".") == 2:
        principal = clinician(request)
        room = await _open_room(request, room_id)
        if room.org_id != principal.org_id:
            raise NotFound("no such room for your organisation")
        return Host(principal.subject, principal.role, principal.org_id, room)
    claims = _join_claims(request, room_id)
    if claims.role not in HOST_ROLES:
        raise Forbidden("only a clinician hosting the room can do this")
    room = await _open_room(request, room_id)
    return Host(claims.subject, str(claims.role), room.org_id, room)


async def post_room(request: web.Request) -> web.Response:
    principal = clinician(request)
    settings = request.app[SETTINGS]
    document = await _body(request, optional=True)
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("", "not an object")])
    patient_id = document.get("patient_id")
    if patient_id is not None and (not isinstance(patient_id, str) or not patient_id):
        raise InvalidInput("patient_id is not valid", [FieldProblem("patient_id", "an id")])
    name = await _name_for(request, principal, document)
    pool = request.app[POOL]
    async with database_errors("creating a room"), pool.acquire() as conn, conn.transaction():
        if patient_id is not None:
            responsible = await conn.fetchval(
                "SELECT 1 FROM patient_orgs WHERE patient_id = $1 AND org_id = $2",
                patient_id,
                principal.org_id,
            )
            if responsible is None:
                raise NotFound("no such patient for your organisation")
        room = await rooms_store.create_room(
            conn,
            org_id=principal.org_id,
            created_by=principal.subject,
            patient_id=patient_id,
            consult_id=None,
            now=utcnow(),
            unused_expiry=timedelta(seconds=settings.room_unused_expiry_s),
        )
        await audit.record(
            conn,
            [
                AuditEntry(
                    principal,
                    "video.room.create",
                    patient_id,
                    "ad hoc video room",
                    {"room_id": room.room_id},
                )
            ],
        )
    joining = _host_token(
        request,
        room.room_id,
        role=principal.role,
        name=name,
        subject=principal.subject,
        ttl_s=settings.host_token_ttl_s,
    )
    return web.json_response({**joining, "room": room.view()}, status=201)


async def get_room(request: web.Request) -> web.Response:
    host = await room_host(request)
    return web.json_response(host.room.view())


async def post_invite(request: web.Request) -> web.Response:
    host = await room_host(request)
    settings = request.app[SETTINGS]
    invite = parse_invite(await _body(request), max_ttl_s=settings.invite_max_ttl_s)
    # Each invitation is its own identity: a reconnect with the same link replaces the old
    # connection, while two people invited separately can both be in the room.
    subject = f"invite-{rooms_store.new_room_id()}"
    joining = _host_token(
        request,
        host.room.room_id,
        role=invite.role,
        name=invite.display_name,
        subject=subject,
        ttl_s=invite.ttl_s,
    )
    await audit.record(
        request.app[POOL],
        [
            AuditEntry(
                Principal(host.subject, host.role, host.org_id),
                "video.invite",
                host.room.patient_id,
                "invitation to a video room",
                {
                    "room_id": host.room.room_id,
                    "role": str(invite.role),
                    "display_name": invite.display_name,
                    "subject": subject,
                    "ttl_s": invite.ttl_s,
                },
            )
        ],
    )
    return web.json_response(
        {
            "token": joining["token"],
            "join_url": joining["join_url"],
            "expires_at": joining["expires_at"],
        },
        status=201,
    )


async def post_close(request: web.Request) -> web.Response:
    host = await room_host(request)
    room = await rooms_store.close_room(request.app[POOL], host.room.room_id, now=utcnow())
    assert room is not None
    close_room(request.app, room.room_id)
    await audit.record(
        request.app[POOL],
        [
            AuditEntry(
                Principal(host.subject, host.role, host.org_id),
                "video.room.close",
                room.patient_id,
                "video room closed by a host",
                {"room_id": room.room_id},
            )
        ],
    )
    return web.json_response(room.view())


async def get_vitals(request: web.Request) -> web.Response:
    """The latest vital signs of the room's patient, for a host's join token only."""
    room_id = request.match_info["room_id"]
    claims = _join_claims(request, room_id)
    if claims.role not in HOST_ROLES:
        raise Forbidden("vital signs are shown to clinicians only")
    room = await _open_room(request, room_id)
    settings = request.app[SETTINGS]
    readings: list[dict[str, Any]] = []
    if room.patient_id is not None:
        pool = request.app[POOL]
        since = utcnow() - timedelta(hours=settings.vitals_window_h)
        async with database_errors("reading vital signs"):
            rows = await pool.fetch(
                """SELECT DISTINCT ON (type) type, value_num, value_text, unit, measured_at
                     FROM readings WHERE patient_id = $1 AND measured_at >= $2
                    ORDER BY type, measured_at DESC""",
                room.patient_id,
                since,
            )
            await audit.record(
                pool,
                [
                    AuditEntry(
                        Principal(claims.subject, str(claims.role), room.org_id),
                        "video.vitals",
                        room.patient_id,
                        "vital signs beside the video",
                        {"room_id": room.room_id},
                    )
                ],
            )
        readings = panel(StoredReading(**dict(r.items())) for r in rows)
    return web.json_response(
        {
            "room_id": room.room_id,
            "patient_id": room.patient_id,
            "window_h": settings.vitals_window_h,
            "readings": readings,
        },
        headers={"Cache-Control": "no-store"},
    )


# -- development sign-in -----------------------------------------------------------------------


async def dev_departments(request: web.Request) -> web.Response:
    if not request.app[SETTINGS].dev_login:
        raise NotFound("development sign-in is off")
    rows = await request.app[POOL].fetch(
        "SELECT org_id, name, specialties FROM organisations "
        "WHERE kind = 'hospital_department' ORDER BY name"
    )
    return web.json_response(
        {"departments": [{**dict(r.items()), "specialties": list(r["specialties"])} for r in rows]}
    )


async def dev_login(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.dev_login:
        raise NotFound("development sign-in is off")
    document = await _body(request)
    org_id = document.get("org_id") if isinstance(document, dict) else None
    if not isinstance(org_id, str) or not await consults.department_specialties(
        request.app[POOL], org_id
    ):
        raise InvalidInput("unknown department", [FieldProblem("org_id", "unknown department")])
    principal = Principal(subject="demo-specialist", role="specialist", org_id=org_id)
    token = issue_token(
        settings.auth.jwt_secret.get_secret_value(), principal, issuer=settings.auth.jwt_issuer
    )
    return web.json_response({"token": token, "role": "specialist", "org_id": org_id})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/consults", post_consult)
    app.router.add_get("/v1/consults", list_consults)
    app.router.add_get("/v1/consults/{consult_id}", get_consult)
    app.router.add_post("/v1/consults/{consult_id}/accept", accept_consult)
    app.router.add_post("/v1/consults/{consult_id}/join", join_consult)
    app.router.add_post("/v1/consults/{consult_id}/cancel", cancel_consult)
    app.router.add_put("/v1/presence", put_presence)
    app.router.add_get("/v1/presence", get_presence)
    app.router.add_post("/v1/rooms", post_room)
    app.router.add_get("/v1/rooms/{room_id}", get_room)
    app.router.add_post("/v1/rooms/{room_id}/invites", post_invite)
    app.router.add_post("/v1/rooms/{room_id}/close", post_close)
    app.router.add_get("/v1/rooms/{room_id}/vitals", get_vitals)
    app.router.add_get("/v1/dev/departments", dev_departments)
    app.router.add_post("/v1/dev/login", dev_login)

"""Alerts HTTP and WebSocket handlers: the clinician console and its API."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from services.alerts import (
    audit_api,
    care_api,
    lifecycle_api,
    patients_api,
    routing_api,
    thresholds_api,
    tickets,
    webhooks_api,
)
from services.alerts.console import ConsoleClient, ConsoleHub, snapshot
from services.alerts.history import alert_view
from services.alerts.http_params import clinician
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.audit import AuditEntry
from shared.auth import Principal, issue_token
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, InvalidToken, NotFound
from shared.http import read_json, track
from shared.lifecycle import POOL

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("alerts_settings", AlertsSettings)
HUB = web.AppKey("console_hub", ConsoleHub)
SOURCE = "/naervagt/alerts"


async def post_ticket(request: web.Request) -> web.Response:
    principal = clinician(request)
    ttl = timedelta(seconds=request.app[SETTINGS].console_ticket_ttl_s)
    ticket = await tickets.issue(request.app[POOL], principal, ttl=ttl)
    return web.json_response({"ticket": ticket, "expires_in_s": int(ttl.total_seconds())})


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidInput(
            "since must be a sequence number", [FieldProblem("since", "not a number")]
        )
    return int(raw)


def _audit_entries(
    principal: Principal, messages: list[dict[str, Any]], action: str
) -> list[AuditEntry]:
    patients = dict.fromkeys(m["alert"]["patient_id"] for m in messages)
    return [AuditEntry(principal, action, p, "live alert console") for p in patients]


async def console_ws(request: web.Request) -> web.StreamResponse:
    since = _since(request)
    ticket = request.query.get("ticket", "")
    if not ticket:
        raise InvalidToken("a console ticket is required")
    pool = request.app[POOL]
    principal = await tickets.redeem(pool, ticket)
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    track(request, ws)
    client = ConsoleClient(principal)
    # Attach before reading the snapshot so that no change falls between the two.
    hub.attach(client)
    try:
        async with database_errors("reading the console snapshot"):
            initial = await snapshot(pool, principal.org_id, since=since)
            await audit.record(pool, _audit_entries(principal, initial, "console.snapshot"))
        client.snapshot_seqs.update(m["seq"] for m in initial)
        await ws.send_json({"type": "hello", "org_id": principal.org_id, "role": principal.role})
        for message in initial:
            await ws.send_json(message)
        await ws.send_json(
            {"type": "synced", "seq": max((m["seq"] for m in initial), default=since)}
        )
        sender = asyncio.create_task(_send_live(ws, client, pool))
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            sender.cancel()
    finally:
        hub.detach(client)
        if not ws.closed:
            await ws.close()
    return ws


async def _send_live(ws: web.WebSocketResponse, client: ConsoleClient, pool: Any) -> None:
    while not ws.closed:
        getter = asyncio.ensure_future(client.queue.get())
        overflow = asyncio.ensure_future(client.overflowed.wait())
        done, _ = await asyncio.wait({getter, overflow}, return_when=asyncio.FIRST_COMPLETED)
        if overflow in done:
            getter.cancel()
            await ws.close(code=1013, message=b"too far behind; reconnect to resynchronise")
            return
        overflow.cancel()
        batch = [getter.result()]
        while not client.queue.empty():
            batch.append(client.queue.get_nowait())
        await audit.record(pool, _audit_entries(client.principal, batch, "console.live"))
        for message in batch:
            await ws.send_json(message)


async def list_alerts(request: web.Request) -> web.Response:
    principal = clinician(request)
    status = request.query.get("status", "open")
    if status not in ("open", "acknowledged", "resolved", "active"):
        raise InvalidInput(
            "unknown status",
            [FieldProblem("status", "one of open, acknowledged, resolved, active")],
        )
    pool = request.app[POOL]
    statuses = ["open", "acknowledged"] if status == "active" else [status]
    async with database_errors("listing alerts"):
        rows = await pool.fetch(
            """SELECT a.* FROM alerts a
                 JOIN patient_orgs po ON po.patient_id = a.patient_id AND po.org_id = $1
                WHERE a.status = ANY($2::text[])
                ORDER BY a.opened_at DESC LIMIT 500""",
            principal.org_id,
            statuses,
        )
        views = [alert_view(r) for r in rows]
        await audit.record(
            pool,
            [
                AuditEntry(principal, "alerts.list", p, "alert list")
                for p in dict.fromkeys(v.patient_id for v in views)
            ],
        )
    return web.json_response({"alerts": [v.model_dump(mode="json") for v in views]})


async def console_page(request: web.Request) -> web.Response:
    page = resources.files("services.alerts").joinpath("static/console.html").read_text("utf-8")
    return web.Response(text=page, content_type="text/html")


async def dev_orgs(request: web.Request) -> web.Response:
    if not request.app[SETTINGS].dev_login:
        raise NotFound("development sign-in is off")
    rows = await request.app[POOL].fetch(
        "SELECT org_id, kind, name FROM organisations WHERE kind IN ('acute_team', 'gp_practice') "
        "ORDER BY kind, name"
    )
    return web.json_response({"organisations": [dict(r.items()) for r in rows]})


async def dev_login(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.dev_login:
        raise NotFound("development sign-in is off")
    _, document = await read_json(request, max_bytes=4096)
    org_id = document.get("org_id") if isinstance(document, dict) else None
    kind = await request.app[POOL].fetchval(
        "SELECT kind FROM organisations WHERE org_id = $1", org_id
    )
    if kind is None:
        raise InvalidInput("unknown organisation", [FieldProblem("org_id", "unknown organisation")])
    role = "gp" if kind == "gp_practice" else "nurse"
    principal = Principal(subject=f"demo-{role}", role=role, org_id=str(org_id))
    token = issue_token(
        settings.auth.jwt_secret.get_secret_value(), principal, issuer=settings.auth.jwt_issuer
    )
    return web.json_response({"token": token, "role": role, "org_id": org_id})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console_page)
    app.router.add_post("/v1/console/tickets", post_ticket)
    app.router.add_get("/v1/console/ws", console_ws)
    app.router.add_get("/v1/alerts", list_alerts)
    lifecycle_api.add_routes(app)
    care_api.add_routes(app)
    routing_api.add_routes(app)
    webhooks_api.add_routes(app)
    audit_api.add_routes(app)
    app.router.add_get("/v1/dev/organisations", dev_orgs)
    app.router.add_post("/v1/dev/login", dev_login)
    patients_api.add_routes(app, app[SETTINGS])
    thresholds_api.add_routes(app, app[SETTINGS])

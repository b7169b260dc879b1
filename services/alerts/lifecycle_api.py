"""Clinicians' alert actions over HTTP — acknowledge, resolve, assign, note, snooze — and the
full record of one alert. Handlers translate only: the rules are domain/lifecycle.py's."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web

from services.alerts import lifecycle
from services.alerts.context import CONTEXT
from services.alerts.domain import lifecycle as rules
from services.alerts.domain.lifecycle import AlertState, Transition
from services.alerts.history import alert_view
from services.alerts.http_params import (
    actor,
    clinician,
    json_object,
    parse_instant,
    path_uuid,
    text_field,
)
from shared import audit
from shared.audit import AuditEntry
from shared.auth import Principal
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, NotFound, Unavailable
from shared.lifecycle import POOL, PUBLISHER
from shared.outbox import relay

Rule = Callable[[AlertState, datetime], Transition]


async def _apply(request: web.Request, principal: Principal, rule: Rule) -> web.Response:
    context = request.app[CONTEXT]
    pool = request.app[POOL]
    event = await lifecycle.act(
        pool,
        alert_id=path_uuid(request, "alert_id", what="alert"),
        org_id=principal.org_id,
        actor=actor(principal),
        rule=rule,
        alerts_topic=context.alerts_topic,
    )
    # The change is stored; if the broker is down the outbox sweep publishes it later.
    with contextlib.suppress(Unavailable):
        await relay(pool, request.app[PUBLISHER], source=context.source)
    return web.json_response(
        {"seq": event.seq, "change": event.change, "alert": event.alert.model_dump(mode="json")}
    )


async def acknowledge(request: web.Request) -> web.Response:
    principal = clinician(request)

    def rule(state: AlertState, at: datetime) -> Transition:
        return rules.acknowledge(state)

    return await _apply(request, principal, rule)


async def resolve(request: web.Request) -> web.Response:
    principal = clinician(request)
    reason = text_field(await json_object(request), "reason", required=False)

    def rule(state: AlertState, at: datetime) -> Transition:
        return rules.resolve(state, reason=reason)

    return await _apply(request, principal, rule)


async def assign(request: web.Request) -> web.Response:
    principal = clinician(request)
    document = await json_object(request)
    clinician_id = text_field(document, "clinician_id", required=True)
    assert clinician_id is not None
    async with database_errors("looking up a clinician"):
        name = await request.app[POOL].fetchval(
            "SELECT name FROM clinicians WHERE org_id = $1 AND clinician_id = $2 AND active",
            principal.org_id,
            clinician_id,
        )
    if name is None and clinician_id == principal.subject:
        # Taking an alert oneself needs no entry in the organisation's list.
        name = text_field(document, "name", required=False) or principal.subject
    if name is None:
        raise InvalidInput(
            "no such clinician in your organisation",
            [FieldProblem("clinician_id", "not a clinician of your organisation")],
        )

    def rule(state: AlertState, at: datetime) -> Transition:
        return rules.assign(state, assignee=clinician_id, name=name)

    return await _apply(request, principal, rule)


async def note(request: web.Request) -> web.Response:
    principal = clinician(request)
    document = await json_object(request)
    text = document.get("text")
    if not isinstance(text, str):
        raise InvalidInput("a note needs text", [FieldProblem("text", "a string")])

    def rule(state: AlertState, at: datetime) -> Transition:
        return rules.note(state, text=text)

    return await _apply(request, principal, rule)


async def snooze(request: web.Request) -> web.Response:
    principal = clinician(request)
    document = await json_object(request)
    longest = request.app[CONTEXT].settings.longest_snooze
    raw_until, raw_minutes = document.get("until"), document.get("minutes")
    until: datetime | None = None
    minutes = 0
    if isinstance(raw_until, str):
        until = parse_instant(raw_until, field="until")
    elif isinstance(raw_minutes, int) and not isinstance(raw_minutes, bool) and raw_minutes > 0:
        minutes = raw_minutes
    else:
        raise InvalidInput(
            "say until when to snooze",
            [FieldProblem("until", "an RFC 3339 date-time, or give minutes (a whole number)")],
        )

    def rule(state: AlertState, at: datetime) -> Transition:
        end = until if until is not None else at + timedelta(minutes=minutes)
        return rules.snooze(state, until=end, at=at, longest=longest)

    return await _apply(request, principal, rule)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


async def alert_record(request: web.Request) -> web.Response:
    """One alert with its history and escalation timers, for a clinician of its patient."""
    principal = clinician(request)
    alert_id = path_uuid(request, "alert_id", what="alert")
    pool = request.app[POOL]
    async with database_errors("reading an alert"):
        row = await pool.fetchrow(
            """SELECT a.* FROM alerts a
                WHERE a.alert_id = $1
                  AND EXISTS (SELECT 1 FROM patient_orgs po
                               WHERE po.patient_id = a.patient_id AND po.org_id = $2)""",
            alert_id,
            principal.org_id,
        )
        if row is None:
            raise NotFound("no such alert for your organisation")
        events = await pool.fetch(
            "SELECT seq, change, actor, at, detail FROM alert_events WHERE alert_id = $1 "
            "ORDER BY seq",
            alert_id,
        )
        timers = await pool.fetch(
            "SELECT plan, step_index, kind, step, due_at, deadline, status, fired_at, "
            "cancel_reason FROM escalation_steps WHERE alert_id = $1 ORDER BY plan, step_index",
            alert_id,
        )
        await audit.record(
            pool,
            [
                AuditEntry(
                    principal,
                    "alerts.read",
                    row["patient_id"],
                    request.headers.get("X-Access-Reason", "alert record"),
                    {"alert_id": str(alert_id)},
                )
            ],
        )
    return web.json_response(
        {
            "alert": alert_view(row).model_dump(mode="json"),
            "assigned_to": row["assigned_to"],
            "assigned_name": row["assigned_name"],
            "assigned_at": _iso(row["assigned_at"]),
            "snoozed_until": _iso(row["snoozed_until"]),
            "acknowledged_at": _iso(row["acknowledged_at"]),
            "acknowledged_by": row["acknowledged_by"],
            "resolved_at": _iso(row["resolved_at"]),
            "resolved_by": row["resolved_by"],
            "route": row["route"],
            "events": [
                {
                    "seq": e["seq"],
                    "change": e["change"],
                    "actor": e["actor"],
                    "at": e["at"].isoformat(),
                    "detail": e["detail"] or {},
                }
                for e in events
            ],
            "escalation": [
                {
                    "plan": t["plan"],
                    "step": t["step_index"],
                    "kind": t["kind"],
                    "responder": t["step"],
                    "due_at": t["due_at"].isoformat(),
                    "deadline": _iso(t["deadline"]),
                    "status": t["status"],
                    "fired_at": _iso(t["fired_at"]),
                    "cancel_reason": t["cancel_reason"],
                }
                for t in timers
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/alerts/{alert_id}", alert_record)
    app.router.add_post("/v1/alerts/{alert_id}/acknowledge", acknowledge)
    app.router.add_post("/v1/alerts/{alert_id}/resolve", resolve)
    app.router.add_post("/v1/alerts/{alert_id}/assign", assign)
    app.router.add_post("/v1/alerts/{alert_id}/note", note)
    app.router.add_post("/v1/alerts/{alert_id}/snooze", snooze)

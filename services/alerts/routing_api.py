"""The routing preview: which responders an alert of a given severity about a patient would go
to at a given moment (operators, to check the care structure and the Danish clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.alerts.context import CONTEXT
from services.alerts.domain.routing import SEVERITIES
from services.alerts.http_params import operator, parse_instant
from shared import audit
from shared.audit import AuditEntry
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput
from shared.lifecycle import POOL


async def preview(request: web.Request) -> web.Response:
    principal = operator(request)
    patient_id = request.query.get("patient_id", "").strip()
    severity = request.query.get("severity", "")
    problems = []
    if not patient_id:
        problems.append(FieldProblem("patient_id", "required"))
    if severity not in SEVERITIES:
        problems.append(FieldProblem("severity", f"one of {', '.join(SEVERITIES)}"))
    if problems:
        raise InvalidInput("cannot preview this route", problems)
    raw_at = request.query.get("at")
    at = parse_instant(raw_at, field="at") if raw_at else datetime.now(UTC)
    pool = request.app[POOL]
    async with database_errors("previewing a route"):
        route = await request.app[CONTEXT].router.route(
            pool, patient_id, severity_or_kind=severity, at=at, report=False
        )
        await audit.record(
            pool,
            [
                AuditEntry(
                    principal,
                    "routing.preview",
                    patient_id,
                    request.headers.get("X-Access-Reason", "routing preview")[:200],
                    {"severity": severity, "at": at.isoformat()},
                )
            ],
        )
    return web.json_response(route.to_json())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/routing/preview", preview)

"""The audit trail of a patient's data for operators: who read or changed what, when and why.
Reading the trail is itself recorded."""

from __future__ import annotations

from aiohttp import web

from services.alerts.http_params import operator
from shared import audit
from shared.audit import AuditEntry
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput
from shared.lifecycle import POOL

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def _positive(request: web.Request, name: str, *, default: int | None) -> int | None:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"{name} must be a positive number", [FieldProblem(name, "positive")])
    return int(raw)


async def patient_trail(request: web.Request) -> web.Response:
    principal = operator(request)
    patient_id = request.query.get("patient_id", "").strip()
    if not patient_id:
        raise InvalidInput("say whose trail", [FieldProblem("patient_id", "required")])
    limit = min(_positive(request, "limit", default=DEFAULT_LIMIT) or DEFAULT_LIMIT, MAX_LIMIT)
    before = _positive(request, "before", default=None)
    pool = request.app[POOL]
    async with database_errors("reading the audit trail"):
        rows = await pool.fetch(
            """SELECT id, at, actor, role, org_id, action, reason, detail FROM audit_log
                WHERE patient_id = $1 AND ($2::bigint IS NULL OR id < $2)
                ORDER BY id DESC LIMIT $3""",
            patient_id,
            before,
            limit,
        )
        await audit.record(
            pool,
            [
                AuditEntry(
                    principal,
                    "audit.read",
                    patient_id,
                    request.headers.get("X-Access-Reason", "audit review")[:200],
                )
            ],
        )
    entries = [
        {
            "id": r["id"],
            "at": r["at"].isoformat(),
            "actor": r["actor"],
            "role": r["role"],
            "org_id": r["org_id"],
            "action": r["action"],
            "reason": r["reason"],
            "detail": r["detail"],
        }
        for r in rows
    ]
    return web.json_response(
        {
            "patient_id": patient_id,
            "entries": entries,
            "next_before": entries[-1]["id"] if len(entries) == limit else None,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/audit", patient_trail)

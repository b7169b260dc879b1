"""Operators manage webhook subscriptions of practice and municipal systems: one organisation
each, a signing secret shown once at creation, native JSON or FHIR payloads."""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import urlsplit

from aiohttp import web

from services.alerts import webhooks
from services.alerts.context import CONTEXT
from services.alerts.domain.lifecycle import Change
from services.alerts.domain.webhook import FORMATS
from services.alerts.http_params import actor, json_object, operator, path_uuid
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, NotFound
from shared.lifecycle import POOL

CHANGES: tuple[str, ...] = get_args(Change)
MAX_URL = 2048
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


def _url(value: Any) -> str:
    if isinstance(value, str) and len(value) <= MAX_URL:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return value
    raise InvalidInput(
        "url must be an http or https URL", [FieldProblem("url", f"http(s) URL, <= {MAX_URL}")]
    )


def _changes(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list) and value and all(v in CHANGES for v in value):
        return list(dict.fromkeys(value))
    raise InvalidInput(
        "changes must list alert changes",
        [FieldProblem("changes", f"a non-empty list of {', '.join(CHANGES)}")],
    )


async def create(request: web.Request) -> web.Response:
    principal = operator(request)
    document = await json_object(request)
    org_id = document.get("org_id")
    format_ = document.get("format", "json")
    problems = []
    if not isinstance(org_id, str) or not org_id:
        problems.append(FieldProblem("org_id", "required"))
    if format_ not in FORMATS:
        problems.append(FieldProblem("format", f"one of {', '.join(FORMATS)}"))
    if problems:
        raise InvalidInput("cannot subscribe", problems)
    url = _url(document.get("url"))
    changes = _changes(document.get("changes"))
    pool = request.app[POOL]
    async with database_errors("checking an organisation"):
        known = await pool.fetchval("SELECT true FROM organisations WHERE org_id = $1", org_id)
    if not known:
        raise InvalidInput("unknown organisation", [FieldProblem("org_id", "unknown")])
    subscription, secret = await webhooks.create_subscription(
        pool,
        request.app[CONTEXT].box,
        org_id=str(org_id),
        url=url,
        format=format_,
        changes=changes,
        created_by=actor(principal),
    )
    return web.json_response({**subscription, "secret": secret}, status=201)


async def list_all(request: web.Request) -> web.Response:
    operator(request)
    org_id = request.query.get("org_id") or None
    subscriptions = await webhooks.list_subscriptions(request.app[POOL], org_id=org_id)
    return web.json_response({"webhooks": subscriptions})


async def delete(request: web.Request) -> web.Response:
    operator(request)
    subscription_id = path_uuid(request, "subscription_id", what="webhook")
    if not await webhooks.delete_subscription(request.app[POOL], subscription_id):
        raise NotFound("no such webhook")
    return web.Response(status=204)


async def deliveries(request: web.Request) -> web.Response:
    operator(request)
    subscription_id = path_uuid(request, "subscription_id", what="webhook")
    status = request.query.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(
            "unknown status", [FieldProblem("status", f"one of {', '.join(DELIVERY_STATUSES)}")]
        )
    items = await webhooks.list_deliveries(
        request.app[POOL], subscription_id, status=status, limit=200
    )
    return web.json_response({"deliveries": items})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks", create)
    app.router.add_get("/v1/webhooks", list_all)
    app.router.add_delete("/v1/webhooks/{subscription_id}", delete)
    app.router.add_get("/v1/webhooks/{subscription_id}/deliveries", deliveries)

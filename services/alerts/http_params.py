"""What the alerts handlers read from a request: the principal, ids, RFC 3339 instants and
JSON objects, each refused with a field-level error when malformed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from shared.auth import CLINICIAN_ROLES, Principal
from shared.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from shared.http import bearer, read_json


def clinician(request: web.Request) -> Principal:
    principal = bearer(request)
    principal.require(*CLINICIAN_ROLES)
    return principal


def operator(request: web.Request) -> Principal:
    principal = bearer(request)
    principal.require("operator")
    return principal


def bearer_principal_for_org(request: web.Request, org_id: str) -> Principal:
    """An operator, or a clinician of ``org_id``; anyone else is refused."""
    principal = bearer(request)
    if principal.role == "operator":
        return principal
    principal.require(*CLINICIAN_ROLES)
    if principal.org_id != org_id:
        raise Forbidden("only your own organisation")
    return principal


def actor(principal: Principal) -> str:
    """How a person appears in the alert history: ``role:subject``."""
    return f"{principal.role}:{principal.subject}"


def path_uuid(request: web.Request, name: str, *, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise NotFound(f"no such {what}") from exc


def parse_instant(raw: str, *, field: str) -> datetime:
    """An RFC 3339 date-time with its offset. A '+' sent unencoded in a query string arrives
    as a space, so a space before the offset is read as '+'."""
    text = raw.strip()
    if len(text) > 6 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"{field} is not an RFC 3339 date-time",
            [FieldProblem(field, "an RFC 3339 date-time such as 2024-03-28T08:00:00+01:00")],
        ) from exc
    if at.utcoffset() is None:
        raise InvalidInput(
            f"{field} has no UTC offset",
            [FieldProblem(field, "give the offset (Z or +01:00): local times are ambiguous")],
        )
    return at


async def json_object(request: web.Request, *, max_bytes: int = 16 * 1024) -> dict[str, Any]:
    """The request's JSON object body; an empty body reads as ``{}``."""
    if not request.body_exists:
        return {}
    _, document = await read_json(request, max_bytes=max_bytes)
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("body", "an object")])
    return document


def text_field(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required", [FieldProblem(name, "required")])
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be text", [FieldProblem(name, "a non-empty string")])
    return value.strip()

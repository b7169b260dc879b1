"""A patient's reference ranges and measurement cadences: read and changed by the clinicians of
the organisations responsible for the patient, every read and change audited.

``GET /v1/patients/{patient_id}/thresholds`` answers the thresholds document; ``PUT`` takes
``{"overrides": {...}, "cadence_overrides": {...}, "reason": "..."}`` and replaces the
patient's changes to their condition group's defaults, e.g.::

    {"overrides": {"spo2": {"red_low": 86, "yellow_low": 88}},
     "cadence_overrides": {"weight": 24, "heart_rate": null},
     "reason": "chronic hypoxaemia, agreed with the pulmonologist"}

A limit of null removes that limit; a cadence of null means the type is not expected. The
scorer picks changes up within ``thresholds_ttl_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from services.alerts.domain.personal import NUMERIC_TYPES, condition_group
from services.alerts.domain.thresholds import InvalidLimits, Limits, defaults_for, merge
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.audit import AuditEntry
from shared.auth import CLINICIAN_ROLES, Principal
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, NotFound
from shared.http import bearer, read_json
from shared.lifecycle import POOL
from shared.vitals import VitalType

CADENCE_DEFAULTS = web.AppKey("cadence_defaults", dict[str, float])
MAX_BODY = 64 * 1024
MAX_CADENCE_HOURS = 90 * 24
MAX_REASON = 500
_LIMIT_TYPES = frozenset(NUMERIC_TYPES)
_READING_TYPES = frozenset(str(vital) for vital in VitalType)

Overrides = dict[str, dict[str, float | None]]
Cadences = dict[str, float | None]


def _clinician(request: web.Request) -> Principal:
    principal = bearer(request)
    principal.require(*CLINICIAN_ROLES)
    return principal


async def _patient(conn: asyncpg.Connection, patient_id: str, org_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        """SELECT p.patient_id, p.condition, t.limits, t.cadence_hours, t.reason,
                  t.updated_at, t.updated_by
             FROM patients p
             JOIN patient_orgs po ON po.patient_id = p.patient_id AND po.org_id = $2
             LEFT JOIN patient_thresholds t ON t.patient_id = p.patient_id
            WHERE p.patient_id = $1""",
        patient_id,
        org_id,
    )
    if row is None:
        raise NotFound("no such patient for your organisation")
    return row


def _limits_json(limits: dict[str, Limits]) -> dict[str, dict[str, float | None]]:
    return {vital: asdict(one) for vital, one in sorted(limits.items())}


def _document(
    row: Mapping[str, Any],
    *,
    cadence_defaults: dict[str, float],
    overrides: Overrides | None = None,
    cadence_overrides: Cadences | None = None,
) -> dict[str, Any]:
    group = condition_group(row["condition"])
    defaults = defaults_for(group)
    overrides = overrides if overrides is not None else row["limits"] or {}
    cadence_overrides = (
        cadence_overrides if cadence_overrides is not None else row["cadence_hours"] or {}
    )
    problems: list[dict[str, str]] = []
    try:
        limits = merge(defaults, overrides)
    except InvalidLimits as exc:  # only a later change of the group's defaults does this
        limits = defaults
        problems = [{"field": f"overrides.{e.field}", "message": e.message} for e in exc.errors]
    cadence = {
        vital: hours
        for vital, hours in sorted({**cadence_defaults, **cadence_overrides}.items())
        if hours is not None
    }
    updated_at: datetime | None = row["updated_at"]
    return {
        "patient_id": row["patient_id"],
        "condition_group": group,
        "limits": _limits_json(limits),
        "defaults": _limits_json(defaults),
        "overrides": overrides,
        "cadence_hours": cadence,
        "cadence_defaults": dict(sorted(cadence_defaults.items())),
        "cadence_overrides": cadence_overrides,
        "updated_at": updated_at.isoformat() if updated_at is not None else None,
        "updated_by": row["updated_by"],
        "reason": row["reason"],
        "problems": problems,
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_overrides(raw: object, problems: list[FieldProblem]) -> Overrides:
    if not isinstance(raw, dict):
        problems.append(FieldProblem("overrides", "must be an object of reading types"))
        return {}
    overrides: Overrides = {}
    for vital, changes in raw.items():
        if vital not in _LIMIT_TYPES:
            problems.append(
                FieldProblem(
                    f"overrides.{vital}",
                    f"not a reading type with limits; expected one of {', '.join(NUMERIC_TYPES)}",
                )
            )
        elif not isinstance(changes, dict):
            problems.append(FieldProblem(f"overrides.{vital}", "must be an object of limits"))
        else:
            overrides[vital] = changes
    return overrides


def _read_cadences(raw: object, problems: list[FieldProblem]) -> Cadences:
    if not isinstance(raw, dict):
        problems.append(FieldProblem("cadence_overrides", "must be an object of reading types"))
        return {}
    cadence: Cadences = {}
    for vital, hours in raw.items():
        field = f"cadence_overrides.{vital}"
        if vital not in _READING_TYPES:
            problems.append(FieldProblem(field, "not a reading type"))
        elif hours is not None and (
            not _is_number(hours) or not math.isfinite(hours) or not 0 < hours <= MAX_CADENCE_HOURS
        ):
            problems.append(
                FieldProblem(
                    field, f"must be null or hours above 0 and at most {MAX_CADENCE_HOURS}"
                )
            )
        else:
            cadence[vital] = None if hours is None else float(hours)
    return cadence


def _read_change(
    document: object, *, defaults: dict[str, Limits]
) -> tuple[Overrides, Cadences, str]:
    """The change a PUT asks for, or `InvalidInput` naming every problem field by field."""
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("body", "an object")])
    problems = [
        FieldProblem(name, "unknown field; expected overrides, cadence_overrides, reason")
        for name in document
        if name not in ("overrides", "cadence_overrides", "reason")
    ]
    overrides = _read_overrides(document.get("overrides", {}), problems)
    cadence = _read_cadences(document.get("cadence_overrides", {}), problems)
    reason = document.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(FieldProblem("reason", "say why the ranges change"))
    elif len(reason) > MAX_REASON:
        problems.append(FieldProblem("reason", f"at most {MAX_REASON} characters"))
    try:
        merge(defaults, overrides)
    except InvalidLimits as exc:
        problems += [FieldProblem(f"overrides.{e.field}", e.message) for e in exc.errors]
    if problems:
        raise InvalidInput("the thresholds cannot be used", problems)
    assert isinstance(reason, str)
    return overrides, cadence, reason.strip()


async def get_thresholds(request: web.Request) -> web.Response:
    principal = _clinician(request)
    patient_id = request.match_info["patient_id"]
    pool = request.app[POOL]
    async with database_errors("reading a patient's thresholds"), pool.acquire() as conn:
        row = await _patient(conn, patient_id, principal.org_id)
        await audit.record(
            conn, [AuditEntry(principal, "thresholds.read", patient_id, "reference ranges view")]
        )
    return web.json_response(_document(row, cadence_defaults=request.app[CADENCE_DEFAULTS]))


async def put_thresholds(request: web.Request) -> web.Response:
    principal = _clinician(request)
    patient_id = request.match_info["patient_id"]
    pool = request.app[POOL]
    cadence_defaults = request.app[CADENCE_DEFAULTS]
    actor = f"{principal.role}:{principal.subject}"
    _, body = await read_json(request, max_bytes=MAX_BODY)
    async with (
        database_errors("changing a patient's thresholds"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        before = await _patient(conn, patient_id, principal.org_id)
        group = condition_group(before["condition"])
        overrides, cadence, reason = _read_change(body, defaults=defaults_for(group))
        after = await conn.fetchrow(
            """INSERT INTO patient_thresholds
                   (patient_id, limits, cadence_hours, reason, updated_at, updated_by)
               VALUES ($1, $2, $3, $4, now(), $5)
               ON CONFLICT (patient_id) DO UPDATE
                  SET limits = EXCLUDED.limits, cadence_hours = EXCLUDED.cadence_hours,
                      reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at,
                      updated_by = EXCLUDED.updated_by
               RETURNING updated_at, updated_by, reason""",
            patient_id,
            overrides,
            cadence,
            reason,
            actor,
        )
        assert after is not None
        detail = {
            "before": {
                "overrides": before["limits"] or {},
                "cadence_overrides": before["cadence_hours"] or {},
            },
            "after": {"overrides": overrides, "cadence_overrides": cadence},
        }
        await audit.record(
            conn, [AuditEntry(principal, "thresholds.change", patient_id, reason, detail)]
        )
    row = {**dict(before.items()), **dict(after.items())}
    return web.json_response(
        _document(
            row,
            cadence_defaults=cadence_defaults,
            overrides=overrides,
            cadence_overrides=cadence,
        )
    )


def add_routes(app: web.Application, settings: AlertsSettings) -> None:
    app[CADENCE_DEFAULTS] = dict(settings.missing_cadence_hours)
    app.router.add_get("/v1/patients/{patient_id}/thresholds", get_thresholds)
    app.router.add_put("/v1/patients/{patient_id}/thresholds", put_thresholds)

"""The console's patient view: a patient's vital signs over days with their reference ranges and
alert history, plus the console's small configuration endpoint and its static assets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from services.alerts.domain.thresholds import CONDITION_GROUPS, Limits, classify, defaults_for
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.audit import AuditEntry
from shared.auth import CLINICIAN_ROLES, Principal
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, NotFound
from shared.http import bearer
from shared.lifecycle import POOL
from shared.vitals import CANONICAL_UNIT, LOINC, VitalType

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_DAYS = 7
MAX_DAYS = 90
# Beyond this many readings of one type in the period (continuous wearables), the series is
# averaged into equal time buckets so a chart stays a few thousand points at most.
MAX_POINTS = 2000
MAX_ALERTS = 100

CHARTED: tuple[VitalType, ...] = (
    VitalType.HEART_RATE,
    VitalType.SPO2,
    VitalType.RESPIRATORY_RATE,
    VitalType.SYSTOLIC_BP,
    VitalType.DIASTOLIC_BP,
    VitalType.TEMPERATURE,
    VitalType.WEIGHT,
    VitalType.GLUCOSE,
)


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the console page needs to know beyond its own origin."""

    video_url: str


CONSOLE_CONFIG = web.AppKey("console_config", ConsoleConfig)


def console_config(settings: AlertsSettings) -> ConsoleConfig:
    return ConsoleConfig(video_url=settings.video_url.rstrip("/"))


def condition_group(condition: str | None) -> str:
    """The reference-range group of a patient's recorded condition ('default' when unknown)."""
    return condition if condition in CONDITION_GROUPS else "default"


def charted_limits(condition: str | None) -> dict[str, Limits]:
    """Red/yellow limits per charted vital type; types without limits are left out."""
    limits = defaults_for(condition_group(condition))
    return {str(t): limits[t] for t in CHARTED if t in limits}


def add_levels(series: dict[str, dict[str, Any]], limits: dict[str, Limits]) -> None:
    """Mark each charted value green, yellow or red against the type's limits."""
    for vital, one in series.items():
        if vital in limits:
            one["levels"] = [str(classify(v, limits[vital])) for v in one["values"]]


def parse_days(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise InvalidInput(
            "days must be a whole number of days",
            [FieldProblem("days", f"a whole number from 1 to {MAX_DAYS}")],
        )
    return int(raw)


def _clinician(request: web.Request) -> Principal:
    principal = bearer(request)
    principal.require(*CLINICIAN_ROLES)
    return principal


async def _series(
    pool: asyncpg.Pool, patient_id: str, *, start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    types = [str(t) for t in CHARTED]
    counts = await pool.fetch(
        """SELECT type, count(*) AS n FROM readings
            WHERE patient_id = $1 AND measured_at >= $2 AND measured_at <= $3
              AND type = ANY($4::text[]) AND value_num IS NOT NULL
            GROUP BY type""",
        patient_id,
        start,
        end,
        types,
    )
    dense = [r["type"] for r in counts if r["n"] > MAX_POINTS]
    sparse = [r["type"] for r in counts if r["n"] <= MAX_POINTS]
    bucket_s = max(1, int((end - start).total_seconds()) // MAX_POINTS + 1)
    rows = await pool.fetch(
        """SELECT type, measured_at AS at, value_num AS value FROM readings
            WHERE patient_id = $1 AND measured_at >= $2 AND measured_at <= $3
              AND type = ANY($4::text[]) AND value_num IS NOT NULL
            ORDER BY measured_at""",
        patient_id,
        start,
        end,
        sparse,
    )
    if dense:
        rows += await pool.fetch(
            """SELECT type, date_bin(make_interval(secs => $5), measured_at, $2) AS at,
                      avg(value_num) AS value
                 FROM readings
                WHERE patient_id = $1 AND measured_at >= $2 AND measured_at <= $3
                  AND type = ANY($4::text[]) AND value_num IS NOT NULL
                GROUP BY type, 2 ORDER BY 2""",
            patient_id,
            start,
            end,
            dense,
            bucket_s,
        )
    series: dict[str, dict[str, Any]] = {
        str(t): {
            "unit": CANONICAL_UNIT[t],
            "loinc": LOINC.get(t),
            "averaged_over_s": bucket_s if str(t) in dense else None,
            "times": [],
            "values": [],
        }
        for t in CHARTED
    }
    for row in rows:
        one = series[row["type"]]
        one["times"].append(row["at"].timestamp())
        one["values"].append(row["value"])
    return series


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _alert_history(
    pool: asyncpg.Pool, patient_id: str, *, start: datetime
) -> list[dict[str, Any]]:
    alerts = await pool.fetch(
        """SELECT * FROM alerts
            WHERE patient_id = $1 AND (opened_at >= $2 OR status <> 'resolved')
            ORDER BY opened_at DESC LIMIT $3""",
        patient_id,
        start,
        MAX_ALERTS,
    )
    events = await pool.fetch(
        """SELECT alert_id, seq, change, actor, at FROM alert_events
            WHERE alert_id = ANY($1::uuid[]) ORDER BY seq""",
        [a["alert_id"] for a in alerts],
    )
    changes: dict[Any, list[dict[str, Any]]] = {a["alert_id"]: [] for a in alerts}
    for e in events:
        changes[e["alert_id"]].append(
            {"seq": e["seq"], "change": e["change"], "actor": e["actor"], "at": _iso(e["at"])}
        )
    history = []
    for a in alerts:
        assessment = a["assessment"] or {}
        history.append(
            {
                "id": str(a["alert_id"]),
                "kind": a["kind"],
                "status": a["status"],
                "severity": a["severity"],
                "news2": a["news2"],
                "reasons": a["reasons"],
                "values": assessment.get("values") or {},
                "model": assessment.get("model"),
                "opened_at": _iso(a["opened_at"]),
                "updated_at": _iso(a["updated_at"]),
                "acknowledged_at": _iso(a["acknowledged_at"]),
                "acknowledged_by": a["acknowledged_by"],
                "resolved_at": _iso(a["resolved_at"]),
                "resolved_by": a["resolved_by"],
                "changes": changes[a["alert_id"]],
            }
        )
    return history


async def patient_vitals(request: web.Request) -> web.Response:
    principal = _clinician(request)
    patient_id = request.match_info["patient_id"]
    days = parse_days(request.query.get("days"))
    pool = request.app[POOL]
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    async with database_errors("reading a patient's vital signs"):
        patient = await pool.fetchrow(
            """SELECT p.patient_id, p.condition, p.spo2_scale FROM patients p
                 JOIN patient_orgs po ON po.patient_id = p.patient_id AND po.org_id = $2
                WHERE p.patient_id = $1""",
            patient_id,
            principal.org_id,
        )
        if patient is None:
            raise NotFound("no such patient for your organisation")
        series = await _series(pool, patient_id, start=start, end=end)
        limits = charted_limits(patient["condition"])
        add_levels(series, limits)
        alerts = await _alert_history(pool, patient_id, start=start)
        entry = AuditEntry(principal, "patient.vitals", patient_id, "patient view", {"days": days})
        await audit.record(pool, [entry])
    return web.json_response(
        {
            "patient": {
                "patient_id": patient["patient_id"],
                "condition": patient["condition"],
                "condition_group": condition_group(patient["condition"]),
                "spo2_scale": patient["spo2_scale"],
            },
            "days": days,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "reference_ranges": {vital: asdict(one) for vital, one in limits.items()},
            "series": series,
            "alerts": alerts,
        }
    )


async def get_console_config(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[CONSOLE_CONFIG]))


def add_routes(app: web.Application, settings: AlertsSettings) -> None:
    app[CONSOLE_CONFIG] = console_config(settings)
    app.router.add_get("/v1/patients/{patient_id}/vitals", patient_vitals)
    app.router.add_get("/v1/console/config", get_console_config)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)

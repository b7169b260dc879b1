"""Clinicians' reads of stored readings: scoped to their organisation's patients, and audited.

A patient outside the clinician's organisation is answered exactly like one that does not
exist (404), so the API never tells who else is monitored.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.ingest.domain.reading_query import Cursor, ReadingQuery, StoredReading
from shared import audit
from shared.audit import AuditEntry
from shared.auth import CLINICIAN_ROLES, Principal
from shared.db import database_errors
from shared.errors import NotFound
from shared.vitals import VitalType

_SELECT = (
    "SELECT device_id, reading_id, patient_id, type, value_num, value_text, unit, "
    "measured_at, received_at, late FROM readings"
)


def _sql(query: ReadingQuery) -> tuple[str, list[Any]]:
    # Only the conditions asked for, so the planner can prune partitions and use the index.
    where = ["patient_id = $1"]
    args: list[Any] = [query.patient_id]
    if query.types is not None:
        args.append(sorted(t.value for t in query.types))
        where.append(f"type = ANY(${len(args)}::text[])")
    if query.start is not None:
        args.append(query.start)
        where.append(f"measured_at >= ${len(args)}")
    if query.end is not None:
        args.append(query.end)
        where.append(f"measured_at < ${len(args)}")
    if query.after is not None:
        args += [query.after.measured_at, query.after.device_id, query.after.reading_id]
        n = len(args)
        where.append(f"(measured_at, device_id, reading_id) > (${n - 2}, ${n - 1}, ${n})")
    args.append(query.limit + 1)
    sql = (
        f"{_SELECT} WHERE {' AND '.join(where)} "
        f"ORDER BY measured_at, device_id, reading_id LIMIT ${len(args)}"
    )
    return sql, args


def _reading(row: asyncpg.Record) -> StoredReading:
    vital = VitalType(row["type"])
    value: float | bool | str
    if vital is VitalType.ON_OXYGEN:
        value = bool(row["value_num"])
    elif row["value_text"] is not None:
        value = row["value_text"]
    else:
        value = float(row["value_num"])
    return StoredReading(
        device_id=row["device_id"],
        reading_id=row["reading_id"],
        patient_id=row["patient_id"],
        type=vital,
        value=value,
        unit=row["unit"],
        measured_at=row["measured_at"],
        received_at=row["received_at"],
        late=row["late"],
    )


async def patient_readings(
    pool: asyncpg.Pool,
    principal: Principal,
    query: ReadingQuery,
    *,
    action: str,
    reason: str,
) -> tuple[list[StoredReading], Cursor | None]:
    """One page of the patient's readings and the cursor of the next page, if any."""
    principal.require(*CLINICIAN_ROLES)
    sql, args = _sql(query)
    async with database_errors("reading a patient's readings"), pool.acquire() as conn:
        allowed = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM patient_orgs WHERE patient_id = $1 AND org_id = $2)",
            query.patient_id,
            principal.org_id,
        )
        if not allowed:
            raise NotFound(f"no patient {query.patient_id} among your organisation's patients")
        rows = await conn.fetch(sql, *args)
        page = [_reading(r) for r in rows[: query.limit]]
        detail = {
            "count": len(page),
            "types": sorted(t.value for t in query.types) if query.types is not None else None,
            "from": query.start.isoformat() if query.start else None,
            "to": query.end.isoformat() if query.end else None,
        }
        await audit.record(conn, [AuditEntry(principal, action, query.patient_id, reason, detail)])
    following = page[-1].cursor if len(rows) > query.limit else None
    return page, following

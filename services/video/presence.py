"""Specialist presence in PostgreSQL, per specialty of the specialist's department."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.video.consults import department_specialties
from services.video.domain.presence import PresenceStatus, PresenceUpdate, effective_status
from shared.auth import Principal
from shared.db import database_errors
from shared.errors import Forbidden


async def offered_by(pool: asyncpg.Pool, principal: Principal) -> tuple[str, ...]:
    """The specialties a specialist may be present for; refused outside a department."""
    principal.require("specialist")
    offered = await department_specialties(pool, principal.org_id)
    if not offered:
        raise Forbidden("your organisation is not a hospital department with specialties")
    return offered


async def update(
    pool: asyncpg.Pool,
    principal: Principal,
    change: PresenceUpdate,
    *,
    offered: tuple[str, ...],
    now: datetime,
) -> dict[str, Any]:
    specialties = list(change.specialties or offered)
    async with database_errors("updating presence"):
        await pool.execute(
            """INSERT INTO specialist_presence (org_id, subject, specialties, status, updated_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (org_id, subject) DO UPDATE SET specialties = EXCLUDED.specialties,
                   status = EXCLUDED.status, updated_at = EXCLUDED.updated_at""",
            principal.org_id,
            principal.subject,
            specialties,
            str(change.status),
            now,
        )
    return {
        "subject": principal.subject,
        "org_id": principal.org_id,
        "status": str(change.status),
        "specialties": specialties,
        "updated_at": now.isoformat(),
    }


async def board(
    pool: asyncpg.Pool, *, specialty: str | None, now: datetime, ttl: timedelta
) -> dict[str, Any]:
    """Who is available or busy, per specialty; a status not renewed within ``ttl`` is offline."""
    async with database_errors("reading presence"):
        rows = await pool.fetch(
            """SELECT org_id, subject, specialties, status, updated_at FROM specialist_presence
                WHERE $1::text IS NULL OR $1 = ANY(specialties)
                ORDER BY org_id, subject""",
            specialty,
        )
    specialists = []
    counts = {str(s): 0 for s in PresenceStatus}
    for row in rows:
        status = effective_status(
            PresenceStatus(row["status"]), updated_at=row["updated_at"], now=now, ttl=ttl
        )
        counts[str(status)] += 1
        specialists.append(
            {
                "subject": row["subject"],
                "org_id": row["org_id"],
                "specialties": list(row["specialties"]),
                "status": str(status),
                "updated_at": row["updated_at"].isoformat(),
            }
        )
    return {"specialty": specialty, **counts, "specialists": specialists}

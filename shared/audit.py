"""The audit log: every read of patient data is recorded (who, what, when, why)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.auth import Principal
from shared.db import database_errors


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: Principal
    action: str
    patient_id: str | None
    reason: str
    detail: dict[str, Any] | None = None


async def record(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection, entries: Iterable[AuditEntry]
) -> None:
    rows = [
        (e.actor.subject, e.actor.role, e.actor.org_id, e.action, e.patient_id, e.reason, e.detail)
        for e in entries
    ]
    if not rows:
        return
    async with database_errors("writing the audit log"):
        await pool_or_conn.executemany(
            "INSERT INTO audit_log (actor, role, org_id, action, patient_id, reason, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            rows,
        )

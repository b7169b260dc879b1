"""Consultation requests in PostgreSQL: request, queue, accept exactly once, cancel, escalate.

Every state change writes its event to the transactional outbox in the same transaction, and
every read that returns a patient id writes an audit entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.video import rooms_store
from services.video.domain.consults import (
    ConsultRequest,
    ConsultStatus,
    Urgency,
    escalation_deadline,
    may_see,
    urgency_order,
)
from services.video.video_metrics import consult_events
from shared import audit, outbox
from shared.audit import AuditEntry
from shared.auth import Principal
from shared.db import database_errors
from shared.errors import Conflict, Forbidden, NotFound
from shared.events import (
    ConsultAccepted,
    ConsultCancelled,
    ConsultEscalated,
    ConsultRequested,
    Event,
)

REQUESTER_ROLES = ("nurse", "gp")
LIST_LIMIT = 500


@dataclass(frozen=True)
class Consult:
    consult_id: uuid.UUID
    patient_id: str
    specialty: str
    urgency: Urgency
    reason: str
    alert_id: str | None
    status: ConsultStatus
    requested_by: str
    requester_role: str
    requester_org: str
    requested_at: datetime
    escalate_at: datetime | None
    escalated_at: datetime | None
    accepted_by: str | None
    accepted_org: str | None
    accepted_at: datetime | None
    room_id: str | None
    cancelled_by: str | None
    cancelled_at: datetime | None

    def view(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": str(self.consult_id),
            "status": str(self.status),
            "patient_id": self.patient_id,
            "specialty": self.specialty,
            "urgency": str(self.urgency),
            "reason": self.reason,
            "alert_id": self.alert_id,
            "requested_by": {
                "subject": self.requested_by,
                "role": self.requester_role,
                "org_id": self.requester_org,
            },
            "requested_at": iso(self.requested_at),
            "escalate_at": iso(self.escalate_at),
            "escalated": self.escalated_at is not None,
            "escalated_at": iso(self.escalated_at),
            "accepted_by": (
                {"subject": self.accepted_by, "org_id": self.accepted_org}
                if self.accepted_by is not None
                else None
            ),
            "accepted_at": iso(self.accepted_at),
            "room_id": self.room_id,
            "cancelled_at": iso(self.cancelled_at),
        }


def _consult(row: Any) -> Consult:
    values = dict(row.items())
    values["urgency"] = Urgency(values["urgency"])
    values["status"] = ConsultStatus(values["status"])
    return Consult(**values)


_COLUMNS = ", ".join(Consult.__dataclass_fields__)


def _read_entries(
    principal: Principal, consults: Sequence[Consult], action: str
) -> list[AuditEntry]:
    return [
        AuditEntry(
            principal, action, c.patient_id, "video consultation", {"consult_id": str(c.consult_id)}
        )
        for c in consults
    ]


async def department_specialties(
    conn: asyncpg.Connection | asyncpg.Pool, org_id: str
) -> tuple[str, ...]:
    """The specialties of a hospital department; empty for any other organisation."""
    async with database_errors("reading a department"):
        specialties = await conn.fetchval(
            "SELECT specialties FROM organisations "
            "WHERE org_id = $1 AND kind = 'hospital_department'",
            org_id,
        )
    return tuple(specialties or ())


async def request(
    pool: asyncpg.Pool,
    principal: Principal,
    wanted: ConsultRequest,
    *,
    now: datetime,
    acute_after: timedelta,
    topic: str,
) -> Consult:
    """Queue a request for a patient the requester's organisation is responsible for."""
    principal.require(*REQUESTER_ROLES)
    async with (
        database_errors("requesting a consultation"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        responsible = await conn.fetchval(
            "SELECT 1 FROM patient_orgs WHERE patient_id = $1 AND org_id = $2",
            wanted.patient_id,
            principal.org_id,
        )
        if responsible is None:
            raise NotFound("no such patient for your organisation")
        row = await conn.fetchrow(
            f"""INSERT INTO consults (consult_id, patient_id, specialty, urgency, reason,
                    alert_id, status, requested_by, requester_role, requester_org,
                    requested_at, escalate_at)
                VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7, $8, $9, $10, $11)
                RETURNING {_COLUMNS}""",
            uuid.uuid4(),
            wanted.patient_id,
            wanted.specialty,
            str(wanted.urgency),
            wanted.reason,
            wanted.alert_id,
            principal.subject,
            principal.role,
            principal.org_id,
            now,
            escalation_deadline(wanted.urgency, requested_at=now, acute_after=acute_after),
        )
        consult = _consult(row)
        await _emit(
            conn,
            topic,
            consult,
            ConsultRequested(
                consult_id=str(consult.consult_id),
                patient_id=consult.patient_id,
                specialty=consult.specialty,
                urgency=consult.urgency.value,
                alert_id=consult.alert_id,
                requested_by=consult.requested_by,
                requester_org=consult.requester_org,
                requested_at=consult.requested_at,
            ),
        )
        await audit.record(conn, _read_entries(principal, [consult], "consult.request"))
    return consult


async def listing(
    pool: asyncpg.Pool,
    principal: Principal,
    *,
    status: ConsultStatus | None,
    specialty: str | None,
) -> list[Consult]:
    """The requests a principal may see: a specialist's queue, or a requester's own requests.

    Ordered by urgency (acute first), then by age (longest waiting first)."""
    if principal.role == "specialist":
        offered = await department_specialties(pool, principal.org_id)
        if specialty is not None and specialty not in offered:
            raise Forbidden(f"your department does not take {specialty} consultations")
        scope_sql = "specialty = ANY($1::text[])"
        scope: object = [specialty] if specialty is not None else list(offered)
    elif principal.role in REQUESTER_ROLES:
        scope_sql = "requester_org = $1 AND ($4::text IS NULL OR specialty = $4)"
        scope = principal.org_id
    else:
        raise Forbidden("only clinicians see consultation requests")
    async with database_errors("listing consultations"):
        rows = await pool.fetch(
            f"""SELECT {_COLUMNS} FROM consults
                 WHERE {scope_sql} AND ($2::text IS NULL OR status = $2)
                 ORDER BY array_position($3::text[], urgency), requested_at
                 LIMIT {LIST_LIMIT}""",
            scope,
            str(status) if status is not None else None,
            urgency_order(),
            *([specialty] if principal.role in REQUESTER_ROLES else []),
        )
        consults = [_consult(r) for r in rows]
        await audit.record(pool, _read_entries(principal, consults, "consult.list"))
    return consults


async def read(pool: asyncpg.Pool, principal: Principal, consult_id: str) -> Consult:
    async with database_errors("reading a consultation"):
        consult = await _visible(pool, principal, consult_id, lock=False)
        await audit.record(pool, _read_entries(principal, [consult], "consult.read"))
    return consult


async def accept(
    pool: asyncpg.Pool,
    principal: Principal,
    consult_id: str,
    *,
    now: datetime,
    topic: str,
    room_unused_expiry: timedelta,
) -> tuple[Consult, rooms_store.RoomRecord]:
    """Take a waiting request, exactly once, and open its room (owned by the requester's
    organisation, which is responsible for the patient)."""
    principal.require("specialist")
    async with (
        database_errors("accepting a consultation"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        consult = await _visible(conn, principal, consult_id, lock=True)
        if consult.status is not ConsultStatus.WAITING:
            raise Conflict(f"the request is already {consult.status}")
        room = await rooms_store.create_room(
            conn,
            org_id=consult.requester_org,
            created_by=principal.subject,
            patient_id=consult.patient_id,
            consult_id=consult.consult_id,
            now=now,
            unused_expiry=room_unused_expiry,
        )
        row = await conn.fetchrow(
            f"""UPDATE consults SET status = 'accepted', accepted_by = $2, accepted_org = $3,
                    accepted_at = $4, room_id = $5, escalate_at = NULL
                 WHERE consult_id = $1 RETURNING {_COLUMNS}""",
            consult.consult_id,
            principal.subject,
            principal.org_id,
            now,
            room.room_id,
        )
        consult = _consult(row)
        await _emit(
            conn,
            topic,
            consult,
            ConsultAccepted(
                consult_id=str(consult.consult_id),
                patient_id=consult.patient_id,
                specialty=consult.specialty,
                urgency=consult.urgency.value,
                requester_org=consult.requester_org,
                accepted_by=principal.subject,
                accepted_org=principal.org_id,
                accepted_at=now,
                room_id=room.room_id,
            ),
        )
        await audit.record(conn, _read_entries(principal, [consult], "consult.accept"))
    return consult, room


async def cancel(
    pool: asyncpg.Pool, principal: Principal, consult_id: str, *, now: datetime, topic: str
) -> Consult:
    """Withdraw a waiting request (its requesting organisation only)."""
    principal.require(*REQUESTER_ROLES)
    async with (
        database_errors("cancelling a consultation"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        consult = await _visible(conn, principal, consult_id, lock=True)
        if consult.status is not ConsultStatus.WAITING:
            raise Conflict(f"the request is already {consult.status}")
        row = await conn.fetchrow(
            f"""UPDATE consults SET status = 'cancelled', cancelled_by = $2,
                    cancelled_at = $3, escalate_at = NULL
                 WHERE consult_id = $1 RETURNING {_COLUMNS}""",
            consult.consult_id,
            principal.subject,
            now,
        )
        consult = _consult(row)
        await _emit(
            conn,
            topic,
            consult,
            ConsultCancelled(
                consult_id=str(consult.consult_id),
                patient_id=consult.patient_id,
                specialty=consult.specialty,
                requester_org=consult.requester_org,
                cancelled_by=principal.subject,
                cancelled_at=now,
            ),
        )
        await audit.record(conn, _read_entries(principal, [consult], "consult.cancel"))
    return consult


async def joinable(pool: asyncpg.Pool, principal: Principal, consult_id: str) -> Consult:
    """An accepted request whose room ``principal`` may enter as a host: a clinician of the
    requesting organisation, or the specialist who accepted it."""
    async with database_errors("reading a consultation"):
        consult = await _visible(pool, principal, consult_id, lock=False)
        if principal.role == "specialist" and (
            consult.accepted_by != principal.subject or consult.accepted_org != principal.org_id
        ):
            raise Forbidden("another specialist took this consultation")
        if consult.status is not ConsultStatus.ACCEPTED or consult.room_id is None:
            raise Conflict(f"the request is {consult.status}; no room yet")
        await audit.record(pool, _read_entries(principal, [consult], "consult.join"))
    return consult


async def escalate_due(
    pool: asyncpg.Pool, *, now: datetime, topic: str, limit: int = 100
) -> list[Consult]:
    """Escalate the waiting requests whose deadline passed. Rows are locked with SKIP LOCKED and
    the deadline is cleared in the same transaction, so each escalates once across instances."""
    async with (
        database_errors("escalating consultations"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM consults
                 WHERE escalate_at <= $1 AND status = 'waiting'
                 ORDER BY escalate_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        escalated = []
        for row in rows:
            consult = _consult(row)
            updated = await conn.fetchrow(
                f"""UPDATE consults SET escalate_at = NULL, escalated_at = $2
                     WHERE consult_id = $1 RETURNING {_COLUMNS}""",
                consult.consult_id,
                now,
            )
            escalated.append(_consult(updated))
            await _emit(
                conn,
                topic,
                consult,
                ConsultEscalated(
                    consult_id=str(consult.consult_id),
                    patient_id=consult.patient_id,
                    specialty=consult.specialty,
                    urgency=consult.urgency.value,
                    requester_org=consult.requester_org,
                    requested_at=consult.requested_at,
                    escalated_at=now,
                    waited_s=(now - consult.requested_at).total_seconds(),
                ),
            )
    return escalated


async def _visible(
    conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, consult_id: str, *, lock: bool
) -> Consult:
    try:
        key = uuid.UUID(consult_id)
    except ValueError:
        raise NotFound("no such consultation") from None
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM consults WHERE consult_id = $1{' FOR UPDATE' if lock else ''}",
        key,
    )
    if row is None:
        raise NotFound("no such consultation")
    consult = _consult(row)
    offered: tuple[str, ...] = ()
    if principal.role == "specialist":
        offered = await department_specialties(conn, principal.org_id)
    if not may_see(
        role=principal.role,
        org_id=principal.org_id,
        requester_org=consult.requester_org,
        specialty=consult.specialty,
        department_specialties=offered,
    ):
        raise NotFound("no such consultation")
    return consult


async def _emit(conn: asyncpg.Connection, topic: str, consult: Consult, event: Event) -> None:
    consult_events.labels(event.ce_type.split(".")[3], consult.specialty).inc()
    await outbox.enqueue(
        conn,
        topic=topic,
        key=str(consult.consult_id),
        ce_type=event.ce_type,
        body=event.model_dump(mode="json"),
    )

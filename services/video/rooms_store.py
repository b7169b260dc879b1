"""Video rooms in PostgreSQL: which exist, whose they are, and whether they are still open.

Membership is in the signaling process; this table is what survives a restart, so a join
token of a room that was closed (by a host or by expiry) stays refused everywhere.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.video.signaling import RoomClosed
from shared.db import database_errors


@dataclass(frozen=True)
class RoomRecord:
    room_id: str
    consult_id: uuid.UUID | None
    org_id: str
    patient_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    closed_at: datetime | None

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and (self.expires_at is None or self.expires_at > now)

    def view(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "consult_id": str(self.consult_id) if self.consult_id else None,
            "org_id": self.org_id,
            "patient_id": self.patient_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


_COLUMNS = "room_id, consult_id, org_id, patient_id, created_by, created_at, expires_at, closed_at"


def _record(row: Any) -> RoomRecord:
    return RoomRecord(**dict(row.items()))


def new_room_id() -> str:
    """An unguessable id: knowing it alone lets nobody in, but it names no one either."""
    return secrets.token_urlsafe(12)


async def create_room(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    org_id: str,
    created_by: str,
    patient_id: str | None,
    consult_id: uuid.UUID | None,
    now: datetime,
    unused_expiry: timedelta,
) -> RoomRecord:
    async with database_errors("creating a room"):
        row = await conn.fetchrow(
            f"""INSERT INTO video_rooms ({_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING {_COLUMNS}""",
            new_room_id(),
            consult_id,
            org_id,
            patient_id,
            created_by,
            now,
            now + unused_expiry,
        )
    return _record(row)


async def get_room(conn: asyncpg.Connection | asyncpg.Pool, room_id: str) -> RoomRecord | None:
    async with database_errors("reading a room"):
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM video_rooms WHERE room_id = $1", room_id)
    return _record(row) if row is not None else None


async def require_open(pool: asyncpg.Pool, room_id: str, *, now: datetime) -> RoomRecord:
    """The room, if it exists and is open; ``RoomClosed`` otherwise."""
    room = await get_room(pool, room_id)
    if room is None or not room.is_open(now):
        raise RoomClosed(room_id)
    return room


async def close_room(pool: asyncpg.Pool, room_id: str, *, now: datetime) -> RoomRecord | None:
    """Close the room (once; closing again keeps the first time). None if there is no room."""
    async with database_errors("closing a room"):
        row = await pool.fetchrow(
            f"""UPDATE video_rooms SET closed_at = coalesce(closed_at, $2)
                 WHERE room_id = $1 RETURNING {_COLUMNS}""",
            room_id,
            now,
        )
    return _record(row) if row is not None else None


async def set_occupancy(
    pool: asyncpg.Pool, room_id: str, *, occupied: bool, at: datetime, empty_expiry: timedelta
) -> None:
    """Stop the expiry clock while anyone is in the room; start it when the last one leaves."""
    async with database_errors("recording room occupancy"):
        await pool.execute(
            "UPDATE video_rooms SET expires_at = $2 WHERE room_id = $1 AND closed_at IS NULL",
            room_id,
            None if occupied else at + empty_expiry,
        )


async def expire_due(pool: asyncpg.Pool, *, now: datetime, limit: int = 200) -> list[str]:
    """Close the rooms whose expiry passed; each is closed by one instance only."""
    async with database_errors("expiring rooms"), pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT room_id FROM video_rooms
                WHERE closed_at IS NULL AND expires_at <= $1
                ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        ids = [r["room_id"] for r in rows]
        if ids:
            await conn.execute(
                "UPDATE video_rooms SET closed_at = $2 WHERE room_id = ANY($1::text[])", ids, now
            )
    return ids


async def rooms_by_id(pool: asyncpg.Pool, room_ids: list[str]) -> dict[str, RoomRecord]:
    async with database_errors("reading rooms"):
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM video_rooms WHERE room_id = ANY($1::text[])", room_ids
        )
    return {r["room_id"]: _record(r) for r in rows}

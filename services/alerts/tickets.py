"""Single-use console tickets: a WebSocket URL carries a ticket, never the bearer token.

Only the ticket's SHA-256 is stored; redeeming deletes it, so a ticket opens one connection.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg

from shared.auth import Principal
from shared.db import database_errors
from shared.errors import InvalidToken


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


async def issue(pool: asyncpg.Pool, principal: Principal, *, ttl: timedelta) -> str:
    ticket = secrets.token_urlsafe(32)
    async with database_errors("issuing a console ticket"):
        await pool.execute(
            "DELETE FROM console_tickets WHERE expires_at < now() - interval '1 hour'"
        )
        await pool.execute(
            "INSERT INTO console_tickets (ticket_hash, subject, role, org_id, expires_at) "
            "VALUES ($1, $2, $3, $4, now() + $5::interval)",
            _digest(ticket),
            principal.subject,
            principal.role,
            principal.org_id,
            ttl,
        )
    return ticket


async def redeem(pool: asyncpg.Pool, ticket: str) -> Principal:
    async with database_errors("redeeming a console ticket"):
        row = await pool.fetchrow(
            "DELETE FROM console_tickets WHERE ticket_hash = $1 RETURNING subject, role, org_id, "
            "expires_at > now() AS valid",
            _digest(ticket),
        )
    if row is None or not row["valid"]:
        raise InvalidToken("console ticket unknown, used or expired")
    return Principal(subject=row["subject"], role=row["role"], org_id=row["org_id"])

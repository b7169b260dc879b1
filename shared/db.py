"""The PostgreSQL adapter: an asyncpg pool whose driver errors are translated in one place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.errors import Unavailable
from shared.settings import DatabaseSettings


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(url: str) -> asyncpg.Connection:
    """One connection with the platform's JSON codecs (for commands and start-up steps)."""
    async with database_errors("connecting"):
        conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    async with database_errors("connecting"):
        pool = await asyncpg.create_pool(
            settings.url.get_secret_value(),
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            command_timeout=settings.command_timeout_s,
            init=_init_connection,
        )
    assert pool is not None
    return pool


@asynccontextmanager
async def database_errors(action: str) -> AsyncIterator[None]:
    """Translate connection-level driver failures into :class:`Unavailable`.

    Constraint violations and SQL errors are programming or input errors and pass through.
    """
    try:
        yield
    except (
        OSError,
        TimeoutError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.InterfaceError,
    ) as exc:
        raise Unavailable(f"database unavailable while {action}: {type(exc).__name__}") from exc


def record_dict(record: Any) -> dict[str, Any]:
    return dict(record.items())

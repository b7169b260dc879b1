"""Service lifecycle: one aiohttp ``cleanup_ctx`` per resource, so start-up and shutdown read
top to bottom (and shut down in reverse: stop intake, drain, commit, flush, close pools)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from shared.db import create_pool
from shared.errors import Unavailable
from shared.http import READINESS
from shared.kafka import ConsumerLoop, Publisher
from shared.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

POOL = web.AppKey("pool", asyncpg.Pool)
PUBLISHER = web.AppKey("publisher", Publisher)

T = TypeVar("T")


async def with_retry(what: str, attempt: Callable[[], Awaitable[T]], *, give_up_s: float = 60) -> T:
    """Retry a start-up step that fails with :class:`Unavailable`, with backoff, for a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    delay = 0.2
    while True:
        try:
            return await attempt()
        except Unavailable as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning(
                "waiting for a dependency", extra={"dependency": what, "error": exc.message}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def database_ctx(
    settings: DatabaseSettings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await with_retry("database", lambda: create_pool(settings))
        app[POOL] = pool

        async def ready() -> Mapping[str, bool]:
            try:
                async with asyncio.timeout(2):
                    await pool.fetchval("SELECT 1")
                return {"database": True}
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return {"database": False}

        app[READINESS].append(ready)
        yield
        await pool.close()

    return ctx


def publisher_ctx(
    settings: KafkaSettings, *, client_id: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def start() -> Publisher:
            publisher = Publisher(settings, client_id=client_id)
            try:
                await publisher.start()
            except Unavailable:
                await publisher.stop()
                raise
            return publisher

        publisher = await with_retry("event broker", start)
        app[PUBLISHER] = publisher
        yield
        await publisher.stop()

    return ctx


def consumer_ctx(
    name: str, build: Callable[[web.Application], ConsumerLoop[Any]]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run a consumer loop for the application's lifetime; it drains and commits on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = build(app)
        task = asyncio.create_task(loop.run(), name=name)

        async def ready() -> Mapping[str, bool]:
            return {name: loop.ready.is_set() and not task.done()}

        app[READINESS].append(ready)
        yield
        loop.stop()
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            log.warning("consumer did not drain in time", extra={"consumer": name})

    return ctx


def run(app: web.Application, *, host: str, port: int) -> None:
    web.run_app(
        app,
        host=host,
        port=port,
        handle_signals=True,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )

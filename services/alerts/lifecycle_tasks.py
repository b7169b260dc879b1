"""The alert lifecycle's background work, one ``cleanup_ctx`` each: the escalation scheduler
(with the auto-resolve sweep) and the webhook deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.alerts import escalations, lifecycle, webhooks
from services.alerts.context import CONTEXT
from shared.errors import Unavailable
from shared.http import READINESS
from shared.lifecycle import POOL, PUBLISHER
from shared.outbox import relay

log = logging.getLogger(__name__)

# Never spin: rows due but locked by another instance are left to it for this long.
_MIN_WAIT_S = 0.05

Ctx = Callable[[web.Application], AsyncIterator[None]]


async def run_scheduler(app: web.Application, *, instance: str) -> None:
    """Fire due escalation timers and auto-resolve quiet alerts for as long as the service
    runs, sleeping until the next deadline (at most the poll interval)."""
    context = app[CONTEXT]
    settings = context.settings
    pool, publisher = app[POOL], app[PUBLISHER]
    while True:
        next_at: datetime | None = None
        try:
            fired = await escalations.fire_due(
                pool,
                alerts_topic=context.alerts_topic,
                limit=settings.escalation_batch,
                instance=instance,
            )
            resolved = await lifecycle.auto_resolve_due(
                pool, after=settings.auto_resolve_after, alerts_topic=context.alerts_topic
            )
            if fired or resolved:
                # Stored already; if the broker is down the outbox sweep publishes them later.
                with contextlib.suppress(Unavailable):
                    await relay(pool, publisher, source=context.source)
            if len(fired) >= settings.escalation_batch:
                continue
            next_at = await escalations.next_due(pool)
        except Unavailable as exc:
            log.warning("escalation scheduler waiting", extra={"error": exc.message})
        wait = settings.escalation_poll_s
        if next_at is not None:
            until_due = (next_at - datetime.now(UTC)).total_seconds()
            wait = min(max(until_due, _MIN_WAIT_S), wait)
        await asyncio.sleep(wait)


def _background(name: str, run: Callable[[web.Application], Coroutine[Any, Any, None]]) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(app), name=name)

        async def ready() -> Mapping[str, bool]:
            return {name: not task.done()}

        app[READINESS].append(ready)
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx


def scheduler_ctx() -> Ctx:
    instance = escalations.instance_name()
    return _background("escalation", lambda app: run_scheduler(app, instance=instance))


def webhooks_ctx() -> Ctx:
    async def run(app: web.Application) -> None:
        context = app[CONTEXT]
        s = context.settings
        await webhooks.run_deliveries(
            app[POOL],
            context.box,
            policy=webhooks.DeliveryPolicy(
                max_attempts=s.webhook_max_attempts,
                backoff_base_s=s.webhook_backoff_base_s,
                backoff_max_s=s.webhook_backoff_max_s,
                timeout_s=s.webhook_timeout_s,
                lease_s=s.webhook_lease_s,
                batch=s.webhook_batch,
                concurrency=s.webhook_concurrency,
            ),
            poll_s=s.webhook_poll_s,
        )

    return _background("webhooks", run)

"""Wires the alerts service: scorer, alert engine, outbox relay, the live console, the
escalation scheduler and webhook deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from services.alerts import api, lifecycle_tasks
from services.alerts.care_store import CareStore
from services.alerts.console import ConsoleHub, fan_out
from services.alerts.context import CONTEXT, AlertsContext
from services.alerts.engine import apply_assessments
from services.alerts.lifecycle_settings import LifecycleSettings
from services.alerts.responders import Router
from services.alerts.scorer import SCORER, scorer_loop, scoring_ctx
from services.alerts.settings import AlertsSettings
from services.alerts.webhooks import SecretBox
from shared.errors import Unavailable
from shared.events import RiskAssessed
from shared.http import READINESS, base_app
from shared.kafka import ConsumerLoop, Delivery, make_consumer
from shared.lifecycle import POOL, PUBLISHER, consumer_ctx, database_ctx, publisher_ctx
from shared.outbox import relay

log = logging.getLogger(__name__)


def create_app(
    settings: AlertsSettings, *, lifecycle: LifecycleSettings | None = None
) -> web.Application:
    app = base_app(settings.auth)
    app[api.SETTINGS] = settings
    app[api.HUB] = ConsoleHub()
    topics = settings.topics
    lifecycle = lifecycle or LifecycleSettings()
    care = CareStore(ttl_s=lifecycle.care_cache_ttl_s)
    secret_key = lifecycle.webhook_secret_key or settings.auth.jwt_secret
    app[CONTEXT] = AlertsContext(
        alerts_topic=topics.alerts,
        source=api.SOURCE,
        settings=lifecycle,
        store=care,
        router=Router(care, lifecycle.routing),
        box=SecretBox(secret_key.get_secret_value()),
    )

    async def console_ctx(app: web.Application) -> AsyncIterator[None]:
        consumer = make_consumer(
            settings.kafka,
            topics=[topics.alerts],
            group_id=None,
            client_id="alerts-console",
            offset_reset="latest",  # what came before is read from PostgreSQL on connect
        )
        started = asyncio.Event()
        task = asyncio.create_task(fan_out(consumer, app[api.HUB], started), name="console")

        async def ready() -> Mapping[str, bool]:
            return {"console": started.is_set() and not task.done()}

        app[READINESS].append(ready)
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def build_scorer(app: web.Application) -> ConsumerLoop[Any]:
        return scorer_loop(
            settings, scorer=app[SCORER], publisher=app[PUBLISHER], source=api.SOURCE
        )

    def build_engine(app: web.Application) -> ConsumerLoop[Any]:
        pool, publisher = app[POOL], app[PUBLISHER]

        async def handle(deliveries: list[Delivery[RiskAssessed]]) -> None:
            changes = await apply_assessments(
                pool,
                [d.event for d in deliveries],
                alerts_topic=topics.alerts,
                min_low_total=settings.min_low_total,
                router=app[CONTEXT].router,
                auto_resolve_after=app[CONTEXT].settings.auto_resolve_after,
            )
            if changes:
                # The changes are stored; if the broker is down the outbox sweep publishes them.
                with contextlib.suppress(Unavailable):
                    await relay(pool, publisher, source=api.SOURCE)

        return ConsumerLoop(
            make_consumer(
                settings.kafka,
                topics=[topics.risk],
                group_id=settings.engine_group,
                client_id="alerts-engine",
            ),
            model=RiskAssessed,
            handle=handle,
            publisher=publisher,
            deadletter_topic=topics.deadletter,
            name="engine",
        )

    async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                try:
                    while await relay(app[POOL], app[PUBLISHER], source=api.SOURCE):
                        pass
                except Unavailable as exc:
                    log.warning("outbox relay waiting", extra={"error": exc.message})
                await asyncio.sleep(1.0)

        task = asyncio.create_task(sweep(), name="outbox")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(database_ctx(settings.database))
    app.cleanup_ctx.append(publisher_ctx(settings.kafka, client_id="alerts"))
    app.cleanup_ctx.append(console_ctx)
    app.cleanup_ctx.append(outbox_ctx)
    app.cleanup_ctx.append(lifecycle_tasks.scheduler_ctx())
    app.cleanup_ctx.append(lifecycle_tasks.webhooks_ctx())
    app.cleanup_ctx.append(consumer_ctx("engine", build_engine))
    app.cleanup_ctx.append(scoring_ctx(settings, source=api.SOURCE))
    app.cleanup_ctx.append(consumer_ctx("scorer", build_scorer))
    api.add_routes(app)
    return app

"""Wires the alerts service: scorer, alert engine, outbox relay and the live console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web

from services.alerts import api
from services.alerts.console import ConsoleHub, fan_out
from services.alerts.engine import apply_assessments
from services.alerts.scorer import Scorer
from services.alerts.settings import AlertsSettings
from shared.errors import Unavailable
from shared.events import ReadingAccepted, RiskAssessed
from shared.http import READINESS, base_app
from shared.kafka import ConsumerLoop, Delivery, make_consumer, outgoing
from shared.lifecycle import POOL, PUBLISHER, consumer_ctx, database_ctx, publisher_ctx
from shared.outbox import relay

log = logging.getLogger(__name__)


def create_app(settings: AlertsSettings) -> web.Application:
    app = base_app(settings.auth)
    app[api.SETTINGS] = settings
    app[api.HUB] = ConsoleHub()
    topics = settings.topics

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
        scorer = Scorer(app[POOL], window=timedelta(minutes=settings.window_minutes))
        publisher = app[PUBLISHER]

        async def handle(deliveries: list[Delivery[ReadingAccepted]]) -> None:
            assessments = await scorer.assess(deliveries)
            await publisher.publish(
                [
                    outgoing(
                        topics.risk, a.patient_id, a, source=api.SOURCE, subject=a.assessment_id
                    )
                    for a in assessments
                ]
            )

        return ConsumerLoop(
            make_consumer(
                settings.kafka,
                topics=[topics.readings],
                group_id=settings.scorer_group,
                client_id="alerts-scorer",
            ),
            model=ReadingAccepted,
            handle=handle,
            publisher=publisher,
            deadletter_topic=topics.deadletter,
            name="scorer",
        )

    def build_engine(app: web.Application) -> ConsumerLoop[Any]:
        pool, publisher = app[POOL], app[PUBLISHER]

        async def handle(deliveries: list[Delivery[RiskAssessed]]) -> None:
            changes = await apply_assessments(
                pool,
                [d.event for d in deliveries],
                alerts_topic=topics.alerts,
                min_low_total=settings.min_low_total,
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
    app.cleanup_ctx.append(consumer_ctx("engine", build_engine))
    app.cleanup_ctx.append(consumer_ctx("scorer", build_scorer))
    api.add_routes(app)
    return app

"""Wires the ingest service: device gateway API and the readings store consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from services.ingest import api
from services.ingest.devices import DeviceRegistry
from services.ingest.secretbox import SecretBox
from services.ingest.settings import IngestSettings
from services.ingest.store import store_readings
from shared.events import ReadingAccepted
from shared.http import base_app
from shared.kafka import ConsumerLoop, Delivery, make_consumer
from shared.lifecycle import POOL, PUBLISHER, consumer_ctx, database_ctx, publisher_ctx


def create_app(settings: IngestSettings) -> web.Application:
    app = base_app(settings.auth, client_max_size=settings.max_body_bytes)
    app[api.SETTINGS] = settings

    async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
        app[api.REGISTRY] = DeviceRegistry(
            app[POOL], SecretBox(settings.secret_key.get_secret_value())
        )
        yield

    def build_store(app: web.Application) -> ConsumerLoop[Any]:
        pool = app[POOL]

        async def handle(deliveries: list[Delivery[ReadingAccepted]]) -> None:
            await store_readings(pool, deliveries)

        return ConsumerLoop(
            make_consumer(
                settings.kafka,
                topics=[settings.topics.readings],
                group_id=settings.store_group,
                client_id="ingest-store",
            ),
            model=ReadingAccepted,
            handle=handle,
            publisher=app[PUBLISHER],
            deadletter_topic=settings.topics.deadletter,
            name="readings-store",
        )

    # Start-up runs top to bottom; shutdown in reverse: the consumer drains and commits before
    # the producer flushes and the pool closes.
    app.cleanup_ctx.append(database_ctx(settings.database))
    app.cleanup_ctx.append(publisher_ctx(settings.kafka, client_id="ingest"))
    app.cleanup_ctx.append(registry_ctx)
    app.cleanup_ctx.append(consumer_ctx("readings-store", build_store))
    api.add_routes(app)
    return app

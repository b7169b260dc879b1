"""Wires the ingest service: device gateway API and the readings store consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from services.ingest import api, fhir_api, openapi, stream
from services.ingest.device_cache import DeviceCache
from services.ingest.devices import ActiveDevice, DeviceRegistry
from services.ingest.domain.replay import ReplayGuard
from services.ingest.gate import DeviceGate
from services.ingest.intake import Intake
from services.ingest.publishing import ReadingPublisher
from services.ingest.redelivery import Redelivery
from services.ingest.secretbox import SecretBox
from services.ingest.settings import IngestSettings
from services.ingest.store import ReadingStore, Rewinder
from shared.events import ReadingAccepted
from shared.http import base_app
from shared.kafka import ConsumerLoop, Delivery, make_consumer
from shared.lifecycle import POOL, PUBLISHER, consumer_ctx, database_ctx, publisher_ctx
from shared.ratelimit import TokenBuckets


def create_app(settings: IngestSettings) -> web.Application:
    app = base_app(settings.auth, client_max_size=settings.max_body_bytes)
    app[api.SETTINGS] = settings

    async def readings_ctx(app: web.Application) -> AsyncIterator[None]:
        publisher = ReadingPublisher(
            settings.kafka,
            client_id="ingest",
            timeout_s=settings.publish_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        await publisher.start()
        app[api.READINGS] = publisher
        yield
        await publisher.stop()

    async def gate_ctx(app: web.Application) -> AsyncIterator[None]:
        cache: DeviceCache[ActiveDevice] = DeviceCache(
            app[POOL], max_entries=settings.device_cache_entries, ttl_s=settings.device_cache_s
        )
        cache.start()
        registry = DeviceRegistry(
            app[POOL], SecretBox(settings.secret_key.get_secret_value()), cache=cache
        )
        app[api.REGISTRY] = registry
        app[api.GATE] = DeviceGate(
            registry,
            clock_skew_s=settings.clock_skew_s,
            replays=ReplayGuard(window_s=settings.clock_skew_s, capacity=settings.replay_memory),
            buckets=TokenBuckets(
                rate_per_s=settings.rate_per_s,
                burst=settings.rate_burst,
                max_keys=settings.rate_devices,
            ),
        )
        yield
        await cache.stop()

    async def intake_ctx(app: web.Application) -> AsyncIterator[None]:
        intake = Intake(
            app[POOL],
            app[api.READINGS],
            topic=settings.topics.readings,
            acquire_timeout_s=settings.db_acquire_timeout_s,
            concurrency=settings.intake_concurrency,
        )
        app[api.INTAKE] = intake
        yield
        await intake.stop()

    async def redelivery_ctx(app: web.Application) -> AsyncIterator[None]:
        redelivery = Redelivery(
            app[POOL],
            app[api.READINGS],
            topic=settings.topics.readings,
            lookback_s=settings.redelivery_lookback_s,
            wait_s=settings.redelivery_wait_s,
        )
        app[api.READINGS].on_log_reset(redelivery.log_reset)
        redelivery.start()
        yield
        await redelivery.stop()

    def build_store(app: web.Application) -> ConsumerLoop[Any]:
        store = ReadingStore(app[POOL])

        async def handle(deliveries: list[Delivery[ReadingAccepted]]) -> None:
            await store.store(deliveries)

        consumer = make_consumer(
            settings.kafka, topics=[], group_id=settings.store_group, client_id="ingest-store"
        )
        rewinder = Rewinder(
            consumer,
            topic=settings.topics.readings,
            window_s=max(30.0, 3 * settings.kafka.session_timeout_ms / 1000),
        )
        consumer.subscribe([settings.topics.readings], listener=rewinder)
        app[api.READINGS].on_log_reset(rewinder.log_reset)
        return ConsumerLoop(
            consumer,
            model=ReadingAccepted,
            handle=handle,
            publisher=app[PUBLISHER],
            deadletter_topic=settings.topics.deadletter,
            name="readings-store",
        )

    # Start-up runs top to bottom; shutdown in reverse: the consumer drains and commits before
    # the producers flush and the pool closes.
    app.cleanup_ctx.append(database_ctx(settings.database))
    if settings.store_enabled:  # the store's dead letters
        app.cleanup_ctx.append(publisher_ctx(settings.kafka, client_id="ingest-deadletter"))
    app.cleanup_ctx.append(readings_ctx)
    app.cleanup_ctx.append(gate_ctx)
    app.cleanup_ctx.append(intake_ctx)
    app.cleanup_ctx.append(redelivery_ctx)
    if settings.store_enabled:
        app.cleanup_ctx.append(consumer_ctx("readings-store", build_store))
    api.add_routes(app)
    fhir_api.add_routes(app)
    stream.add_routes(app)
    openapi.add_routes(app)
    return app

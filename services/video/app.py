"""Wires the video service: consultation queue, rooms, signaling, TURN credentials, web client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from services.video import api, pages, rooms_store, scheduler
from services.video.membership import MembershipRecorder
from services.video.settings import VideoSettings
from services.video.signaling import HUB, MembershipAudit, add_signaling_routes
from shared.http import base_app
from shared.lifecycle import POOL, PUBLISHER, database_ctx, publisher_ctx

RECORDER = web.AppKey("video_membership_recorder", MembershipRecorder)


def create_app(settings: VideoSettings) -> web.Application:
    app = base_app(settings.auth, cors_origins=settings.allowed_origins)
    app[api.SETTINGS] = settings
    app[api.JOIN_KEY] = settings.join_token_key()

    # Joins only arrive once start-up finished, so the hooks find the pool and recorder.
    async def room_gate(room_id: str) -> None:
        await rooms_store.require_open(app[POOL], room_id, now=api.utcnow())

    def on_audit(entry: MembershipAudit) -> None:
        app[RECORDER].audit(entry)

    def on_occupancy(room_id: str, occupied: bool, at: float) -> None:
        app[RECORDER].occupancy(room_id, occupied, at)

    add_signaling_routes(
        app,
        key=app[api.JOIN_KEY],
        cap=settings.room_cap,
        turn_secret=settings.turn_secret.get_secret_value() if settings.turn_secret else None,
        turn_urls=settings.turn_urls,
        turn_ttl_s=settings.turn_ttl_s,
        on_audit=on_audit,
        room_gate=room_gate,
        on_occupancy=on_occupancy,
    )

    async def recorder_ctx(app: web.Application) -> AsyncIterator[None]:
        recorder = MembershipRecorder(
            app[POOL], empty_expiry=timedelta(seconds=settings.room_empty_expiry_s)
        )
        app[RECORDER] = recorder
        recorder.start()
        yield
        await recorder.stop()

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(
            scheduler.run(
                app[POOL],
                app[PUBLISHER],
                app[HUB],
                interval_s=settings.scheduler_interval_s,
                clock=api.utcnow,
                consults_topic=settings.topics.consults,
                source=api.SOURCE,
            ),
            name="video-timers",
        )
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # Shutdown runs in reverse: timers stop, membership records drain, the producer flushes,
    # the pool closes. Sockets close with 1001 before all of this (on_shutdown).
    app.cleanup_ctx.append(database_ctx(settings.database))
    app.cleanup_ctx.append(publisher_ctx(settings.kafka, client_id="video"))
    app.cleanup_ctx.append(recorder_ctx)
    app.cleanup_ctx.append(scheduler_ctx)
    api.add_routes(app)
    pages.add_routes(app)
    return app

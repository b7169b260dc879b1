"""The video service's timers: escalate unaccepted acute requests, close expired rooms, and
publish the outbox. Every instance runs one; row locks make each effect happen once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.video import consults, rooms_store
from services.video.signaling import SignalingHub
from shared.errors import Unavailable
from shared.kafka import Publisher
from shared.outbox import relay

log = logging.getLogger(__name__)


async def tick(
    pool: asyncpg.Pool,
    publisher: Publisher,
    hub: SignalingHub,
    *,
    now: datetime,
    consults_topic: str,
    source: str,
) -> None:
    """One round: each step's rows are locked and updated in one transaction."""
    escalated = await consults.escalate_due(pool, now=now, topic=consults_topic)
    for consult in escalated:
        log.info(
            "consultation escalated",
            extra={"consult_id": str(consult.consult_id), "specialty": consult.specialty},
        )
    for room_id in await rooms_store.expire_due(pool, now=now):
        log.info("room expired", extra={"room_id": room_id})
        if hub.is_active(room_id):
            hub.close_room(room_id)
    while await relay(pool, publisher, source=source):
        pass


async def run(
    pool: asyncpg.Pool,
    publisher: Publisher,
    hub: SignalingHub,
    *,
    interval_s: float,
    clock: Callable[[], datetime],
    consults_topic: str,
    source: str,
) -> None:
    while True:
        try:
            await tick(
                pool, publisher, hub, now=clock(), consults_topic=consults_topic, source=source
            )
        except Unavailable as exc:
            log.warning("video timers waiting", extra={"error": exc.message})
        await asyncio.sleep(interval_s)

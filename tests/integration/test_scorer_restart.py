"""A restarted scorer rebuilds each patient's history from PostgreSQL: the heart-failure weight
rule fires on a new weighing against weighings the new instance never consumed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer

from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings
from shared.events import ReadingAccepted, RiskAssessed
from shared.infra.processes import free_port
from shared.kafka import Publisher, outgoing
from shared.vitals import VitalType

TODAY = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def weighing(patient_id: str, kg: float, at: datetime) -> ReadingAccepted:
    return ReadingAccepted(
        device_id=f"scale-{patient_id}",
        reading_id=uuid.uuid4().hex,
        patient_id=patient_id,
        type=VitalType.WEIGHT,
        value=kg,
        unit="kg",
        measured_at=at,
        received_at=at,
    )


async def risk_until(settings: AlertsSettings, count: int, patient_id: str) -> list[RiskAssessed]:
    """The patient's assessments on the risk topic, once there are at least `count`."""
    consumer = AIOKafkaConsumer(
        settings.topics.risk,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[RiskAssessed] = []
    try:
        async with asyncio.timeout(60):
            async for record in consumer:
                event = RiskAssessed.model_validate_json(record.value)
                if event.patient_id == patient_id:
                    found.append(event)
                if len(found) >= count:
                    return found
    finally:
        await consumer.stop()
    raise AssertionError("the risk topic ended")


async def start(settings: AlertsSettings) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port()).start()
    return runner


async def test_a_restarted_scorer_scores_a_new_weighing_against_stored_ones(infra, pool: Any):
    patient_id = f"pt-hf-{infra.suffix}"
    await pool.execute(
        "INSERT INTO patients (patient_id, region, condition) "
        "VALUES ($1, 'syddanmark', 'heart_failure')",
        patient_id,
    )
    settings = AlertsSettings(
        port=0,
        scorer_group=f"scorer-{infra.suffix}",
        engine_group=f"engine-{infra.suffix}",
        **infra.common(),
    )
    publisher = Publisher(infra.kafka, client_id="test-scale")
    await publisher.start()

    async def weigh(*readings: ReadingAccepted) -> None:
        await pool.executemany(  # as the ingest store writes them
            "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, unit, "
            "measured_at, received_at) VALUES ($1, $2, $3, 'weight', $4, 'kg', $5, $5)",
            [(r.device_id, r.reading_id, r.patient_id, r.value, r.measured_at) for r in readings],
        )
        await publisher.publish(
            [
                outgoing(infra.topics.readings, patient_id, r, source="test", subject=r.reading_id)
                for r in readings
            ]
        )

    try:
        first = await start(settings)
        await weigh(weighing(patient_id, 80.0, TODAY - 3 * DAY))
        await risk_until(settings, 1, patient_id)  # NEWS2 (nothing to compare the weight with)
        await weigh(weighing(patient_id, 80.7, TODAY - 2 * DAY))
        await risk_until(settings, 3, patient_id)  # NEWS2 and a trend within the limit
        await first.cleanup()

        second = await start(settings)
        try:
            await weigh(weighing(patient_id, 82.4, TODAY))
            found = await risk_until(settings, 5, patient_id)
        finally:
            await second.cleanup()
    finally:
        await publisher.stop()

    trends = [a for a in found if a.kind == "trend"]
    latest = found[-1]  # each batch publishes its NEWS2 assessment, then its trend
    assert latest.kind == "trend"
    assert latest.window_end == TODAY
    assert latest.severity == "low-medium"
    assert latest.values["weight"].value == 82.4
    # The gain is measured from the weighing three days ago, which only PostgreSQL still held.
    assert latest.reasons[0].startswith("weight +2.4 kg in 3 days: 80 kg")
    assert "above the heart-failure limit" in latest.reasons[0]
    # No weighing was scored twice: the new instance resumed after the committed offsets.
    assert sorted(a.window_end for a in trends) == [TODAY - 2 * DAY, TODAY]

"""The scorer on the real broker and database: readings in, explained assessments on the risk
topic, clinicians' reference ranges picked up, overdue measurements reported once per period.

One alerts service serves the whole module (consumer-group joins take seconds)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from services.alerts.app import create_app
from services.alerts.scorer import SCORER
from services.alerts.settings import AlertsSettings
from shared import db
from shared.auth import Principal, issue_token
from shared.events import ReadingAccepted, RiskAssessed
from shared.infra.broker import EmbeddedBroker
from shared.infra.processes import free_port
from shared.kafka import Publisher, ensure_topics, outgoing
from shared.lifecycle import PUBLISHER
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings
from shared.vitals import CANONICAL_UNIT, VitalType

SECRET = secrets.token_urlsafe(48)
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


@dataclass
class Scoring:
    settings: AlertsSettings
    app: web.Application
    base: str
    pool: Any
    publisher: Publisher
    suffix: str

    def token(self, org_id: str) -> str:
        return issue_token(SECRET, Principal("nurse-1", "nurse", org_id))


@pytest.fixture(scope="module")
async def scoring(broker: EmbeddedBroker, database: str) -> AsyncIterator[Scoring]:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        readings=f"s{suffix}.readings",
        risk=f"s{suffix}.risk",
        alerts=f"s{suffix}.alerts",
        consults=f"s{suffix}.consults",
        deadletter=f"s{suffix}.deadletter",
    )
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        partitions=4,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(kafka, topics.all())
    settings = AlertsSettings(
        port=0,
        kafka=kafka,
        topics=topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=5),
        auth=AuthSettings(jwt_secret=SecretStr(SECRET)),
        scorer_group=f"scorer-{suffix}",
        engine_group=f"engine-{suffix}",
        thresholds_ttl_s=0,  # every batch sees the latest ranges
        missing_check_s=3600,  # the tests run the check themselves
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pool = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=2))
    publisher = Publisher(kafka, client_id="test-devices")
    await publisher.start()
    yield Scoring(settings, app, f"http://127.0.0.1:{port}", pool, publisher, suffix)
    await publisher.stop()
    await pool.close()
    await runner.cleanup()


async def enrol(scoring: Scoring, name: str, condition: str) -> tuple[str, str]:
    """A patient of a new acute team; returns (patient id, org id)."""
    s = f"{name}-{scoring.suffix}"
    await scoring.pool.execute(
        "INSERT INTO organisations (org_id, kind, name, region, municipalities) "
        "VALUES ($1, 'acute_team', 'Akutteam', 'syddanmark', $2)",
        f"akut-{s}",
        [f"kommune-{s}"],
    )
    await scoring.pool.execute(
        "INSERT INTO patients (patient_id, municipality, region, condition) "
        "VALUES ($1, $2, 'syddanmark', $3)",
        f"pt-{s}",
        f"kommune-{s}",
        condition,
    )
    return f"pt-{s}", f"akut-{s}"


def reading(patient_id: str, type: str, value: float | bool | str, at: datetime) -> ReadingAccepted:
    return ReadingAccepted(
        device_id=f"dev-{patient_id}",
        reading_id=uuid.uuid4().hex,
        patient_id=patient_id,
        type=VitalType(type),
        value=value,
        unit=CANONICAL_UNIT[VitalType(type)],
        measured_at=at,
        received_at=at,
    )


async def store(pool: Any, readings: list[ReadingAccepted]) -> None:
    """As the ingest store consumer writes them."""
    await pool.executemany(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, value_text, "
        "unit, measured_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (
                r.device_id,
                r.reading_id,
                r.patient_id,
                r.type.value,
                None if isinstance(r.value, str) else float(r.value),
                r.value if isinstance(r.value, str) else None,
                r.unit,
                r.measured_at,
                r.received_at,
            )
            for r in readings
        ],
    )


async def send(scoring: Scoring, readings: list[ReadingAccepted]) -> None:
    topic = scoring.settings.topics.readings
    await scoring.publisher.publish(
        [outgoing(topic, r.patient_id, r, source="test", subject=r.reading_id) for r in readings]
    )


async def assessment(
    settings: AlertsSettings, match: Callable[[RiskAssessed], bool], *, timeout_s: float = 60
) -> RiskAssessed:
    """The first assessment on the risk topic that matches."""
    consumer = AIOKafkaConsumer(
        settings.topics.risk,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            async for record in consumer:
                event = RiskAssessed.model_validate_json(record.value)
                if match(event):
                    return event
    finally:
        await consumer.stop()
    raise AssertionError("the risk topic ended")


def session(patient_id: str, at: datetime, **values: float | bool | str) -> list[ReadingAccepted]:
    return [reading(patient_id, type, value, at) for type, value in values.items()]


async def test_a_reading_set_gives_an_explained_assessment_with_the_models_view(scoring):
    patient_id, _ = await enrol(scoring, "copd", "copd")
    # Ten days of a steady pulse around 72, stored before the scorer ever sees this patient.
    earlier = [
        reading(patient_id, "heart_rate", 71 + i % 3, NOW - (10 - i) * DAY) for i in range(10)
    ]
    await store(scoring.pool, earlier)
    await send(
        scoring,
        session(
            patient_id,
            NOW,
            respiratory_rate=22,
            spo2=89,
            on_oxygen=False,
            systolic_bp=118,
            heart_rate=104,
            consciousness="A",
            temperature=37.9,
        ),
    )

    found = await assessment(
        scoring.settings,
        lambda a: a.patient_id == patient_id and a.kind == "news2" and len(a.values) == 7,
    )
    assert found.values["spo2"].value == 89
    assert found.values["heart_rate"].measured_at == NOW
    assert found.news2 is not None
    # RR 22 -> 2, SpO2 89 -> 3, pulse 104 -> 1, everything else 0.
    assert found.news2.total == 6
    assert found.news2.components["spo2"] == 3
    assert found.severity == "medium"
    assert found.model is not None
    assert found.model.version == "1.0.0"
    assert 0.0 <= found.model.probability <= 1.0
    assert len(found.model.top_features) == 5
    assert all(isinstance(name, str) for name, _ in found.model.top_features)
    assert "SpO2 89% is yellow for this patient (yellow below 90%)" in found.reasons
    assert any(
        r.startswith("pulse 104/min is") and "SD above this patient's baseline (72/min" in r
        for r in found.reasons
    )
    assert any("for information only" in r for r in found.reasons)


async def test_a_clinicians_new_range_is_used_for_the_next_reading(scoring):
    patient_id, org_id = await enrol(scoring, "ranges", "copd")
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{scoring.base}/v1/patients/{patient_id}/thresholds",
            json={"overrides": {"spo2": {"red_low": 90}}, "reason": "desaturates early"},
            headers={"Authorization": f"Bearer {scoring.token(org_id)}"},
        ) as response,
    ):
        assert response.status == 200
    await send(scoring, session(patient_id, NOW, spo2=89))
    found = await assessment(scoring.settings, lambda a: a.patient_id == patient_id)
    assert "SpO2 89% is red for this patient (red below 90%)" in found.reasons


async def test_an_overdue_measurement_is_reported_once_per_missed_period(scoring):
    patient_id, _ = await enrol(scoring, "quiet", "frail")
    last = NOW - timedelta(hours=25)
    await store(scoring.pool, session(patient_id, last, spo2=96, heart_rate=70))
    # The instance holds every partition once its consumer has joined: the first test's
    # assessment proves that; this one makes sure when run alone.
    await send(scoring, session(f"warm-{scoring.suffix}", NOW, spo2=97))
    await assessment(scoring.settings, lambda a: a.patient_id == f"warm-{scoring.suffix}")
    scorer, publisher = scoring.app[SCORER], scoring.app[PUBLISHER]
    topic, source = scoring.settings.topics.risk, "test"

    async def report(at: datetime) -> list[RiskAssessed]:
        found = await scorer.report_missing(publisher, topic=topic, source=source, now=at)
        return [a for a in found if a.patient_id == patient_id]

    (first,) = await report(NOW)
    assert (first.kind, first.severity) == ("missing_measurement", "low")
    assert sorted(first.missing) == ["heart_rate", "spo2"]
    assert await report(NOW + timedelta(minutes=1)) == []
    assert await report(NOW + timedelta(hours=20)) == []
    (second,) = await report(NOW + DAY)
    assert all(r.endswith("2 periods missed") for r in second.reasons)
    published = await assessment(
        scoring.settings,
        lambda a: a.patient_id == patient_id and a.kind == "missing_measurement",
    )
    assert published.assessment_id == first.assessment_id

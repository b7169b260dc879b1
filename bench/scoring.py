"""Scoring throughput: NEWS2 in batch, window features, deterioration-model inference, and the
scorer end to end (readings topic to risk topic on the embedded broker and database).

Run: .venv/bin/python bench/scoring.py [--runs 7] [--readings 100000] [--patients 1000]
     .venv/bin/python bench/scoring.py --end-to-end-only
Prints the median over several runs of each component figure (aims: NEWS2 ≥ 1,000,000 rows/s on
one core, model ≥ 100,000 windows/s) and the scorer's end-to-end rate (aim ≥ 10,000 readings/s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from pydantic import SecretStr
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from services.alerts.domain.news2 import score_batch
from services.alerts.model.artifact import load_model
from services.alerts.model.features import compute_features
from services.alerts.model.synthetic import CohortSpec, generate_cohort
from services.alerts.scorer import Scorer, load_risk_model, scorer_loop
from services.alerts.settings import AlertsSettings
from shared import db, migrate
from shared.events import ReadingAccepted, RiskAssessed
from shared.infra.broker import EmbeddedBroker
from shared.infra.database import EmbeddedDatabase
from shared.infra.processes import free_port
from shared.kafka import Delivery, Outgoing, Publisher, cloudevent_headers, ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings
from shared.vitals import CANONICAL_UNIT, VitalType

STATE_DIR = Path(__file__).resolve().parents[1] / ".naervagt" / "bench"


def median_rate(work: Callable[[], object], items: int, runs: int) -> float:
    """Items per second, the median over `runs` timed calls after one warm-up call."""
    work()
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        rates.append(items / (time.perf_counter() - started))
    return statistics.median(rates)


def bench_news2(runs: int, rows: int = 1_000_000) -> float:
    rng = np.random.default_rng(0)

    def with_gaps(values: np.ndarray) -> np.ndarray:
        return np.where(rng.random(rows) < 0.1, np.nan, values)

    columns = {
        "respiratory_rate": with_gaps(rng.normal(18, 4, rows).round()),
        "spo2": with_gaps(rng.normal(95, 3, rows).round()),
        "on_oxygen": with_gaps((rng.random(rows) < 0.2).astype(float)),
        "systolic_bp": with_gaps(rng.normal(125, 20, rows).round()),
        "heart_rate": with_gaps(rng.normal(80, 15, rows).round()),
        "consciousness": with_gaps(rng.choice([0.0, 0.0, 0.0, 1.0, 2.0], rows)),
        "temperature": with_gaps(rng.normal(37, 0.7, rows).round(1)),
        "spo2_scale": rng.choice([1.0, 2.0], rows, p=[0.9, 0.1]),
    }
    return median_rate(lambda: score_batch(**columns), rows, runs)


def bench_features_and_model(runs: int, windows: int = 200_000) -> tuple[float, float, float]:
    cohort = generate_cohort(CohortSpec(patients=120, days=60, seed=1)).windows()
    table_rows = len(cohort.table)
    features_rate = median_rate(lambda: compute_features(cohort.table), table_rows, runs)
    matrix = compute_features(cohort.table).matrix
    matrix = np.tile(matrix, (windows // matrix.shape[0] + 1, 1))[:windows]
    model = load_model()
    with threadpool_limits(limits=1):
        one_thread = median_rate(lambda: model.predict_proba(matrix), windows, runs)
    all_threads = median_rate(lambda: model.predict_proba(matrix), windows, runs)
    return features_rate, one_thread, all_threads


# Home devices send several readings measured at one moment; a nurse visit gives a full set.
DEVICES: tuple[tuple[tuple[str, float, float], ...], ...] = (
    (("spo2", 95, 2), ("heart_rate", 78, 9)),
    (("systolic_bp", 132, 14), ("diastolic_bp", 80, 8), ("heart_rate", 76, 9)),
    (("temperature", 36.9, 0.4),),
    (("weight", 82, 0.4),),
    (
        ("respiratory_rate", 17, 3),
        ("spo2", 94, 2),
        ("systolic_bp", 128, 15),
        ("heart_rate", 82, 11),
        ("temperature", 37.1, 0.5),
    ),
)
CONDITIONS = ("copd", "heart_failure", "diabetes", "frail", None)
SCENARIOS: tuple[tuple[str, timedelta], ...] = (
    # Sessions seconds apart: a stream as fast as it comes, little history per patient.
    ("live stream     ", timedelta(seconds=5)),
    # Sessions hours apart: days of history per patient, as after a long outage.
    ("days of backlog ", timedelta(hours=4)),
)


def home_readings(
    count: int, patients: Sequence[str], *, every: timedelta, seed: int = 2
) -> list[ReadingAccepted]:
    """`count` readings in time order, ending now: each patient measures a device's set (2.6
    readings on average) once in each period `every`, at a random moment of it."""
    rng = np.random.default_rng(seed)
    sessions_per_patient = max(1, count // (len(patients) * 2))
    start = datetime.now(UTC) - every * sessions_per_patient
    readings: list[ReadingAccepted] = []
    session = 0
    while len(readings) < count:
        at = start + every * (session // len(patients)) + every * float(rng.uniform(0, 0.8))
        patient_id = patients[session % len(patients)]
        for type, mean, sd in DEVICES[int(rng.integers(len(DEVICES)))]:
            value = round(float(rng.normal(mean, sd)), 1)
            if type == "spo2":
                value = min(100.0, round(value))
            readings.append(
                ReadingAccepted(
                    device_id=f"dev-{patient_id}",
                    reading_id=uuid.uuid4().hex,
                    patient_id=patient_id,
                    type=VitalType(type),
                    value=value,
                    unit=CANONICAL_UNIT[VitalType(type)],
                    measured_at=at,
                    received_at=at,
                )
            )
        session += 1
    return readings[:count]


async def produce(kafka: KafkaSettings, topic: str, readings: Sequence[ReadingAccepted]) -> None:
    """Straight into the topic in record batches, partitioned by patient as ingest does."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        open_batches: dict[int, Any] = {}
        sending = []
        for r in readings:
            key = r.patient_id.encode()
            partition = (murmur2(key) & 0x7FFFFFFF) % kafka.partitions
            batch = open_batches.setdefault(partition, producer.create_batch())
            headers = cloudevent_headers(r.ce_type, source="bench", subject=r.reading_id)
            value = r.model_dump_json().encode()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for partition, batch in open_batches.items():
            sending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sending)
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class EndToEnd:
    readings: int
    patients: int
    assessments: int
    seconds: float

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds


async def bench_end_to_end(readings: int, patients: int, *, every: timedelta) -> EndToEnd:
    """Time from the scorer's first batch until every reading's assessments are acknowledged on
    the risk topic (the group join before the first batch is left out). Each patient measures
    once per `every`."""
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    broker = EmbeddedBroker(port=free_port())
    process = await broker.start()
    drain = asyncio.create_task(_drain(process))
    database = EmbeddedDatabase(STATE_DIR / "pg")
    url = await database.start()
    try:
        conn = await db.connect(url)
        try:
            await migrate.apply(conn)
        finally:
            await conn.close()
        suffix = uuid.uuid4().hex[:8]
        topics = TopicSettings(
            readings=f"b{suffix}.readings",
            risk=f"b{suffix}.risk",
            alerts=f"b{suffix}.alerts",
            consults=f"b{suffix}.consults",
            deadletter=f"b{suffix}.deadletter",
        )
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        await ensure_topics(kafka, topics.all())
        settings = AlertsSettings(
            port=0,
            kafka=kafka,
            topics=topics,
            database=DatabaseSettings(url=SecretStr(url), pool_max=4),
            auth=AuthSettings(jwt_secret=SecretStr(secrets.token_urlsafe(48))),
            scorer_group=f"scorer-{suffix}",
            missing_check_s=3600,
        )
        ids = [f"pt-{i:05d}" for i in range(patients)]
        pool = await db.create_pool(settings.database)
        await pool.executemany(
            "INSERT INTO patients (patient_id, condition) VALUES ($1, $2)",
            [(p, CONDITIONS[i % len(CONDITIONS)]) for i, p in enumerate(ids)],
        )
        await produce(kafka, topics.readings, home_readings(readings, ids, every=every))
        publisher = Publisher(kafka, client_id="bench")
        await publisher.start()
        scorer = Scorer(pool, settings=settings, model=load_risk_model(settings.model_path))
        started: float | None = None
        handled = assessed = published = 0
        done = asyncio.Event()
        assess, publish = scorer.assess, publisher.publish

        async def timed_assess(
            deliveries: Sequence[Delivery[ReadingAccepted]],
        ) -> list[RiskAssessed]:
            nonlocal started, handled, assessed
            started = started or time.perf_counter()
            found = await assess(deliveries)
            handled += len(deliveries)
            assessed += len(found)
            return found

        async def timed_publish(messages: Sequence[Outgoing]) -> None:
            nonlocal published
            await publish(messages)  # returns once the broker acknowledged every one
            published += len(messages)
            if handled >= readings and published >= assessed:
                done.set()

        scorer.assess = timed_assess  # type: ignore[method-assign]
        publisher.publish = timed_publish  # type: ignore[method-assign]
        loop = scorer_loop(settings, scorer=scorer, publisher=publisher, source="bench")
        task = asyncio.create_task(loop.run())
        await asyncio.wait_for(done.wait(), 1800)
        finished = time.perf_counter()
        loop.stop()
        await task
        await publisher.stop()
        await pool.close()
        assert started is not None
        return EndToEnd(readings, patients, assessed, finished - started)
    finally:
        await database.stop()
        await broker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


async def _drain(process: asyncio.subprocess.Process) -> None:
    if process.stdout is not None:
        async for _ in process.stdout:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=1_000)
    parser.add_argument("--end-to-end-only", action="store_true")
    args = parser.parse_args()
    if not args.end_to_end_only:
        components(args.runs)
    for name, every in SCENARIOS:
        result = asyncio.run(bench_end_to_end(args.readings, args.patients, every=every))
        print(
            f"scorer end to end, {name}: {result.readings_per_s:>9,.0f} readings/s, "
            f"{result.assessments / result.seconds:,.0f} assessments/s "
            f"({result.readings:,} readings of {result.patients:,} patients, "
            f"{result.assessments:,} assessments, {result.seconds:.1f} s)"
        )


def components(runs: int) -> None:
    news2_rate = bench_news2(runs)
    print(f"NEWS2 score_batch:             {news2_rate:>12,.0f} rows/s (1 core)")
    features_rate, one_thread, all_threads = bench_features_and_model(runs)
    print(f"window features:               {features_rate:>12,.0f} windows/s")
    print(f"model predict_proba, 1 thread: {one_thread:>12,.0f} windows/s")
    print(f"model predict_proba, all:      {all_threads:>12,.0f} windows/s")
    print(f"(median of {runs} runs each)")


if __name__ == "__main__":
    main()

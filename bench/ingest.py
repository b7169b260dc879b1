"""Ingest end to end (HTTP → broker acknowledged) against the raw limit of the same broker.

Run: .venv/bin/python bench/ingest.py [--instances 2] [--devices 100] [--seconds 15] [--runs 3]

Starts the embedded broker and database, runs the ingest service as processes of its own (as it
is deployed, store consumer included; devices spread over the instances as a load balancer
would), registers the devices and measures, per run:

1. latency at a fixed offered load of 2,000 readings/s (40 batches/s, open loop), once the
   store has caught up: p50 and p99;
2. throughput: every device posts signed batches of 50 readings back to back; accepted
   readings per second (a reading counts once its 202 arrived, i.e. the broker acknowledged it);
3. the raw limit: the same messages (same bytes, headers and keys) produced straight into the
   same broker by aiokafka's fastest path, create_batch/send_batch per partition (murmur2).

Prints the medians over the runs, and the ratio of end-to-end to raw throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from services.ingest.domain.validation import validate_batch
from services.ingest.intake import event_json, headers_template, reading_message
from services.ingest.publishing import Message
from shared import db, migrate
from shared.auth import Principal, issue_token, sign_request
from shared.infra.broker import EmbeddedBroker
from shared.infra.database import EmbeddedDatabase
from shared.infra.processes import free_port
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings, TopicSettings

STATE_DIR = Path(__file__).resolve().parents[1] / ".naervagt" / "bench-ingest"
PER_BATCH = 50
OFFERED_READINGS_S = 2_000
PARTITIONS = 12


@dataclass(frozen=True)
class Device:
    device_id: str
    secret: str
    patient_id: str
    base: str
    """The ingest instance the device talks to (as a load balancer would spread them)."""


RUN = uuid.uuid4().hex[:8]
BATCHES = itertools.count()
KINDS = [("heart_rate", 72, "/min"), ("spo2", 96, "%"), ("respiratory_rate", 14, "/min")]


def make_batch() -> bytes:
    """A body of PER_BATCH readings with ids never sent before (built cheaply: the load
    generator shares the machine with what it measures)."""
    n = next(BATCHES)
    now = datetime.now(UTC).isoformat()
    readings = ",".join(
        f'{{"reading_id":"{RUN}-{n}-{i}","type":"{vital}","value":{value},'
        f'"unit":"{unit}","measured_at":"{now}"}}'
        for i, (vital, value, unit) in ((i, KINDS[i % len(KINDS)]) for i in range(PER_BATCH))
    )
    return f'{{"readings":[{readings}]}}'.encode()


def signed(device: Device, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Device-Id": device.device_id,
        "X-Timestamp": ts,
        "X-Signature": sign_request(device.secret, ts, body),
    }


async def post(session: aiohttp.ClientSession, device: Device, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    url = f"{device.base}/v1/readings"
    async with session.post(url, data=body, headers=signed(device, body)) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def throughput(devices: list[Device], seconds: float) -> tuple[float, int]:
    """Accepted readings per second with every device sending back to back, and how many
    readings were sent in all (warm-up included)."""
    accepted = sent = 0
    deadline = 0.0

    async def run(device: Device) -> None:
        nonlocal accepted, sent
        while time.perf_counter() < deadline:
            status, _ = await post(session, device, make_batch())
            if status != 202:
                raise RuntimeError(f"unexpected status {status}")
            accepted += PER_BATCH
            sent += PER_BATCH

    connector = aiohttp.TCPConnector(limit=len(devices))
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + 2  # warm-up
        await asyncio.gather(*(run(d) for d in devices))
        accepted = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(run(d) for d in devices))
        elapsed = time.perf_counter() - started
    return accepted / elapsed, sent


async def stored(url: str, count: int) -> None:
    """Wait (bounded) until the store has written ``count`` readings: no backlog."""
    conn = await db.connect(url)
    try:
        for _ in range(1200):
            if await conn.fetchval("SELECT count(*) FROM readings") >= count:
                return
            await asyncio.sleep(0.25)
        raise RuntimeError("the store did not catch up within 5 minutes")
    finally:
        await conn.close()


async def latency(devices: list[Device], seconds: float) -> tuple[float, float, int]:
    """p50 and p99 request latency (seconds) at a fixed offered load, sent open loop, and how
    many readings were sent."""
    interval = PER_BATCH / OFFERED_READINGS_S
    count = int(seconds / interval)
    bodies = [make_batch() for _ in range(count)]
    latencies: list[float] = []

    async def one(device: Device, body: bytes) -> None:
        status, took = await post(session, device, body)
        if status != 202:
            raise RuntimeError(f"unexpected status {status}")
        latencies.append(took)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = []
        started = time.perf_counter()
        for n, body in enumerate(bodies):
            delay = started + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(devices[n % len(devices)], body)))
        await asyncio.gather(*tasks)
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98], len(bodies) * PER_BATCH


def raw_messages(devices: list[Device], count: int) -> list[tuple[str, Message]]:
    """The very messages ingest publishes for ``count`` readings: same bytes, headers, keys."""
    messages = []
    received_at = datetime.now(UTC)
    per_device = max(1, count // (len(devices) * PER_BATCH))
    for device in devices:
        for _ in range(per_device):
            items = json.loads(make_batch())["readings"]
            readings, _ = validate_batch(items, patient_id=device.patient_id, now=received_at)
            events = event_json(device.device_id, device.patient_id, readings, received_at)
            template = headers_template()
            for r, event in zip(readings, events, strict=True):
                message = reading_message(
                    template,
                    device_id=device.device_id,
                    reading_id=r.reading_id,
                    patient_id=device.patient_id,
                    event=event,
                )
                messages.append((device.patient_id, message))
    return messages


async def raw_limit(bootstrap: str, topic: str, messages: list[tuple[str, Message]]) -> float:
    """Messages per second produced by create_batch/send_batch per partition, acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[Message]] = defaultdict(list)
        started = time.perf_counter()
        for key, message in messages:
            index = (murmur2(key.encode()) & 0x7FFFFFFF) % len(partitions)
            by_partition[partitions[index]].append(message)

        async def send(partition: int, mine: list[Message]) -> None:
            deliveries = []
            batch = producer.create_batch()
            for m in mine:
                if (
                    batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
                    is None
                ):
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*deliveries)

        await asyncio.gather(*(send(p, m) for p, m in by_partition.items()))
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError("the ingest service exited")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


async def main(args: argparse.Namespace) -> None:
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    STATE_DIR.mkdir(parents=True)
    broker = EmbeddedBroker(port=free_port())
    broker_process = await broker.start()
    drain = asyncio.create_task(_drain(broker_process))
    database = EmbeddedDatabase(STATE_DIR / "pg")
    url = await database.start()
    conn = await db.connect(url)
    await migrate.apply(conn)
    topics = TopicSettings()
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=PARTITIONS)
    await ensure_topics(kafka, topics.all())
    patients = [f"bench-{n:04d}" for n in range(args.devices)]
    await conn.execute(
        "INSERT INTO organisations (org_id, kind, name, region, municipalities) "
        "VALUES ('bench-team', 'acute_team', 'Bench', 'syddanmark', '{bench}')"
    )
    await conn.executemany(
        "INSERT INTO patients (patient_id, municipality, region) VALUES ($1, 'bench', 'x')",
        [(p,) for p in patients],
    )
    await conn.close()

    jwt_secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DATABASE_URL": url,
        "AUTH_JWT_SECRET": jwt_secret,
        "INGEST_SECRET_KEY": secrets.token_urlsafe(32),
        "INGEST_LOG_LEVEL": "WARNING",
        # The benchmark measures throughput, not the per-device rate limit.
        "INGEST_RATE_PER_S": "1000",
        "INGEST_RATE_BURST": "1000",
    }
    services, bases = [], []
    for _ in range(args.instances):
        port = free_port()
        services.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.ingest", env={**env, "INGEST_PORT": str(port)}
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    base = bases[0]
    try:
        for service, instance in zip(services, bases, strict=True):
            await wait_ready(f"{instance}/readyz", service)
            print(f"ingest service pid {service.pid} on {instance}", flush=True)
        token = issue_token(jwt_secret, Principal("bench", "operator", "platform"))
        devices: list[Device] = []
        async with aiohttp.ClientSession() as session:
            for patient_id in patients:
                async with session.post(
                    f"{base}/v1/admin/devices",
                    json={"patient_id": patient_id, "kind": "home-gateway"},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    created = await response.json()
                instance = bases[len(devices) % len(bases)]
                devices.append(
                    Device(created["device_id"], created["secret"], patient_id, instance)
                )

        # Warm-up: each device once, until stored (caches filled, consumer group settled).
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(post(session, d, make_batch()) for d in devices))
        total = len(devices) * PER_BATCH
        rates, p50s, p99s, raws = [], [], [], []
        for run in range(args.runs):
            # Latency first, with the store caught up: what a device sees in steady use.
            await stored(url, total)
            print(f"run {run + 1}: latency at {OFFERED_READINGS_S:,} readings/s", flush=True)
            p50, p99, sent = await latency(devices, args.seconds)
            print(f"run {run + 1}: throughput", flush=True)
            rate, more = await throughput(devices, args.seconds)
            total += sent + more
            # A topic of its own, deleted afterwards: the broker holds every message in memory.
            raw_topic = f"bench.raw.{run}"
            await ensure_topics(kafka, [raw_topic])
            raw = await raw_limit(
                broker.bootstrap_servers,
                raw_topic,
                raw_messages(devices, int(rate * args.seconds)),
            )
            await delete_topic(broker.bootstrap_servers, raw_topic)
            rates.append(rate)
            p50s.append(p50)
            p99s.append(p99)
            raws.append(raw)
            print(
                f"run {run + 1}: end to end {rate:,.0f} readings/s; at "
                f"{OFFERED_READINGS_S:,} readings/s p50 {p50 * 1000:.1f} ms, p99 "
                f"{p99 * 1000:.1f} ms; raw {raw:,.0f} messages/s",
                flush=True,
            )
        rate, raw = statistics.median(rates), statistics.median(raws)
        print(
            f"\nmedian of {args.runs} runs, {args.instances} ingest instances, "
            f"{args.devices} devices, batches of {PER_BATCH}:\n"
            f"  end to end (HTTP → broker acknowledged): {rate:,.0f} readings/s\n"
            f"  latency at {OFFERED_READINGS_S:,} readings/s offered: "
            f"p50 {statistics.median(p50s) * 1000:.1f} ms, "
            f"p99 {statistics.median(p99s) * 1000:.1f} ms\n"
            f"  raw limit (send_batch per partition): {raw:,.0f} messages/s\n"
            f"  ratio end to end / raw: {rate / raw:.2f}"
        )
    finally:
        for service in services:
            service.terminate()
        for service in services:
            await service.wait()
        await database.stop()
        await broker.stop()
        await drain
        shutil.rmtree(STATE_DIR, ignore_errors=True)


async def _drain(process: asyncio.subprocess.Process) -> None:
    if process.stdout is not None:
        async for _ in process.stdout:
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--instances", type=int, default=2, help="ingest processes")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))

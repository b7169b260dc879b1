"""Alert latency under load: from the ingest API's 202 to the alert on a clinician's console
WebSocket, while a background load of readings flows through the whole pipeline, and how late
escalation timers fire meanwhile.

Run: .venv/bin/python bench/alerts.py [--rate 2000] [--probes 120] [--probe-every 0.5]

Starts its own embedded broker and database, runs ingest and alerts as subprocesses (as
``naervagt up`` does), registers devices, and then at once:

- background devices post normal readings at ``--rate`` readings per second in total;
- every ``--probe-every`` seconds a probe patient posts a deteriorated set (NEWS2 12); the time
  from the 202 to the 'raised' message on the acute team's console is one latency sample;
- each probe alert escalates on short timers (out-of-hours after 5 s, chain exhausted after
  10 s); lateness is when the 'escalated' message reached the console minus its deadline, and,
  from the database, when the timer fired minus its deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from services.alerts.care_api import load_care_file
from shared import db, migrate
from shared.auth import Principal, issue_token
from shared.device_client import DeviceClient
from shared.infra.broker import EmbeddedBroker
from shared.infra.database import EmbeddedDatabase
from shared.infra.processes import die_with_parent, free_port
from shared.kafka import ensure_topics, make_consumer
from shared.settings import DatabaseSettings, KafkaSettings, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
ACUTE = "bench-akut"
NORMAL = [
    ("heart_rate", 72, "/min"),
    ("spo2", 97, "%"),
    ("respiratory_rate", 14, "/min"),
    ("temperature", 36.8, "Cel"),
    ("systolic_bp", 128, "mm[Hg]"),
]
DETERIORATED = [
    ("respiratory_rate", 26, "/min"),
    ("spo2", 90, "%"),
    ("systolic_bp", 95, "mm[Hg]"),
    ("heart_rate", 120, "/min"),
    ("temperature", 39.4, "Cel"),
    ("on_oxygen", False, "1"),
    ("consciousness", "A", "1"),
]
# Probe alerts escalate quickly so that timers fire while the load runs.
SHORT_TIMERS = {"ack_timeouts_s": {"high": {"acute_team": 5, "out_of_hours": 5}}}


def care_file(background: int, probes: int) -> dict[str, Any]:
    region, municipality = "bench-region", "bench-kommune"

    def patient(pid: str) -> dict[str, Any]:
        return {
            "patient_id": pid,
            "municipality": municipality,
            "gp_practice_id": "bench-gp",
            "region": region,
        }

    return {
        "organisations": [
            {"org_id": ACUTE, "kind": "acute_team", "name": "Akutteam Bench", "region": region,
             "municipalities": [municipality]},
            {"org_id": "bench-gp", "kind": "gp_practice", "name": "Lægehuset Bench",
             "region": region},
            {"org_id": "bench-ooh", "kind": "out_of_hours", "name": "Lægevagten Bench",
             "region": region},
        ],
        "patients": [patient(f"bg-{n:04d}") for n in range(background)]
        + [patient(f"probe-{n:04d}") for n in range(probes)],
    }  # fmt: skip


def readings(kind: list[tuple[str, Any, str]], prefix: str, count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "reading_id": f"{prefix}-{n}",
            "type": kind[n % len(kind)][0],
            "value": kind[n % len(kind)][1],
            "unit": kind[n % len(kind)][2],
            "measured_at": now,
        }
        for n in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"n={len(values)}  p50={percentile(values, 50) * 1000:.0f} ms  "
        f"p99={percentile(values, 99) * 1000:.0f} ms  max={max(values) * 1000:.0f} ms"
    )


@dataclass
class Console:
    """The acute team's console: when each probe's alert and escalations arrived."""

    raised: dict[str, float] = field(default_factory=dict)
    # seq of each 'escalated' message -> when it arrived
    escalated: dict[int, float] = field(default_factory=dict)
    arrived: dict[str, asyncio.Event] = field(default_factory=dict)

    def expect(self, patient_id: str) -> asyncio.Event:
        return self.arrived.setdefault(patient_id, asyncio.Event())

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            if body.get("type") != "alert":
                continue
            now = time.time()
            patient_id = body["alert"]["patient_id"]
            if body["change"] == "escalated":
                self.escalated[body["seq"]] = now
            if body["change"] == "raised" and patient_id not in self.raised:
                self.raised[patient_id] = now
                self.expect(patient_id).set()


async def watch_assessments(kafka: KafkaSettings, assessed: dict[str, float]) -> None:
    """When each probe's high assessment appeared on the risk topic (scorer done, engine next)."""
    consumer = make_consumer(
        kafka,
        topics=[TopicSettings().risk],
        group_id=None,
        client_id="bench-risk",
        offset_reset="latest",
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            now = time.time()
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value)
                    patient_id = body.get("patient_id", "")
                    if patient_id.startswith("probe-") and body.get("severity") == "high":
                        assessed.setdefault(patient_id, now)
    finally:
        await consumer.stop()


async def start_service(name: str, env: dict[str, str], logs: Path) -> asyncio.subprocess.Process:
    log = (logs / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{name}",
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )


async def wait_ready(
    http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    async with asyncio.timeout(120):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{url} exited with {process.returncode}; see {log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)


async def register(
    http: aiohttp.ClientSession, ingest: str, token: str, patient_id: str
) -> DeviceClient:
    async with http.post(
        f"{ingest}/v1/admin/devices",
        json={"patient_id": patient_id, "kind": "home-gateway"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        response.raise_for_status()
        created = await response.json()
    return DeviceClient(ingest, created["device_id"], created["secret"])


async def background_load(
    http: aiohttp.ClientSession,
    devices: list[DeviceClient],
    *,
    rate: int,
    stop: asyncio.Event,
    sent: list[int],
) -> None:
    """Each device posts one batch per second, staggered so the load is even."""
    per_device = max(1, rate // len(devices))

    async def device_loop(index: int, device: DeviceClient) -> None:
        await asyncio.sleep(index / len(devices))
        tick = 0
        next_at = time.monotonic()
        while not stop.is_set():
            batch = readings(NORMAL, f"{device.device_id}-{tick}", per_device)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                status, _ = await device.post(http, batch)
                if status == 202:
                    sent[0] += per_device
            tick += 1
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(device_loop(i, d) for i, d in enumerate(devices)))


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="naervagt-bench-"))
    broker = EmbeddedBroker(port=free_port())
    database = EmbeddedDatabase(state / "pg")
    services: list[asyncio.subprocess.Process] = []
    await broker.start()
    finished = False
    try:
        url = await database.start()
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka, TopicSettings().all())
        conn = await db.connect(url)
        try:
            await migrate.apply(conn)
        finally:
            await conn.close()
        background = max(1, args.rate // args.readings_per_request)
        care_path = state / "care.json"
        care_path.write_text(json.dumps(care_file(background, args.probes)))
        pool = await db.create_pool(DatabaseSettings(url=SecretStr(url)))
        await load_care_file(pool, care_path)

        jwt_secret = secrets.token_urlsafe(48)
        ingest_port, alerts_port = free_port(), free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "DATABASE_URL": url,
            "AUTH_JWT_SECRET": jwt_secret,
            "INGEST_SECRET_KEY": secrets.token_urlsafe(48),
            "INGEST_PORT": str(ingest_port),
            "ALERTS_PORT": str(alerts_port),
            "INGEST_LOG_LEVEL": "WARNING",
            "ALERTS_LOG_LEVEL": "WARNING",
            "ALERTS_ROUTING": json.dumps(SHORT_TIMERS),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("ingest", "alerts"):
            services.append(await start_service(name, env, state))
        ingest, alerts = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{alerts_port}"
        operator = issue_token(jwt_secret, Principal("bench", "operator", "platform"))
        nurse = issue_token(jwt_secret, Principal("bench-nurse", "nurse", ACUTE))
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=400)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await wait_ready(http, ingest, services[0], state / "ingest.log")
            await wait_ready(http, alerts, services[1], state / "alerts.log")
            devices = [
                await register(http, ingest, operator, f"bg-{n:04d}") for n in range(background)
            ]
            probes = [
                (f"probe-{n:04d}", await register(http, ingest, operator, f"probe-{n:04d}"))
                for n in range(args.probes)
            ]
            async with http.post(
                f"{alerts}/v1/console/tickets", headers={"Authorization": f"Bearer {nurse}"}
            ) as response:
                ticket = (await response.json())["ticket"]
            ws = await http.ws_connect(f"{alerts}/v1/console/ws?ticket={ticket}", heartbeat=20)
            console = Console()
            reader = asyncio.create_task(console.read(ws))
            assessed: dict[str, float] = {}
            risk_watch = asyncio.create_task(watch_assessments(kafka, assessed))

            stop, sent = asyncio.Event(), [0]
            load = asyncio.create_task(
                background_load(http, devices, rate=args.rate, stop=stop, sent=sent)
            )
            print(f"warming up: {args.rate} readings/s from {background} devices ...", flush=True)
            await asyncio.sleep(args.warmup)
            sent_at_start, started = sent[0], time.monotonic()

            latencies: list[float] = []
            accepted: dict[str, float] = {}
            lost = 0

            async def probe(patient_id: str, device: DeviceClient) -> None:
                nonlocal lost
                arrived = console.expect(patient_id)
                status, _ = await device.post(http, readings(DETERIORATED, patient_id, 7))
                accepted_at = accepted[patient_id] = time.time()
                if status != 202:
                    lost += 1
                    return
                try:
                    await asyncio.wait_for(arrived.wait(), 60)
                except TimeoutError:
                    lost += 1
                    return
                latencies.append(console.raised[patient_id] - accepted_at)

            probing = []
            for patient_id, device in probes:
                probing.append(asyncio.create_task(probe(patient_id, device)))
                await asyncio.sleep(args.probe_every)
            await asyncio.gather(*probing)
            # Let the last probes' timers come due under load as well.
            await asyncio.sleep(12)
            elapsed = time.monotonic() - started
            achieved = (sent[0] - sent_at_start) / elapsed
            stop.set()
            await load
            await ws.close()
            reader.cancel()
            risk_watch.cancel()
            await asyncio.gather(reader, risk_watch, return_exceptions=True)

        # Where the time goes: 202 -> alert stored, and stored -> on the console.
        opened = {
            r["patient_id"]: r["opened"]
            for r in await pool.fetch(
                "SELECT patient_id, extract(epoch FROM opened_at)::float8 AS opened FROM alerts "
                "WHERE patient_id = ANY($1::text[])",
                list(accepted),
            )
        }
        to_assessed = [assessed[p] - accepted[p] for p in accepted if p in assessed]
        to_stored = [opened[p] - assessed[p] for p in assessed if p in opened]
        to_console = [console.raised[p] - opened[p] for p in opened if p in console.raised]
        lateness = [
            r["late"]
            for r in await pool.fetch(
                "SELECT extract(epoch FROM fired_at - due_at)::float8 AS late "
                "FROM escalation_steps WHERE status = 'fired' AND fired_by <> 'transition'"
            )
        ]
        seen_late = [
            console.escalated[r["seq"]] - r["due"]
            for r in await pool.fetch(
                "SELECT seq, extract(epoch FROM due_at)::float8 AS due FROM escalation_steps "
                "WHERE seq = ANY($1::bigint[]) AND fired_by <> 'transition'",
                list(console.escalated),
            )
        ]
        await pool.close()
        finished = True
        print()
        print(f"background load: {achieved:.0f} readings/s accepted over {elapsed:.0f} s")
        print(f"202 -> console alert:      {summary(latencies)}  (lost: {lost})")
        print(f"  202 -> assessed (scorer): {summary(to_assessed)}")
        print(f"  assessed -> stored (engine): {summary(to_stored)}")
        print(f"  stored -> console (outbox, topic, fan-out): {summary(to_console)}")
        print(f"escalation fired late by:  {summary(lateness)}")
        print(f"escalation on console late by: {summary(seen_late)}")
        print(
            json.dumps(
                {
                    "rate_target": args.rate,
                    "rate_achieved": round(achieved),
                    "latency_p50_ms": round(statistics.median(latencies) * 1000)
                    if latencies
                    else None,
                    "latency_p99_ms": round(percentile(latencies, 99) * 1000)
                    if latencies
                    else None,
                    "escalation_late_p50_ms": round(percentile(lateness, 50) * 1000)
                    if lateness
                    else None,
                    "escalation_late_p99_ms": round(percentile(lateness, 99) * 1000)
                    if lateness
                    else None,
                    "escalation_seen_late_p99_ms": round(percentile(seen_late, 99) * 1000)
                    if seen_late
                    else None,
                    "probes": args.probes,
                    "lost": lost,
                }
            )
        )
    finally:
        for process in services:
            if process.returncode is None:
                process.terminate()
        for process in services:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 20)
            if process.returncode is None:
                process.kill()
        await database.stop()
        await broker.stop()
        if finished:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"logs and data kept in {state}", file=sys.stderr)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=2000, help="background readings per second")
    parser.add_argument("--readings-per-request", type=int, default=10)
    parser.add_argument("--probes", type=int, default=120)
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

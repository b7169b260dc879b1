"""``naervagt up``: the whole platform on one machine, embedded infrastructure by default.

Start order: broker and database (embedded only when KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are
unset) -> topics -> migrations -> ingest, alerts, video -> demo. Stop order is the reverse.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from shared import db, migrate
from shared.auth import Principal, issue_token
from shared.demo import seed, simulator
from shared.device_client import DeviceClient
from shared.infra import secrets
from shared.infra.broker import EmbeddedBroker
from shared.infra.database import EmbeddedDatabase
from shared.infra.supervisor import Supervised, spawner
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings, PlatformSettings, TopicSettings

SERVICES = ("ingest", "alerts", "video")


def say(message: str) -> None:
    print(f"{'naervagt':>9} | {message}", flush=True)


async def wait_ready(url: str, *, timeout_s: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout_s} s")
            await asyncio.sleep(0.2)


class Platform:
    def __init__(self, settings: PlatformSettings, *, demo: bool) -> None:
        self.settings = settings
        self.demo = demo
        self.env = dict(os.environ)
        self.broker: Supervised | None = None
        self.embedded_broker: EmbeddedBroker | None = None
        self.database: EmbeddedDatabase | None = None
        self.services: list[Supervised] = []
        self.simulator: asyncio.Task[None] | None = None

    async def start(self) -> None:
        state = self.settings.state_dir.resolve()
        state.mkdir(parents=True, exist_ok=True)
        self.env.update(secrets.load_or_create(state, os.environ))
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            await self._start_broker()
        if not os.environ.get("DATABASE_URL"):
            self.database = EmbeddedDatabase(state / "pg")
            self.env["DATABASE_URL"] = await self.database.start()
            say(f"embedded PostgreSQL ready (data in {state / 'pg'})")
        await self._create_topics()
        conn = await db.connect(self.env["DATABASE_URL"])
        try:
            applied = await migrate.apply(conn)
        finally:
            await conn.close()
        say(f"migrations applied: {[m.version for m in applied] or 'none new'}")
        ports = {
            "ingest": self.settings.ingest_port,
            "alerts": self.settings.alerts_port,
            "video": self.settings.video_port,
        }
        for name in SERVICES:
            env = dict(self.env)
            env[f"{name.upper()}_PORT"] = str(ports[name])
            if self.demo and name in ("alerts", "video"):
                env[f"{name.upper()}_DEV_LOGIN"] = "true"
            service = Supervised(name, spawner([sys.executable, "-m", f"services.{name}"], env))
            service.run()
            self.services.append(service)
        await asyncio.gather(*(wait_ready(f"http://127.0.0.1:{ports[n]}/readyz") for n in SERVICES))
        if self.demo:
            await self._start_demo(state)
        say(f"console: http://localhost:{self.settings.alerts_port}/console")

    async def _start_broker(self) -> None:
        broker = EmbeddedBroker(port=self.settings.broker_port)
        self.embedded_broker = broker
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers

        async def recreate_topics() -> None:
            if self.broker is not None and self.broker.restarts:
                await self._create_topics()
                say("broker restarted: its topics were created again")

        self.broker = Supervised("broker", broker.start, after_start=recreate_topics)
        self.broker.run()
        await self.broker.started.wait()
        say(f"embedded broker (Tansu) on {broker.bootstrap_servers}")

    async def _create_topics(self) -> None:
        kafka = KafkaSettings(bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"])
        created = await ensure_topics(kafka, TopicSettings().all())
        if created:
            say(f"topics created: {', '.join(created)}")

    async def _start_demo(self, state: Path) -> None:
        care = seed.load_care()
        patients = seed.generate_patients(care, count=200)
        conn = await db.connect(self.env["DATABASE_URL"])
        try:
            await seed.seed_care(conn, care, patients)
            credentials = await self._demo_devices(state, conn, [p.patient_id for p in patients])
        finally:
            await conn.close()
        rng = random.Random(11)
        ingest = f"http://127.0.0.1:{self.settings.ingest_port}"
        devices = [
            (
                DeviceClient(ingest, c["device_id"], c["secret"]),
                simulator.make_profile(
                    rng,
                    condition=p.condition,
                    spo2_scale=p.spo2_scale,
                    deteriorates=rng.random() < 0.08,
                ),
            )
            for p, c in zip(patients, credentials, strict=True)
        ]
        say(
            f"demo: {len(care['organisations'])} organisations, "
            f"{len(patients)} patients with devices"
        )
        self.simulator = asyncio.create_task(simulator.run(devices), name="simulator")

    async def _demo_devices(
        self, state: Path, conn: asyncpg.Connection, patient_ids: list[str]
    ) -> list[dict[str, Any]]:
        """Reuse the demo's devices from an earlier run, or register them through ingest's API."""
        path = state / "demo-devices.json"
        if path.exists():
            known: list[dict[str, Any]] = json.loads(path.read_text())
            active = await conn.fetchval(
                "SELECT count(*) FROM devices "
                "WHERE device_id = ANY($1::text[]) AND revoked_at IS NULL",
                [d["device_id"] for d in known],
            )
            if active == len(patient_ids) == len(known):
                return known
        token = issue_token(
            self.env["AUTH_JWT_SECRET"], Principal("naervagt-demo", "operator", "platform")
        )
        url = f"http://127.0.0.1:{self.settings.ingest_port}/v1/admin/devices"
        headers = {"Authorization": f"Bearer {token}"}
        registered = []
        async with aiohttp.ClientSession() as session:
            for patient_id in patient_ids:
                body = {"patient_id": patient_id, "kind": "home-gateway", "model": "demo"}
                async with session.post(url, json=body, headers=headers) as response:
                    response.raise_for_status()
                    registered.append(await response.json())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(registered, f)
        return registered

    async def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.cancel()
            await asyncio.gather(self.simulator, return_exceptions=True)
        for service in self.services:  # ingest first: stop intake before the consumers drain
            await service.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self.database is not None:
            await self.database.stop()
        say("stopped")


async def up(settings: PlatformSettings, *, demo: bool) -> int:
    platform = Platform(settings, demo=demo)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(platform.start())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            await stopping
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    finally:
        say("stopping")
        await platform.stop()
    return 0

"""Shared fixtures: the real broker and database, started once per test run.

Integration and end-to-end tests get a unique set of topics and consumer groups each, and
build the services in-process on free loopback ports with ``create_app(settings)``.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from shared import db, migrate
from shared.auth import Principal, issue_token
from shared.infra.broker import EmbeddedBroker
from shared.infra.database import EmbeddedDatabase
from shared.infra.processes import free_port
from shared.kafka import ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings

JWT_SECRET = secrets.token_urlsafe(48)


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[EmbeddedBroker]:
    embedded = EmbeddedBroker(port=free_port())
    process = await embedded.start()
    drain = asyncio.create_task(_drain(process))
    yield embedded
    await embedded.stop()
    await drain


async def _drain(process: asyncio.subprocess.Process) -> None:
    if process.stdout is not None:
        async for _ in process.stdout:
            pass


@pytest.fixture(scope="session")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    embedded = EmbeddedDatabase(tmp_path_factory.mktemp("pg") / "data")
    url = await embedded.start()
    conn = await db.connect(url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    yield url
    await embedded.stop()


@dataclass
class Infra:
    """Settings pointing at the session's broker and database, with this test's own topics."""

    kafka: KafkaSettings
    database: DatabaseSettings
    topics: TopicSettings
    auth: AuthSettings
    suffix: str

    def common(self) -> dict[str, Any]:
        return {
            "kafka": self.kafka,
            "database": self.database,
            "topics": self.topics,
            "auth": self.auth,
        }

    def token(self, role: str, org_id: str, subject: str = "tester") -> str:
        return issue_token(JWT_SECRET, Principal(subject, role, org_id))


NewInfra = Callable[[], Awaitable[Infra]]


@pytest.fixture(scope="session")
def new_infra(broker: EmbeddedBroker, database: str) -> NewInfra:
    """Makes settings with a fresh set of topics; for fixtures wider than one test."""

    async def make() -> Infra:
        return await _infra(broker, database)

    return make


@pytest.fixture
async def infra(new_infra: NewInfra) -> Infra:
    return await new_infra()


async def _infra(broker: EmbeddedBroker, database: str) -> Infra:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        readings=f"t{suffix}.readings",
        risk=f"t{suffix}.risk",
        alerts=f"t{suffix}.alerts",
        consults=f"t{suffix}.consults",
        deadletter=f"t{suffix}.deadletter",
    )
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        partitions=4,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(kafka, topics.all())
    return Infra(
        kafka=kafka,
        database=DatabaseSettings(url=SecretStr(database), pool_max=5),
        topics=topics,
        auth=AuthSettings(jwt_secret=SecretStr(JWT_SECRET)),
        suffix=suffix,
    )


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Any]:
    p = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=3))
    yield p
    await p.close()


ServeApp = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeApp]:
    """Start an application on a free loopback port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@dataclass
class Care:
    acute_team: str
    other_acute_team: str
    patient_id: str
    other_patient_id: str


@pytest.fixture
async def care(pool: Any, infra: Infra) -> Care:
    """Two acute teams in two municipalities, one patient in each (ids unique to the test)."""
    return await seed_care(pool, infra.suffix)


SeedCare = Callable[[Any, str], Awaitable[Care]]


@pytest.fixture(scope="session")
def care_seeder() -> SeedCare:
    """``seed_care`` for fixtures wider than one test."""
    return seed_care


async def seed_care(pool: Any, s: str) -> Care:
    """The ``care`` fixture's organisations and patients, for fixtures wider than one test."""
    c = Care(f"akut-a-{s}", f"akut-b-{s}", f"pt-a-{s}", f"pt-b-{s}")
    await pool.executemany(
        "INSERT INTO organisations (org_id, kind, name, region, municipalities) "
        "VALUES ($1, 'acute_team', $2, 'syddanmark', $3)",
        [
            (c.acute_team, "Akutteam A", [f"kommune-a-{s}"]),
            (c.other_acute_team, "Akutteam B", [f"kommune-b-{s}"]),
        ],
    )
    await pool.executemany(
        "INSERT INTO patients (patient_id, municipality, region) VALUES ($1, $2, 'syddanmark')",
        [(c.patient_id, f"kommune-a-{s}"), (c.other_patient_id, f"kommune-b-{s}")],
    )
    return c

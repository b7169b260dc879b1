"""`naervagt up` as a user runs it: everything starts, crashes are restarted, and no process
outlives the launcher — neither after Ctrl-C nor after the launcher itself is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from shared.infra.processes import free_port
from shared.kafka import list_topics
from shared.settings import KafkaSettings, TopicSettings


class Launcher:
    def __init__(self, process: asyncio.subprocess.Process, state: Path, ports: dict[str, int]):
        self.process = process
        self.state = state
        self.ports = ports
        self.lines: list[str] = []
        self._waiters: list[tuple[str, asyncio.Future[str]]] = []

    async def pump(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            for text, future in list(self._waiters):
                if text in line and not future.done():
                    future.set_result(line)

    async def line_containing(self, text: str, within: float = 120) -> str:
        for line in self.lines:
            if text in line:
                return line
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append((text, future))
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            tail = "\n".join(self.lines[-40:])
            raise AssertionError(
                f"no line with {text!r} after {within} s; last lines:\n{tail}"
            ) from None

    def family(self) -> list[psutil.Process]:
        """Every process the launcher started, Postgres (a daemon) included."""
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            found = psutil.Process(self.process.pid).children(recursive=True)
        pidfile = self.state / "pg" / "postmaster.pid"
        if pidfile.exists():
            with contextlib.suppress(psutil.NoSuchProcess, ValueError):
                found.append(psutil.Process(int(pidfile.read_text().split()[0])))
        return found


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[Launcher]:
    ports = {name: free_port() for name in ("broker", "ingest", "alerts", "video")}
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env.update(
        NAERVAGT_STATE_DIR=str(tmp_path / "state"),
        NAERVAGT_BROKER_PORT=str(ports["broker"]),
        NAERVAGT_INGEST_PORT=str(ports["ingest"]),
        NAERVAGT_ALERTS_PORT=str(ports["alerts"]),
        NAERVAGT_VIDEO_PORT=str(ports["video"]),
        PYTHONUNBUFFERED="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli",
        "up",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    launched = Launcher(process, tmp_path / "state", ports)
    pump = asyncio.create_task(launched.pump())
    yield launched
    if process.returncode is None:
        process.kill()
        await process.wait()
    for leftover in launched.family():
        leftover.kill()
    await pump


async def ready(session: aiohttp.ClientSession, port: int) -> int:
    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
        return response.status


async def until_ready(session: aiohttp.ClientSession, port: int) -> None:
    while True:
        try:
            if await ready(session, port) == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)


async def gone(processes: list[psutil.Process], within: float = 30) -> list[psutil.Process]:
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, within)
    return alive


def service(launcher: Launcher, name: str) -> psutil.Process:
    for p in launcher.family():
        if f"services.{name}" in " ".join(p.cmdline()):
            return p
    raise LookupError(name)


async def test_up_supervises_and_ctrl_c_leaves_nothing_behind(launcher: Launcher, http):
    await launcher.line_containing("console: http://localhost:")
    for name in ("ingest", "alerts", "video"):
        assert await ready(http, launcher.ports[name]) == 200

    # A crashed service is restarted.
    ingest = service(launcher, "ingest")
    ingest.kill()
    await launcher.line_containing("ingest | exited with -9; restarting")
    await asyncio.wait_for(until_ready(http, launcher.ports["ingest"]), 60)
    assert service(launcher, "ingest").pid != ingest.pid

    # A crashed broker is restarted and its topics are created again.
    broker = next(p for p in launcher.family() if "tansu" in p.name())
    broker.kill()
    await launcher.line_containing("broker restarted: its topics were created again")
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{launcher.ports['broker']}")
    assert set(TopicSettings().all()) <= set(await list_topics(kafka))

    family = launcher.family()
    assert any("postgres" in p.name() for p in family)
    launcher.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(launcher.process.wait(), 60) == 0
    assert await gone(family) == []


async def test_sigkill_of_the_launcher_leaves_nothing_behind(launcher: Launcher):
    await launcher.line_containing("console: http://localhost:")
    family = launcher.family()
    assert len(family) >= 5  # broker, watchdog, postgres, three services
    launcher.process.kill()
    await launcher.process.wait()
    assert await gone(family) == []

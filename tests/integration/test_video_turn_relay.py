"""Media through Debian's coturn, started on loopback by this test, with the credentials the
video service hands out: two relay-only aiortc peers see each other's video; expired or wrong
credentials get no relay candidate at all."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection
from pydantic import SecretStr

from services.video.app import create_app
from services.video.domain.turn import turn_credentials
from services.video.probe import ColourTrack, Probe, ice_configuration
from services.video.settings import VideoSettings
from shared.auth import Principal, issue_token
from shared.infra.broker import EmbeddedBroker
from shared.kafka import ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings

pytestmark = pytest.mark.integration

TURNSERVER = "/usr/bin/turnserver"
JWT_SECRET = secrets.token_urlsafe(48)
REPO = Path(__file__).resolve().parents[2]
STUN_MAGIC = 0x2112A442
MEDIA_WAIT_S = 45.0


@dataclass
class Relay:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on loopback (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


class _StunProbe(asyncio.DatagramProtocol):
    def __init__(self, transaction: bytes) -> None:
        self.transaction = transaction
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[8:20] == self.transaction and not self.answered.done():
            self.answered.set_result(None)


async def stun_answers(port: int, *, timeout_s: float) -> None:
    """Wait until the relay answers a STUN binding request (it is then ready for clients)."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + transaction
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(
        lambda: _StunProbe(transaction), remote_addr=("127.0.0.1", port)
    )
    try:
        async with asyncio.timeout(timeout_s):
            while not probe.answered.done():
                transport.sendto(request)
                await asyncio.wait({probe.answered}, timeout=0.1)
    finally:
        transport.close()


@pytest.fixture(scope="module")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Relay]:
    """coturn on loopback with its own minimal test configuration.

    allow-loopback-peers is needed because both peers and the relay share 127.0.0.1; it is a
    test-only setting and never belongs in deploy/."""
    workdir = tmp_path_factory.mktemp("coturn")
    port = free_udp_and_tcp_port()
    low = 20000 + (port % 20000)
    secret = secrets.token_hex(32)
    log = workdir / "turn.log"
    config = workdir / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={low}",
                f"max-port={low + 200}",
                "realm=naervagt.test",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                "allow-loopback-peers",
                "fingerprint",
                "no-tls",
                "no-dtls",
                "no-tcp-relay",
                "no-cli",
                "no-multicast-peers",
                f"userdb={workdir / 'turndb'}",
                f"pidfile={workdir / 'turn.pid'}",
                f"log-file={log}",
                "simple-log",
                "no-stdout-log",
                "",
            ]
        )
    )
    process = await asyncio.create_subprocess_exec(
        TURNSERVER,
        "-c",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await stun_answers(port, timeout_s=15)
        yield Relay(port, secret, log)
    finally:
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass
class Service:
    base: str
    http: aiohttp.ClientSession

    async def post(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 201, await response.text()
            return dict(await response.json())

    async def turn(self, token: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.base}/v1/turn", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
            return dict(await response.json())


@pytest.fixture(scope="module")
async def service(relay: Relay, broker: EmbeddedBroker, database: str) -> AsyncIterator[Service]:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        readings=f"r{suffix}.readings",
        risk=f"r{suffix}.risk",
        alerts=f"r{suffix}.alerts",
        consults=f"r{suffix}.consults",
        deadletter=f"r{suffix}.deadletter",
    )
    settings = VideoSettings(
        port=0,
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=1),
        topics=topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=3),
        auth=AuthSettings(jwt_secret=SecretStr(JWT_SECRET)),
        turn_secret=SecretStr(relay.secret),
        turn_urls=[relay.url],
    )
    await ensure_topics(settings.kafka, topics.all())
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Service(f"http://{host}:{port}", http)
    await runner.cleanup()


def candidate_types(sdp: str) -> set[str]:
    return {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line}


async def gathered_types(turn: dict[str, Any]) -> set[str]:
    pc = RTCPeerConnection(ice_configuration(turn, relay_only=True))
    try:
        pc.addTrack(ColourTrack())
        await pc.setLocalDescription(await pc.createOffer())
        return candidate_types(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_two_relay_only_peers_see_each_other_through_coturn(
    service: Service, relay: Relay
) -> None:
    nurse_jwt = issue_token(JWT_SECRET, Principal("sygeplejerske-5", "nurse", "akut-relay"))
    room = await service.post("/v1/rooms", nurse_jwt, {})
    invited = await service.post(
        f"/v1/rooms/{room['room_id']}/invites",
        room["token"],
        {"role": "specialist", "display_name": "Overlæge", "ttl_s": 600},
    )
    nurse = Probe(
        configuration=ice_configuration(await service.turn(room["token"]), relay_only=True),
        track=lambda: ColourTrack(320, 240, (220, 30, 30)),
    )
    specialist = Probe(
        configuration=ice_configuration(await service.turn(invited["token"]), relay_only=True),
        track=lambda: ColourTrack(160, 128, (30, 30, 220)),
    )
    try:
        await nurse.join(service.http, service.base, room["token"])
        await nurse.welcome
        await specialist.join(service.http, service.base, invited["token"])

        (_, nurse_sees), (_, specialist_sees) = await asyncio.gather(
            nurse.next_frame(MEDIA_WAIT_S), specialist.next_frame(MEDIA_WAIT_S)
        )

        assert (specialist_sees.width, specialist_sees.height) == (320, 240)
        assert (nurse_sees.width, nurse_sees.height) == (160, 128)
        for probe in (nurse, specialist):
            [pc] = probe.pcs.values()
            assert candidate_types(pc.localDescription.sdp) == {"relay"}
            assert candidate_types(pc.remoteDescription.sdp) == {"relay"}
    finally:
        await nurse.close()
        await specialist.close()


async def test_expired_or_wrong_credentials_get_no_relay_candidate(
    service: Service, relay: Relay
) -> None:
    nurse_jwt = issue_token(JWT_SECRET, Principal("sygeplejerske-6", "nurse", "akut-relay"))
    room = await service.post("/v1/rooms", nurse_jwt, {})
    genuine = await service.turn(room["token"])
    [server] = genuine["iceServers"]
    wrong = {"iceServers": [{**server, "credential": "bm90LXRoZS1jcmVkZW50aWFs"}]}
    expired = turn_credentials(
        secret=relay.secret, peer="p1", ttl_s=600, now=time.time() - 3600, urls=[relay.url]
    )

    assert await gathered_types(genuine) == {"relay"}
    assert await gathered_types(wrong) == set()
    assert await gathered_types(expired) == set()


def test_the_production_relay_configuration_keeps_loopback_peers_refused() -> None:
    lines = [
        line.strip()
        for line in (REPO / "deploy" / "coturn" / "turnserver.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "allow-loopback-peers" not in lines
    assert "use-auth-secret" in lines
    assert "denied-peer-ip=127.0.0.0-127.255.255.255" in lines

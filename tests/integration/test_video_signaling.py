"""Room signaling over real WebSockets, and two aiortc peers exchanging video through it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from av import VideoFrame

from services.video.domain.tokens import issue_join_token
from services.video.probe import ColourTrack
from services.video.signaling import MembershipAudit, add_signaling_routes, close_room

pytestmark = pytest.mark.integration

KEY = b"integration-join-key-0123456789abcdef"
TURN_SECRET = "integration-turn-secret"
TURN_URLS = ["turn:127.0.0.1:3478?transport=udp"]
WAIT_S = 10.0
MEDIA_WAIT_S = 30.0

AuditRow = tuple[str, str, str, str | None]  # event, room, subject, by


@dataclass
class Service:
    base: str
    app: web.Application
    runner: web.AppRunner
    session: ClientSession
    audit: asyncio.Queue[AuditRow] = field(default_factory=asyncio.Queue)

    async def audited(self, count: int) -> list[AuditRow]:
        async with asyncio.timeout(WAIT_S):
            return [await self.audit.get() for _ in range(count)]

    def token(
        self,
        role: str,
        *,
        room: str = "room-1",
        subject: str | None = None,
        name: str | None = None,
        ttl_s: int = 300,
        now: float | None = None,
    ) -> str:
        return issue_join_token(
            key=KEY,
            room_id=room,
            role=role,
            display_name=name or role.title(),
            subject=subject or f"{role}-subject",
            ttl_s=ttl_s,
            now=time.time() if now is None else now,
        )

    async def connect(self, token: str, *, room: str = "room-1") -> ClientWebSocketResponse:
        return await self.session.ws_connect(
            f"{self.base}/v1/rooms/{room}/ws", params={"token": token}, autoclose=False
        )


async def start_service(*, audit_fails: bool = False) -> Service:
    app = web.Application()
    audit: asyncio.Queue[AuditRow] = asyncio.Queue()

    def record(entry: MembershipAudit) -> None:
        by = entry.by["subject"] if entry.by is not None else None
        audit.put_nowait((entry.event, entry.room_id, entry.peer["subject"], by))
        if audit_fails:
            raise ConnectionError("audit store unavailable")

    add_signaling_routes(
        app, key=KEY, turn_secret=TURN_SECRET, turn_urls=TURN_URLS, on_audit=record
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return Service(f"http://{host}:{port}", app, runner, ClientSession(), audit)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = await start_service()
    yield svc
    await svc.session.close()
    await svc.runner.cleanup()


async def next_json(ws: ClientWebSocketResponse) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        msg = await ws.receive()
    assert msg.type is WSMsgType.TEXT, f"expected a message, got {msg.type!r} {msg.data!r}"
    data: dict[str, Any] = msg.json()
    return data


async def next_of_type(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await next_json(ws)
        if message["type"] == kind:
            return message


async def next_of_kind(
    queue: asyncio.Queue[dict[str, Any]], kind: str, **fields: Any
) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await queue.get()
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message


async def closed_with(ws: ClientWebSocketResponse) -> tuple[int, str]:
    """The close code and reason, failing if any message arrives first."""
    async with asyncio.timeout(WAIT_S):
        msg = await ws.receive()
    assert msg.type is WSMsgType.CLOSE, f"expected the socket to close, got {msg.data!r}"
    await ws.close()
    return int(msg.data), str(msg.extra)


# -- tokens and refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda s: s.token("patient", now=time.time() - 3600), "token-expired"),
        (lambda s: s.token("patient")[:-2] + "AA", "token-invalid"),
        (lambda s: s.token("patient", room="room-2"), "token-wrong-room"),
        (lambda s: "", "token-invalid"),
    ],
    ids=["expired", "tampered", "other-room", "missing"],
)
async def test_a_refused_token_gets_an_error_and_close_1008(
    service: Service, make: Callable[[Service], str], code: str
) -> None:
    ws = await service.connect(make(service))

    error = await next_json(ws)

    assert (error["type"], error["code"]) == ("error", code)
    assert await closed_with(ws) == (1008, code)
    assert service.audit.empty()


async def test_a_closed_room_refuses_new_joins_but_the_call_goes_on(service: Service) -> None:
    nurse = await service.connect(service.token("nurse"))
    await next_json(nurse)
    waiting = await service.connect(service.token("relative"))
    waiting_id = (await next_json(waiting))["peer_id"]
    await next_of_type(nurse, "knock")

    close_room(service.app, "room-1")

    assert (await next_json(waiting))["code"] == "room-closed"
    assert (await closed_with(waiting))[0] == 1008
    late = await service.connect(service.token("patient"))
    assert (await next_json(late))["code"] == "room-closed"
    assert (await closed_with(late))[0] == 1008
    # the nurse is still connected and heard that the waiting relative left
    assert await next_json(nurse) == {"type": "peer-left", "peer_id": waiting_id}


async def test_a_plain_http_request_is_not_upgraded(service: Service) -> None:
    async with service.session.get(
        f"{service.base}/v1/rooms/room-1/ws", params={"token": service.token("gp")}
    ) as response:
        assert response.status == 400


# -- lobby over real sockets -------------------------------------------------------------------


async def test_a_guest_cannot_signal_until_admitted_and_hears_nothing_when_denied(
    service: Service,
) -> None:
    nurse = await service.connect(service.token("nurse", subject="staff-1"))
    welcome = await next_json(nurse)
    assert (welcome["state"], welcome["peers"]) == ("admitted", [])

    guest = await service.connect(service.token("patient", subject="pt-1", name="Ida"))
    lobby = await next_json(guest)
    assert lobby["state"] == "lobby"
    assert "peers" not in lobby
    knock = await next_json(nurse)
    assert knock == {
        "type": "knock",
        "peer": {"peer_id": lobby["peer_id"], "role": "patient", "display_name": "Ida"},
    }

    await guest.send_json({"type": "signal", "to": welcome["peer_id"], "data": {"candidate": None}})
    refused = await next_json(guest)
    assert (refused["type"], refused["code"]) == ("error", "not-admitted")

    await nurse.send_json({"type": "deny", "peer_id": lobby["peer_id"]})

    assert await closed_with(guest) == (1008, "denied")
    assert await next_json(nurse) == {"type": "peer-left", "peer_id": lobby["peer_id"]}
    await nurse.close()
    assert await service.audited(4) == [
        ("join", "room-1", "staff-1", None),
        ("join", "room-1", "pt-1", None),
        ("deny", "room-1", "pt-1", "staff-1"),
        ("leave", "room-1", "staff-1", None),
    ]


async def test_when_the_clinician_drops_the_patient_goes_back_to_the_lobby(
    service: Service,
) -> None:
    nurse = await service.connect(service.token("nurse"))
    await next_json(nurse)
    patient = await service.connect(service.token("patient"))
    me = (await next_json(patient))["peer_id"]
    await nurse.send_json({"type": "admit", "peer_id": me})
    admitted = await next_json(patient)
    assert admitted["type"] == "admitted"

    await nurse.close()

    host_id = admitted["peers"][0]["peer_id"]
    assert await next_json(patient) == {"type": "peer-left", "peer_id": host_id}
    assert await next_json(patient) == {"type": "moved-to-lobby"}
    await patient.send_json({"type": "signal", "to": host_id, "data": {"candidate": None}})
    assert (await next_json(patient))["code"] == "not-admitted"


async def test_a_failing_audit_store_does_not_stop_the_consultation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = await start_service(audit_fails=True)
    try:
        nurse = await svc.connect(svc.token("nurse"))
        await next_json(nurse)
        patient = await svc.connect(svc.token("patient"))
        patient_id = (await next_json(patient))["peer_id"]
        await next_of_type(nurse, "knock")
        await nurse.send_json({"type": "admit", "peer_id": patient_id})

        assert (await next_json(patient))["type"] == "admitted"
        assert [row[0] for row in await svc.audited(3)] == ["join", "join", "admit"]
        assert "audit hook failed" in caplog.text
    finally:
        await svc.session.close()
        await svc.runner.cleanup()


async def test_shutdown_closes_every_socket_with_1001() -> None:
    svc = await start_service()
    try:
        nurse = await svc.connect(svc.token("nurse"))
        await next_json(nurse)
        patient = await svc.connect(svc.token("patient"))
        await next_json(patient)
        await next_of_type(nurse, "knock")

        cleanup = asyncio.create_task(svc.runner.cleanup())

        assert (await closed_with(nurse))[0] == 1001
        assert (await closed_with(patient))[0] == 1001
        await cleanup
    finally:
        await svc.session.close()


# -- TURN credentials --------------------------------------------------------------------------


async def test_turn_credentials_are_given_for_a_valid_join_token(service: Service) -> None:
    async with service.session.get(
        f"{service.base}/v1/turn", params={"token": service.token("patient")}
    ) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()

    [server] = body["iceServers"]
    assert server["urls"] == TURN_URLS
    expiry, peer = server["username"].split(":")
    assert 0 < int(expiry) - time.time() <= body["ttl_s"]
    assert "patient-subject" not in peer
    mac = hmac.new(TURN_SECRET.encode(), server["username"].encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(mac).decode()


async def test_turn_credentials_are_refused_without_a_valid_token(service: Service) -> None:
    expired = service.token("patient", now=time.time() - 3600)
    for params in ({}, {"token": expired}):
        async with service.session.get(f"{service.base}/v1/turn", params=params) as response:
            assert response.status == 401
            assert "iceServers" not in await response.json()


# -- two aiortc peers through the real signaling server ----------------------------------------


class AiortcClient:
    """A participant that follows the protocol: offers when impolite, only answers when polite."""

    def __init__(self, ws: ClientWebSocketResponse, track: ColourTrack) -> None:
        self.ws = ws
        self.track = track
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.polite: dict[str, bool] = {}
        self.offers_made = 0
        self.remote_track: asyncio.Future[MediaStreamTrack] = (
            asyncio.get_running_loop().create_future()
        )
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []

    def _connection(self, peer_id: str) -> RTCPeerConnection:
        if peer_id not in self.pcs:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTrack(self.track)

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                if track.kind == "video" and not self.remote_track.done():
                    self.remote_track.set_result(track)

            self.pcs[peer_id] = pc
        return self.pcs[peer_id]

    async def _send_description(self, peer_id: str, pc: RTCPeerConnection) -> None:
        description = pc.localDescription
        await self.ws.send_json(
            {
                "type": "signal",
                "to": peer_id,
                "data": {"description": {"type": description.type, "sdp": description.sdp}},
            }
        )

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                return
            message = msg.json()
            self.seen.append(message)
            await self.messages.put(message)
            kind = message["type"]
            if kind in ("welcome", "admitted"):
                for peer in message.get("peers", []):
                    self.polite[peer["peer_id"]] = peer["polite"]
            elif kind == "peer-joined":
                peer_id = message["peer"]["peer_id"]
                self.polite[peer_id] = message["polite"]
                assert message["polite"] is False  # aiortc must be the impolite side
                pc = self._connection(peer_id)
                await pc.setLocalDescription(await pc.createOffer())
                self.offers_made += 1
                await self._send_description(peer_id, pc)
            elif kind == "signal" and "description" in message["data"]:
                sender, description = message["from"], message["data"]["description"]
                pc = self._connection(sender)
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=description["sdp"], type=description["type"])
                )
                if description["type"] == "offer":
                    await pc.setLocalDescription(await pc.createAnswer())
                    await self._send_description(sender, pc)

    async def first_frame(self) -> VideoFrame:
        async with asyncio.timeout(MEDIA_WAIT_S):
            track = await self.remote_track
            frame = await track.recv()
        assert isinstance(frame, VideoFrame)
        return frame

    async def close(self) -> None:
        for pc in self.pcs.values():
            await pc.close()
        self.track.stop()


def dominant_colour(frame: VideoFrame) -> str:
    mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return ("red", "green", "blue")[int(np.argmax(mean))]


async def test_two_aiortc_peers_see_each_other_and_a_third_guest_is_kept_out(
    service: Service,
) -> None:
    nurse_ws = await service.connect(service.token("nurse", subject="staff-9"))
    nurse = AiortcClient(nurse_ws, ColourTrack(320, 240, (220, 30, 30)))
    nurse_task = asyncio.create_task(nurse.run())
    nurse_welcome = await nurse.messages.get()

    patient_ws = await service.connect(service.token("patient", subject="pt-9"))
    patient = AiortcClient(patient_ws, ColourTrack(160, 128, (30, 30, 220)))
    patient_task = asyncio.create_task(patient.run())
    try:
        patient_id = (await patient.messages.get())["peer_id"]
        knock = await nurse.messages.get()
        assert knock["peer"]["peer_id"] == patient_id
        await nurse_ws.send_json({"type": "admit", "peer_id": patient_id})

        nurse_sees, patient_sees = await asyncio.gather(nurse.first_frame(), patient.first_frame())

        assert (patient_sees.width, patient_sees.height) == (320, 240)
        assert dominant_colour(patient_sees) == "red"
        assert (nurse_sees.width, nurse_sees.height) == (160, 128)
        assert dominant_colour(nurse_sees) == "blue"
        # perfect negotiation roles: the nurse (already there) offered, the newcomer answered
        assert (nurse.offers_made, patient.offers_made) == (1, 0)
        assert patient.polite == {nurse_welcome["peer_id"]: True}
        assert nurse.polite == {patient_id: False}

        relative = await service.connect(service.token("relative", subject="rel-9"))
        lobby = await next_json(relative)
        assert lobby["state"] == "lobby"
        await relative.send_json(
            {
                "type": "signal",
                "to": nurse_welcome["peer_id"],
                "data": {"description": {"type": "offer", "sdp": "v=0\r\n"}},
            }
        )
        assert (await next_json(relative))["code"] == "not-admitted"
        assert (await next_of_kind(nurse.messages, "knock"))["peer"]["peer_id"] == lobby["peer_id"]
        await nurse_ws.send_json({"type": "deny", "peer_id": lobby["peer_id"]})
        assert await closed_with(relative) == (1008, "denied")

        # Messages reach each peer in order: once this probe arrives, anything the patient
        # was sent about the relative would have arrived before it.
        probe = {"type": "signal", "to": patient_id, "data": {"candidate": None}}
        await nurse_ws.send_json(probe)
        await next_of_kind(patient.messages, "signal", data={"candidate": None})
        assert not [m for m in patient.seen if lobby["peer_id"] in json.dumps(m)]
    finally:
        await nurse.close()
        await patient.close()
        await nurse_ws.close()
        await patient_ws.close()
        await asyncio.gather(nurse_task, patient_task)

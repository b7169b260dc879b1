"""A scripted participant (aiortc) that speaks the room protocol, to check a deployment end to
end — signaling, TURN and media — and to drive tests and benchmarks.

It is the impolite side of perfect negotiation whenever it may be: it offers to peers that join
after it and only answers peers it joins after; it never offers into a collision.

Usage::

    python -m services.video.probe 'https://video.example.dk/join/<token>' [--relay]

(needs the ``aiortc`` package, which the service itself does not).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame


class ColourTrack(VideoStreamTrack):
    """Frames of one size and colour, so a receiver can tell whose video it decoded."""

    def __init__(self, width: int = 320, height: int = 240, rgb: tuple[int, int, int] = (0, 0, 0)):
        super().__init__()
        self._image = np.empty((height, width, 3), dtype=np.uint8)
        self._image[:] = rgb

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


def token_room(token: str) -> str:
    """The room a join token is for (read, not verified: the server verifies)."""
    body = token.split(".", 1)[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    room = payload["room"]
    if not isinstance(room, str):
        raise ValueError("the token names no room")
    return room


def ice_configuration(turn: dict[str, Any] | None, *, relay_only: bool) -> RTCConfiguration:
    """An aiortc configuration from a ``GET /v1/turn`` answer (no servers without one)."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in (turn or {}).get("iceServers", [])
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class Probe:
    """One participant: join a room with a token, exchange media, report decoded frames."""

    def __init__(
        self,
        *,
        configuration: RTCConfiguration | None = None,
        track: Callable[[], MediaStreamTrack] = ColourTrack,
    ) -> None:
        self._configuration = configuration or RTCConfiguration(iceServers=[])
        self._make_track = track
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.peer_id: str | None = None
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.offers_made = 0
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.knocks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # The first decoded frame of every remote video track: (peer id, frame).
        self.frames: asyncio.Queue[tuple[str, VideoFrame]] = asyncio.Queue()
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None

    async def join(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        """Connect (the token travels in a header, not in the address) and start listening."""
        room = token_room(token)
        self.ws = await session.ws_connect(
            f"{base_url.rstrip('/')}/v1/rooms/{room}/ws",
            headers={"Authorization": f"Bearer {token}"},
            autoclose=False,
        )
        self._runner = asyncio.create_task(self._run())

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(message)

    async def admit(self, peer_id: str) -> None:
        await self.send({"type": "admit", "peer_id": peer_id})

    async def next_frame(self, timeout_s: float = 30.0) -> tuple[str, VideoFrame]:
        async with asyncio.timeout(timeout_s):
            return await self.frames.get()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        for pc in list(self.pcs.values()):
            await pc.close()
        self.pcs.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- protocol ------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            await self.messages.put(message)
            await self._handle(message)
        if not self.welcome.done():
            self.welcome.set_exception(
                ConnectionError(f"closed before welcome: {self.ws.close_code}")
            )

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "welcome":
            self.peer_id = message["peer_id"]
            if not self.welcome.done():
                self.welcome.set_result(message)
        elif kind == "knock":
            await self.knocks.put(message["peer"])
        elif kind == "peer-joined":
            # Already here: this side offers (the newcomer is polite).
            peer_id = message["peer"]["peer_id"]
            pc = self._connection(peer_id)
            await pc.setLocalDescription(await pc.createOffer())
            self.offers_made += 1
            await self._send_description(peer_id, pc)
        elif kind == "peer-left":
            if message["peer_id"] in self.pcs:
                await self.pcs.pop(message["peer_id"]).close()
        elif kind == "moved-to-lobby":
            for pc in self.pcs.values():
                await pc.close()
            self.pcs.clear()
        elif kind == "signal":
            await self._signal(message["from"], message["data"])

    async def _signal(self, sender: str, data: dict[str, Any]) -> None:
        if "description" in data:
            description = data["description"]
            pc = self._connection(sender)
            if description["type"] == "offer" and pc.signalingState != "stable":
                return  # never the yielding side: ignore a colliding offer
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=description["sdp"], type=description["type"])
            )
            if description["type"] == "offer":
                await pc.setLocalDescription(await pc.createAnswer())
                await self._send_description(sender, pc)
        elif "candidate" in data and sender in self.pcs:
            candidate = data["candidate"]
            if candidate is None or not candidate.get("candidate"):
                return
            parsed = candidate_from_sdp(candidate["candidate"].removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            with contextlib.suppress(ValueError):
                await self.pcs[sender].addIceCandidate(parsed)

    def _connection(self, peer_id: str) -> RTCPeerConnection:
        pc = self.pcs.get(peer_id)
        if pc is None:
            pc = self.pcs[peer_id] = RTCPeerConnection(self._configuration)
            pc.addTrack(self._make_track())

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._spawn(self._consume(peer_id, track))

        return pc

    async def _consume(self, peer_id: str, track: MediaStreamTrack) -> None:
        """Decode the track for as long as it lasts; report its first video frame."""
        first = True
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if first and isinstance(frame, VideoFrame):
                    first = False
                    await self.frames.put((peer_id, frame))

    async def _send_description(self, peer_id: str, pc: RTCPeerConnection) -> None:
        description = pc.localDescription
        await self.send(
            {
                "type": "signal",
                "to": peer_id,
                "data": {"description": {"type": description.type, "sdp": description.sdp}},
            }
        )

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _check(join_url: str, *, relay: bool, timeout_s: float) -> int:
    parts = urlsplit(join_url)
    base = f"{parts.scheme}://{parts.netloc}"
    token = parts.path.rsplit("/", 1)[-1]
    async with aiohttp.ClientSession() as session:
        turn = None
        if relay:
            async with session.get(
                f"{base}/v1/turn", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                if response.status != 200:
                    print(f"no TURN credentials: HTTP {response.status}", file=sys.stderr)
                    return 1
                turn = await response.json()
        probe = Probe(configuration=ice_configuration(turn, relay_only=relay))
        started = time.monotonic()
        await probe.join(session, base, token)
        try:
            welcome = await asyncio.wait_for(probe.welcome, timeout_s)
            print(f"joined as {welcome['role']} ({welcome['state']})")
            peer_id, frame = await probe.next_frame(timeout_s)
            elapsed = time.monotonic() - started
            print(f"decoded {frame.width}x{frame.height} from {peer_id} after {elapsed:.2f} s")
            return 0
        except (TimeoutError, ConnectionError) as exc:
            print(f"no media: {exc!r}", file=sys.stderr)
            return 1
        finally:
            await probe.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("join_url")
    parser.add_argument("--relay", action="store_true", help="use TURN relay candidates only")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(_check(args.join_url, relay=args.relay, timeout_s=args.timeout)))


if __name__ == "__main__":
    main()

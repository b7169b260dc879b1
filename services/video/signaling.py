"""aiohttp adapter for room signaling over WebSocket and for TURN credentials.

``GET /v1/rooms/{room_id}/ws?token=...`` feeds each connection's events to the pure
``Room`` and carries out its answers; ``GET /v1/turn?token=...`` hands out TURN credentials.

Membership lives in this process only: all participants of one room must reach the same
instance (route by room id). ``room_gate`` lets a durable store refuse rooms that were closed,
also by another instance or before a restart; ``on_occupancy`` reports a room filling or
emptying, so the store can start its expiry clock.

Example::

    app = web.Application()
    add_signaling_routes(app, key=join_key, turn_secret=secret,
                         turn_urls=["turn:turn.example.dk:3478"], on_audit=record,
                         room_gate=check_open, on_occupancy=note)
    ...
    close_room(app, room_id)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from services.video.domain.rooms import (
    DEFAULT_CAP,
    MIN_CAP,
    Audit,
    Closed,
    Disconnect,
    DisconnectReason,
    ErrorCode,
    Event,
    Joined,
    Left,
    MessageReceived,
    Peer,
    Room,
    Send,
)
from services.video.domain.tokens import (
    JoinClaims,
    TokenError,
    TokenExpired,
    TokenWrongRoom,
    check_room,
    verify_join_token,
)
from services.video.domain.turn import turn_credentials
from services.video.video_metrics import active_rooms, joins_refused, signaling_connections
from shared.errors import Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MembershipAudit:
    """One membership change: ``event`` is join/admit/deny/lobby/leave; ``peer`` and ``by``
    hold peer_id, role, display_name and subject; ``by`` is the acting clinician, if any."""

    event: str
    room_id: str
    peer: dict[str, str]
    by: dict[str, str] | None
    at: float


AuditHook = Callable[[MembershipAudit], None]
RoomGate = Callable[[str], Awaitable[None]]
"""``await room_gate(room_id)`` returns when the room may be joined and raises ``RoomClosed``
(or :class:`shared.errors.Unavailable`) when not."""
OccupancyHook = Callable[[str, bool, float], None]
"""``on_occupancy(room_id, occupied, at)``: the room got its first or lost its last peer."""

MAX_MESSAGE_BYTES = 64 * 1024
HEARTBEAT_S = 20.0
OUTBOX_LIMIT = 256
DRAIN_TIMEOUT_S = 5.0
CLOSED_MEMORY = 10_000

_CLOSE_CODES: dict[DisconnectReason, int] = {
    DisconnectReason.LEFT: WSCloseCode.OK,
    DisconnectReason.DENIED: WSCloseCode.POLICY_VIOLATION,
    DisconnectReason.ROOM_FULL: WSCloseCode.TRY_AGAIN_LATER,
    DisconnectReason.ROOM_CLOSED: WSCloseCode.POLICY_VIOLATION,
    DisconnectReason.REPLACED: WSCloseCode.POLICY_VIOLATION,
}


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True)
class _TurnSettings:
    secret: str
    urls: tuple[str, ...]
    ttl_s: int


class _Connection:
    """One socket and its outbox; a single pump task writes to the socket, in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.closing = False
        self._outbox: asyncio.Queue[dict[str, Any] | _Close] = asyncio.Queue(OUTBOX_LIMIT)
        self.pump = asyncio.create_task(self._pump())

    def send(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            # A client that stops reading must not hold the room's memory hostage.
            self.close(WSCloseCode.TRY_AGAIN_LATER, "too-slow", flush=False)

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        if self.closing:
            return
        self.closing = True
        if not flush or self._outbox.full():
            while not self._outbox.empty():
                self._outbox.get_nowait()
        self._outbox.put_nowait(_Close(code, reason))

    async def _pump(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                await self.ws.send_json(item)
            except ConnectionError:
                return


class RoomClosed(Exception):
    def __init__(self, room_id: str) -> None:
        super().__init__("the room is closed")
        self.room_id = room_id


class SignalingHub:
    """The process's rooms and their sockets; every room change goes through ``_apply``."""

    def __init__(
        self,
        *,
        key: bytes,
        cap: int,
        on_audit: AuditHook | None,
        clock: Callable[[], float],
        room_gate: RoomGate | None = None,
        on_occupancy: OccupancyHook | None = None,
    ) -> None:
        if cap < MIN_CAP:
            raise ValueError(f"a room holds at least {MIN_CAP} participants, got cap={cap}")
        self._key = key
        self._cap = cap
        self._on_audit = on_audit
        self._gate = room_gate
        self._on_occupancy = on_occupancy
        self.clock = clock
        self._rooms: dict[str, Room] = {}
        # Recently closed rooms, oldest first; bounded, since the gate remembers them durably.
        self._closed: dict[str, None] = {}
        self._connections: dict[str, _Connection] = {}
        self.stopping = False

    def admit_token(self, token: str, room_id: str | None) -> JoinClaims:
        """Claims of a token good now for ``room_id`` (for any open room when None)."""
        claims = verify_join_token(token, key=self._key, now=self.clock())
        if room_id is not None:
            check_room(claims, room_id)
        if claims.room_id in self._closed:
            raise RoomClosed(claims.room_id)
        return claims

    async def admit(self, token: str, room_id: str | None) -> JoinClaims:
        """``admit_token``, then the room gate's word that the room is still open."""
        claims = self.admit_token(token, room_id)
        if self._gate is not None:
            await self._gate(claims.room_id)
        return claims

    def is_active(self, room_id: str) -> bool:
        """Whether anyone is connected to ``room_id`` through this process."""
        return room_id in self._rooms

    def connect(self, room_id: str, claims: JoinClaims, ws: web.WebSocketResponse) -> str:
        peer_id = secrets.token_urlsafe(9)
        self._connections[peer_id] = _Connection(ws)
        signaling_connections.inc()
        self._apply(
            room_id, Joined(Peer(peer_id, claims.role, claims.display_name, claims.subject))
        )
        return peer_id

    def receive(self, room_id: str, peer_id: str, text: str) -> None:
        self._apply(room_id, MessageReceived(peer_id, text))

    def refuse(self, peer_id: str, code: ErrorCode, message: str) -> None:
        self._connections[peer_id].send({"type": "error", "code": str(code), "message": message})

    async def disconnect(self, room_id: str, peer_id: str) -> None:
        """The socket is done: leave the room, let queued writes finish, forget the socket."""
        self._apply(room_id, Left(peer_id))
        conn = self._connections.pop(peer_id)
        signaling_connections.dec()
        conn.close(WSCloseCode.OK, "")
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await conn.pump
        except TimeoutError:
            logger.warning("signaling socket did not drain", extra={"room_id": room_id})

    def close_room(self, room_id: str) -> None:
        self._closed[room_id] = None
        while len(self._closed) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]
        if room_id in self._rooms:
            self._apply(room_id, Closed())

    async def shutdown(self) -> None:
        """Close every socket with 1001 and wait (bounded) until the close frames are out."""
        self.stopping = True
        for conn in self._connections.values():
            conn.close(WSCloseCode.GOING_AWAY, "shutdown", flush=False)
        pumps = [conn.pump for conn in self._connections.values()]
        if pumps:
            await asyncio.wait(pumps, timeout=DRAIN_TIMEOUT_S)

    def _apply(self, room_id: str, event: Event) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(room_id, cap=self._cap)
            if room_id in self._closed:
                room.apply(Closed())
            self._occupancy(room_id, occupied=True)
        audits: list[Audit] = []
        for item in room.apply(event):
            match item:
                case Send(peer_id, message):
                    conn = self._connections.get(peer_id)
                    if conn is not None:
                        conn.send(message)
                case Disconnect(peer_id, reason):
                    conn = self._connections.get(peer_id)
                    if conn is not None:
                        conn.close(_CLOSE_CODES[reason], str(reason))
                case Audit():
                    audits.append(item)
        for audit in audits:
            self._audit(room_id, audit)
        if room.is_empty:
            del self._rooms[room_id]
            self._occupancy(room_id, occupied=False)
        active_rooms.set(len(self._rooms))

    def _occupancy(self, room_id: str, *, occupied: bool) -> None:
        if self._on_occupancy is None:
            return
        try:
            self._on_occupancy(room_id, occupied, self.clock())
        except Exception:
            logger.exception("occupancy hook failed", extra={"room_id": room_id})

    def _audit(self, room_id: str, audit: Audit) -> None:
        if self._on_audit is None:
            return
        entry = MembershipAudit(
            event=str(audit.event),
            room_id=room_id,
            peer=_described(audit.peer),
            by=_described(audit.by) if audit.by is not None else None,
            at=self.clock(),
        )
        try:
            self._on_audit(entry)
        except Exception:
            # The call must go on when the audit sink fails; the failure itself is logged.
            logger.exception("audit hook failed", extra={"room_id": room_id})


def _described(peer: Peer) -> dict[str, str]:
    return {
        "peer_id": peer.peer_id,
        "role": str(peer.role),
        "display_name": peer.display_name,
        "subject": peer.subject,
    }


HUB = web.AppKey("video_signaling_hub", SignalingHub)
_TURN = web.AppKey("video_turn_settings", _TurnSettings)


def add_signaling_routes(
    app: web.Application,
    *,
    key: bytes,
    cap: int = DEFAULT_CAP,
    turn_secret: str | None = None,
    turn_urls: Sequence[str] = (),
    turn_ttl_s: int = 3600,
    on_audit: AuditHook | None = None,
    room_gate: RoomGate | None = None,
    on_occupancy: OccupancyHook | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Mount the room WebSocket and, when ``turn_secret`` is given, the TURN endpoint."""
    app[HUB] = SignalingHub(
        key=key,
        cap=cap,
        on_audit=on_audit,
        clock=clock,
        room_gate=room_gate,
        on_occupancy=on_occupancy,
    )
    app.router.add_get("/v1/rooms/{room_id}/ws", _room_socket)
    if turn_secret is not None:
        if not turn_urls:
            raise ValueError("turn_urls are needed with a turn_secret")
        app[_TURN] = _TurnSettings(turn_secret, tuple(turn_urls), turn_ttl_s)
        app.router.add_get("/v1/turn", _turn)
    app.on_shutdown.append(_shutdown)


def close_room(app: web.Application, room_id: str) -> None:
    """Refuse new joins to ``room_id`` from now on and send away guests still waiting.

    Participants already admitted keep their call; new tokens for the room are refused."""
    app[HUB].close_room(room_id)


async def _shutdown(app: web.Application) -> None:
    await app[HUB].shutdown()


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query.get("token", "")


def _refusal(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, TokenExpired):
        return "token-expired", "The link has expired."
    if isinstance(exc, TokenWrongRoom):
        return "token-wrong-room", "The link is for another room."
    if isinstance(exc, RoomClosed):
        return str(ErrorCode.ROOM_CLOSED), "This consultation has ended."
    if isinstance(exc, Unavailable):
        return "unavailable", "The service is busy; trying again."
    return "token-invalid", "The link is not valid."


async def _room_socket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    room_id = request.match_info["room_id"]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="WebSocket upgrade expected")
    try:
        claims = await hub.admit(_token(request), room_id)
    except (TokenError, RoomClosed, Unavailable) as exc:
        code, message = _refusal(exc)
        joins_refused.labels(code).inc()
        logger.info("join refused", extra={"room_id": room_id, "reason": code})
        # Browsers cannot read an HTTP refusal of a WebSocket upgrade, so refuse inside it.
        await ws.prepare(request)
        await ws.send_json({"type": "error", "code": code, "message": message})
        close_code = (
            WSCloseCode.TRY_AGAIN_LATER
            if isinstance(exc, Unavailable)
            else WSCloseCode.POLICY_VIOLATION
        )
        await ws.close(code=close_code, message=code.encode())
        return ws
    await ws.prepare(request)
    if hub.stopping:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutdown")
        return ws
    peer_id = hub.connect(room_id, claims, ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                hub.receive(room_id, peer_id, msg.data)
            elif msg.type is WSMsgType.ERROR:
                break
            else:
                hub.refuse(peer_id, ErrorCode.BAD_MESSAGE, "Messages are JSON text.")
    finally:
        await hub.disconnect(room_id, peer_id)
    return ws


async def _turn(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    settings = request.app[_TURN]
    try:
        claims = await hub.admit(_token(request), None)
    except (TokenError, RoomClosed) as exc:
        code, message = _refusal(exc)
        return web.json_response(
            {"code": code, "message": message},
            status=403 if isinstance(exc, RoomClosed) else 401,
            headers={"Cache-Control": "no-store"},
        )
    # The relay logs usernames: give it a stable pseudonym of the subject, not the subject.
    peer = hashlib.sha256(claims.subject.encode()).hexdigest()[:16]
    body = turn_credentials(
        secret=settings.secret, peer=peer, ttl_s=settings.ttl_s, now=hub.clock(), urls=settings.urls
    )
    return web.json_response(body, headers={"Cache-Control": "no-store"})

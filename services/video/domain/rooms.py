"""Membership and signaling permissions of one video room, as a pure state machine.

A ``Room`` takes events (a peer joined, sent a message, left; the room closed) and answers
with what to send to whom, whom to disconnect and what to audit. It holds no sockets.

Example::

    room = Room("r1")
    out = room.apply(Joined(Peer("p1", Role.NURSE, "Nurse Hansen", "staff-17")))
    # out == [Send("p1", {"type": "welcome", ...}), Audit(AuditEvent.JOIN, ...)]

Protocol, in short: hosts (clinicians) are admitted at once; guests wait in a lobby until a host
admits them, and go back to it when the last host leaves, so a patient is never alone in a room
with a stranger. When a peer is admitted, the peers already in the room offer to it: they are
the impolite side of perfect negotiation for that pair, the newcomer is the polite side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

DEFAULT_CAP = 4
MIN_CAP = 2


class Role(StrEnum):
    """Who a participant is; the first three are clinicians and host the room."""

    NURSE = "nurse"
    GP = "gp"
    SPECIALIST = "specialist"
    PATIENT = "patient"
    RELATIVE = "relative"
    INTERPRETER = "interpreter"

    @property
    def is_host(self) -> bool:
        return self in HOST_ROLES


HOST_ROLES = frozenset({Role.NURSE, Role.GP, Role.SPECIALIST})
GUEST_ROLES = frozenset(Role) - HOST_ROLES


class ErrorCode(StrEnum):
    """The ``code`` of an ``{"type": "error"}`` message; only the sender receives it."""

    BAD_MESSAGE = "bad-message"
    NOT_ADMITTED = "not-admitted"
    FORBIDDEN = "forbidden"
    UNKNOWN_PEER = "unknown-peer"
    ROOM_FULL = "room-full"
    ROOM_CLOSED = "room-closed"


class DisconnectReason(StrEnum):
    LEFT = "left"
    DENIED = "denied"
    ROOM_FULL = "room-full"
    ROOM_CLOSED = "room-closed"
    REPLACED = "replaced"


class AuditEvent(StrEnum):
    JOIN = "join"
    ADMIT = "admit"
    DENY = "deny"
    LOBBY = "lobby"
    LEAVE = "leave"


@dataclass(frozen=True)
class Peer:
    """One connection to the room; ``subject`` is the durable identity behind it."""

    peer_id: str
    role: Role
    display_name: str
    subject: str

    def public(self) -> dict[str, Any]:
        """What other participants may see of this peer (no subject)."""
        return {"peer_id": self.peer_id, "role": str(self.role), "display_name": self.display_name}


# Events fed to Room.apply.


@dataclass(frozen=True)
class Joined:
    peer: Peer


@dataclass(frozen=True)
class MessageReceived:
    """A text frame from a client, still unparsed."""

    peer_id: str
    text: str


@dataclass(frozen=True)
class Left:
    """The peer's connection ended (it left, dropped or was closed)."""

    peer_id: str


@dataclass(frozen=True)
class Closed:
    """The consultation is over: refuse new joins and send away whoever still waits."""


Event = Joined | MessageReceived | Left | Closed


# What Room.apply answers with.


class Send(NamedTuple):
    peer_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Disconnect:
    """Close this peer's connection after everything already sent to it."""

    peer_id: str
    reason: DisconnectReason


@dataclass(frozen=True)
class Audit:
    """A membership change to record; ``by`` is the host who caused it, if any."""

    event: AuditEvent
    peer: Peer
    by: Peer | None


Outgoing = Send | Disconnect | Audit

_DESCRIPTION_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})
_CANDIDATE_FIELDS: Mapping[str, tuple[type, ...]] = {
    "candidate": (str,),
    "sdpMid": (str, type(None)),
    "sdpMLineIndex": (int, type(None)),
    "usernameFragment": (str, type(None)),
}
_HOST_ACTIONS = frozenset({"admit", "deny", "lobby"})


class _BadMessage(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _error(peer_id: str, code: ErrorCode, message: str) -> Send:
    return Send(peer_id, {"type": "error", "code": str(code), "message": message})


class Room:
    """One room's membership; ``apply`` is the only way its state changes."""

    def __init__(self, room_id: str, *, cap: int = DEFAULT_CAP) -> None:
        if cap < MIN_CAP:
            raise ValueError(f"a room holds at least {MIN_CAP} participants, got cap={cap}")
        self.room_id = room_id
        self.cap = cap
        self.closed = False
        # Insertion order is join/admission order, which keeps peer lists stable.
        self._admitted: dict[str, Peer] = {}
        self._lobby: dict[str, Peer] = {}

    @property
    def admitted(self) -> tuple[Peer, ...]:
        return tuple(self._admitted.values())

    @property
    def lobby(self) -> tuple[Peer, ...]:
        return tuple(self._lobby.values())

    @property
    def is_empty(self) -> bool:
        return not self._admitted and not self._lobby

    def apply(self, event: Event) -> list[Outgoing]:
        match event:
            case Joined(peer):
                return self._join(peer)
            case MessageReceived(peer_id, text):
                return self._receive(peer_id, text)
            case Left(peer_id):
                return self._leave(peer_id)
            case Closed():
                return self._close()
        raise TypeError(f"not a room event: {event!r}")

    # -- membership -------------------------------------------------------------------------

    def _hosts(self) -> list[Peer]:
        return [p for p in self._admitted.values() if p.role.is_host]

    def _join(self, peer: Peer) -> list[Outgoing]:
        if peer.peer_id in self._admitted or peer.peer_id in self._lobby:
            raise ValueError(f"peer id {peer.peer_id!r} is already in room {self.room_id!r}")
        if self.closed:
            return [
                _error(peer.peer_id, ErrorCode.ROOM_CLOSED, "This consultation has ended."),
                Disconnect(peer.peer_id, DisconnectReason.ROOM_CLOSED),
            ]
        out: list[Outgoing] = []
        # One connection per identity and role: a reconnect replaces the stale connection,
        # and a copied link cannot put a second person into the room under the same name.
        # A host replacing its own connection keeps the guests admitted: a host is still there.
        for old in [*self._admitted.values(), *self._lobby.values()]:
            if old.subject == peer.subject and old.role == peer.role:
                out.append(Disconnect(old.peer_id, DisconnectReason.REPLACED))
                out += self._remove(old, AuditEvent.LEAVE, by=None, successor=peer)
        if peer.role.is_host:
            if len(self._admitted) >= self.cap:
                out += [
                    _error(peer.peer_id, ErrorCode.ROOM_FULL, "The room is full."),
                    Disconnect(peer.peer_id, DisconnectReason.ROOM_FULL),
                ]
                return out
            out.append(
                Send(
                    peer.peer_id,
                    {
                        "type": "welcome",
                        "peer_id": peer.peer_id,
                        "role": str(peer.role),
                        "state": "admitted",
                        "peers": self._peer_list_for_newcomer(),
                    },
                )
            )
            out += self._announce_admission(peer)
            out.append(Audit(AuditEvent.JOIN, peer, None))
            out += [Send(peer.peer_id, _knock(guest)) for guest in self._lobby.values()]
            return out
        self._lobby[peer.peer_id] = peer
        out.append(
            Send(
                peer.peer_id,
                {
                    "type": "welcome",
                    "peer_id": peer.peer_id,
                    "role": str(peer.role),
                    "state": "lobby",
                },
            )
        )
        out += [Send(host.peer_id, _knock(peer)) for host in self._hosts()]
        out.append(Audit(AuditEvent.JOIN, peer, None))
        return out

    def _peer_list_for_newcomer(self) -> list[dict[str, Any]]:
        # The newcomer is the polite side towards everyone already admitted.
        return [{**p.public(), "polite": True} for p in self._admitted.values()]

    def _announce_admission(self, peer: Peer) -> list[Outgoing]:
        """Admit ``peer`` and tell the others, who will offer to it (impolite side)."""
        out: list[Outgoing] = [
            Send(other.peer_id, {"type": "peer-joined", "peer": peer.public(), "polite": False})
            for other in self._admitted.values()
        ]
        self._admitted[peer.peer_id] = peer
        return out

    def _remove(
        self, peer: Peer, audit: AuditEvent, *, by: Peer | None, successor: Peer | None = None
    ) -> list[Outgoing]:
        """Take ``peer`` out of the room and tell whoever knew of it."""
        out: list[Outgoing] = []
        if self._lobby.pop(peer.peer_id, None) is not None:
            out += [
                Send(h.peer_id, {"type": "peer-left", "peer_id": peer.peer_id})
                for h in self._hosts()
            ]
            out.append(Audit(audit, peer, by))
            return out
        del self._admitted[peer.peer_id]
        out += [
            Send(other.peer_id, {"type": "peer-left", "peer_id": peer.peer_id})
            for other in self._admitted.values()
        ]
        out.append(Audit(audit, peer, by))
        host_follows = successor is not None and successor.role.is_host
        if peer.role.is_host and not self._hosts() and not host_follows:
            for guest in list(self._admitted.values()):
                out += self._move_to_lobby(guest, by=None)
        return out

    def _move_to_lobby(self, guest: Peer, *, by: Peer | None) -> list[Outgoing]:
        del self._admitted[guest.peer_id]
        self._lobby[guest.peer_id] = guest
        out: list[Outgoing] = [Send(guest.peer_id, {"type": "moved-to-lobby"})]
        out += [
            Send(other.peer_id, {"type": "peer-left", "peer_id": guest.peer_id})
            for other in self._admitted.values()
        ]
        out += [Send(h.peer_id, _knock(guest)) for h in self._hosts()]
        out.append(Audit(AuditEvent.LOBBY, guest, by))
        return out

    def _leave(self, peer_id: str) -> list[Outgoing]:
        peer = self._admitted.get(peer_id) or self._lobby.get(peer_id)
        if peer is None:
            # Already removed (denied, replaced, sent away): nothing more to say.
            return []
        return self._remove(peer, AuditEvent.LEAVE, by=None)

    def _close(self) -> list[Outgoing]:
        self.closed = True
        out: list[Outgoing] = []
        for guest in list(self._lobby.values()):
            out += [
                _error(guest.peer_id, ErrorCode.ROOM_CLOSED, "This consultation has ended."),
                Disconnect(guest.peer_id, DisconnectReason.ROOM_CLOSED),
            ]
            out += self._remove(guest, AuditEvent.LEAVE, by=None)
        return out

    # -- client messages --------------------------------------------------------------------

    def _receive(self, peer_id: str, text: str) -> list[Outgoing]:
        sender = self._admitted.get(peer_id) or self._lobby.get(peer_id)
        if sender is None:
            return []
        try:
            message = _parse(text)
            kind = message["type"]
            if kind == "leave":
                return [
                    *self._remove(sender, AuditEvent.LEAVE, by=None),
                    Disconnect(peer_id, DisconnectReason.LEFT),
                ]
            if peer_id not in self._admitted:
                return [_error(peer_id, ErrorCode.NOT_ADMITTED, "Wait until you are let in.")]
            if kind == "signal":
                return self._relay(sender, message)
            if kind in _HOST_ACTIONS:
                return self._host_action(sender, kind, message)
        except _BadMessage as exc:
            return [_error(peer_id, ErrorCode.BAD_MESSAGE, exc.detail)]
        return [_error(peer_id, ErrorCode.BAD_MESSAGE, f"unknown message type {kind!r}")]

    def _relay(self, sender: Peer, message: Mapping[str, Any]) -> list[Outgoing]:
        to = _field(message, "to", str)
        data = _signal_data(message.get("data"))
        if to == sender.peer_id or to not in self._admitted:
            return [_error(sender.peer_id, ErrorCode.UNKNOWN_PEER, "No such peer in the room.")]
        return [Send(to, {"type": "signal", "from": sender.peer_id, "data": data})]

    def _host_action(self, host: Peer, kind: str, message: Mapping[str, Any]) -> list[Outgoing]:
        target_id = _field(message, "peer_id", str)
        if not host.role.is_host:
            return [_error(host.peer_id, ErrorCode.FORBIDDEN, "Only a clinician can do that.")]
        if kind == "lobby":
            guest = self._admitted.get(target_id)
            if guest is None:
                return [_error(host.peer_id, ErrorCode.UNKNOWN_PEER, "No such peer in the room.")]
            if guest.role.is_host:
                return [_error(host.peer_id, ErrorCode.FORBIDDEN, "Only guests wait in the lobby.")]
            return self._move_to_lobby(guest, by=host)
        guest = self._lobby.get(target_id)
        if guest is None:
            return [_error(host.peer_id, ErrorCode.UNKNOWN_PEER, "Nobody by that id is waiting.")]
        if kind == "deny":
            return [
                Disconnect(guest.peer_id, DisconnectReason.DENIED),
                *self._remove(guest, AuditEvent.DENY, by=host),
            ]
        if len(self._admitted) >= self.cap:
            return [_error(host.peer_id, ErrorCode.ROOM_FULL, "The room is full.")]
        del self._lobby[guest.peer_id]
        out: list[Outgoing] = [
            Send(guest.peer_id, {"type": "admitted", "peers": self._peer_list_for_newcomer()})
        ]
        out += self._announce_admission(guest)
        out.append(Audit(AuditEvent.ADMIT, guest, host))
        return out


def _knock(guest: Peer) -> dict[str, Any]:
    return {"type": "knock", "peer": guest.public()}


def _parse(text: str) -> Mapping[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise _BadMessage("not JSON") from exc
    if not isinstance(message, dict):
        raise _BadMessage("a message is a JSON object")
    _field(message, "type", str)
    return message


def _field(message: Mapping[str, Any], name: str, kind: type) -> Any:
    value = message.get(name)
    if not isinstance(value, kind):
        raise _BadMessage(f"{name!r} must be a {kind.__name__}")
    return value


def _signal_data(data: object) -> dict[str, Any]:
    """Keep only a session description or an ICE candidate, checked field by field."""
    if not isinstance(data, dict) or len(data) != 1:
        raise _BadMessage("'data' holds exactly one of 'description' or 'candidate'")
    if "description" in data:
        description = data["description"]
        if not isinstance(description, dict):
            raise _BadMessage("'description' must be an object")
        kind = _field(description, "type", str)
        if kind not in _DESCRIPTION_TYPES:
            raise _BadMessage(f"unknown description type {kind!r}")
        return {"description": {"type": kind, "sdp": _field(description, "sdp", str)}}
    if "candidate" in data:
        candidate = data["candidate"]
        if candidate is None:  # end of candidates
            return {"candidate": None}
        if not isinstance(candidate, dict):
            raise _BadMessage("'candidate' must be an object or null")
        kept: dict[str, Any] = {}
        for name, kinds in _CANDIDATE_FIELDS.items():
            if name in candidate:
                # bool is an int subclass; an index is never a boolean.
                value = candidate[name]
                if not isinstance(value, kinds) or isinstance(value, bool):
                    raise _BadMessage(f"bad candidate field {name!r}")
                kept[name] = value
        if "candidate" not in kept:
            raise _BadMessage("'candidate' needs a 'candidate' string")
        return {"candidate": kept}
    raise _BadMessage("'data' holds exactly one of 'description' or 'candidate'")

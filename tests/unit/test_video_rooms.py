"""The room state machine: lobby, admission, perfect-negotiation roles and signaling rules."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.video.domain.rooms import (
    Audit,
    AuditEvent,
    Closed,
    Disconnect,
    DisconnectReason,
    Joined,
    Left,
    MessageReceived,
    Outgoing,
    Peer,
    Role,
    Room,
    Send,
)

_ids = itertools.count(1)


def make_peer(role: Role, *, subject: str | None = None) -> Peer:
    n = next(_ids)
    return Peer(f"p{n}", role, f"{role.value.title()} {n}", subject or f"sub-{n}")


def to(out: list[Outgoing], peer: Peer) -> list[dict[str, Any]]:
    return [item.message for item in out if isinstance(item, Send) and item.peer_id == peer.peer_id]


def recipients(out: list[Outgoing]) -> set[str]:
    return {item.peer_id for item in out if isinstance(item, Send)}


def disconnects(out: list[Outgoing]) -> dict[str, DisconnectReason]:
    return {item.peer_id: item.reason for item in out if isinstance(item, Disconnect)}


def audits(out: list[Outgoing]) -> list[tuple[AuditEvent, str, str | None]]:
    return [
        (a.event, a.peer.peer_id, a.by.peer_id if a.by else None)
        for a in out
        if isinstance(a, Audit)
    ]


def say(room: Room, peer: Peer, **message: Any) -> list[Outgoing]:
    return room.apply(MessageReceived(peer.peer_id, json.dumps(message)))


def offer(room: Room, sender: Peer, target: Peer) -> list[Outgoing]:
    data = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
    return say(room, sender, type="signal", to=target.peer_id, data=data)


def public(peer: Peer, **extra: Any) -> dict[str, Any]:
    shown = {"peer_id": peer.peer_id, "role": peer.role.value, "display_name": peer.display_name}
    return shown | extra


def room_with(*roles: Role, cap: int = 4) -> tuple[Room, list[Peer]]:
    """A room where hosts joined first and every guest was admitted by the first host."""
    room = Room("room-1", cap=cap)
    peers = [make_peer(r) for r in roles]
    for p in peers:
        room.apply(Joined(p))
    host = next(p for p in peers if p.role.is_host)
    for p in peers:
        if not p.role.is_host:
            say(room, host, type="admit", peer_id=p.peer_id)
    return room, peers


def test_a_host_is_admitted_at_once_and_sees_who_is_there() -> None:
    room, [nurse] = room_with(Role.NURSE)
    gp = make_peer(Role.GP)

    out = room.apply(Joined(gp))

    assert to(out, gp) == [
        {
            "type": "welcome",
            "peer_id": gp.peer_id,
            "role": "gp",
            "state": "admitted",
            "peers": [public(nurse, polite=True)],
        }
    ]
    assert to(out, nurse) == [{"type": "peer-joined", "peer": public(gp), "polite": False}]
    assert audits(out) == [(AuditEvent.JOIN, gp.peer_id, None)]


def test_a_guest_waits_in_the_lobby_and_every_host_hears_the_knock() -> None:
    room, [nurse, specialist] = room_with(Role.NURSE, Role.SPECIALIST)
    patient = make_peer(Role.PATIENT)

    out = room.apply(Joined(patient))

    assert to(out, patient) == [
        {"type": "welcome", "peer_id": patient.peer_id, "role": "patient", "state": "lobby"}
    ]
    knock = {"type": "knock", "peer": public(patient)}
    assert to(out, nurse) == [knock]
    assert to(out, specialist) == [knock]
    assert "sub-" not in json.dumps(knock)  # the subject stays on the server


def test_a_host_arriving_later_hears_the_knocks_of_guests_already_waiting() -> None:
    room = Room("room-1")
    patient, relative = make_peer(Role.PATIENT), make_peer(Role.RELATIVE)
    assert recipients(room.apply(Joined(patient))) == {patient.peer_id}
    room.apply(Joined(relative))
    nurse = make_peer(Role.NURSE)

    out = room.apply(Joined(nurse))

    welcome, *knocks = to(out, nurse)
    assert welcome["state"] == "admitted"
    assert welcome["peers"] == []
    assert knocks == [
        {"type": "knock", "peer": public(patient)},
        {"type": "knock", "peer": public(relative)},
    ]
    assert to(out, patient) == []  # still waiting: nobody admitted them


def test_admitting_a_guest_makes_it_the_polite_side_towards_everyone_in_the_room() -> None:
    room, [nurse, specialist] = room_with(Role.NURSE, Role.SPECIALIST)
    patient = make_peer(Role.PATIENT)
    room.apply(Joined(patient))

    out = say(room, nurse, type="admit", peer_id=patient.peer_id)

    assert to(out, patient) == [
        {"type": "admitted", "peers": [public(nurse, polite=True), public(specialist, polite=True)]}
    ]
    joined = {"type": "peer-joined", "peer": public(patient), "polite": False}
    assert to(out, nurse) == [joined]
    assert to(out, specialist) == [joined]
    assert audits(out) == [(AuditEvent.ADMIT, patient.peer_id, nurse.peer_id)]


def test_admitted_peers_can_exchange_descriptions_and_candidates() -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT)
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.2 54321 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }

    out_offer = offer(room, nurse, patient)
    out_candidate = say(
        room, patient, type="signal", to=nurse.peer_id, data={"candidate": candidate}
    )
    out_end = say(room, patient, type="signal", to=nurse.peer_id, data={"candidate": None})

    assert out_offer == [
        Send(
            patient.peer_id,
            {
                "type": "signal",
                "from": nurse.peer_id,
                "data": {"description": {"type": "offer", "sdp": "v=0\r\n"}},
            },
        )
    ]
    assert out_candidate == [
        Send(
            nurse.peer_id,
            {"type": "signal", "from": patient.peer_id, "data": {"candidate": candidate}},
        )
    ]
    assert to(out_end, nurse)[0]["data"] == {"candidate": None}


def test_a_guest_in_the_lobby_can_send_nothing_but_leave() -> None:
    room, [nurse] = room_with(Role.NURSE)
    patient = make_peer(Role.PATIENT)
    room.apply(Joined(patient))

    attempts = [
        offer(room, patient, nurse),
        say(room, patient, type="admit", peer_id=patient.peer_id),
        say(room, patient, type="lobby", peer_id=nurse.peer_id),
    ]

    for out in attempts:
        assert recipients(out) == {patient.peer_id}
        [error] = to(out, patient)
        assert (error["type"], error["code"]) == ("error", "not-admitted")
        assert error["message"]
    out = say(room, patient, type="leave")
    assert disconnects(out) == {patient.peer_id: DisconnectReason.LEFT}
    assert to(out, nurse) == [{"type": "peer-left", "peer_id": patient.peer_id}]
    assert room.lobby == ()


@pytest.mark.parametrize("where", ["stranger", "lobby", "self"])
def test_nobody_can_signal_a_peer_outside_the_room(where: str) -> None:
    room, [nurse, _patient] = room_with(Role.NURSE, Role.PATIENT)
    waiting = make_peer(Role.RELATIVE)
    room.apply(Joined(waiting))
    target = {"stranger": make_peer(Role.GP), "lobby": waiting, "self": nurse}[where]

    out = offer(room, nurse, target)

    assert recipients(out) == {nurse.peer_id}
    assert [m["code"] for m in to(out, nurse)] == ["unknown-peer"]


def test_denied_guest_is_disconnected_without_hearing_anything() -> None:
    room, [nurse, gp] = room_with(Role.NURSE, Role.GP)
    patient = make_peer(Role.PATIENT)
    room.apply(Joined(patient))

    out = say(room, gp, type="deny", peer_id=patient.peer_id)

    assert to(out, patient) == []
    assert disconnects(out) == {patient.peer_id: DisconnectReason.DENIED}
    # both hosts saw the knock, so both learn it is gone
    assert to(out, nurse) == [{"type": "peer-left", "peer_id": patient.peer_id}]
    assert to(out, gp) == [{"type": "peer-left", "peer_id": patient.peer_id}]
    assert audits(out) == [(AuditEvent.DENY, patient.peer_id, gp.peer_id)]
    assert room.lobby == ()
    assert room.apply(Left(patient.peer_id)) == []  # the socket closing later changes nothing


def test_only_a_clinician_admits_denies_or_sends_to_the_lobby() -> None:
    room, [_nurse, patient, interpreter] = room_with(Role.NURSE, Role.PATIENT, Role.INTERPRETER)
    relative = make_peer(Role.RELATIVE)
    room.apply(Joined(relative))

    for kind, target in [("admit", relative), ("deny", relative), ("lobby", patient)]:
        out = say(room, interpreter, type=kind, peer_id=target.peer_id)
        assert [m["code"] for m in to(out, interpreter)] == ["forbidden"]
        assert recipients(out) == {interpreter.peer_id}
    assert room.lobby == (relative,)


def test_a_host_can_send_a_guest_back_to_the_lobby_and_admit_it_again() -> None:
    room, [nurse, specialist, patient] = room_with(Role.NURSE, Role.SPECIALIST, Role.PATIENT)

    out = say(room, specialist, type="lobby", peer_id=patient.peer_id)

    assert to(out, patient) == [{"type": "moved-to-lobby"}]
    left = {"type": "peer-left", "peer_id": patient.peer_id}
    knock = {"type": "knock", "peer": public(patient)}
    assert to(out, nurse) == [left, knock]
    assert to(out, specialist) == [left, knock]
    assert audits(out) == [(AuditEvent.LOBBY, patient.peer_id, specialist.peer_id)]
    assert [m["code"] for m in to(offer(room, patient, nurse), patient)] == ["not-admitted"]
    assert [m["code"] for m in to(offer(room, nurse, patient), nurse)] == ["unknown-peer"]

    readmitted = say(room, nurse, type="admit", peer_id=patient.peer_id)
    assert to(readmitted, patient)[0]["type"] == "admitted"


def test_hosts_cannot_be_sent_to_the_lobby() -> None:
    room, [nurse, gp] = room_with(Role.NURSE, Role.GP)

    out = say(room, nurse, type="lobby", peer_id=gp.peer_id)

    assert [m["code"] for m in to(out, nurse)] == ["forbidden"]
    assert gp in room.admitted


def test_when_the_last_host_leaves_the_guests_go_back_to_the_lobby() -> None:
    room, [nurse, patient, relative] = room_with(Role.NURSE, Role.PATIENT, Role.RELATIVE)

    out = room.apply(Left(nurse.peer_id))

    assert to(out, patient) == [
        {"type": "peer-left", "peer_id": nurse.peer_id},
        {"type": "moved-to-lobby"},
    ]
    assert {"type": "moved-to-lobby"} in to(out, relative)
    assert room.admitted == ()
    assert set(room.lobby) == {patient, relative}
    # the two guests cannot reach each other without a clinician present
    assert [m["code"] for m in to(offer(room, patient, relative), patient)] == ["not-admitted"]
    assert (AuditEvent.LOBBY, patient.peer_id, None) in audits(out)


def test_guests_stay_while_another_host_remains() -> None:
    room, [nurse, gp, patient] = room_with(Role.NURSE, Role.GP, Role.PATIENT)

    out = say(room, nurse, type="leave")

    assert to(out, patient) == [{"type": "peer-left", "peer_id": nurse.peer_id}]
    assert set(room.admitted) == {gp, patient}


def test_the_cap_is_enforced_when_a_guest_is_admitted() -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT, cap=2)
    relative = make_peer(Role.RELATIVE)
    room.apply(Joined(relative))

    out = say(room, nurse, type="admit", peer_id=relative.peer_id)

    assert recipients(out) == {nurse.peer_id}
    assert [m["code"] for m in to(out, nurse)] == ["room-full"]
    assert room.lobby == (relative,)
    room.apply(Left(patient.peer_id))
    assert to(say(room, nurse, type="admit", peer_id=relative.peer_id), relative)[0] == {
        "type": "admitted",
        "peers": [public(nurse, polite=True)],
    }


def test_a_host_joining_a_full_room_is_turned_away() -> None:
    room, peers = room_with(Role.NURSE, Role.PATIENT, cap=2)
    specialist = make_peer(Role.SPECIALIST)

    out = room.apply(Joined(specialist))

    assert [m["code"] for m in to(out, specialist)] == ["room-full"]
    assert disconnects(out) == {specialist.peer_id: DisconnectReason.ROOM_FULL}
    assert recipients(out) == {specialist.peer_id}
    assert room.admitted == tuple(peers)


def test_a_closed_room_refuses_joins_and_sends_waiting_guests_away() -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT)
    relative = make_peer(Role.RELATIVE)
    room.apply(Joined(relative))

    out = room.apply(Closed())

    assert [m["code"] for m in to(out, relative)] == ["room-closed"]
    assert disconnects(out) == {relative.peer_id: DisconnectReason.ROOM_CLOSED}
    assert room.admitted == (nurse, patient)  # the call in progress goes on
    late = make_peer(Role.GP)
    late_out = room.apply(Joined(late))
    assert [m["code"] for m in to(late_out, late)] == ["room-closed"]
    assert disconnects(late_out) == {late.peer_id: DisconnectReason.ROOM_CLOSED}
    assert late not in room.admitted


def test_a_reconnecting_guest_replaces_its_old_connection_and_knocks_again() -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT)
    again = Peer("p-new", Role.PATIENT, patient.display_name, patient.subject)

    out = room.apply(Joined(again))

    assert disconnects(out) == {patient.peer_id: DisconnectReason.REPLACED}
    assert to(out, nurse) == [
        {"type": "peer-left", "peer_id": patient.peer_id},
        {"type": "knock", "peer": public(again)},
    ]
    assert room.lobby == (again,)


def test_a_reconnecting_host_keeps_its_guests_admitted() -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT)
    again = Peer("p-again", Role.NURSE, nurse.display_name, nurse.subject)

    out = room.apply(Joined(again))

    assert disconnects(out) == {nurse.peer_id: DisconnectReason.REPLACED}
    assert to(out, patient) == [
        {"type": "peer-left", "peer_id": nurse.peer_id},
        {"type": "peer-joined", "peer": public(again), "polite": False},
    ]
    assert set(room.admitted) == {again, patient}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"type": 3}',
        '{"type": "dance"}',
        '{"type": "signal", "data": {"candidate": null}}',
        '{"type": "signal", "to": "X", "data": {}}',
        '{"type": "signal", "to": "X", "data": {"description": {"type": "offer"}}}',
        '{"type": "signal", "to": "X", "data": {"description": {"type": "hello", "sdp": ""}}}',
        '{"type": "signal", "to": "X", "data": {"candidate": {"sdpMid": "0"}}}',
        '{"type": "signal", "to": "X", "data": {"candidate": {"candidate": "c", "sdpMLineIndex": true}}}',  # noqa: E501
        '{"type": "signal", "to": "X", "data": {"candidate": null, "description": null}}',
        '{"type": "admit"}',
    ],
)
def test_malformed_messages_get_an_error_and_reach_nobody(text: str) -> None:
    room, [nurse, patient] = room_with(Role.NURSE, Role.PATIENT)
    text = text.replace('"X"', json.dumps(patient.peer_id))

    out = room.apply(MessageReceived(nurse.peer_id, text))

    assert recipients(out) == {nurse.peer_id}
    assert [m["code"] for m in to(out, nurse)] == ["bad-message"]


def test_a_room_needs_space_for_two() -> None:
    with pytest.raises(ValueError, match="cap=1"):
        Room("r", cap=1)


# -- every client's picture of the room stays true, whatever happens ---------------------------

_actions = st.lists(
    st.tuples(
        # weighted towards joins and admissions so that rooms fill up
        st.sampled_from(
            ["join", "join", "join", "admit", "admit", "leave", "deny", "lobby", "close"]
        ),
        st.sampled_from(list(Role)),
        st.integers(min_value=0, max_value=7),
    ),
    min_size=8,
    max_size=40,
)


class ClientView:
    """What one client believes from the messages it received."""

    def __init__(self) -> None:
        self.admitted = False
        self.peers: dict[str, bool] = {}  # peer id -> my polite flag towards it
        self.knocks: set[str] = set()
        self.gone = False

    def hear(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("welcome", "admitted"):
            self.admitted = kind == "admitted" or message["state"] == "admitted"
            self.peers = {p["peer_id"]: p["polite"] for p in message.get("peers", [])}
        elif kind == "peer-joined":
            self.peers[message["peer"]["peer_id"]] = message["polite"]
            self.knocks.discard(message["peer"]["peer_id"])
        elif kind == "peer-left":
            self.peers.pop(message["peer_id"], None)
            self.knocks.discard(message["peer_id"])
        elif kind == "moved-to-lobby":
            self.admitted, self.peers = False, {}
        elif kind == "knock":
            self.knocks.add(message["peer"]["peer_id"])


@settings(max_examples=300, deadline=None)
@given(actions=_actions)
def test_clients_views_match_the_room_and_no_guest_is_ever_without_a_host(
    actions: list[tuple[str, Role, int]],
) -> None:
    room = Room("room-h", cap=3)
    views: dict[str, ClientView] = {}
    everyone: list[Peer] = []
    for kind, role, pick in actions:
        present = [*room.admitted, *room.lobby]
        actor = present[pick % len(present)] if present else None
        hosts = [p for p in room.admitted if p.role.is_host]
        if kind == "join":
            peer = make_peer(role, subject=f"s{pick % 5}")
            everyone.append(peer)
            views[peer.peer_id] = ClientView()
            out = room.apply(Joined(peer))
        elif kind == "leave" and actor:
            views[actor.peer_id].gone = True
            out = room.apply(Left(actor.peer_id))
        elif kind in ("admit", "deny", "lobby") and hosts and actor:
            # mostly a sensible target, sometimes anyone at all
            likely = room.lobby if kind != "lobby" else room.admitted
            target = likely[pick % len(likely)] if likely and pick < 6 else actor
            out = say(room, hosts[pick % len(hosts)], type=kind, peer_id=target.peer_id)
        elif kind == "close" and pick == 3:  # rarely: a closed room stops most play
            out = room.apply(Closed())
        else:
            continue
        for item in out:
            if isinstance(item, Send):
                views[item.peer_id].hear(item.message)
            elif isinstance(item, Disconnect):
                views[item.peer_id].gone = True

        admitted = {p.peer_id for p in room.admitted}
        waiting = {p.peer_id for p in room.lobby}
        assert len(admitted) <= room.cap
        if any(not p.role.is_host for p in room.admitted):
            assert any(p.role.is_host for p in room.admitted)
        for peer in everyone:
            view = views[peer.peer_id]
            if peer.peer_id in admitted:
                assert view.admitted
                assert set(view.peers) == admitted - {peer.peer_id}
                if peer.role.is_host:
                    assert view.knocks == waiting
            else:
                assert not view.admitted or view.gone
    # For each admitted pair exactly one side is polite: the one admitted later.
    for a, b in itertools.combinations(room.admitted, 2):
        assert views[a.peer_id].peers[b.peer_id] is False
        assert views[b.peer_id].peers[a.peer_id] is True

"""The video service's HTTP API against the real broker and database: consultation requests,
the specialist queue, accepting exactly once, presence, rooms, invitations and vital signs."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from services.video.app import create_app
from services.video.settings import VideoSettings
from shared.auth import Principal, issue_token
from shared.infra.broker import EmbeddedBroker
from shared.kafka import ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings

pytestmark = pytest.mark.integration

JWT_SECRET = secrets.token_urlsafe(48)
WAIT_S = 15.0


@dataclass
class Received:
    key: str
    ce_type: str
    body: dict[str, Any]


@dataclass
class EventLog:
    """Everything published on the module's consults topic, as it arrives."""

    events: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, key: str, ce_type: str) -> Received:
        async with asyncio.timeout(WAIT_S), self.arrived:
            await self.arrived.wait_for(
                lambda: any(self._match(e, key, ce_type) for e in self.events)
            )
        return next(e for e in self.events if self._match(e, key, ce_type))

    def of(self, key: str, ce_type: str) -> list[Received]:
        return [e for e in self.events if self._match(e, key, ce_type)]

    @staticmethod
    def _match(event: Received, key: str, ce_type: str) -> bool:
        return event.key == key and event.ce_type == ce_type


@dataclass
class Video:
    base: str
    settings: VideoSettings
    events: EventLog
    http: aiohttp.ClientSession

    def token(self, role: str, org_id: str, subject: str | None = None) -> str:
        return issue_token(JWT_SECRET, Principal(subject or f"{role}-{org_id}", role, org_id))

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method, f"{self.base}{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)


def settings_for(broker: EmbeddedBroker, database: str, topics: TopicSettings) -> VideoSettings:
    return VideoSettings(
        port=0,
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=2),
        topics=topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=5),
        auth=AuthSettings(jwt_secret=SecretStr(JWT_SECRET)),
        scheduler_interval_s=0.1,
        room_empty_expiry_s=0.5,
    )


async def serve(app: Any) -> tuple[str, Any]:
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}", runner


async def _collect(consumer: AIOKafkaConsumer, log: EventLog) -> None:
    async for record in consumer:
        headers = dict(record.headers or [])
        async with log.arrived:
            log.events.append(
                Received(record.key.decode(), headers["ce_type"].decode(), json.loads(record.value))
            )
            log.arrived.notify_all()


@pytest.fixture(scope="module")
async def video(broker: EmbeddedBroker, database: str) -> AsyncIterator[Video]:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        readings=f"v{suffix}.readings",
        risk=f"v{suffix}.risk",
        alerts=f"v{suffix}.alerts",
        consults=f"v{suffix}.consults",
        deadletter=f"v{suffix}.deadletter",
    )
    settings = settings_for(broker, database, topics)
    await ensure_topics(settings.kafka, topics.all())
    consumer = AIOKafkaConsumer(
        topics.consults, bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    log = EventLog()
    collecting = asyncio.create_task(_collect(consumer, log))
    base, runner = await serve(create_app(settings))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Video(base, settings, log, http)
    await runner.cleanup()
    collecting.cancel()
    await asyncio.gather(collecting, return_exceptions=True)
    await consumer.stop()


@dataclass
class Place:
    """A municipality with its acute team and a patient, a second such, and two departments."""

    team: str
    other_team: str
    patient: str
    other_patient: str
    lungs: str
    heart: str


@pytest.fixture
async def place(pool: Any) -> Place:
    s = uuid.uuid4().hex[:8]
    p = Place(f"akut-{s}", f"akut-x-{s}", f"pt-{s}", f"pt-x-{s}", f"lunge-{s}", f"hjerte-{s}")
    await pool.executemany(
        "INSERT INTO organisations (org_id, kind, name, region, municipalities, specialties) "
        "VALUES ($1, $2, $3, 'syddanmark', $4, $5)",
        [
            (p.team, "acute_team", "Akutteam Syd", [f"by-{s}"], []),
            (p.other_team, "acute_team", "Akutteam Nord", [f"by-x-{s}"], []),
            (p.lungs, "hospital_department", "Lungemedicinsk Afdeling", [], ["pulmonology"]),
            (p.heart, "hospital_department", "Kardiologisk Afdeling", [], ["cardiology"]),
        ],
    )
    await pool.executemany(
        "INSERT INTO patients (patient_id, municipality, region) VALUES ($1, $2, 'syddanmark')",
        [(p.patient, f"by-{s}"), (p.other_patient, f"by-x-{s}")],
    )
    return p


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until a condition the service reaches in the background holds."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


def consult_body(patient: str, urgency: str = "acute", **extra: Any) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "specialty": "pulmonology",
        "urgency": urgency,
        "reason": "SpO2 86 % trods 2 l ilt; behov for vurdering af behandlingsniveau",
        **extra,
    }


async def request_consult(video: Video, place: Place, urgency: str = "acute") -> dict[str, Any]:
    status, body = await video.call(
        "POST",
        "/v1/consults",
        video.token("nurse", place.team),
        consult_body(place.patient, urgency),
    )
    assert status == 201, body
    return body


# -- requesting --------------------------------------------------------------------------------


async def test_a_nurse_requests_advice_and_the_request_is_announced(
    video: Video, place: Place
) -> None:
    status, body = await video.call(
        "POST",
        "/v1/consults",
        video.token("nurse", place.team, "sygeplejerske-7"),
        consult_body(place.patient, alert_id="alert-42"),
    )

    assert status == 201
    assert (body["status"], body["patient_id"], body["specialty"], body["urgency"]) == (
        "waiting",
        place.patient,
        "pulmonology",
        "acute",
    )
    assert body["requested_by"] == {
        "subject": "sygeplejerske-7",
        "role": "nurse",
        "org_id": place.team,
    }
    event = await video.events.wait_for(body["id"], "dk.naervagt.consult.requested.v1")
    assert (event.body["patient_id"], event.body["alert_id"]) == (place.patient, "alert-42")
    # the free-text question stays in the video service
    assert "reason" not in event.body


async def test_a_patient_the_organisation_is_not_responsible_for_is_not_found(
    video: Video, place: Place
) -> None:
    token = video.token("gp", place.team)
    for patient in (place.other_patient, "pt-does-not-exist"):
        status, body = await video.call("POST", "/v1/consults", token, consult_body(patient))
        assert (status, body["error"]) == (404, "not_found")


async def test_a_bad_request_names_every_bad_field(video: Video, place: Place) -> None:
    status, body = await video.call(
        "POST",
        "/v1/consults",
        video.token("nurse", place.team),
        {"patient_id": place.patient, "specialty": "dermatology", "urgency": "soon"},
    )

    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"specialty", "urgency", "reason"}


async def test_only_nurses_and_gps_request_consultations(video: Video, place: Place) -> None:
    status, _ = await video.call(
        "POST", "/v1/consults", video.token("specialist", place.lungs), consult_body(place.patient)
    )
    assert status == 403
    status, _ = await video.call("POST", "/v1/consults", None, consult_body(place.patient))
    assert status == 401


# -- the queue and accepting -------------------------------------------------------------------


async def test_the_queue_shows_acute_requests_first_then_the_longest_waiting(
    video: Video, place: Place
) -> None:
    routine = await request_consult(video, place, "routine")
    today = await request_consult(video, place, "today")
    first_acute = await request_consult(video, place, "acute")
    second_acute = await request_consult(video, place, "acute")

    status, body = await video.call(
        "GET",
        "/v1/consults?status=waiting&specialty=pulmonology",
        video.token("specialist", place.lungs),
    )

    assert status == 200
    mine = {routine["id"], today["id"], first_acute["id"], second_acute["id"]}
    order = [c["id"] for c in body["consults"] if c["id"] in mine]
    assert order == [first_acute["id"], second_acute["id"], today["id"], routine["id"]]


async def test_a_specialist_of_another_specialty_cannot_see_or_take_the_request(
    video: Video, place: Place
) -> None:
    consult = await request_consult(video, place)
    cardiologist = video.token("specialist", place.heart)

    status, _ = await video.call("GET", "/v1/consults?specialty=pulmonology", cardiologist)
    assert status == 403
    status, body = await video.call("GET", "/v1/consults?status=waiting", cardiologist)
    assert consult["id"] not in [c["id"] for c in body["consults"]]
    for method, path in (("GET", ""), ("POST", "/accept")):
        status, _ = await video.call(method, f"/v1/consults/{consult['id']}{path}", cardiologist)
        assert status == 404
    # and another acute team does not see it either
    status, _ = await video.call(
        "GET", f"/v1/consults/{consult['id']}", video.token("nurse", place.other_team)
    )
    assert status == 404


async def test_two_specialists_accept_at_once_and_exactly_one_gets_the_room(
    video: Video, place: Place
) -> None:
    consult = await request_consult(video, place)
    path = f"/v1/consults/{consult['id']}/accept"

    answers = await asyncio.gather(
        video.call("POST", path, video.token("specialist", place.lungs, "dr-a")),
        video.call("POST", path, video.token("specialist", place.lungs, "dr-b")),
    )

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 409]
    accepted = next(body for status, body in answers if status == 200)
    assert set(accepted) >= {"consult_id", "room_id", "token", "join_url"}
    assert accepted["consult_id"] == consult["id"]
    assert accepted["join_url"] == f"{video.base}/join/{accepted['token']}"
    event = await video.events.wait_for(consult["id"], "dk.naervagt.consult.accepted.v1")
    assert event.body["room_id"] == accepted["room_id"]
    assert len(video.events.of(consult["id"], "dk.naervagt.consult.accepted.v1")) == 1
    # the requester sees who took it and can enter the same room as a host
    nurse = video.token("nurse", place.team, "sygeplejerske-1")
    _, seen = await video.call("GET", f"/v1/consults/{consult['id']}", nurse)
    assert (seen["status"], seen["room_id"]) == ("accepted", accepted["room_id"])
    status, joining = await video.call("POST", f"/v1/consults/{consult['id']}/join", nurse)
    assert (status, joining["room_id"]) == (200, accepted["room_id"])
    # a third accept is still refused
    status, _ = await video.call("POST", path, video.token("specialist", place.lungs, "dr-c"))
    assert status == 409


async def test_a_withdrawn_request_leaves_the_queue(video: Video, place: Place) -> None:
    consult = await request_consult(video, place, "today")
    nurse = video.token("nurse", place.team)

    status, body = await video.call("POST", f"/v1/consults/{consult['id']}/cancel", nurse)

    assert (status, body["status"]) == (200, "cancelled")
    await video.events.wait_for(consult["id"], "dk.naervagt.consult.cancelled.v1")
    status, _ = await video.call(
        "POST", f"/v1/consults/{consult['id']}/accept", video.token("specialist", place.lungs)
    )
    assert status == 409


async def test_reading_a_request_is_audited_with_the_patient(
    video: Video, place: Place, pool: Any
) -> None:
    consult = await request_consult(video, place)

    await video.call(
        "GET", f"/v1/consults/{consult['id']}", video.token("specialist", place.lungs, "dr-audit")
    )

    rows = await pool.fetch(
        "SELECT actor, role, org_id, patient_id FROM audit_log "
        "WHERE action = 'consult.read' AND detail->>'consult_id' = $1",
        consult["id"],
    )
    assert [tuple(r) for r in rows] == [("dr-audit", "specialist", place.lungs, place.patient)]


# -- presence ----------------------------------------------------------------------------------


async def test_presence_is_shown_per_specialty_and_goes_stale(
    video: Video, place: Place, pool: Any
) -> None:
    specialist = video.token("specialist", place.lungs, "dr-presence")
    status, body = await video.call("PUT", "/v1/presence", specialist, {"status": "available"})
    assert (status, body["specialties"]) == (200, ["pulmonology"])

    nurse = video.token("nurse", place.team)
    _, board = await video.call("GET", "/v1/presence?specialty=pulmonology", nurse)
    mine = [s for s in board["specialists"] if s["org_id"] == place.lungs]
    assert [(s["subject"], s["status"]) for s in mine] == [("dr-presence", "available")]
    _, cardiology = await video.call("GET", "/v1/presence?specialty=cardiology", nurse)
    assert place.lungs not in [s["org_id"] for s in cardiology["specialists"]]

    # A page that stopped renewing its status no longer counts as available.
    await pool.execute(
        "UPDATE specialist_presence SET updated_at = now() - interval '1 hour' WHERE org_id = $1",
        place.lungs,
    )
    _, board = await video.call("GET", "/v1/presence?specialty=pulmonology", nurse)
    mine = [s for s in board["specialists"] if s["org_id"] == place.lungs]
    assert [s["status"] for s in mine] == ["offline"]


async def test_presence_is_set_by_department_specialists_only(video: Video, place: Place) -> None:
    status, _ = await video.call(
        "PUT", "/v1/presence", video.token("nurse", place.team), {"status": "available"}
    )
    assert status == 403
    status, body = await video.call(
        "PUT",
        "/v1/presence",
        video.token("specialist", place.heart),
        {"status": "here", "specialties": ["pulmonology"]},
    )
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"status", "specialties"}


# -- rooms, invitations and vital signs --------------------------------------------------------


async def open_room(video: Video, place: Place) -> dict[str, Any]:
    status, body = await video.call(
        "POST",
        "/v1/rooms",
        video.token("nurse", place.team, "sygeplejerske-3"),
        {"patient_id": place.patient},
    )
    assert status == 201, body
    return body


async def test_a_host_invites_a_patient_and_a_guest_cannot_invite(
    video: Video, place: Place
) -> None:
    room = await open_room(video, place)
    path = f"/v1/rooms/{room['room_id']}/invites"
    invite = {"role": "patient", "display_name": "Ida", "ttl_s": 900}

    by_jwt = await video.call("POST", path, video.token("gp", place.team), invite)
    by_host_token = await video.call("POST", path, room["token"], invite)

    for status, body in (by_jwt, by_host_token):
        assert status == 201
        assert body["join_url"] == f"{video.base}/join/{body['token']}"
    guest_token = by_jwt[1]["token"]
    status, _ = await video.call("POST", path, guest_token, invite)
    assert status == 403
    status, _ = await video.call("POST", path, video.token("nurse", place.other_team), invite)
    assert status == 404
    status, body = await video.call("POST", path, room["token"], {"role": "boss", "ttl_s": 5})
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"role", "display_name", "ttl_s"}


async def test_vital_signs_are_for_hosts_only_and_their_reading_is_audited(
    video: Video, place: Place, pool: Any
) -> None:
    now = datetime.now(UTC)
    await pool.executemany(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, value_text, "
        "unit, measured_at, received_at) VALUES ('dev-v', $1, $2, $3, $4, NULL, $5, $6, $6)",
        [
            (f"{place.patient}-1", place.patient, "spo2", 93.0, "%", now - timedelta(hours=2)),
            (f"{place.patient}-2", place.patient, "spo2", 88.0, "%", now - timedelta(minutes=5)),
            (f"{place.patient}-3", place.patient, "heart_rate", 112.0, "/min", now),
            (f"{place.patient}-4", place.patient, "on_oxygen", 1.0, "1", now),
        ],
    )
    room = await open_room(video, place)
    path = f"/v1/rooms/{room['room_id']}/vitals"

    status, body = await video.call("GET", path, room["token"])

    assert status == 200
    assert body["patient_id"] == place.patient
    assert [(r["type"], r["value"]) for r in body["readings"]] == [
        ("spo2", 88.0),
        ("on_oxygen", True),
        ("heart_rate", 112.0),
    ]
    actors = await pool.fetch(
        "SELECT actor FROM audit_log WHERE action = 'video.vitals' AND patient_id = $1",
        place.patient,
    )
    assert [r["actor"] for r in actors] == ["sygeplejerske-3"]

    _, invited = await video.call(
        "POST",
        f"/v1/rooms/{room['room_id']}/invites",
        room["token"],
        {"role": "patient", "display_name": "Ida"},
    )
    status, _ = await video.call("GET", path, invited["token"])
    assert status == 403
    status, _ = await video.call("GET", path, video.token("nurse", place.team))
    assert status == 401


async def ws_first_message(video: Video, room_id: str, token: str) -> dict[str, Any]:
    async with video.http.ws_connect(
        f"{video.base}/v1/rooms/{room_id}/ws", headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        async with asyncio.timeout(WAIT_S):
            message = await ws.receive_json()
        return dict(message)


async def test_a_closed_room_refuses_its_tokens_also_after_a_restart(
    video: Video, place: Place, broker: EmbeddedBroker, database: str
) -> None:
    room = await open_room(video, place)
    _, invited = await video.call(
        "POST",
        f"/v1/rooms/{room['room_id']}/invites",
        room["token"],
        {"role": "relative", "display_name": "Søn"},
    )
    assert (await ws_first_message(video, room["room_id"], invited["token"]))["type"] == "welcome"

    status, closed = await video.call("POST", f"/v1/rooms/{room['room_id']}/close", room["token"])

    assert status == 200 and closed["closed_at"] is not None
    refused = await ws_first_message(video, room["room_id"], invited["token"])
    assert (refused["type"], refused["code"]) == ("error", "room-closed")
    # A fresh process knows nothing in memory; the database still refuses.
    restarted = create_app(settings_for(broker, database, video.settings.topics))
    base, runner = await serve(restarted)
    try:
        again = Video(base, video.settings, video.events, video.http)
        refused = await ws_first_message(again, room["room_id"], room["token"])
        assert (refused["type"], refused["code"]) == ("error", "room-closed")
        status, _ = await again.call(
            "POST",
            f"/v1/rooms/{room['room_id']}/invites",
            room["token"],
            {"role": "patient", "display_name": "Ida"},
        )
        assert status == 404
    finally:
        await runner.cleanup()


async def test_an_empty_room_closes_after_its_expiry(video: Video, place: Place, pool: Any) -> None:
    room = await open_room(video, place)
    assert (await ws_first_message(video, room["room_id"], room["token"]))["type"] == "welcome"

    # The last participant left; the room expires room_empty_expiry_s later.
    async def closed() -> bool:
        closed_at = await pool.fetchval(
            "SELECT closed_at FROM video_rooms WHERE room_id = $1", room["room_id"]
        )
        return closed_at is not None

    await until(closed)

    refused = await ws_first_message(video, room["room_id"], room["token"])
    assert refused["code"] == "room-closed"


async def test_who_joined_and_who_admitted_whom_is_audited(
    video: Video, place: Place, pool: Any
) -> None:
    room = await open_room(video, place)
    _, invited = await video.call(
        "POST",
        f"/v1/rooms/{room['room_id']}/invites",
        room["token"],
        {"role": "patient", "display_name": "Ida"},
    )
    url = f"{video.base}/v1/rooms/{room['room_id']}/ws"
    async with (
        video.http.ws_connect(url, headers={"Authorization": f"Bearer {room['token']}"}) as nurse,
        video.http.ws_connect(url, headers={"Authorization": f"Bearer {invited['token']}"}) as ida,
    ):
        async with asyncio.timeout(WAIT_S):
            await nurse.receive_json()
            lobby = await ida.receive_json()
            assert (await nurse.receive_json())["type"] == "knock"
            await nurse.send_json({"type": "admit", "peer_id": lobby["peer_id"]})
            assert (await ida.receive_json())["type"] == "admitted"

    rows: list[Any] = []

    async def recorded() -> bool:
        rows[:] = await pool.fetch(
            "SELECT action, actor, role, patient_id, detail FROM audit_log "
            "WHERE detail->>'room_id' = $1 AND action IN ('video.join', 'video.admit') "
            "ORDER BY id",
            room["room_id"],
        )
        return len(rows) >= 3

    await until(recorded)
    assert [(r["action"], r["role"], r["detail"]["peer"]["role"]) for r in rows] == [
        ("video.join", "nurse", "nurse"),
        ("video.join", "patient", "patient"),
        ("video.admit", "nurse", "patient"),
    ]
    assert rows[2]["actor"] == "sygeplejerske-3"
    assert {r["patient_id"] for r in rows} == {place.patient}


# -- escalation --------------------------------------------------------------------------------


async def test_an_unaccepted_acute_request_escalates_once_across_instances(
    video: Video, place: Place, broker: EmbeddedBroker, database: str
) -> None:
    # Two more instances with a short escalation time; all three run the timers.
    fast = settings_for(broker, database, video.settings.topics).model_copy(
        update={"acute_escalation_s": 0.3, "scheduler_interval_s": 0.02}
    )
    runners = [await serve(create_app(fast)) for _ in range(2)]
    try:
        nurse = video.token("nurse", place.team)
        instance = Video(runners[0][0], fast, video.events, video.http)
        _, acute = await instance.call("POST", "/v1/consults", nurse, consult_body(place.patient))
        _, routine = await instance.call(
            "POST", "/v1/consults", nurse, consult_body(place.patient, "routine")
        )

        escalated = await video.events.wait_for(acute["id"], "dk.naervagt.consult.escalated.v1")

        assert escalated.body["waited_s"] >= 0.3
        # A later deadline escalating shows every instance has swept past the first one.
        _, marker = await instance.call("POST", "/v1/consults", nurse, consult_body(place.patient))
        await video.events.wait_for(marker["id"], "dk.naervagt.consult.escalated.v1")
        assert len(video.events.of(acute["id"], "dk.naervagt.consult.escalated.v1")) == 1
        _, seen = await video.call("GET", f"/v1/consults/{acute['id']}", nurse)
        assert (seen["status"], seen["escalated"]) == ("waiting", True)
        _, seen = await video.call("GET", f"/v1/consults/{routine['id']}", nurse)
        assert (seen["escalated"], seen["escalate_at"]) == (False, None)
        # escalated requests stay in the queue, and can still be accepted
        status, _ = await video.call(
            "POST", f"/v1/consults/{acute['id']}/accept", video.token("specialist", place.lungs)
        )
        assert status == 200
    finally:
        for _, runner in runners:
            await runner.cleanup()

"""The alerts service's lifecycle, care, routing, webhook and audit APIs, through one running
service on the real broker and database (built once for this module)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from services.alerts.app import create_app
from services.alerts.care_api import CareFileInvalid, care_main, load_care_file
from services.alerts.domain.routing import RoutingPolicy
from services.alerts.domain.webhook import verify
from services.alerts.engine import apply_assessments
from services.alerts.lifecycle_settings import LifecycleSettings
from services.alerts.settings import AlertsSettings
from shared import db
from shared.auth import Principal, issue_token
from shared.events import News2Part, RiskAssessed
from shared.infra.processes import free_port
from shared.kafka import ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings


@dataclass
class Service:
    base: str
    pool: Any
    jwt_secret: str
    topics: TopicSettings
    s: str  # unique suffix of this module's ids

    def token(self, role: str, org_id: str, subject: str = "tester") -> str:
        return issue_token(self.jwt_secret, Principal(subject, role, org_id))

    def auth(self, role: str, org_id: str, subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, org_id, subject)}"}

    @property
    def operator(self) -> dict[str, str]:
        return self.auth("operator", "platform", "ops-1")

    def org(self, name: str) -> str:
        return f"{name}-{self.s}"

    def patient(self, name: str) -> str:
        return f"pt-{name}-{self.s}"


def care_document(s: str) -> dict[str, Any]:
    """Two regions with an acute team, a practice and an out-of-hours service each, patients in
    both, and two that miss a mapping."""
    weekdays = ("mon", "tue", "wed", "thu", "fri")
    return {
        "organisations": [
            {"org_id": f"akut-syd-{s}", "kind": "acute_team", "name": "Akutteam Sydfyn",
             "phone": "+45 01", "region": f"syd-{s}", "municipalities": [f"svendborg-{s}"]},
            {"org_id": f"akut-midt-{s}", "kind": "acute_team", "name": "Akutteam Horsens",
             "phone": "+45 02", "region": f"midt-{s}", "municipalities": [f"horsens-{s}"]},
            {"org_id": f"gp-syd-{s}", "kind": "gp_practice", "name": "Lægehuset Svendborg",
             "phone": "+45 03", "region": f"syd-{s}"},
            {"org_id": f"gp-midt-{s}", "kind": "gp_practice", "name": "Lægerne Nørrestrand",
             "phone": "+45 04", "region": f"midt-{s}",
             "opening_hours": {d: [["07:30", "15:30"]] for d in weekdays}},
            {"org_id": f"ooh-syd-{s}", "kind": "out_of_hours", "name": "Lægevagten Syd",
             "phone": "70 11 07 07", "region": f"syd-{s}"},
            {"org_id": f"ooh-midt-{s}", "kind": "out_of_hours", "name": "Lægevagten Midt",
             "phone": "70 11 31 31", "region": f"midt-{s}"},
            {"org_id": f"other-{s}", "kind": "acute_team", "name": "Akutteam Andetsteds",
             "region": f"syd-{s}", "municipalities": [f"andetsteds-{s}"]},
        ],
        "patients": [
            {"patient_id": f"pt-syd-{s}", "municipality": f"svendborg-{s}",
             "gp_practice_id": f"gp-syd-{s}", "region": f"syd-{s}", "condition": "copd"},
            {"patient_id": f"pt-midt-{s}", "municipality": f"horsens-{s}",
             "gp_practice_id": f"gp-midt-{s}", "region": f"midt-{s}"},
            {"patient_id": f"pt-nogp-{s}", "municipality": f"svendborg-{s}",
             "gp_practice_id": f"gp-gone-{s}", "region": f"syd-{s}"},
            {"patient_id": f"pt-lost-{s}", "municipality": f"nowhere-{s}",
             "region": f"island-{s}"},
            {"patient_id": f"pt-life-{s}", "municipality": f"svendborg-{s}",
             "gp_practice_id": f"gp-syd-{s}", "region": f"syd-{s}"},
            {"patient_id": f"pt-hook-{s}", "municipality": f"svendborg-{s}",
             "gp_practice_id": f"gp-syd-{s}", "region": f"syd-{s}"},
        ],
        "clinicians": [
            {"clinician_id": "karen", "org_id": f"akut-syd-{s}", "name": "Karen Holm"},
            {"clinician_id": "dr-ole", "org_id": f"gp-syd-{s}", "name": "Ole Berg", "role": "gp"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
async def loaded(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Any, str, Any]]:
    s = uuid.uuid4().hex[:8]
    path = tmp_path_factory.mktemp("care") / "care.json"
    path.write_text(json.dumps(care_document(s)), encoding="utf-8")
    pool = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=4))
    result = await load_care_file(pool, path)
    yield pool, s, result
    await pool.close()


@pytest.fixture(scope="module")
async def service(broker: Any, database: str, loaded: Any) -> AsyncIterator[Service]:
    pool, s, _ = loaded
    jwt_secret = secrets.token_urlsafe(48)
    topics = TopicSettings(
        readings=f"a{s}.readings",
        risk=f"a{s}.risk",
        alerts=f"a{s}.alerts",
        consults=f"a{s}.consults",
        deadletter=f"a{s}.deadletter",
    )
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        partitions=2,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(kafka, topics.all())
    settings = AlertsSettings(
        port=0,
        scorer_group=f"scorer-{s}",
        engine_group=f"engine-{s}",
        kafka=kafka,
        topics=topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=5),
        auth=AuthSettings(jwt_secret=SecretStr(jwt_secret)),
    )
    lifecycle = LifecycleSettings(
        care_cache_ttl_s=3600,  # edits must show at once although the cache is long-lived
        escalation_poll_s=0.2,
        webhook_poll_s=0.05,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.2,
        webhook_max_attempts=3,
        webhook_timeout_s=5,
    )
    runner = web.AppRunner(create_app(settings, lifecycle=lifecycle), handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Service(f"http://127.0.0.1:{port}", pool, jwt_secret, topics, s)
    await runner.cleanup()


def assessment(patient_id: str, severity: str, total: int) -> RiskAssessed:
    return RiskAssessed(
        assessment_id=str(uuid.uuid4()),
        patient_id=patient_id,
        window_end=datetime.now(UTC),
        severity=severity,  # type: ignore[arg-type]
        news2=News2Part(total=total, components={"respiratory_rate": 3}),
        reasons=[f"NEWS2 {total} ({severity})"],
    )


async def raise_alert(service: Service, patient_id: str, severity: str = "medium") -> str:
    [change] = await apply_assessments(
        service.pool,
        [assessment(patient_id, severity, {"medium": 5, "high": 9}[severity])],
        alerts_topic=service.topics.alerts,
        min_low_total=3,
    )
    return change.alert.id


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json_body: Any = None,
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers, json=json_body) as response:
        body = await response.json(content_type=None) if response.status != 204 else None
        return response.status, body


# --- the care structure as configuration ------------------------------------------------------


async def test_the_care_file_loads_with_warnings_for_missing_references(loaded):
    pool, s, result = loaded
    assert (result.organisations, result.patients, result.clinicians) == (7, 6, 2)
    assert f"patient 'pt-nogp-{s}' names GP practice 'gp-gone-{s}', which is not a known GP " \
        "practice" in result.warnings  # fmt: skip
    assert f"region 'island-{s}' has no out-of-hours service" in result.warnings
    orgs = await pool.fetch(
        "SELECT org_id FROM patient_orgs WHERE patient_id = $1 ORDER BY org_id", f"pt-syd-{s}"
    )
    assert [r["org_id"] for r in orgs] == [f"akut-syd-{s}", f"gp-syd-{s}", f"ooh-syd-{s}"]


async def test_an_invalid_care_file_loads_nothing(loaded, tmp_path):
    pool, s, _ = loaded
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps(
            {
                "organisations": [
                    {"org_id": f"new-{s}", "kind": "acute_team", "name": "N", "region": "r"}
                ],
                "patients": [{"patient_id": f"p-{s}", "spo2_scale": 3}],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(CareFileInvalid) as refused:
        await load_care_file(pool, path)
    assert [p.field for p in refused.value.problems] == ["patients.0.spo2_scale"]
    assert (
        await pool.fetchval("SELECT count(*) FROM organisations WHERE org_id = $1", f"new-{s}") == 0
    )


async def test_the_care_command_loads_a_file_and_refuses_a_broken_one(
    loaded, database, tmp_path, monkeypatch, capsys
):
    pool, s, _ = loaded
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    good.write_text(
        json.dumps(
            {"organisations": [{"org_id": f"cli-{s}", "kind": "out_of_hours",
                                "name": "Lægevagten CLI", "region": f"cli-{s}"}]}
        ),
        encoding="utf-8",
    )  # fmt: skip
    broken.write_text('{"organisations": [{"org_id": "x"}]}', encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", database)
    assert await asyncio.to_thread(care_main, ["load", str(good)]) == 0
    assert "loaded 1 organisations, 0 patients, 0 clinicians" in capsys.readouterr().out
    assert await pool.fetchval("SELECT name FROM organisations WHERE org_id = $1", f"cli-{s}") == (
        "Lægevagten CLI"
    )
    assert await asyncio.to_thread(care_main, ["load", str(broken)]) == 1
    assert "nothing loaded" in capsys.readouterr().err
    assert await asyncio.to_thread(care_main, ["load", str(tmp_path / "missing.json")]) == 2


async def test_operators_edit_organisations_and_routing_follows_at_once(service, http):
    url = f"{service.base}/v1/care/organisations/{service.org('ooh-syd')}"
    status, org = await call(http, "GET", url, headers=service.operator)
    assert status == 200
    assert (org["kind"], org["phone"], org["clinicians"]) == ("out_of_hours", "70 11 07 07", [])
    status, _ = await call(http, "GET", url, headers=service.auth("nurse", service.org("ooh-syd")))
    assert status == 403

    del org["clinicians"]
    status, saved = await call(
        http, "PUT", url, headers=service.operator, json_body={**org, "phone": "70 11 99 99"}
    )
    assert (status, saved["phone"]) == (200, "70 11 99 99")
    chain = await preview(http, service, service.patient("syd"), "medium", "2024-09-10T10:00:00Z")
    assert chain["chain"][1]["phone"] == "70 11 99 99"

    status, body = await call(
        http, "PUT", url, headers=service.operator, json_body={**org, "kind": "castle"}
    )
    assert status == 422 and body["errors"]


async def test_operators_read_and_edit_patients_and_each_read_is_audited(service, http):
    pid = service.patient("new")
    url = f"{service.base}/v1/care/patients/{pid}"
    document = {"municipality": f"svendborg-{service.s}", "gp_practice_id": "gp-unknown"}
    status, created = await call(http, "PUT", url, headers=service.operator, json_body=document)
    assert status == 201
    assert created["warnings"] == [
        f"patient '{pid}' names GP practice 'gp-unknown', which is not a known GP practice",
        f"patient '{pid}' has no region",
    ]
    document |= {"gp_practice_id": service.org("gp-syd"), "region": f"syd-{service.s}"}
    status, updated = await call(http, "PUT", url, headers=service.operator, json_body=document)
    assert (status, updated["warnings"]) == (200, [])
    status, patient = await call(
        http, "GET", url, headers={**service.operator, "X-Access-Reason": "checking a GP move"}
    )
    assert status == 200
    assert patient["responsible_orgs"] == [
        service.org("akut-syd"),
        service.org("gp-syd"),
        service.org("ooh-syd"),
    ]
    status, trail = await call(
        http, "GET", f"{service.base}/v1/audit?patient_id={pid}", headers=service.operator
    )
    assert status == 200
    assert [(e["action"], e["actor"], e["reason"]) for e in trail["entries"]][:3] == [
        ("care.patient.read", "ops-1", "checking a GP move"),
        ("care.patient.update", "ops-1", "care structure administration"),
        ("care.patient.update", "ops-1", "care structure administration"),
    ]
    status, _ = await call(
        http, "GET", f"{service.base}/v1/audit?patient_id={pid}",
        headers=service.auth("nurse", service.org("akut-syd")),
    )  # fmt: skip
    assert status == 403


# --- routing preview on the Danish clock ------------------------------------------------------


async def preview(
    http: aiohttp.ClientSession, service: Service, patient_id: str, severity: str, at: str
) -> dict[str, Any]:
    params = {"patient_id": patient_id, "severity": severity, "at": at}
    async with http.get(
        f"{service.base}/v1/routing/preview", params=params, headers=service.operator
    ) as response:
        body = await response.json()
        assert response.status == 200, body
        return body  # type: ignore[no-any-return]


GP_FIRST = "gp"
OOH_FIRST = "out_of_hours"

# (patient, local or UTC moment, who gets a low alert first)
CLOCK_EDGES = [
    ("syd", "2024-09-10T07:59:00+02:00", OOH_FIRST),  # Tuesday, before opening
    ("syd", "2024-09-10T08:00:00+02:00", GP_FIRST),
    ("syd", "2024-09-10T15:59:00+02:00", GP_FIRST),
    ("syd", "2024-09-10T16:00:00+02:00", OOH_FIRST),
    ("midt", "2024-09-10T07:30:00+02:00", GP_FIRST),  # this practice opens at 07:30
    ("midt", "2024-09-10T15:30:00+02:00", OOH_FIRST),
    ("syd", "2024-09-13T15:59:00+02:00", GP_FIRST),  # Friday
    ("syd", "2024-09-13T16:00:00+02:00", OOH_FIRST),
    ("syd", "2024-09-14T10:00:00+02:00", OOH_FIRST),  # Saturday
    ("syd", "2024-03-28T10:00:00+01:00", OOH_FIRST),  # Maundy Thursday
    ("midt", "2024-03-28T10:00:00+01:00", OOH_FIRST),
    ("syd", "2024-03-27T10:00:00+01:00", GP_FIRST),  # the Wednesday before
    ("syd", "2023-05-05T10:00:00+02:00", OOH_FIRST),  # Store Bededag 2023, a holiday
    ("syd", "2024-04-26T10:00:00+02:00", GP_FIRST),  # its date in 2024: abolished, a workday
    ("midt", "2024-04-26T10:00:00+02:00", GP_FIRST),
    # Autumn night (27 October 2024): the repeated hour, both times, is a Sunday night.
    ("syd", "2024-10-27T02:30:00+02:00", OOH_FIRST),
    ("syd", "2024-10-27T02:30:00+01:00", OOH_FIRST),
    # The Monday after: 08:00 is now 07:00 UTC, no longer 06:00 UTC.
    ("syd", "2024-10-28T06:30:00Z", OOH_FIRST),
    ("midt", "2024-10-28T06:30:00Z", GP_FIRST),  # 07:30 local in Horsens
    ("syd", "2024-10-28T07:00:00Z", GP_FIRST),
    # Spring night (31 March 2024): 02:00-03:00 does not exist; 01:30 UTC is 03:30 local.
    ("syd", "2024-03-31T01:30:00Z", OOH_FIRST),
    # The first Monday on summer time (2025): 08:00 is 06:00 UTC.
    ("syd", "2025-03-31T05:59:00Z", OOH_FIRST),
    ("syd", "2025-03-31T06:00:00Z", GP_FIRST),
    ("midt", "2025-03-31T05:29:00Z", OOH_FIRST),
    ("midt", "2025-03-31T05:30:00Z", GP_FIRST),
]


async def test_low_alerts_follow_practice_hours_holidays_and_daylight_saving(service, http):
    outcomes = []
    for who, at, _ in CLOCK_EDGES:
        body = await preview(http, service, service.patient(who), "low", at)
        region = "syd" if who == "syd" else "midt"
        first, second = body["chain"]
        assert second == {
            "kind": "acute_team",
            "org_id": service.org(f"akut-{region}"),
            "name": "Akutteam Sydfyn" if region == "syd" else "Akutteam Horsens",
            "phone": "+45 01" if region == "syd" else "+45 02",
            "ack_timeout_s": 3600,
        }
        org = service.org(f"{'gp' if first['kind'] == 'gp' else 'ooh'}-{region}")
        assert first["org_id"] == org
        assert body["warnings"] == []
        outcomes.append((who, at, first["kind"]))
    assert outcomes == CLOCK_EDGES


@pytest.mark.parametrize(
    "at", ["2024-09-10T10:00:00+02:00", "2024-12-24T03:00:00+01:00", "2024-10-27T02:30:00+01:00"]
)
async def test_a_high_alert_advises_112_and_pages_the_acute_team_at_any_hour(service, http, at):
    body = await preview(http, service, service.patient("midt"), "high", at)
    assert set(body) == {"chain", "warnings"}
    assert [(s["kind"], s["org_id"], s["ack_timeout_s"]) for s in body["chain"]] == [
        ("emergency_112", None, None),
        ("acute_team", service.org("akut-midt"), 300),
        ("out_of_hours", service.org("ooh-midt"), 600),
    ]
    assert body["chain"][0]["phone"] == "112"


async def test_missing_measurements_go_to_the_acute_teams_task_list(service, http):
    body = await preview(
        http, service, service.patient("syd"), "missing_measurement", "2024-09-10T10:00:00Z"
    )
    assert body["chain"] == [
        {
            "kind": "task_list",
            "org_id": service.org("akut-syd"),
            "name": "Opgaveliste: Akutteam Sydfyn",
            "phone": None,
            "ack_timeout_s": None,
        }
    ]


async def test_a_missing_mapping_gets_a_safe_route_and_a_warning(service, http):
    # GP unknown: a low alert in opening hours goes to out-of-hours and the acute team.
    nogp = await preview(http, service, service.patient("nogp"), "low", "2024-09-10T10:00:00Z")
    assert [s["kind"] for s in nogp["chain"]] == ["out_of_hours", "acute_team"]
    assert any("GP practice" in w for w in nogp["warnings"])
    # Nothing known at all: the policy's fallback responder, never an empty chain.
    lost = await preview(http, service, service.patient("lost"), "medium", "2024-09-10T10:00:00Z")
    assert [(s["kind"], s["name"]) for s in lost["chain"]] == [
        ("out_of_hours", RoutingPolicy().fallback_name)
    ]
    assert len(lost["warnings"]) >= 2
    unknown = await preview(http, service, "pt-nobody", "high", "2024-09-10T10:00:00Z")
    assert [s["kind"] for s in unknown["chain"]] == ["emergency_112", "out_of_hours"]
    assert unknown["warnings"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"severity": "urgent", "at": "2024-09-10T10:00:00Z"}, "severity"),
        ({"severity": "low", "at": "2024-09-10T10:00:00"}, "at"),
        ({"severity": "low", "at": "tuesday"}, "at"),
    ],
)
async def test_the_preview_refuses_bad_queries_with_the_field(service, http, query, field):
    params = {"patient_id": service.patient("syd"), **query}
    async with http.get(
        f"{service.base}/v1/routing/preview", params=params, headers=service.operator
    ) as response:
        assert response.status == 422
        assert [e["field"] for e in (await response.json())["errors"]] == [field]


async def test_an_unencoded_plus_in_the_offset_still_reads(service, http):
    url = (
        f"{service.base}/v1/routing/preview?patient_id={service.patient('syd')}"
        "&severity=low&at=2024-09-10T08:00:00+02:00"
    )
    async with http.get(url, headers=service.operator) as response:
        assert response.status == 200
        assert (await response.json())["chain"][0]["kind"] == "gp"


async def test_only_operators_preview_routes(service, http):
    async with http.get(
        f"{service.base}/v1/routing/preview",
        params={"patient_id": service.patient("syd"), "severity": "low"},
        headers=service.auth("nurse", service.org("akut-syd")),
    ) as response:
        assert response.status == 403


# --- the alert lifecycle over HTTP ------------------------------------------------------------


async def test_a_clinician_takes_an_alert_through_its_whole_lifecycle(service, http):
    alert_id = await raise_alert(service, service.patient("life"))
    nurse = service.auth("nurse", service.org("akut-syd"), "karen")
    url = f"{service.base}/v1/alerts/{alert_id}"

    ws = await open_console(http, service, nurse)
    status, body = await call(
        http, "POST", f"{url}/assign", headers=nurse, json_body={"clinician_id": "karen"}
    )
    assert (status, body["change"]) == (200, "assigned")
    live = await next_change(ws, alert_id)
    assert (live["change"], live["alert"]["status"]) == ("assigned", "open")
    await ws.close()

    status, body = await call(
        http, "POST", f"{url}/assign", headers=nurse, json_body={"clinician_id": "dr-ole"}
    )
    assert (status, body["errors"][0]["field"]) == (422, "clinician_id")
    assert (await call(http, "POST", f"{url}/note", headers=nurse, json_body={"text": " "}))[
        0
    ] == 422
    for action, body_ in [
        ("note", {"text": "called the patient, visiting"}),
        ("snooze", {"minutes": 30}),
        ("acknowledge", None),
    ]:
        status, body = await call(http, "POST", f"{url}/{action}", headers=nurse, json_body=body_)
        assert status == 200, body
    status, body = await call(http, "POST", f"{url}/acknowledge", headers=nurse)
    assert (status, body["error"]) == (409, "conflict")
    status, body = await call(
        http, "POST", f"{url}/resolve", headers=nurse, json_body={"reason": "stable after visit"}
    )
    assert (status, body["alert"]["status"]) == (200, "resolved")
    status, _ = await call(http, "POST", f"{url}/snooze", headers=nurse, json_body={"minutes": 5})
    assert status == 409
    status, _ = await call(
        http, "POST", f"{url}/note", headers=nurse, json_body={"text": "follow-up booked"}
    )
    assert status == 200

    status, record = await call(http, "GET", url, headers=nurse)
    assert status == 200
    assert [(e["change"], e["actor"]) for e in record["events"]] == [
        ("raised", "system:scorer"),
        ("assigned", "nurse:karen"),
        ("noted", "nurse:karen"),
        ("snoozed", "nurse:karen"),
        ("acknowledged", "nurse:karen"),
        ("resolved", "nurse:karen"),
        ("noted", "nurse:karen"),
    ]
    assert record["events"][1]["detail"]["assigned_name"] == "Karen Holm"
    assert record["events"][2]["detail"]["text"] == "called the patient, visiting"
    assert record["events"][5]["detail"]["reason"] == "stable after visit"
    assert (record["assigned_name"], record["resolved_by"]) == ("Karen Holm", "nurse:karen")
    assert {t["status"] for t in record["escalation"]} == {"fired", "cancelled"}


async def test_another_organisation_can_neither_see_nor_change_the_alert(service, http):
    alert_id = await raise_alert(service, service.patient("midt"))
    stranger = service.auth("nurse", service.org("akut-syd"))
    for method, path in [("GET", ""), ("POST", "/acknowledge"), ("POST", "/resolve")]:
        status, _ = await call(
            http, method, f"{service.base}/v1/alerts/{alert_id}{path}", headers=stranger
        )
        assert status == 404
    status, listed = await call(
        http, "GET", f"{service.base}/v1/alerts?status=active", headers=stranger
    )
    assert alert_id not in {a["id"] for a in listed["alerts"]}
    own = service.auth("gp", service.org("gp-midt"))
    status, _ = await call(http, "GET", f"{service.base}/v1/alerts/{alert_id}", headers=own)
    assert status == 200


async def open_console(
    http: aiohttp.ClientSession, service: Service, headers: dict[str, str]
) -> aiohttp.ClientWebSocketResponse:
    async with http.post(f"{service.base}/v1/console/tickets", headers=headers) as response:
        ticket = (await response.json())["ticket"]
    ws = await http.ws_connect(f"{service.base}/v1/console/ws?ticket={ticket}")
    while (await ws.receive_json())["type"] != "synced":
        pass
    return ws


async def next_change(ws: aiohttp.ClientWebSocketResponse, alert_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            message = await ws.receive_json()
            if message["type"] == "alert" and message["alert"]["id"] == alert_id:
                return message  # type: ignore[no-any-return]


# --- webhooks ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A practice system's endpoint that refuses each event's first ``fail_first`` attempts."""

    fail_first: int
    attempts: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        event = headers["X-Naervagt-Event-Id"]
        self.attempts[event].append(headers)
        if len(self.attempts[event]) <= self.fail_first:
            return web.Response(status=503)
        self.accepted.append((headers, body))
        async with self.changed:
            self.changed.notify_all()
        return web.Response(status=204)

    async def wait(self, ready: Callable[[], bool]) -> None:
        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(ready)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app


async def subscribe(
    http: aiohttp.ClientSession, service: Service, org_id: str, url: str, **extra: Any
) -> dict[str, Any]:
    status, body = await call(
        http,
        "POST",
        f"{service.base}/v1/webhooks",
        headers=service.operator,
        json_body={"org_id": org_id, "url": url, **extra},
    )
    assert status == 201, body
    return body  # type: ignore[no-any-return]


async def test_webhooks_are_signed_retried_and_scoped_to_the_patients_organisations(
    service, http, serve
):
    acute_system, practice_system, other_system = Receiver(1), Receiver(1), Receiver(0)
    acute_url = await serve(acute_system.app())
    practice_url = await serve(practice_system.app())
    other_url = await serve(other_system.app())
    acute = await subscribe(http, service, service.org("akut-syd"), f"{acute_url}/hook")
    practice = await subscribe(
        http,
        service,
        service.org("gp-syd"),
        f"{practice_url}/hook",
        format="fhir",
        changes=["raised", "resolved"],
    )
    other = await subscribe(http, service, service.org("other"), f"{other_url}/hook")

    alert_id = await raise_alert(service, service.patient("hook"), "high")
    await acute_system.wait(lambda: len(acute_system.accepted) >= 1)
    await practice_system.wait(lambda: len(practice_system.accepted) >= 1)

    headers, body = acute_system.accepted[0]
    assert headers["Content-Type"] == "application/json"
    assert verify(
        acute["secret"],
        timestamp=headers["X-Naervagt-Timestamp"],
        body=body,
        signature=headers["X-Naervagt-Signature"],
        now=time.time(),
    )
    assert not verify(
        practice["secret"],
        timestamp=headers["X-Naervagt-Timestamp"],
        body=body,
        signature=headers["X-Naervagt-Signature"],
        now=time.time(),
    )
    document = json.loads(body)
    assert (document["change"], document["alert"]["id"]) == ("raised", alert_id)
    # The first attempt failed; the retry carried the same event id and body.
    [failed, succeeded] = acute_system.attempts[document["id"]]
    assert failed["Idempotency-Key"] == succeeded["Idempotency-Key"] == document["id"]
    assert (failed["X-Naervagt-Attempt"], succeeded["X-Naervagt-Attempt"]) == ("1", "2")

    fhir_headers, fhir_body = practice_system.accepted[0]
    assert fhir_headers["Content-Type"] == "application/fhir+json"
    bundle = json.loads(fhir_body)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Flag", "Communication"]
    assert bundle["entry"][0]["resource"]["id"] == alert_id

    # An acknowledgement reaches the acute team's system, not the practice's (it asked only for
    # raised and resolved) nor the unrelated organisation's.
    nurse = service.auth("nurse", service.org("akut-syd"))
    status, acked = await call(
        http, "POST", f"{service.base}/v1/alerts/{alert_id}/acknowledge", headers=nurse
    )
    assert status == 200
    await acute_system.wait(lambda: len(acute_system.accepted) >= 2)
    assert json.loads(acute_system.accepted[1][1])["seq"] == acked["seq"]
    queued = await service.pool.fetch(
        "SELECT subscription_id::text AS id, count(*) AS n FROM webhook_deliveries "
        "WHERE subscription_id = ANY($1::uuid[]) GROUP BY 1",
        [acute["id"], practice["id"], other["id"]],
    )
    assert {r["id"]: r["n"] for r in queued} == {acute["id"]: 2, practice["id"]: 1}
    assert other_system.attempts == {}


async def test_a_delivery_that_keeps_failing_is_dead_lettered(service, http, serve):
    broken = Receiver(fail_first=100)
    url = await serve(broken.app())
    hook = await subscribe(http, service, service.org("akut-midt"), f"{url}/hook")
    await raise_alert(service, service.patient("midt"), "high")
    # The record is written just after the last attempt's answer: wait for it in the database.
    async with asyncio.timeout(30):
        while True:
            dead = await service.pool.fetchval(
                "SELECT count(*) FROM webhook_dead_letters WHERE subscription_id = $1", hook["id"]
            )
            if dead:
                break
            await asyncio.sleep(0.05)
    status, body = await call(
        http,
        "GET",
        f"{service.base}/v1/webhooks/{hook['id']}/deliveries?status=dead",
        headers=service.operator,
    )
    assert status == 200
    [dead] = body["deliveries"]
    assert (dead["attempts"], dead["last_status"], dead["last_error"]) == (3, 503, "HTTP 503")
    assert len(broken.attempts[dead["event_id"]]) == 3


async def test_operators_manage_subscriptions(service, http):
    org = service.org("ooh-midt")
    hook = await subscribe(http, service, org, "https://praksis.example/hook")
    assert hook["secret"].startswith("whsec_") and hook["format"] == "json"
    status, listed = await call(
        http, "GET", f"{service.base}/v1/webhooks?org_id={org}", headers=service.operator
    )
    assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
    assert "secret" not in listed["webhooks"][0]
    url = f"{service.base}/v1/webhooks/{hook['id']}"
    assert (await call(http, "DELETE", url, headers=service.operator))[0] == 204
    assert (await call(http, "DELETE", url, headers=service.operator))[0] == 404
    status, listed = await call(
        http, "GET", f"{service.base}/v1/webhooks?org_id={org}", headers=service.operator
    )
    assert listed["webhooks"] == []

    for bad, field_ in [
        ({"org_id": org, "url": "ftp://x/hook"}, "url"),
        ({"org_id": "nobody", "url": "https://x/hook"}, "org_id"),
        ({"org_id": org, "url": "https://x/hook", "format": "xml"}, "format"),
        ({"org_id": org, "url": "https://x/hook", "changes": ["exploded"]}, "changes"),
    ]:
        status, body = await call(
            http, "POST", f"{service.base}/v1/webhooks", headers=service.operator, json_body=bad
        )
        assert (status, body["errors"][0]["field"]) == (422, field_)
    status, _ = await call(
        http, "GET", f"{service.base}/v1/webhooks", headers=service.auth("nurse", org)
    )
    assert status == 403


# --- the audit trail --------------------------------------------------------------------------


async def test_every_read_of_an_alert_is_in_the_patients_audit_trail(service, http):
    pid = service.patient("syd")
    alert_id = await raise_alert(service, pid)
    nurse = service.auth("nurse", service.org("akut-syd"), "karen")
    status, _ = await call(
        http,
        "GET",
        f"{service.base}/v1/alerts/{alert_id}",
        headers={**nurse, "X-Access-Reason": "home visit planning"},
    )
    assert status == 200
    status, listed = await call(http, "GET", f"{service.base}/v1/alerts?status=open", headers=nurse)
    assert alert_id in {a["id"] for a in listed["alerts"]}
    status, trail = await call(
        http, "GET", f"{service.base}/v1/audit?patient_id={pid}&limit=2", headers=service.operator
    )
    assert status == 200
    assert [(e["action"], e["actor"], e["org_id"]) for e in trail["entries"]] == [
        ("alerts.list", "karen", service.org("akut-syd")),
        ("alerts.read", "karen", service.org("akut-syd")),
    ]
    assert trail["entries"][1]["reason"] == "home visit planning"
    assert trail["entries"][1]["detail"] == {"alert_id": alert_id}
    assert trail["next_before"] == trail["entries"][1]["id"]
    # Reading the trail is itself on the trail.
    _, again = await call(
        http, "GET", f"{service.base}/v1/audit?patient_id={pid}&limit=1", headers=service.operator
    )
    assert again["entries"][0]["action"] == "audit.read"

"""Escalation that never forgets, on the real database: timers stored with the alert, fired
exactly once by racing schedulers and across a crash or a restart, and never after an
acknowledgement; worsening, snoozing and auto-resolving move the timers as they should."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from services.alerts import escalations, lifecycle
from services.alerts.care_store import CareStore
from services.alerts.domain import lifecycle as rules
from services.alerts.domain.routing import RoutingPolicy
from services.alerts.engine import apply_assessments
from services.alerts.responders import Router
from shared import db
from shared.events import News2Part, RiskAssessed
from shared.settings import DatabaseSettings

NEWS2_BY_SEVERITY = {"low": 0, "low-medium": 3, "medium": 5, "high": 9}


@dataclass
class Ward:
    """A small care structure of this test's own: one municipality, its acute team, a GP and
    the region's out-of-hours service."""

    acute: str
    ooh: str
    gp: str
    municipality: str
    region: str
    topic: str

    def patient(self, n: int) -> str:
        return f"pt-{self.region}-{n}"


@pytest.fixture
async def ward(pool: Any, infra: Any) -> Ward:
    s = infra.suffix
    w = Ward(f"akut-{s}", f"ooh-{s}", f"gp-{s}", f"kommune-{s}", f"region-{s}", infra.topics.alerts)
    await pool.executemany(
        "INSERT INTO organisations (org_id, kind, name, phone, region, municipalities) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (w.acute, "acute_team", "Akutteam", "+45 01", w.region, [w.municipality]),
            (w.ooh, "out_of_hours", "Lægevagten", "+45 02", w.region, []),
            (w.gp, "gp_practice", "Lægehuset", "+45 03", w.region, []),
        ],
    )
    await pool.executemany(
        "INSERT INTO patients (patient_id, municipality, gp_practice_id, region) "
        "VALUES ($1, $2, $3, $4)",
        [(w.patient(n), w.municipality, w.gp, w.region) for n in range(30)],
    )
    return w


def assessment(patient_id: str, severity: str, *, at: datetime | None = None) -> RiskAssessed:
    total = NEWS2_BY_SEVERITY[severity]
    return RiskAssessed(
        assessment_id=str(uuid.uuid4()),
        patient_id=patient_id,
        window_end=at or datetime.now(UTC),
        severity=severity,  # type: ignore[arg-type]
        news2=News2Part(total=total, components={"respiratory_rate": min(total, 3)}),
        reasons=[f"NEWS2 {total} ({severity})"],
    )


ROUTER = Router(CareStore(ttl_s=0), RoutingPolicy())


async def raise_alerts(pool: Any, ward: Ward, patients: list[str], severity: str) -> list[Any]:
    changes = await apply_assessments(
        pool,
        [assessment(p, severity) for p in patients],
        alerts_topic=ward.topic,
        min_low_total=3,
        router=ROUTER,
        auto_resolve_after=timedelta(minutes=60),
    )
    return [uuid.UUID(c.alert.id) for c in changes]


async def timers_of(pool: Any, alert_id: uuid.UUID) -> list[Any]:
    return list(
        await pool.fetch(
            "SELECT * FROM escalation_steps WHERE alert_id = $1 ORDER BY plan, step_index",
            alert_id,
        )
    )


async def escalated_steps(pool: Any, alert_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
    rows = await pool.fetch(
        "SELECT alert_id, (detail->>'plan')::int AS plan, (detail->>'step')::int AS step "
        "FROM alert_events WHERE change = 'escalated' AND alert_id = ANY($1::uuid[]) "
        "ORDER BY seq",
        alert_ids,
    )
    return [(r["alert_id"], r["step"]) for r in rows]


async def fire_until_quiet(pool: Any, topic: str, *, now: datetime, instance: str) -> None:
    while await escalations.fire_due(pool, alerts_topic=topic, now=now, limit=3, instance=instance):
        pass


async def test_a_raised_alert_stores_its_route_and_timers_with_it(pool, ward):
    [alert_id] = await raise_alerts(pool, ward, [ward.patient(0)], "high")
    timers = await timers_of(pool, alert_id)
    assert [(t["kind"], t["status"]) for t in timers] == [
        ("emergency_112", "fired"),
        ("acute_team", "fired"),
        ("out_of_hours", "pending"),
        ("exhausted", "pending"),
    ]
    opened = timers[0]["due_at"]
    assert timers[2]["due_at"] - opened == timedelta(seconds=300)
    assert timers[3]["due_at"] - opened == timedelta(seconds=900)
    raised = await pool.fetchrow(
        "SELECT seq, detail FROM alert_events WHERE alert_id = $1 AND change = 'raised'", alert_id
    )
    assert [s["org_id"] for s in raised["detail"]["paged"]] == [None, ward.acute]
    assert timers[1]["seq"] == raised["seq"]


async def test_a_second_assessment_updates_one_alert_instead_of_raising_another(pool, ward):
    patient = ward.patient(1)
    first = await raise_alerts(pool, ward, [patient], "medium")
    again = await raise_alerts(pool, ward, [patient, patient], "medium")
    assert len(first) == 1 and again == []
    assert await pool.fetchval("SELECT count(*) FROM alerts WHERE patient_id = $1", patient) == 1


async def test_two_schedulers_racing_fire_every_timer_exactly_once(pool, ward, database):
    alert_ids = await raise_alerts(pool, ward, [ward.patient(n) for n in range(2, 22)], "high")
    other = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=3))
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        await asyncio.gather(
            fire_until_quiet(pool, ward.topic, now=later, instance="a"),
            fire_until_quiet(other, ward.topic, now=later, instance="b"),
            fire_until_quiet(other, ward.topic, now=later, instance="c"),
        )
    finally:
        await other.close()
    fired = await escalated_steps(pool, alert_ids)
    # Out-of-hours paged and the chain exhausted, once each, for every alert.
    assert sorted(fired) == sorted((a, step) for a in alert_ids for step in (2, 3))
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM escalation_steps WHERE alert_id = ANY($1::uuid[]) "
        "GROUP BY status",
        alert_ids,
    )
    assert {r["status"]: r["n"] for r in statuses} == {"fired": 80}


async def test_a_scheduler_dying_before_its_commit_leaves_the_timer_to_fire_once(
    pool, ward, database
):
    [alert_id] = await raise_alerts(pool, ward, [ward.patient(22)], "high")
    later = datetime.now(UTC) + timedelta(hours=1)
    blocker = await db.connect(database)
    try:
        # Hold the alert's timers so the scheduler stops inside its transaction, after
        # claiming the alert, and can be killed there.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "SELECT id FROM escalation_steps WHERE alert_id = $1 AND status = 'pending' FOR UPDATE",
            alert_id,
        )
        task = asyncio.create_task(
            escalations.fire_due(pool, alerts_topic=ward.topic, now=later, instance="doomed")
        )
        await wait_for_lock_waiter(pool, task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transaction.rollback()
    finally:
        await blocker.close()
    assert await escalated_steps(pool, [alert_id]) == []
    assert [t["status"] for t in await timers_of(pool, alert_id)][2:] == ["pending", "pending"]

    await fire_until_quiet(pool, ward.topic, now=later, instance="next")
    await fire_until_quiet(pool, ward.topic, now=later, instance="after-restart")
    assert await escalated_steps(pool, [alert_id]) == [(alert_id, 2), (alert_id, 3)]
    fired_by = {t["fired_by"] for t in await timers_of(pool, alert_id) if t["kind"] != "acute_team"}
    assert "doomed" not in fired_by


async def wait_for_lock_waiter(pool: Any, task: asyncio.Task[Any]) -> None:
    """Until a session waits on a row lock (the scheduler, stopped mid-transaction). Asked
    outside any transaction, which would keep showing its first view of the activity."""
    async with asyncio.timeout(30):
        while not task.done():
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%escalation_steps%FOR UPDATE%'"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the scheduler finished without waiting for the lock")


async def test_timers_survive_a_restart_just_before_and_after_the_deadline(pool, ward, database):
    [alert_id] = await raise_alerts(pool, ward, [ward.patient(23)], "medium")
    deadline = (await timers_of(pool, alert_id))[1]["due_at"]
    for instant, expected in [
        (deadline - timedelta(seconds=1), []),
        (deadline, [(alert_id, 1)]),
        (deadline + timedelta(seconds=1), [(alert_id, 1)]),
    ]:
        # Every round is a fresh instance with nothing in memory.
        restarted = await db.create_pool(DatabaseSettings(url=SecretStr(database), pool_max=2))
        try:
            await fire_until_quiet(restarted, ward.topic, now=instant, instance="restarted")
        finally:
            await restarted.close()
        assert await escalated_steps(pool, [alert_id]) == expected


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_an_alert_taken_before_its_deadline_is_never_paged_again(pool, ward, action):
    patient = ward.patient(24 if action == "acknowledge" else 25)
    [alert_id] = await raise_alerts(pool, ward, [patient], "high")
    rule = rules.acknowledge if action == "acknowledge" else rules.resolve
    await lifecycle.act(
        pool,
        alert_id=alert_id,
        org_id=ward.acute,
        actor="nurse:karen",
        rule=lambda state, at: rule(state),
        alerts_topic=ward.topic,
    )
    await fire_until_quiet(
        pool, ward.topic, now=datetime.now(UTC) + timedelta(days=1), instance="x"
    )
    assert await escalated_steps(pool, [alert_id]) == []
    cancelled = [t for t in await timers_of(pool, alert_id) if t["status"] == "cancelled"]
    assert [t["cancel_reason"] for t in cancelled] == [f"{action}d"] * 2


async def test_the_scheduler_checks_the_status_again_under_the_lock(pool, ward):
    [alert_id] = await raise_alerts(pool, ward, [ward.patient(26)], "high")
    # As if acknowledged by a path that did not cancel the timers.
    await pool.execute("UPDATE alerts SET status = 'acknowledged' WHERE alert_id = $1", alert_id)
    await fire_until_quiet(
        pool, ward.topic, now=datetime.now(UTC) + timedelta(days=1), instance="x"
    )
    assert await escalated_steps(pool, [alert_id]) == []
    assert {t["status"] for t in await timers_of(pool, alert_id)} == {"fired", "cancelled"}


async def test_a_worsening_replans_and_pages_the_new_route_at_once(pool, ward):
    patient = ward.patient(27)
    [alert_id] = await raise_alerts(pool, ward, [patient], "medium")
    await raise_alerts(pool, ward, [patient], "high")
    timers = await timers_of(pool, alert_id)
    assert [(t["plan"], t["kind"], t["status"]) for t in timers] == [
        (1, "acute_team", "fired"),
        (1, "out_of_hours", "cancelled"),
        (1, "exhausted", "cancelled"),
        (2, "emergency_112", "fired"),
        (2, "acute_team", "fired"),
        (2, "out_of_hours", "pending"),
        (2, "exhausted", "pending"),
    ]
    worsened = await pool.fetchrow(
        "SELECT detail FROM alert_events WHERE alert_id = $1 AND change = 'worsened'", alert_id
    )
    assert worsened["detail"]["from_severity"] == "medium"
    assert [s["kind"] for s in worsened["detail"]["paged"]] == ["emergency_112", "acute_team"]


async def test_a_snooze_moves_the_timers_and_a_worsening_ends_it(pool, ward):
    patient = ward.patient(28)
    [alert_id] = await raise_alerts(pool, ward, [patient], "medium")
    before = (await timers_of(pool, alert_id))[1]["due_at"]
    await lifecycle.act(
        pool,
        alert_id=alert_id,
        org_id=ward.gp,
        actor="gp:ole",
        rule=lambda state, at: rules.snooze(
            state, until=at + timedelta(minutes=30), at=at, longest=timedelta(hours=24)
        ),
        alerts_topic=ward.topic,
    )
    moved = (await timers_of(pool, alert_id))[1]["due_at"]
    assert moved - before == timedelta(minutes=30)
    await fire_until_quiet(pool, ward.topic, now=before + timedelta(minutes=29), instance="x")
    assert await escalated_steps(pool, [alert_id]) == []

    await raise_alerts(pool, ward, [patient], "high")
    row = await pool.fetchrow(
        "SELECT status, snoozed_until FROM alerts WHERE alert_id = $1", alert_id
    )
    assert (row["status"], row["snoozed_until"]) == ("open", None)


async def test_quiet_readings_resolve_the_alert_and_cancel_its_timers(pool, ward):
    patient = ward.patient(29)
    [alert_id] = await raise_alerts(pool, ward, [patient], "medium")
    start = datetime.now(UTC)
    quiet = [assessment(patient, "low", at=start + timedelta(minutes=m)) for m in (0, 30)]
    assert await apply_assessments(
        pool, quiet, alerts_topic=ward.topic, min_low_total=3, router=ROUTER,
        auto_resolve_after=timedelta(minutes=60),
    ) == []  # fmt: skip
    normal_since = await pool.fetchval(
        "SELECT normal_since FROM alerts WHERE alert_id = $1", alert_id
    )
    assert normal_since == start
    # No further reading arrives: the sweep resolves it once the hour has passed.
    assert (
        await lifecycle.auto_resolve_due(
            pool,
            after=timedelta(minutes=60),
            alerts_topic=ward.topic,
            now=start + timedelta(minutes=59),
        )
        == []
    )
    [resolved] = await lifecycle.auto_resolve_due(
        pool, after=timedelta(minutes=60), alerts_topic=ward.topic, now=start + timedelta(hours=1)
    )
    assert (resolved.alert.id, resolved.change, resolved.actor) == (
        str(alert_id),
        "resolved",
        "system:auto-resolve",
    )
    assert {t["status"] for t in await timers_of(pool, alert_id)} == {"fired", "cancelled"}


def fallbacks_counted() -> float:
    value = REGISTRY.get_sample_value("naervagt_routing_fallbacks_total", {"severity": "high"})
    return value or 0.0


async def test_an_unknown_patient_still_gets_an_alert_and_a_fallback_route(pool, ward, caplog):
    stranger = f"pt-unknown-{ward.region}"
    counted = fallbacks_counted()
    with caplog.at_level(logging.WARNING, logger="services.alerts.responders"):
        [alert_id] = await raise_alerts(pool, ward, [stranger], "high")
    # The operator is told: a log line naming the patient and a metric.
    told = [r for r in caplog.records if r.getMessage() == "alert routed with missing responders"]
    assert [r.patient_id for r in told] == [stranger]
    assert fallbacks_counted() == counted + 1
    route = await pool.fetchval("SELECT route FROM alerts WHERE alert_id = $1", alert_id)
    assert route["warnings"]
    assert [s["kind"] for s in route["chain"]] == ["emergency_112", "out_of_hours"]
    assert route["chain"][1]["name"] == RoutingPolicy().fallback_name
    assert [t["kind"] for t in await timers_of(pool, alert_id)] == [
        "emergency_112",
        "out_of_hours",
        "exhausted",
    ]


async def test_the_alert_history_cannot_be_rewritten(pool, ward):
    [alert_id] = await raise_alerts(pool, ward, [ward.patient(0)], "medium")
    for statement in (
        "UPDATE alert_events SET actor = 'someone else' WHERE alert_id = $1",
        "DELETE FROM alert_events WHERE alert_id = $1",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute(statement, alert_id)
    assert (
        await pool.fetchval("SELECT actor FROM alert_events WHERE alert_id = $1", alert_id)
        == "system:scorer"
    )

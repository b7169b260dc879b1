"""The console's patient view API (vital signs with reference ranges and alert history), its
configuration endpoint and its static assets, against the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.alerts.app import create_app as alerts_app
from services.alerts.patients_api import MAX_POINTS
from services.alerts.settings import AlertsSettings


@pytest.fixture
async def alerts(infra: Any, serve: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALERTS_VIDEO_URL", "http://video.example:8083/")
    settings = AlertsSettings(
        port=0,
        scorer_group=f"scorer-{infra.suffix}",
        engine_group=f"engine-{infra.suffix}",
        **infra.common(),
    )
    return str(await serve(alerts_app(settings)))


async def add_readings(pool: Any, patient_id: str, rows: list[tuple[str, float, datetime]]) -> None:
    await pool.executemany(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, unit, "
        "measured_at, received_at) VALUES ('dev-test', $1, $2, $3, $4, '-', $5, $5)",
        [(f"{patient_id}-{n}", patient_id, t, v, at) for n, (t, v, at) in enumerate(rows)],
    )


async def get(http: Any, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def test_vitals_are_the_organisations_patients_within_the_period_with_their_ranges(
    alerts: str, infra: Any, care: Any, pool: Any, http: Any
) -> None:
    await pool.execute(
        "UPDATE patients SET condition = 'heart_failure' WHERE patient_id = $1", care.patient_id
    )
    now = datetime.now(UTC)
    await add_readings(
        pool,
        care.patient_id,
        [
            ("systolic_bp", 140.0, now - timedelta(days=2)),
            ("systolic_bp", 90.0, now - timedelta(days=1)),  # yellow for heart failure
            ("systolic_bp", 80.0, now - timedelta(hours=1)),  # red
            ("systolic_bp", 150.0, now - timedelta(days=10)),  # before the period
            ("weight", 82.4, now - timedelta(days=1)),
        ],
    )
    alert_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO alerts (alert_id, patient_id, kind, dedup_key, status, severity, news2,
               reasons, assessment, opened_at, updated_at)
           VALUES ($1, $2, 'news2', $3, 'open', 'medium', $4, $5, $6, now(), now())""",
        alert_id,
        care.patient_id,
        f"{care.patient_id}:news2:{alert_id}",
        {"total": 5, "components": {"systolic_bp": 3}, "single_parameter_3": True},
        ["NEWS2 5 (medium)", "systolic pressure 80 mmHg (3 points)"],
        {"model": {"version": "m-1", "probability": 0.42, "top_features": [["spo2", 0.3]]}},
    )
    await pool.execute(
        "INSERT INTO alert_events (alert_id, change, actor, body) "
        "VALUES ($1, 'raised', 'system:scorer', '{}')",
        alert_id,
    )
    nurse = infra.token("nurse", care.acute_team, subject="nurse-1")
    url = f"{alerts}/v1/patients/{care.patient_id}/vitals?days=7"

    status, body = await get(http, url, nurse)

    assert status == 200
    assert body["patient"]["condition_group"] == "heart_failure"
    systolic = body["series"]["systolic_bp"]
    assert systolic["values"] == [140.0, 90.0, 80.0]
    assert systolic["levels"] == ["green", "yellow", "red"]
    assert systolic["times"] == sorted(systolic["times"])
    assert body["series"]["weight"]["values"] == [82.4]
    assert "levels" not in body["series"]["weight"]
    assert body["series"]["spo2"]["values"] == []
    assert body["reference_ranges"]["systolic_bp"]["red_low"] == 85
    assert body["reference_ranges"]["spo2"] == {
        "red_low": 90,
        "yellow_low": 92,
        "yellow_high": None,
        "red_high": None,
    }
    assert "weight" not in body["reference_ranges"]
    [alert] = body["alerts"]
    assert (alert["id"], alert["severity"], alert["news2"]["total"]) == (str(alert_id), "medium", 5)
    assert alert["model"]["probability"] == 0.42
    assert [c["change"] for c in alert["changes"]] == ["raised"]

    audited = await pool.fetchrow(
        "SELECT actor, org_id, detail FROM audit_log WHERE action = 'patient.vitals' "
        "AND patient_id = $1",
        care.patient_id,
    )
    assert dict(audited.items()) == {
        "actor": "nurse-1",
        "org_id": care.acute_team,
        "detail": {"days": 7},
    }

    # Another municipality's acute team gets no answer about this patient, nor does anyone
    # about a patient that does not exist; an operator is not a clinician.
    other = infra.token("nurse", care.other_acute_team)
    assert (await get(http, url, other))[0] == 404
    assert (await get(http, f"{alerts}/v1/patients/pt-nobody/vitals", nurse))[0] == 404
    assert (await get(http, url, infra.token("operator", care.acute_team)))[0] == 403


async def test_days_must_be_a_sensible_whole_number(
    alerts: str, infra: Any, care: Any, http: Any
) -> None:
    nurse = infra.token("nurse", care.acute_team)
    base = f"{alerts}/v1/patients/{care.patient_id}/vitals"
    for bad in ("0", "-1", "seven", "1000"):
        status, body = await get(http, f"{base}?days={bad}", nurse)
        assert status == 422, bad
        assert body["errors"][0]["field"] == "days"
    status, body = await get(http, base, nurse)
    assert (status, body["days"]) == (200, 7)


async def test_a_dense_series_is_averaged_into_fewer_points(
    alerts: str, infra: Any, care: Any, pool: Any, http: Any
) -> None:
    start = datetime.now(UTC) - timedelta(hours=12)
    count = MAX_POINTS + 500
    await add_readings(
        pool,
        care.patient_id,
        [
            ("heart_rate", 60.0 if n % 2 else 80.0, start + timedelta(seconds=15 * n))
            for n in range(count)
        ],
    )
    nurse = infra.token("nurse", care.acute_team)
    status, body = await get(http, f"{alerts}/v1/patients/{care.patient_id}/vitals?days=1", nurse)

    assert status == 200
    heart = body["series"]["heart_rate"]
    assert heart["averaged_over_s"] is not None
    assert 0 < len(heart["values"]) <= MAX_POINTS
    assert all(60.0 <= v <= 80.0 for v in heart["values"])
    assert any(60.0 < v < 80.0 for v in heart["values"])
    assert heart["times"] == sorted(heart["times"])


async def test_the_page_its_configuration_and_its_assets_are_served(alerts: str, http: Any) -> None:
    async with http.get(f"{alerts}/v1/console/config") as response:
        assert await response.json() == {"video_url": "http://video.example:8083"}
    async with http.get(f"{alerts}/console") as response:
        page = await response.text()
    assert '<script src="/static/console.js"' in page
    async with http.get(f"{alerts}/static/console.js") as response:
        assert response.status == 200
        assert "consoleState" in await response.text()
    async with http.get(f"{alerts}/static/vendor/uPlot.iife.min.js") as response:
        assert response.status == 200, (
            "the chart library is not built: run `npm ci` and `npm run build` in "
            "services/alerts/web"
        )
        assert "uPlot" in await response.text()

"""GET/PUT /v1/patients/{id}/thresholds: the clinicians of the patient's organisations read and
change the reference ranges and cadences; others see nothing; bad changes are refused field by
field; every read and change is audited."""

from __future__ import annotations

from typing import Any

import pytest

from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings


@pytest.fixture
async def alerts(infra, serve) -> str:
    settings = AlertsSettings(
        port=0,
        scorer_group=f"scorer-{infra.suffix}",
        engine_group=f"engine-{infra.suffix}",
        **infra.common(),
    )
    return await serve(create_app(settings))


def auth(infra: Any, org_id: str, role: str = "nurse", subject: str = "nurse-7") -> dict[str, str]:
    return {"Authorization": f"Bearer {infra.token(role, org_id, subject)}"}


async def test_the_patients_own_team_reads_the_defaults_of_the_condition_group(
    alerts, infra, care, http, pool
):
    await pool.execute(
        "UPDATE patients SET condition = 'copd' WHERE patient_id = $1", care.patient_id
    )
    url = f"{alerts}/v1/patients/{care.patient_id}/thresholds"
    async with http.get(url, headers=auth(infra, care.acute_team)) as response:
        assert response.status == 200
        document = await response.json()
    assert document["condition_group"] == "copd"
    assert document["limits"]["spo2"] == {
        "red_low": 88.0,
        "yellow_low": 90.0,
        "yellow_high": None,
        "red_high": None,
    }
    assert document["overrides"] == {}
    assert document["cadence_hours"] == {"heart_rate": 24.0, "spo2": 24.0}
    audited = await pool.fetchrow(
        "SELECT actor, role, org_id, reason FROM audit_log "
        "WHERE patient_id = $1 AND action = 'thresholds.read'",
        care.patient_id,
    )
    assert dict(audited.items()) == {
        "actor": "nurse-7",
        "role": "nurse",
        "org_id": care.acute_team,
        "reason": "reference ranges view",
    }


async def test_another_organisation_sees_no_such_patient_and_others_are_refused(
    alerts, infra, care, http, pool
):
    url = f"{alerts}/v1/patients/{care.patient_id}/thresholds"
    change = {"overrides": {"spo2": {"red_low": 85}}, "reason": "trying"}
    async with http.get(url, headers=auth(infra, care.other_acute_team)) as response:
        assert response.status == 404
    async with http.put(url, json=change, headers=auth(infra, care.other_acute_team)) as response:
        assert response.status == 404
    async with http.get(url, headers=auth(infra, care.acute_team, role="operator")) as response:
        assert response.status == 403
    async with http.get(url) as response:
        assert response.status == 401
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM patient_thresholds WHERE patient_id = $1", care.patient_id
        )
        == 0
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE patient_id = $1", care.patient_id)
        == 0
    )


async def test_a_bad_change_is_refused_field_by_field_and_changes_nothing(
    alerts, infra, care, http, pool
):
    url = f"{alerts}/v1/patients/{care.patient_id}/thresholds"
    change = {
        "overrides": {
            "spo2": {"red_low": 95},  # above the default yellow_low of 94
            "heart_rate": {"yellow_high": "fast"},
            "on_oxygen": {"red_low": 1},
        },
        "cadence_overrides": {"weight": -24, "pulse": 24},
        "colour": "blue",
    }
    async with http.put(url, json=change, headers=auth(infra, care.acute_team)) as response:
        assert response.status == 422
        body = await response.json()
    problems = {p["field"]: p["message"] for p in body["errors"]}
    assert set(problems) == {
        "overrides.spo2.red_low",
        "overrides.heart_rate.yellow_high",
        "overrides.on_oxygen",
        "cadence_overrides.weight",
        "cadence_overrides.pulse",
        "colour",
        "reason",
    }
    assert problems["overrides.spo2.red_low"] == "must not be above yellow_low (94)"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM patient_thresholds WHERE patient_id = $1", care.patient_id
        )
        == 0
    )


async def test_a_change_is_stored_shown_and_audited_with_its_reason(
    alerts, infra, care, http, pool
):
    url = f"{alerts}/v1/patients/{care.patient_id}/thresholds"
    change = {
        "overrides": {"spo2": {"red_low": 86, "yellow_low": 88}},
        "cadence_overrides": {"weight": 24, "heart_rate": None},
        "reason": "chronic hypoxaemia, agreed with the pulmonologist",
    }
    async with http.put(url, json=change, headers=auth(infra, care.acute_team)) as response:
        assert response.status == 200
    async with http.get(url, headers=auth(infra, care.acute_team, role="gp")) as response:
        document = await response.json()
    assert document["limits"]["spo2"]["red_low"] == 86.0
    assert document["limits"]["spo2"]["yellow_low"] == 88.0
    assert document["limits"]["heart_rate"] == document["defaults"]["heart_rate"]
    assert document["cadence_hours"] == {"spo2": 24.0, "weight": 24.0}
    assert document["updated_by"] == "nurse:nurse-7"
    assert document["reason"] == change["reason"]
    audited = await pool.fetchrow(
        "SELECT actor, reason, detail FROM audit_log "
        "WHERE patient_id = $1 AND action = 'thresholds.change'",
        care.patient_id,
    )
    assert audited["actor"] == "nurse-7"
    assert audited["reason"] == change["reason"]
    assert audited["detail"]["before"] == {"overrides": {}, "cadence_overrides": {}}
    assert audited["detail"]["after"]["overrides"] == change["overrides"]

    # A later change replaces the whole set of changes: back to the defaults.
    reset = {"reason": "exacerbation over"}
    async with http.put(url, json=reset, headers=auth(infra, care.acute_team)) as response:
        assert response.status == 200
        document = await response.json()
    assert document["limits"] == document["defaults"]
    assert document["cadence_hours"] == {"heart_rate": 24.0, "spo2": 24.0}

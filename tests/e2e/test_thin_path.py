"""A signed set of readings scoring NEWS2 >= 7 reaches the console of the responsible team,
through the real broker and database — and only that team's console."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import SecretStr

from services.alerts.app import create_app as alerts_app
from services.alerts.settings import AlertsSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestSettings
from shared.device_client import DeviceClient


async def next_alert(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        message = await ws.receive_json()
        if message["type"] == "alert":
            return message


async def open_console(
    http: aiohttp.ClientSession, base: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    async with http.post(
        f"{base}/v1/console/tickets", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
        ticket = (await response.json())["ticket"]
    ws = await http.ws_connect(f"{base}/v1/console/ws?ticket={ticket}")
    hello = await ws.receive_json()
    assert hello["type"] == "hello"
    synced = await ws.receive_json()
    assert synced["type"] == "synced"
    return ws


async def test_high_news2_reading_appears_on_the_responsible_console(infra, care, serve, http):
    ingest = await serve(
        ingest_app(
            IngestSettings(
                port=0,
                secret_key=SecretStr("k" * 40),
                store_group=f"store-{infra.suffix}",
                **infra.common(),
            )
        )
    )
    alerts = await serve(
        alerts_app(
            AlertsSettings(
                port=0,
                scorer_group=f"scorer-{infra.suffix}",
                engine_group=f"engine-{infra.suffix}",
                **infra.common(),
            )
        )
    )
    device = await register(http, ingest, infra, care.patient_id)
    other_device = await register(http, ingest, infra, care.other_patient_id)

    own = await open_console(http, alerts, infra.token("nurse", care.acute_team))
    other = await open_console(http, alerts, infra.token("nurse", care.other_acute_team))

    client = DeviceClient(ingest, device["device_id"], device["secret"])
    status, body = await client.post(http, deteriorated_readings("a"))
    assert (status, body["accepted"], body["rejected"]) == (202, 7, [])

    message = await asyncio.wait_for(next_alert(own), 60)
    alert = message["alert"]
    assert alert["patient_id"] == care.patient_id
    assert alert["severity"] == "high"
    assert alert["status"] == "open"
    assert alert["news2"]["total"] == 12
    assert alert["news2"]["components"]["respiratory_rate"] == 3
    assert any("SpO2 90%" in reason for reason in alert["reasons"])

    # The other municipality's nurse never saw that alert: the first alert on that console is
    # the one for its own patient, raised after the first one was delivered.
    other_client = DeviceClient(ingest, other_device["device_id"], other_device["secret"])
    status, _ = await other_client.post(http, deteriorated_readings("b"))
    assert status == 202
    first_seen_by_other = await asyncio.wait_for(next_alert(other), 60)
    assert first_seen_by_other["alert"]["patient_id"] == care.other_patient_id
    await own.close()
    await other.close()


async def register(http: aiohttp.ClientSession, ingest: str, infra: Any, patient_id: str) -> Any:
    async with http.post(
        f"{ingest}/v1/admin/devices",
        json={"patient_id": patient_id, "kind": "pulse-oximeter"},
        headers={"Authorization": f"Bearer {infra.token('operator', 'platform')}"},
    ) as response:
        assert response.status == 201
        return await response.json()


def deteriorated_readings(prefix: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    vitals = {
        "respiratory_rate": (26, "/min"),  # 3
        "spo2": (90, "%"),  # 3
        "systolic_bp": (95, "mm[Hg]"),  # 2
        "heart_rate": (120, "/min"),  # 2
        "temperature": (39.4, "Cel"),  # 2
        "on_oxygen": (False, "1"),  # 0
        "consciousness": ("A", "1"),  # 0
    }
    return [
        {"reading_id": f"{prefix}-{n}", "type": t, "value": v, "unit": u, "measured_at": now}
        for n, (t, (v, u)) in enumerate(vitals.items())
    ]

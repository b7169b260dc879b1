"""Simulated home devices: realistic vital signs, a few patients deteriorating over minutes.

Each device posts a signed batch every few seconds. A deteriorating patient drifts from their
own baseline towards an exacerbation (falling SpO2, rising respiration and pulse, fever,
falling pressure), so alerts open and worsen on the console within the first minute.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from shared.device_client import DeviceClient
from shared.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Profile:
    heart_rate: float
    spo2: float
    respiratory_rate: float
    systolic_bp: float
    temperature: float
    # Seconds after start when deterioration begins, and how long it takes to peak; None: stable.
    onset_s: float | None = None
    ramp_s: float = 90.0
    severity: float = 1.0  # 1.0 is a full exacerbation (NEWS2 well above 7)


def make_profile(
    rng: random.Random, *, condition: str, spo2_scale: int, deteriorates: bool
) -> Profile:
    spo2 = rng.uniform(88, 92) if spo2_scale == 2 else rng.uniform(94.5, 98.5)
    if condition == "copd" and spo2_scale == 1:
        spo2 = rng.uniform(94, 96)
    return Profile(
        heart_rate=rng.uniform(58, 86),
        spo2=spo2,
        respiratory_rate=rng.uniform(12, 18),
        systolic_bp=rng.uniform(115, 145),
        temperature=rng.uniform(36.3, 37.2),
        onset_s=rng.uniform(0, 40) if deteriorates else None,
        ramp_s=rng.uniform(30, 120),
        severity=rng.uniform(0.5, 1.2),
    )


def vitals_at(profile: Profile, elapsed_s: float, rng: random.Random) -> dict[str, float]:
    """The patient's vitals at ``elapsed_s``, with device noise."""
    progress = 0.0
    if profile.onset_s is not None and elapsed_s > profile.onset_s:
        progress = min(1.0, (elapsed_s - profile.onset_s) / profile.ramp_s) * profile.severity
    return {
        "heart_rate": round(profile.heart_rate + 45 * progress + rng.gauss(0, 2)),
        "spo2": round(min(100.0, profile.spo2 - 9 * progress + rng.gauss(0, 0.6))),
        "respiratory_rate": round(profile.respiratory_rate + 12 * progress + rng.gauss(0, 1)),
        "systolic_bp": round(profile.systolic_bp - 35 * progress + rng.gauss(0, 4)),
        "temperature": round(profile.temperature + 2.2 * progress + rng.gauss(0, 0.1), 1),
    }


def readings_for(
    vitals: dict[str, float], at: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    units = {
        "heart_rate": "/min",
        "spo2": "%",
        "respiratory_rate": "/min",
        "systolic_bp": "mm[Hg]",
        "temperature": "Cel",
    }
    stamp = at.isoformat()
    readings = [
        {
            "reading_id": uuid.uuid4().hex,
            "type": t,
            "value": v,
            "unit": units[t],
            "measured_at": stamp,
        }
        for t, v in vitals.items()
        if rng.random() > 0.05  # a measurement is now and then missed
    ]
    readings.append(
        {
            "reading_id": uuid.uuid4().hex,
            "type": "on_oxygen",
            "value": False,
            "unit": "1",
            "measured_at": stamp,
        }
    )
    readings.append(
        {
            "reading_id": uuid.uuid4().hex,
            "type": "consciousness",
            # New confusion comes with the worst exacerbations.
            "value": "C" if vitals["spo2"] <= 86 and vitals["respiratory_rate"] >= 25 else "A",
            "unit": "1",
            "measured_at": stamp,
        }
    )
    return readings


async def run_device(
    client: DeviceClient,
    profile: Profile,
    session: aiohttp.ClientSession,
    *,
    interval_s: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(rng.uniform(0, interval_s))
    while True:
        now = datetime.now(UTC)
        readings = readings_for(vitals_at(profile, loop.time() - started, rng), now, rng)
        try:
            status, body = await client.post(session, readings)
            if status >= 400:
                log.warning(
                    "device request refused", extra={"status": status, "body": str(body)[:300]}
                )
        except (aiohttp.ClientError, TimeoutError, Unavailable) as exc:
            log.info("device will retry", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s * rng.uniform(0.8, 1.2))


async def run(devices: list[tuple[DeviceClient, Profile]], *, interval_s: float = 5.0) -> None:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(
            *(
                run_device(client, profile, session, interval_s=interval_s, seed=n)
                for n, (client, profile) in enumerate(devices)
            )
        )

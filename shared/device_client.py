"""A device's side of the ingest protocol: signs and posts readings (demo, tests, benchmarks).

>>> client = DeviceClient("http://localhost:8081", device_id="dev-1", secret="...")
>>> status, body = await client.post(session, [{"reading_id": "r1", "type": "spo2", ...}])
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared.auth import sign_request


@dataclass(frozen=True, slots=True)
class DeviceClient:
    base_url: str
    device_id: str
    secret: str

    def signed_headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": "application/json",
            "X-Device-Id": self.device_id,
            "X-Timestamp": ts,
            "X-Signature": sign_request(self.secret, ts, body),
        }

    async def post(
        self, session: aiohttp.ClientSession, readings: Sequence[dict[str, Any]]
    ) -> tuple[int, Any]:
        body = json.dumps({"readings": list(readings)}).encode()
        async with session.post(
            f"{self.base_url}/v1/readings", data=body, headers=self.signed_headers(body)
        ) as response:
            return response.status, await response.json(content_type=None)

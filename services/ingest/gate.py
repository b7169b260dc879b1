"""Who may send: the signature, clock, replay and rate checks on every device request.

A device signs ``"{X-Timestamp}\\n" + body`` with HMAC-SHA256 under its secret (see
:mod:`shared.auth`); a stream signs ``"{X-Timestamp}\\nGET /v1/stream"`` once, at connect.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from services.ingest.devices import ActiveDevice, DeviceRegistry
from services.ingest.domain.replay import ReplayGuard
from shared.auth import check_timestamp, verify_signature
from shared.errors import AuthError, RateLimited, UnknownDevice
from shared.ratelimit import TokenBuckets

STREAM_SIGNED_TEXT = b"GET /v1/stream"
"""What a device signs (after the timestamp line) to open the readings stream."""


class Replayed(AuthError):
    code = "replayed_request"

    def __init__(self) -> None:
        super().__init__("replayed request")


@dataclass(frozen=True, slots=True)
class Admitted:
    device: ActiveDevice
    timestamp: str
    signature: str


class DeviceGate:
    def __init__(
        self,
        registry: DeviceRegistry,
        *,
        clock_skew_s: int,
        replays: ReplayGuard,
        buckets: TokenBuckets,
    ) -> None:
        self._registry = registry
        self._clock_skew_s = clock_skew_s
        self._replays = replays
        self._buckets = buckets

    async def admit(self, headers: Mapping[str, str], signed: bytes) -> Admitted:
        """The device that signed ``signed``; 401 short of a valid, fresh signature, 429 when
        the device is over its rate."""
        device_id = headers.get("X-Device-Id", "")
        timestamp = headers.get("X-Timestamp", "")
        signature = headers.get("X-Signature", "")
        if not (device_id and timestamp and signature):
            raise AuthError("X-Device-Id, X-Timestamp and X-Signature headers are required")
        check_timestamp(timestamp, now=time.time(), max_skew_s=self._clock_skew_s)
        device = await self._registry.active(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        verify_signature(device.secret, timestamp, signed, signature)
        if not self._replays.first_time(device_id, timestamp, signature, now=time.monotonic()):
            raise Replayed()
        admitted = Admitted(device, timestamp, signature)
        try:
            self.throttle(device_id)
        except RateLimited:
            self.release(admitted)
            raise
        return admitted

    def throttle(self, device_id: str) -> None:
        """Take one token from the device's bucket, or refuse with 429 and when to retry."""
        wait = self._buckets.take(device_id, now=time.monotonic())
        if wait > 0:
            raise RateLimited(
                f"device over its rate of {self._buckets.rate_per_s:g} requests per second "
                f"(burst {self._buckets.burst})",
                retry_after_s=max(1, math.ceil(wait)),
            )

    def release(self, admitted: Admitted) -> None:
        """Forget a request that had no effect (429, 503), so that sending it again works."""
        self._replays.forget(admitted.device.device_id, admitted.timestamp, admitted.signature)

    async def still_active(self, device_id: str) -> bool:
        return await self._registry.active(device_id) is not None

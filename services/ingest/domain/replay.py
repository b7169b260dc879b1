"""Refusing replayed device requests: signatures seen within the clock-skew window, bounded.

A request's signature covers its timestamp, so it can only be replayed while the timestamp is
within ``window_s`` of the server clock; remembering each accepted signature that long is
enough. Memory is bounded by ``capacity``: past it the oldest are forgotten early, and the
reading-id deduplication stays the second line of defence (as it is across instances, which
do not share this memory).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class ReplayGuard:
    def __init__(self, *, window_s: float, capacity: int) -> None:
        if window_s <= 0 or capacity < 1:
            raise ValueError("window_s must be positive and capacity at least 1")
        self._keep_s = 2 * window_s  # a timestamp can be window_s ahead of the clock, too
        self._capacity = capacity
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # key -> forget after

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, device_id: str, timestamp: str, signature: str, *, now: float) -> bool:
        """Remember the request; False if it was seen before (a replay)."""
        self._expire(now)
        key = _key(device_id, timestamp, signature)
        if key in self._seen:
            return False
        self._seen[key] = now + self._keep_s
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def forget(self, device_id: str, timestamp: str, signature: str) -> None:
        """Forget a request whose effect never happened, so the device may send it again."""
        self._seen.pop(_key(device_id, timestamp, signature), None)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            key, until = next(iter(seen.items()))
            if until > now:
                return
            del seen[key]


def _key(device_id: str, timestamp: str, signature: str) -> bytes:
    # A short digest keeps memory per entry small; the signature itself is already unique.
    text = f"{device_id}\n{timestamp}\n{signature.strip().lower()}".encode()
    return hashlib.blake2b(text, digest_size=16).digest()

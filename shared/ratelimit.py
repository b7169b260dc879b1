"""Token buckets per key (a device, a client): a rate limiter with bounded memory and no I/O.

>>> buckets = TokenBuckets(rate_per_s=5, burst=20, max_keys=100_000)
>>> buckets.take("dev-1", now=0.0)  # 0.0: allowed; else the seconds to wait
0.0
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBuckets:
    """One bucket per key, holding up to ``burst`` tokens and refilled at ``rate_per_s``.

    At most ``max_keys`` buckets are kept; past that the least recently used one is forgotten,
    which gives that key a full bucket again should it return (a bucket idle that long has
    usually refilled anyway).
    """

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s must be positive, burst and max_keys at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        # key -> (tokens, time of that count)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, *, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if the bucket holds them and return 0.0; otherwise take nothing
        and return the seconds until it will hold them."""
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the burst {self.burst}: it could never pass")
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self.rate_per_s)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / self.rate_per_s
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

"""Token buckets per device: a burst passes, then the rate; memory stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ratelimit import TokenBuckets


def test_a_burst_passes_and_the_next_request_is_told_how_long_to_wait() -> None:
    buckets = TokenBuckets(rate_per_s=2, burst=3, max_keys=10)
    assert [buckets.take("dev-1", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("dev-1", now=100.0) == pytest.approx(0.5)
    assert buckets.take("dev-1", now=100.5) == 0.0  # refilled one token in half a second


def test_a_refused_request_takes_no_token() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1, max_keys=10)
    assert buckets.take("dev-1", now=0.0) == 0.0
    assert buckets.take("dev-1", now=0.5) == pytest.approx(0.5)
    assert buckets.take("dev-1", now=1.0) == 0.0


def test_devices_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1, max_keys=10)
    assert buckets.take("dev-1", now=0.0) == 0.0
    assert buckets.take("dev-2", now=0.0) == 0.0
    assert buckets.take("dev-1", now=0.0) > 0


def test_the_least_recently_used_bucket_is_forgotten_past_the_limit() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1, max_keys=2)
    for device in ("dev-1", "dev-2", "dev-3"):
        assert buckets.take(device, now=0.0) == 0.0
    assert len(buckets) == 2
    assert buckets.take("dev-3", now=0.0) > 0  # remembered
    assert buckets.take("dev-1", now=0.0) == 0.0  # forgotten: a full bucket again


def test_a_cost_above_the_burst_could_never_pass() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate_per_s=1, burst=2, max_keys=2).take("dev-1", now=0.0, cost=3)


@given(
    st.lists(st.floats(min_value=0, max_value=60, allow_nan=False), min_size=1, max_size=200),
    st.floats(min_value=0.1, max_value=50),
    st.integers(min_value=1, max_value=20),
)
def test_no_device_gets_more_than_its_burst_plus_the_rate(
    gaps: list[float], rate: float, burst: int
) -> None:
    buckets = TokenBuckets(rate_per_s=rate, burst=burst, max_keys=10)
    now, passed = 0.0, 0
    for gap in gaps:
        now += gap
        passed += buckets.take("dev-1", now=now) == 0.0
    assert passed <= burst + rate * now + 1e-9

"""A signed device request is accepted once; the same one again within the window is a replay."""

from __future__ import annotations

import pytest

from services.ingest.domain.replay import ReplayGuard

WINDOW = 300.0


def test_the_same_request_twice_is_refused_the_second_time() -> None:
    guard = ReplayGuard(window_s=WINDOW, capacity=100)
    assert guard.first_time("dev-1", "1700000000", "ab" * 32, now=10.0)
    assert not guard.first_time("dev-1", "1700000000", "ab" * 32, now=11.0)
    assert not guard.first_time("dev-1", "1700000000", "AB" * 32, now=12.0)  # hex case differs


def test_another_signature_timestamp_or_device_is_a_new_request() -> None:
    guard = ReplayGuard(window_s=WINDOW, capacity=100)
    assert guard.first_time("dev-1", "1700000000", "ab" * 32, now=0.0)
    assert guard.first_time("dev-1", "1700000000", "cd" * 32, now=0.0)
    assert guard.first_time("dev-1", "1700000001", "ab" * 32, now=0.0)
    assert guard.first_time("dev-2", "1700000000", "ab" * 32, now=0.0)


def test_a_request_is_remembered_as_long_as_its_timestamp_could_be_accepted() -> None:
    # A timestamp may run up to the window ahead of the clock and be accepted until a window
    # after that, so a signature must be remembered for twice the window.
    guard = ReplayGuard(window_s=WINDOW, capacity=100)
    assert guard.first_time("dev-1", "1", "ab" * 32, now=0.0)
    assert not guard.first_time("dev-1", "1", "ab" * 32, now=2 * WINDOW - 1)
    assert guard.first_time("dev-1", "1", "ab" * 32, now=2 * WINDOW + 1)
    assert len(guard) == 1


def test_memory_is_bounded_and_the_oldest_are_forgotten_first() -> None:
    guard = ReplayGuard(window_s=WINDOW, capacity=3)
    for n in range(5):
        assert guard.first_time("dev-1", str(n), "ab" * 32, now=float(n))
    assert len(guard) == 3
    assert guard.first_time("dev-1", "0", "ab" * 32, now=5.0)  # forgotten early
    assert not guard.first_time("dev-1", "4", "ab" * 32, now=5.0)  # still remembered


def test_a_forgotten_request_may_be_sent_again() -> None:
    guard = ReplayGuard(window_s=WINDOW, capacity=10)
    assert guard.first_time("dev-1", "1", "ab" * 32, now=0.0)
    guard.forget("dev-1", "1", "ab" * 32)
    assert guard.first_time("dev-1", "1", "ab" * 32, now=1.0)


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(window_s=0, capacity=10)
    with pytest.raises(ValueError):
        ReplayGuard(window_s=10, capacity=0)

"""The lifecycle settings as an operator sets them in the environment."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.alerts.lifecycle_settings import LifecycleSettings


def test_defaults_resolve_after_an_hour_and_route_by_the_default_policy() -> None:
    settings = LifecycleSettings()
    assert settings.auto_resolve_after == timedelta(hours=1)
    assert settings.longest_snooze == timedelta(hours=24)
    assert settings.routing.ack_timeout("high", "acute_team") == 300


def test_the_routing_policy_and_auto_resolve_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_AUTO_RESOLVE_MINUTES", "none")
    monkeypatch.setenv(
        "ALERTS_ROUTING",
        json.dumps(
            {"fallback_region": "syddanmark", "ack_timeouts_s": {"high": {"acute_team": 60}}}
        ),
    )
    monkeypatch.setenv("ALERTS_WEBHOOK_MAX_ATTEMPTS", "3")
    settings = LifecycleSettings()
    assert settings.auto_resolve_after is None
    assert settings.routing.fallback_region == "syddanmark"
    assert settings.routing.ack_timeout("high", "acute_team") == 60
    # The table is replaced as a whole: what it leaves out takes the default timeout.
    assert settings.routing.ack_timeout("high", "out_of_hours") == 900
    assert settings.webhook_max_attempts == 3

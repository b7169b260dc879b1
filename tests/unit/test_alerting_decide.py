"""When an assessment opens, worsens or leaves an alert alone."""

from __future__ import annotations

import pytest

from services.alerts.domain.alerting import OpenAlert, decide


@pytest.mark.parametrize(
    ("severity", "total", "action"),
    [
        ("low", 0, "none"),
        ("low", 2, "none"),
        ("low", 3, "raise"),  # the configured minimum for the low band
        ("low-medium", 3, "raise"),
        ("medium", 5, "raise"),
        ("high", 7, "raise"),
    ],
)
def test_without_an_open_alert(severity: str, total: int, action: str) -> None:
    assert decide(None, severity=severity, news2_total=total, min_low_total=3).action == action


def test_a_worse_band_worsens_the_open_alert() -> None:
    decision = decide(OpenAlert("medium"), severity="high", news2_total=8, min_low_total=3)
    assert (decision.action, decision.severity) == ("worsen", "high")


@pytest.mark.parametrize("severity", ["medium", "low-medium"])
def test_the_same_or_a_better_band_changes_nothing(severity: str) -> None:
    assert (
        decide(OpenAlert("medium"), severity=severity, news2_total=5, min_low_total=3).action
        == "none"
    )


def test_a_missing_measurement_is_always_a_task() -> None:
    decision = decide(
        None, severity="low", news2_total=None, min_low_total=3, kind="missing_measurement"
    )
    assert (decision.action, decision.severity) == ("raise", "low")


@pytest.mark.parametrize(("severity", "action"), [("low", "none"), ("low-medium", "raise")])
def test_a_trend_alerts_only_above_low(severity: str, action: str) -> None:
    decided = decide(None, severity=severity, news2_total=None, min_low_total=3, kind="trend")
    assert decided.action == action

"""Every assessment says in clinical words which values drove its score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerts.domain.assessment import explain
from services.alerts.domain.window import Observation, latest_window

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def window(spo2_scale: int = 1, **values: float | bool | str):
    observations = [Observation(t, v, NOW - timedelta(minutes=5)) for t, v in values.items()]
    return latest_window(observations, end=NOW, length=timedelta(hours=12), spo2_scale=spo2_scale)


def test_reasons_name_the_scoring_parameters_with_their_values() -> None:
    result = explain(window(spo2=91, respiratory_rate=22, heart_rate=80, on_oxygen=False))
    assert result.score.total == 5  # SpO2 91 -> 3, RR 22 -> 2, pulse 80 -> 0, air -> 0
    assert result.reasons[0] == "NEWS2 5 (medium), 3 points in a single parameter"
    assert "SpO2 91% (3 points)" in result.reasons
    assert "respiration rate 22/min (2 points)" in result.reasons
    assert not any("pulse" in r for r in result.reasons)  # scored 0: not a reason


def test_missing_parameters_are_said_not_invented() -> None:
    result = explain(window(heart_rate=135))
    assert result.score.total == 3
    assert result.reasons[-1].startswith("not measured in the window: respiratory_rate, spo2")


def test_scale_2_is_named_when_used() -> None:
    result = explain(window(spo2_scale=2, spo2=89, on_oxygen=False))
    assert result.score.components["spo2"] == 0
    assert "SpO2 scale 2" in result.reasons[0]

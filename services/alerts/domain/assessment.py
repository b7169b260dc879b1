"""Turns a scored window into an explained risk assessment: what was used and why it scored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.alerts.domain.news2 import News2Score, score
from services.alerts.domain.window import Window

_LABEL = {
    "respiratory_rate": ("respiration rate", "/min"),
    "spo2": ("SpO2", "%"),
    "air_or_oxygen": ("oxygen", ""),
    "systolic_bp": ("systolic pressure", "mmHg"),
    "heart_rate": ("pulse", "/min"),
    "consciousness": ("consciousness", ""),
    "temperature": ("temperature", "°C"),
}
# NEWS2 parameter -> the reading type that feeds it.
_SOURCE = {"air_or_oxygen": "on_oxygen"}


@dataclass(frozen=True, slots=True)
class Explained:
    score: News2Score
    values: dict[str, tuple[float | bool | str, datetime]]
    reasons: list[str]


def _describe(parameter: str, value: float | bool | str, points: int) -> str:
    label, unit = _LABEL[parameter]
    if parameter == "air_or_oxygen":
        shown = "on supplemental oxygen" if value else "on air"
        return f"{shown} ({points} points)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    spacer = "" if unit in ("%", "°C", "/min") else " "
    return f"{label} {value}{spacer}{unit} ({points} points)"


def explain(window: Window) -> Explained:
    """Score the window with NEWS2 and say, in clinical words, which values drove the score."""
    result = score(window.news2_inputs())
    reasons = [
        f"NEWS2 {result.total} ({result.band})"
        + (", 3 points in a single parameter" if result.single_parameter_3 else "")
        + (f"; SpO2 scale {window.spo2_scale}" if window.spo2_scale == 2 else "")
    ]
    for parameter, points in sorted(result.components.items(), key=lambda kv: -kv[1]):
        if points > 0:
            source = _SOURCE.get(parameter, parameter)
            reasons.append(_describe(parameter, window.values[source], points))
    if result.missing:
        reasons.append("not measured in the window: " + ", ".join(result.missing))
    values = {t: (v, window.measured_at[t]) for t, v in window.values.items()}
    return Explained(result, values, reasons)

"""Whether an assessment raises a new alert, worsens an open one, or changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.events import SEVERITY_RANK

Action = Literal["raise", "worsen", "none"]


@dataclass(frozen=True, slots=True)
class OpenAlert:
    severity: str


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    severity: str | None = None


def alerting_severity(
    severity: str, news2_total: int | None, *, min_low_total: int, kind: str = "news2"
) -> bool:
    """Whether an assessment alerts.

    A NEWS2 in the 'low' band alerts only from ``min_low_total`` points, higher bands always;
    a missing measurement is always a task for the acute team; a trend alerts above 'low'
    (a 'low' trend assessment is the all-clear that lets an open trend alert resolve).
    """
    if kind == "missing_measurement":
        return True
    if severity != "low":
        return True
    if kind == "trend":
        return False
    return news2_total is not None and news2_total >= min_low_total


def decide(
    current: OpenAlert | None,
    *,
    severity: str,
    news2_total: int | None,
    min_low_total: int,
    kind: str = "news2",
) -> Decision:
    if not alerting_severity(severity, news2_total, min_low_total=min_low_total, kind=kind):
        return Decision("none")
    if current is None:
        return Decision("raise", severity)
    if SEVERITY_RANK[severity] > SEVERITY_RANK[current.severity]:
        return Decision("worsen", severity)
    return Decision("none")

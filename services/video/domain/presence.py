"""Specialist presence: what a specialist said about themselves, and when that goes stale.

A page that stops sending heartbeats (closed laptop, lost network) must not leave a specialist
shown as available: a status older than the time-to-live counts as offline.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.errors import FieldProblem, InvalidInput


class PresenceStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"


@dataclass(frozen=True)
class PresenceUpdate:
    status: PresenceStatus
    specialties: tuple[str, ...] | None


def parse_update(document: object, *, offered: Collection[str]) -> PresenceUpdate:
    """A ``PUT /v1/presence`` body; ``specialties`` must be among those the department offers."""
    if not isinstance(document, Mapping):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("", "not an object")])
    problems: list[FieldProblem] = []
    status = document.get("status")
    if status not in {s.value for s in PresenceStatus}:
        problems.append(FieldProblem("status", "one of available, busy, offline"))
    raw = document.get("specialties")
    specialties: tuple[str, ...] | None = None
    if raw is not None:
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(s, str) and s in offered for s in raw)
        ):
            problems.append(
                FieldProblem(
                    "specialties",
                    f"a non-empty list drawn from {', '.join(sorted(offered)) or 'nothing'}",
                )
            )
        else:
            specialties = tuple(dict.fromkeys(raw))
    if problems:
        raise InvalidInput("the presence update is not valid", problems)
    return PresenceUpdate(PresenceStatus(str(status)), specialties)


def effective_status(
    status: PresenceStatus, *, updated_at: datetime, now: datetime, ttl: timedelta
) -> PresenceStatus:
    """The status to show now: a stale one is offline."""
    if now - updated_at > ttl:
        return PresenceStatus.OFFLINE
    return status

"""Consultation requests as values: what a valid request is, queue order and escalation time.

Example::

    request = parse_request({"patient_id": "pt-1", "specialty": "cardiology",
                             "urgency": "acute", "reason": "Nyopstået AFLI"},
                            specialties=DEFAULT_SPECIALTIES)
    escalation_deadline(request.urgency, requested_at=now, acute_after=timedelta(minutes=5))
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.errors import FieldProblem, InvalidInput

DEFAULT_SPECIALTIES = ("pulmonology", "cardiology", "geriatrics", "infectious_disease")
MAX_REASON_CHARS = 2000
MAX_ID_CHARS = 128


class Urgency(StrEnum):
    ACUTE = "acute"
    TODAY = "today"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """Queue position of the urgency: acute requests come first."""
        return _RANK[self]


_RANK = {Urgency.ACUTE: 0, Urgency.TODAY: 1, Urgency.ROUTINE: 2}


class ConsultStatus(StrEnum):
    WAITING = "waiting"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ConsultRequest:
    patient_id: str
    specialty: str
    urgency: Urgency
    reason: str
    alert_id: str | None


def parse_request(document: object, *, specialties: Collection[str]) -> ConsultRequest:
    """A request body checked field by field; every problem is reported at once."""
    if not isinstance(document, Mapping):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("", "not an object")])
    problems: list[FieldProblem] = []
    patient_id = _identifier(document, "patient_id", problems, required=True)
    specialty = document.get("specialty")
    if not isinstance(specialty, str) or specialty not in specialties:
        problems.append(FieldProblem("specialty", f"one of {', '.join(sorted(specialties))}"))
    urgency = document.get("urgency")
    if urgency not in {u.value for u in Urgency}:
        problems.append(FieldProblem("urgency", "one of acute, today, routine"))
    reason = document.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(FieldProblem("reason", "a short clinical question is required"))
    elif len(reason) > MAX_REASON_CHARS:
        problems.append(FieldProblem("reason", f"at most {MAX_REASON_CHARS} characters"))
    alert_id = _identifier(document, "alert_id", problems, required=False)
    if problems:
        raise InvalidInput("the consultation request is not valid", problems)
    assert isinstance(specialty, str) and isinstance(reason, str) and patient_id is not None
    return ConsultRequest(
        patient_id=patient_id,
        specialty=specialty,
        urgency=Urgency(str(urgency)),
        reason=reason.strip(),
        alert_id=alert_id,
    )


def parse_specialty(value: str | None, *, specialties: Collection[str]) -> str | None:
    """The ``specialty`` query parameter: None when absent, refused when unknown."""
    if value is None or value == "":
        return None
    if value not in specialties:
        raise InvalidInput(
            "unknown specialty",
            [FieldProblem("specialty", f"one of {', '.join(sorted(specialties))}")],
        )
    return value


def parse_status(value: str | None, *, default: ConsultStatus | None) -> ConsultStatus | None:
    if value is None or value == "":
        return default
    try:
        return ConsultStatus(value)
    except ValueError:
        raise InvalidInput(
            "unknown status",
            [FieldProblem("status", "one of waiting, accepted, cancelled")],
        ) from None


def escalation_deadline(
    urgency: Urgency, *, requested_at: datetime, acute_after: timedelta
) -> datetime | None:
    """When an unaccepted request escalates; only acute requests do."""
    if urgency is not Urgency.ACUTE:
        return None
    return requested_at + acute_after


def urgency_order() -> list[str]:
    """Urgencies from the most to the least pressing (the queue sorts by this, then by age)."""
    return [u.value for u in sorted(Urgency, key=lambda u: u.rank)]


def _identifier(
    document: Mapping[str, Any], name: str, problems: list[FieldProblem], *, required: bool
) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        problems.append(FieldProblem(name, f"an id of 1..{MAX_ID_CHARS} characters"))
        return None
    return value


def may_see(
    *,
    role: str,
    org_id: str,
    requester_org: str,
    specialty: str,
    department_specialties: Collection[str],
) -> bool:
    """Who may read a request: its requesting organisation, and specialists of the specialty.

    A nurse or GP sees the requests of their own organisation (which is responsible for the
    patient); a specialist sees those of the specialties their hospital department offers."""
    if role == "specialist":
        return specialty in department_specialties
    if role in ("nurse", "gp"):
        return org_id == requester_org
    return False

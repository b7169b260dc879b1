"""Consultation requests as values: validation, escalation deadline, queue order, visibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.video.domain.consults import (
    DEFAULT_SPECIALTIES,
    MAX_REASON_CHARS,
    ConsultStatus,
    Urgency,
    escalation_deadline,
    may_see,
    parse_request,
    parse_specialty,
    parse_status,
    urgency_order,
)
from shared.errors import InvalidInput

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def body(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "patient_id": "pt-0001",
        "specialty": "cardiology",
        "urgency": "acute",
        "reason": "  Nyopstået atrieflimren, puls 140  ",
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def problems(document: object) -> set[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_request(document, specialties=DEFAULT_SPECIALTIES)
    return {p.field for p in caught.value.problems}


def test_a_valid_request_is_read_with_its_reason_trimmed() -> None:
    request = parse_request(body(alert_id="a-1"), specialties=DEFAULT_SPECIALTIES)

    assert request.patient_id == "pt-0001"
    assert request.specialty == "cardiology"
    assert request.urgency is Urgency.ACUTE
    assert request.reason == "Nyopstået atrieflimren, puls 140"
    assert request.alert_id == "a-1"


def test_the_alert_is_optional() -> None:
    assert parse_request(body(), specialties=DEFAULT_SPECIALTIES).alert_id is None


def test_every_bad_field_is_named_at_once() -> None:
    document = {"patient_id": "", "specialty": "dermatology", "urgency": "asap", "alert_id": 7}

    assert problems(document) == {"patient_id", "specialty", "urgency", "reason", "alert_id"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * (MAX_REASON_CHARS + 1)}, "reason"),
        ({"patient_id": "p" * 200}, "patient_id"),
        ({"urgency": "ACUTE"}, "urgency"),
        ({"specialty": ["cardiology"]}, "specialty"),
    ],
)
def test_one_bad_field(changes: dict[str, Any], field: str) -> None:
    assert problems(body(**changes)) == {field}


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert problems(["pt-0001"]) == {""}


def test_only_configured_specialties_are_accepted() -> None:
    request = parse_request(body(specialty="nephrology"), specialties=["nephrology"])
    assert request.specialty == "nephrology"
    with pytest.raises(InvalidInput):
        parse_request(body(), specialties=["nephrology"])


def test_only_acute_requests_escalate_after_the_configured_time() -> None:
    after = timedelta(minutes=5)

    assert escalation_deadline(Urgency.ACUTE, requested_at=NOW, acute_after=after) == NOW + after
    assert escalation_deadline(Urgency.TODAY, requested_at=NOW, acute_after=after) is None
    assert escalation_deadline(Urgency.ROUTINE, requested_at=NOW, acute_after=after) is None


def test_the_queue_takes_acute_first_then_today_then_routine() -> None:
    assert urgency_order() == ["acute", "today", "routine"]
    assert sorted(Urgency, key=lambda u: u.rank) == [Urgency.ACUTE, Urgency.TODAY, Urgency.ROUTINE]


@pytest.mark.parametrize(
    ("role", "org_id", "offered", "seen"),
    [
        ("nurse", "akut-a", (), True),
        ("gp", "akut-a", (), True),
        ("nurse", "akut-b", (), False),
        ("specialist", "ouh-hjerte", ("cardiology",), True),
        ("specialist", "ouh-lunge", ("pulmonology",), False),
        ("specialist", "akut-a", (), False),
        ("operator", "akut-a", ("cardiology",), False),
    ],
)
def test_who_may_see_a_request(
    role: str, org_id: str, offered: tuple[str, ...], seen: bool
) -> None:
    visible = may_see(
        role=role,
        org_id=org_id,
        requester_org="akut-a",
        specialty="cardiology",
        department_specialties=offered,
    )
    assert visible is seen


def test_query_parameters() -> None:
    assert parse_status(None, default=ConsultStatus.WAITING) is ConsultStatus.WAITING
    assert parse_status("accepted", default=None) is ConsultStatus.ACCEPTED
    assert parse_specialty("", specialties=DEFAULT_SPECIALTIES) is None
    assert parse_specialty("geriatrics", specialties=DEFAULT_SPECIALTIES) == "geriatrics"
    with pytest.raises(InvalidInput):
        parse_status("open", default=None)
    with pytest.raises(InvalidInput):
        parse_specialty("surgery", specialties=DEFAULT_SPECIALTIES)

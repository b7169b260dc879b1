"""Specialist presence: updates are checked against the department, and stale status expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.video.domain.presence import PresenceStatus, effective_status, parse_update
from shared.errors import InvalidInput

OFFERED = ("pulmonology", "infectious_disease")
NOW = datetime(2026, 10, 25, 2, 30, tzinfo=UTC)


def test_a_status_for_all_the_departments_specialties() -> None:
    update = parse_update({"status": "available"}, offered=OFFERED)

    assert (update.status, update.specialties) == (PresenceStatus.AVAILABLE, None)


def test_a_status_for_some_specialties_keeps_their_order_once() -> None:
    update = parse_update(
        {"status": "busy", "specialties": ["infectious_disease", "infectious_disease"]},
        offered=OFFERED,
    )

    assert update.specialties == ("infectious_disease",)


@pytest.mark.parametrize(
    ("document", "fields"),
    [
        ({"status": "away"}, {"status"}),
        ({"status": "busy", "specialties": ["cardiology"]}, {"specialties"}),
        ({"status": "busy", "specialties": []}, {"specialties"}),
        ({"specialties": "pulmonology"}, {"status", "specialties"}),
        ("available", {""}),
    ],
)
def test_bad_updates_name_their_fields(document: object, fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_update(document, offered=OFFERED)
    assert {p.field for p in caught.value.problems} == fields


@pytest.mark.parametrize(
    ("age", "shown"),
    [
        (timedelta(seconds=0), PresenceStatus.AVAILABLE),
        (timedelta(minutes=3), PresenceStatus.AVAILABLE),
        (timedelta(minutes=3, seconds=1), PresenceStatus.OFFLINE),
    ],
)
def test_a_status_not_renewed_in_time_counts_as_offline(
    age: timedelta, shown: PresenceStatus
) -> None:
    status = effective_status(
        PresenceStatus.AVAILABLE, updated_at=NOW - age, now=NOW, ttl=timedelta(minutes=3)
    )
    assert status is shown

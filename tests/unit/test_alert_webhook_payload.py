"""Webhook payloads (native JSON and FHIR), their signatures, and the retry schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag

from services.alerts.domain.webhook import (
    AlertEvent,
    Format,
    event_id,
    payload,
    retry_delay,
    sign,
    verify,
)

SECRET = "whsec_test-secret-of-some-length"
AT = datetime(2024, 9, 10, 8, 5, tzinfo=UTC)


def make_event(*, change: str = "escalated", status: str = "open", seq: int = 41) -> AlertEvent:
    return AlertEvent(
        seq=seq,
        change=change,
        actor="system:escalation",
        at=AT,
        alert={
            "id": "7c1d0a52-3f7e-4b57-9a8e-0d5c3f1e9b11",
            "patient_id": "pt-0042",
            "kind": "news2",
            "status": status,
            "severity": "high",
            "news2": {"total": 9, "components": {"respiratory_rate": 3}},
            "reasons": ["NEWS2 9 (high)", "respiration rate 26/min (3 points)"],
            "opened_at": "2024-09-10T08:00:00+00:00",
            "updated_at": "2024-09-10T08:04:00+00:00",
        },
        detail={
            "step": 2,
            "responder": {"kind": "out_of_hours", "name": "Lægevagten", "phone": "70 11 07 07"},
        },
    )


def test_the_json_payload_carries_the_event_and_its_idempotency_key() -> None:
    document = json.loads(payload(make_event(), org_id="gp-1", format="json"))
    assert document["id"] == event_id(41) == "naervagt-alert-event-41"
    assert (document["change"], document["seq"], document["org_id"]) == ("escalated", 41, "gp-1")
    assert document["alert"]["patient_id"] == "pt-0042"
    assert document["detail"]["responder"]["name"] == "Lægevagten"


@pytest.mark.parametrize("format_", ["json", "fhir"])
def test_the_same_event_gives_the_same_body_on_every_attempt(format_: Format) -> None:
    first = payload(make_event(), org_id="gp-1", format=format_)
    assert first == payload(make_event(), org_id="gp-1", format=format_)


def test_the_fhir_payload_is_a_valid_r4_flag_and_communication() -> None:
    document = json.loads(payload(make_event(), org_id="akut-1", format="fhir"))
    bundle = Bundle.model_validate(document)
    assert bundle.type == "collection"
    flag, communication = (entry.resource for entry in bundle.entry or [])
    assert isinstance(flag, Flag) and isinstance(communication, Communication)
    assert flag.status == "active"
    assert flag.subject.identifier.value == "pt-0042"
    assert communication.priority == "stat"
    assert communication.about[0].reference == bundle.entry[0].fullUrl
    assert communication.recipient[0].identifier.value == "akut-1"
    assert "Lægevagten" in communication.payload[0].contentString
    assert communication.identifier[0].value == "41"


def test_a_resolved_alert_becomes_an_inactive_flag_with_an_end() -> None:
    document = json.loads(
        payload(make_event(change="resolved", status="resolved"), org_id="g", format="fhir")
    )
    flag = Bundle.model_validate(document).entry[0].resource
    assert flag.status == "inactive"
    assert flag.period.end is not None


def test_a_receiver_accepts_the_signature_and_refuses_a_changed_body() -> None:
    body = payload(make_event(), org_id="gp-1", format="json")
    signature = sign(SECRET, timestamp=1_725_955_500, body=body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    now = 1_725_955_510.0
    assert verify(SECRET, timestamp="1725955500", body=body, signature=signature, now=now)
    assert not verify(
        SECRET, timestamp="1725955500", body=body + b" ", signature=signature, now=now
    )
    assert not verify("another", timestamp="1725955500", body=body, signature=signature, now=now)
    # The timestamp is signed too: moving it breaks the signature.
    assert not verify(SECRET, timestamp="1725955501", body=body, signature=signature, now=now)


def test_a_receiver_refuses_a_stale_or_malformed_timestamp() -> None:
    body = b"{}"
    signature = sign(SECRET, timestamp=1000, body=body)
    assert not verify(SECRET, timestamp="1000", body=body, signature=signature, now=1301.0)
    assert not verify(SECRET, timestamp="soon", body=body, signature=signature, now=1000.0)


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    delays = [retry_delay(n, base_s=5, max_s=60).total_seconds() for n in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]
    assert retry_delay(500, base_s=5, max_s=3600) == timedelta(seconds=3600)


def test_jitter_stretches_a_delay_by_at_most_a_fifth() -> None:
    plain = retry_delay(3, base_s=5, max_s=60)
    stretched = retry_delay(3, base_s=5, max_s=60, jitter=0.999)
    assert plain < stretched < plain * 1.2
    with pytest.raises(ValueError):
        retry_delay(0, base_s=5, max_s=60)
    with pytest.raises(ValueError):
        retry_delay(1, base_s=5, max_s=60, jitter=1.0)

"""Webhook notifications as values: the payload of one alert event (native JSON or a FHIR R4
``Flag`` plus ``Communication``), its signature, and when a failed delivery is tried again.

A receiver verifies a delivery by recomputing the signature over ``"{timestamp}.{body}"``::

    >>> verify(secret, timestamp=headers["X-Naervagt-Timestamp"], body=raw_body,
    ...        signature=headers["X-Naervagt-Signature"], now=time.time())
    True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Format = Literal["json", "fhir"]
FORMATS: tuple[Format, ...] = ("json", "fhir")
CONTENT_TYPE: dict[Format, str] = {"json": "application/json", "fhir": "application/fhir+json"}
EVENT_TYPE = "dk.naervagt.alert.changed.v1"

# Deterministic ids for FHIR resources derived from an event, so a retried delivery carries the
# very same resources.
_NAMESPACE = uuid.UUID("8f0b8f0e-4b8a-4f0e-9a57-6e6165727661")
_PRIORITY = {"high": "stat", "medium": "asap", "low-medium": "urgent", "low": "routine"}
_CHANGE_WORDS = {
    "raised": "Alert raised",
    "worsened": "Alert worsened",
    "acknowledged": "Alert acknowledged",
    "escalated": "Alert escalated",
    "resolved": "Alert resolved",
    "noted": "Note added to alert",
    "assigned": "Alert assigned",
    "snoozed": "Alert snoozed",
}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One stored alert transition (a row of the append-only history)."""

    seq: int
    change: str
    actor: str
    at: datetime
    alert: dict[str, Any]
    detail: dict[str, Any] | None = None


def event_id(seq: int) -> str:
    """The idempotency key of an event: the same for every delivery attempt and subscriber."""
    return f"naervagt-alert-event-{seq}"


def json_payload(event: AlertEvent, *, org_id: str) -> dict[str, Any]:
    return {
        "id": event_id(event.seq),
        "type": EVENT_TYPE,
        "seq": event.seq,
        "change": event.change,
        "actor": event.actor,
        "at": event.at.isoformat(),
        "org_id": org_id,
        "alert": event.alert,
        "detail": event.detail or {},
    }


def _subject(patient_id: str) -> dict[str, Any]:
    # Patients are pseudonymous: referenced by identifier, never by a resolvable resource.
    return {"identifier": {"system": "urn:naervagt:patient", "value": patient_id}}


def _summary(event: AlertEvent) -> str:
    alert = event.alert
    words = _CHANGE_WORDS.get(event.change, f"Alert {event.change}")
    lines = [f"{words} ({alert['severity']}, {alert['kind']})."]
    lines.extend(str(reason) for reason in alert.get("reasons", []))
    detail = event.detail or {}
    if "text" in detail:
        lines.append(f"Note: {detail['text']}")
    responder = detail.get("responder")
    if isinstance(responder, dict):
        lines.append(f"Paged: {responder.get('name')} ({responder.get('phone') or 'no phone'})")
    if detail.get("exhausted"):
        lines.append("Nobody on the responder chain acknowledged the alert.")
    return "\n".join(lines)


def fhir_payload(event: AlertEvent, *, org_id: str) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: the alert as a ``Flag`` and the transition as a
    ``Communication`` to the subscribing organisation about that flag."""
    alert = event.alert
    alert_id = str(alert["id"])
    flag_url = f"urn:uuid:{alert_id}"
    period: dict[str, Any] = {"start": alert["opened_at"]}
    if alert["status"] == "resolved":
        period["end"] = alert["updated_at"]
    flag = {
        "resourceType": "Flag",
        "id": alert_id,
        "identifier": [{"system": "urn:naervagt:alert", "value": alert_id}],
        "status": "inactive" if alert["status"] == "resolved" else "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                        "display": "Clinical",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "urn:naervagt:alert-kind", "code": alert["kind"]}],
            "text": "; ".join(str(r) for r in alert.get("reasons", [])) or alert["kind"],
        },
        "subject": _subject(alert["patient_id"]),
        "period": period,
    }
    communication_id = str(uuid.uuid5(_NAMESPACE, event_id(event.seq)))
    communication = {
        "resourceType": "Communication",
        "id": communication_id,
        "identifier": [{"system": "urn:naervagt:alert-event", "value": str(event.seq)}],
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/communication-category",
                        "code": "alert",
                    }
                ]
            }
        ],
        "priority": _PRIORITY.get(alert["severity"], "routine"),
        "subject": _subject(alert["patient_id"]),
        "topic": {"coding": [{"system": "urn:naervagt:alert-change", "code": event.change}]},
        "about": [{"reference": flag_url}],
        "sent": event.at.isoformat(),
        "recipient": [{"identifier": {"system": "urn:naervagt:organisation", "value": org_id}}],
        "payload": [{"contentString": _summary(event)}],
    }
    return {
        "resourceType": "Bundle",
        "id": communication_id,
        "type": "collection",
        "timestamp": event.at.isoformat(),
        "entry": [
            {"fullUrl": flag_url, "resource": flag},
            {"fullUrl": f"urn:uuid:{communication_id}", "resource": communication},
        ],
    }


def payload(event: AlertEvent, *, org_id: str, format: Format) -> bytes:
    document = (
        fhir_payload(event, org_id=org_id)
        if format == "fhir"
        else json_payload(event, org_id=org_id)
    )
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, *, timestamp: int | str, body: bytes) -> str:
    """The ``X-Naervagt-Signature`` header value: ``sha256=`` and the hex HMAC-SHA256 of
    ``"{timestamp}.{body}"`` under the subscription's secret."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance_s: int = 300,
) -> bool:
    """Whether a delivery is authentic and fresh (what a receiver should check)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp=sent, body=body), signature.strip())


def retry_delay(attempt: int, *, base_s: float, max_s: float, jitter: float = 0.0) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1 for the first): doubling
    from ``base_s`` up to ``max_s``, stretched by up to a fifth by ``jitter`` in [0, 1) so that
    deliveries failed together do not all return together."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, not {attempt}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), not {jitter}")
    delay = min(max_s, base_s * 2 ** min(attempt - 1, 62))
    return timedelta(seconds=delay * (1 + jitter / 5))

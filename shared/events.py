"""Event bodies carried on the platform's Kafka topics (JSON, one pydantic model per type).

Each event class names its CloudEvents ``type``; an incompatible change is a new topic version.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.vitals import VitalType

Severity = Literal["low", "low-medium", "medium", "high"]
SEVERITY_RANK: dict[str, int] = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    ce_type: ClassVar[str]


class ReadingAccepted(Event):
    """A normalised reading that ingest accepted and the broker acknowledged."""

    ce_type: ClassVar[str] = "dk.naervagt.reading.accepted.v1"

    device_id: str
    reading_id: str
    patient_id: str
    type: VitalType
    value: float | bool | str
    unit: str
    measured_at: datetime
    received_at: datetime
    late: bool = False


class News2Part(BaseModel):
    model_config = ConfigDict(frozen=True)

    total: int
    components: dict[str, int]
    single_parameter_3: bool = False


class ObservedValue(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: float | bool | str
    measured_at: datetime


class ModelPart(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    probability: float
    top_features: list[tuple[str, float]] = Field(default_factory=list)


class RiskAssessed(Event):
    """One scored window of a patient's vitals, with everything that explains the score."""

    ce_type: ClassVar[str] = "dk.naervagt.risk.assessed.v1"

    assessment_id: str
    patient_id: str
    kind: Literal["news2", "missing_measurement", "trend"] = "news2"
    window_end: datetime
    severity: Severity
    news2: News2Part | None = None
    values: dict[str, ObservedValue] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    model: ModelPart | None = None
    reasons: list[str] = Field(default_factory=list)


class AlertView(BaseModel):
    """An alert as clinicians see it (console messages and the alerts topic)."""

    model_config = ConfigDict(frozen=True)

    id: str
    patient_id: str
    kind: str
    status: Literal["open", "acknowledged", "resolved"]
    severity: Severity
    news2: News2Part | None
    reasons: list[str]
    opened_at: datetime
    updated_at: datetime
    acknowledged_by: str | None = None
    assigned_to: str | None = None
    assigned_name: str | None = None
    snoozed_until: datetime | None = None


class AlertChanged(Event):
    """A transition in an alert's lifecycle."""

    ce_type: ClassVar[str] = "dk.naervagt.alert.changed.v1"

    seq: int
    change: Literal[
        "raised",
        "worsened",
        "acknowledged",
        "escalated",
        "resolved",
        "noted",
        "assigned",
        "snoozed",
    ]
    actor: str
    at: datetime
    alert: AlertView
    org_ids: list[str]


ConsultUrgency = Literal["acute", "today", "routine"]


class ConsultRequested(Event):
    """A nurse or GP asked for a specialist; the free-text reason stays in the video service."""

    ce_type: ClassVar[str] = "dk.naervagt.consult.requested.v1"

    consult_id: str
    patient_id: str
    specialty: str
    urgency: ConsultUrgency
    alert_id: str | None = None
    requested_by: str
    requester_org: str
    requested_at: datetime


class ConsultAccepted(Event):
    """A specialist took the request; ``room_id`` is the video room made for it."""

    ce_type: ClassVar[str] = "dk.naervagt.consult.accepted.v1"

    consult_id: str
    patient_id: str
    specialty: str
    urgency: ConsultUrgency
    requester_org: str
    accepted_by: str
    accepted_org: str
    accepted_at: datetime
    room_id: str


class ConsultEscalated(Event):
    """An acute request nobody accepted within the configured time."""

    ce_type: ClassVar[str] = "dk.naervagt.consult.escalated.v1"

    consult_id: str
    patient_id: str
    specialty: str
    urgency: ConsultUrgency
    requester_org: str
    requested_at: datetime
    escalated_at: datetime
    waited_s: float


class ConsultCancelled(Event):
    """The requesting organisation withdrew a request before anyone accepted it."""

    ce_type: ClassVar[str] = "dk.naervagt.consult.cancelled.v1"

    consult_id: str
    patient_id: str
    specialty: str
    requester_org: str
    cancelled_by: str
    cancelled_at: datetime

"""Request and response bodies of the ingest API, as pydantic models (and the OpenAPI schemas).

Readings themselves are validated by :mod:`services.ingest.domain.validation`, which explains
every rejected field; :class:`ReadingsRequest` describes the same shape for the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import FieldProblem, InvalidInput
from shared.vitals import VitalType

M = TypeVar("M", bound=BaseModel)

DEVICE_KIND_PATTERN = r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadingIn(_Strict):
    """One measurement as a device sends it; the value is converted to the canonical unit."""

    reading_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Unique per device; sending it again is recognised as a duplicate.",
    )
    type: VitalType
    value: float | bool | str = Field(
        description="A number; true/false for on_oxygen; A, C, V, P or U for consciousness."
    )
    unit: str = Field(description="UCUM or a common alias, e.g. /min, %, mm[Hg], Cel, [degF].")
    measured_at: datetime = Field(description="RFC 3339 with a UTC offset.")
    patient_id: str | None = Field(
        default=None, description="Optional; must be the patient the device is bound to."
    )


class ReadingsRequest(_Strict):
    readings: list[ReadingIn] = Field(min_length=1, max_length=5_000)


class FieldErrorOut(BaseModel):
    field: str = Field(description='The field at fault; "" for the item as a whole.')
    message: str


class RejectionOut(BaseModel):
    index: int = Field(description="Position of the item in the request's readings list.")
    reading_id: str | None
    errors: list[FieldErrorOut]


class ReadingsResult(BaseModel):
    """The answer to a batch: 202 when anything was accepted or already known, else 422."""

    accepted: int
    duplicates: int
    rejected: list[RejectionOut]


class ErrorOut(BaseModel):
    error: str = Field(description="A stable code, e.g. bad_signature, rate_limited.")
    message: str
    errors: list[FieldErrorOut] | None = None


class StreamErrorOut(ErrorOut):
    """A stream message that could not be processed; the stream stays open."""

    retry_after_s: int | None = None


class DeviceRegistration(_Strict):
    patient_id: str = Field(min_length=1, max_length=128)
    kind: str = Field(
        default="gateway",
        pattern=DEVICE_KIND_PATTERN,
        description="e.g. home-gateway, pulse-oximeter, blood-pressure-monitor, wearable.",
    )
    model: str | None = Field(default=None, min_length=1, max_length=128)
    serial: str | None = Field(default=None, min_length=1, max_length=128)


class DeviceCredentials(BaseModel):
    """Shown once: the secret is stored sealed and cannot be read back."""

    device_id: str
    secret: str


class DeviceOut(BaseModel):
    device_id: str
    patient_id: str
    kind: str
    model: str | None
    serial: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class DeviceList(BaseModel):
    devices: list[DeviceOut]


class DeviceRevoked(BaseModel):
    device_id: str
    revoked: Literal[True] = True


class StoredReading(BaseModel):
    device_id: str
    reading_id: str
    type: VitalType
    value: float | bool | str
    unit: str = Field(description="The canonical unit of the type.")
    measured_at: datetime
    received_at: datetime
    late: bool


class PatientReadings(BaseModel):
    patient_id: str
    readings: list[StoredReading]
    next: str | None = Field(description="The URL of the next page, if there is one.")


class FhirResource(BaseModel):
    """A FHIR R4 resource (Observation, Bundle or OperationOutcome) in application/fhir+json."""

    model_config = ConfigDict(extra="allow")

    resourceType: str


def parse_body(model: type[M], document: Any) -> M:
    """Validate a decoded JSON body, turning pydantic's errors into field-level 422s."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = [
            FieldProblem(".".join(str(part) for part in error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise InvalidInput("the body has invalid fields", problems) from exc

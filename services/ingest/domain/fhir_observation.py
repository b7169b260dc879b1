"""One FHIR R4 vital-sign Observation mapped to native reading items, or to why it cannot be.

Reading ids are derived stably so that a re-sent Observation deduplicates: the first
``identifier.value``, else ``Observation.id`` (prefixed with the panel's reading id for contained
members), else the Bundle entry's ``fullUrl`` when it is a valid reading id (``urn:uuid:...``).
Components add their LOINC code: ``urn:uuid:187e...:8480-6``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.observation import Observation, ObservationComponent
from pydantic import ValidationError

from services.ingest.domain.fhir_outcome import Issue, issues_from_validation_error
from shared.vitals import LOINC, VitalType

__all__ = [
    "BLOOD_PRESSURE_PANEL",
    "LOINC_SYSTEM",
    "UCUM_SYSTEM",
    "VITAL_BY_LOINC",
    "VITAL_SIGNS_PANEL",
    "MappedItem",
    "ObservationMapping",
    "map_observation",
]

LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

VITAL_BY_LOINC: Final[dict[str, VitalType]] = {code: vital for vital, code in LOINC.items()} | {
    "2708-6": VitalType.SPO2  # oxygen saturation in arterial blood; pulse oximeters send either
}
BLOOD_PRESSURE_PANEL: Final = "85354-9"
VITAL_SIGNS_PANEL: Final = "85353-1"
# 55284-4 is the older LOINC blood pressure panel that many devices still send.
_PANELS: Final = frozenset({BLOOD_PRESSURE_PANEL, "55284-4", VITAL_SIGNS_PANEL})

_STATUSES: Final = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
_NOT_SCORED_STATUS: Final = {
    "entered-in-error": "status is entered-in-error: the observation was recorded by mistake",
    "cancelled": "status is cancelled: the measurement was not completed",
    "registered": "status is registered: no result is available yet",
}
_VALUE_ELEMENTS: Final = (
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)
_PATIENT_REFERENCE: Final = re.compile(r"(?:^|/)Patient/([A-Za-z0-9.-]{1,64})")
_MAX_DEPTH: Final = 2  # a panel with contained members; deeper nesting is not followed


@dataclass(frozen=True, slots=True)
class MappedItem:
    """A native reading item, and the FHIRPath each of its fields came from."""

    item: dict[str, object]
    paths: dict[str, str]
    """Native field name to FHIRPath; key ``""`` is the Observation or component itself."""


@dataclass(frozen=True, slots=True)
class ObservationMapping:
    items: tuple[MappedItem, ...] = ()
    issues: tuple[Issue, ...] = ()
    not_scored: str | None = None
    """Why nothing was scored, when that is not an error (entered-in-error, no value...)."""

    @property
    def failed(self) -> bool:
        return any(issue.is_error for issue in self.issues)


def map_observation(
    resource: Mapping[str, Any],
    *,
    path: str,
    fallback_id: tuple[str, str] | None = None,
    in_bundle: Callable[[str], bool] = lambda _reference: False,
) -> ObservationMapping:
    """Map a decoded Observation at FHIRPath ``path`` to native items.

    ``fallback_id`` is ``(reading id, FHIRPath)`` to use when the Observation has neither
    identifier nor id (its Bundle entry's fullUrl); ``in_bundle`` says whether a hasMember
    reference names another entry of the same Bundle, which is then scored as its own entry.
    """
    try:
        observation = Observation.model_validate(resource)
    except ValidationError as error:
        return ObservationMapping(issues=tuple(issues_from_validation_error(error, base=path)))
    collector = _Collector()
    _map(
        observation,
        path,
        out=collector,
        fallback_id=fallback_id,
        in_bundle=in_bundle,
        parent=None,
    )
    return collector.result()


@dataclass(frozen=True, slots=True)
class _Located:
    value: str
    path: str


@dataclass(frozen=True, slots=True)
class _Parent:
    """What a component or contained member takes from its panel."""

    reading_id: _Located | None
    measured_at: _Located | None
    patient: _Located | None
    depth: int


@dataclass(slots=True)
class _Collector:
    items: list[MappedItem] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    not_scored: list[str] = field(default_factory=list)

    def result(self) -> ObservationMapping:
        not_scored = None
        if not self.items and not any(i.is_error for i in self.issues) and self.not_scored:
            not_scored = self.not_scored[0]
        return ObservationMapping(tuple(self.items), tuple(self.issues), not_scored)


@dataclass(frozen=True, slots=True)
class _Quantity:
    value: float
    unit: _Located
    value_path: str


def _map(
    observation: Observation,
    path: str,
    *,
    out: _Collector,
    fallback_id: tuple[str, str] | None,
    in_bundle: Callable[[str], bool],
    parent: _Parent | None,
) -> None:
    status = observation.status
    if status is None:
        out.issues.append(
            Issue("error", "required", "required element is missing", path + ".status")
        )
    elif status not in _STATUSES:
        message = f"unknown status {status!r}; one of {', '.join(_STATUSES)}"
        out.issues.append(Issue("error", "code-invalid", message, path + ".status"))
    elif status in _NOT_SCORED_STATUS:
        out.not_scored.append(_NOT_SCORED_STATUS[status])
        return

    reading_id = _reading_id(observation, path, out=out, fallback_id=fallback_id, parent=parent)
    measured_at = _measured_at(observation, path, out=out, parent=parent)
    patient = _patient(observation, path) or (parent.patient if parent else None)
    code = _loinc(observation.code, path + ".code")
    vital_code = next((c for c in code if c.value in VITAL_BY_LOINC), None)
    panel_code = next((c for c in code if c.value in _PANELS), None)

    if vital_code is not None:
        vital = VITAL_BY_LOINC[vital_code.value]
        quantity = _quantity(observation, vital, path=path, out=out)
        if quantity is not None and reading_id is not None and measured_at is not None:
            item = _item(
                path,
                reading_id,
                vital=vital,
                code=vital_code,
                quantity=quantity,
                measured_at=measured_at,
                patient=patient,
            )
            out.items.append(item)
        return
    if panel_code is not None:
        panel = _Parent(reading_id, measured_at, patient, parent.depth + 1 if parent else 1)
        _map_components(observation, path, out=out, panel=panel)
        _map_members(observation, path, out=out, panel=panel, in_bundle=in_bundle)
        if not out.items and not out.not_scored:
            out.not_scored.append("the panel carries no scorable values of its own")
        return
    supported = ", ".join(f"{code} ({vital.value})" for code, vital in VITAL_BY_LOINC.items())
    message = (
        f"no supported LOINC code (system {LOINC_SYSTEM}); supported vital signs: {supported}; "
        f"panels: {', '.join(sorted(_PANELS))}"
    )
    out.issues.append(Issue("error", "not-supported", message, path + ".code"))


def _map_components(
    observation: Observation, path: str, *, out: _Collector, panel: _Parent
) -> None:
    for index, component in enumerate(observation.component or ()):
        component_path = f"{path}.component[{index}]"
        vital_code = next(
            (
                c
                for c in _loinc(component.code, component_path + ".code")
                if c.value in VITAL_BY_LOINC
            ),
            None,
        )
        if vital_code is None:
            message = "component not scored: its code is not a supported vital sign"
            out.issues.append(Issue("warning", "not-supported", message, component_path + ".code"))
            continue
        vital = VITAL_BY_LOINC[vital_code.value]
        quantity = _quantity(component, vital, path=component_path, out=out)
        if quantity is None or panel.reading_id is None or panel.measured_at is None:
            continue
        reading_id = _Located(f"{panel.reading_id.value}:{vital_code.value}", panel.reading_id.path)
        out.items.append(
            _item(
                component_path,
                reading_id,
                vital=vital,
                code=vital_code,
                quantity=quantity,
                measured_at=panel.measured_at,
                patient=panel.patient,
            )
        )


def _map_members(
    observation: Observation,
    path: str,
    *,
    out: _Collector,
    panel: _Parent,
    in_bundle: Callable[[str], bool],
) -> None:
    contained = {
        resource.id: (index, resource)
        for index, resource in enumerate(observation.contained or ())
        if isinstance(resource, Observation) and resource.id
    }
    for index, member in enumerate(observation.hasMember or ()):
        reference_path = f"{path}.hasMember[{index}].reference"
        reference = member.reference
        if reference is None:
            message = "member not scored: it has no reference"
            out.issues.append(Issue("warning", "not-found", message, reference_path))
        elif reference.startswith("#"):
            found = contained.get(reference[1:])
            if found is None:
                message = f"no contained Observation has the id {reference[1:]!r}"
                out.issues.append(Issue("error", "not-found", message, reference_path))
            elif panel.depth < _MAX_DEPTH:
                member_path = f"{path}.contained[{found[0]}]"
                inner = _Collector()
                _map(
                    found[1],
                    member_path,
                    out=inner,
                    fallback_id=None,
                    in_bundle=in_bundle,
                    parent=panel,
                )
                out.items.extend(inner.items)
                out.issues.extend(inner.issues)
                if not inner.items and not inner.issues and inner.not_scored:
                    message = f"member not scored: {inner.not_scored[0]}"
                    out.issues.append(Issue("information", "informational", message, member_path))
        elif not in_bundle(reference):
            message = (
                f"member {reference!r} is neither contained nor in this Bundle, "
                "so it is not scored with this request"
            )
            out.issues.append(Issue("warning", "not-found", message, reference_path))


def _reading_id(
    observation: Observation,
    path: str,
    *,
    out: _Collector,
    fallback_id: tuple[str, str] | None,
    parent: _Parent | None,
) -> _Located | None:
    for index, identifier in enumerate(observation.identifier or ()):
        if identifier.value:
            return _Located(identifier.value, f"{path}.identifier[{index}].value")
    if observation.id:
        if parent is not None and parent.reading_id is not None:
            return _Located(f"{parent.reading_id.value}:{observation.id}", path + ".id")
        return _Located(observation.id, path + ".id")
    if fallback_id is not None:
        return _Located(*fallback_id)
    message = (
        "the Observation needs an identifier (or an id, or a urn:uuid fullUrl in a Bundle) so "
        "that sending it again is recognised as the same reading"
    )
    out.issues.append(Issue("error", "required", message, path + ".identifier"))
    return None


def _measured_at(
    observation: Observation, path: str, *, out: _Collector, parent: _Parent | None
) -> _Located | None:
    if observation.effectiveDateTime is not None:
        return _Located(_date_time_text(observation.effectiveDateTime), path + ".effectiveDateTime")
    if observation.effectiveInstant is not None:
        return _Located(_date_time_text(observation.effectiveInstant), path + ".effectiveInstant")
    if observation.effectivePeriod is not None:
        start = observation.effectivePeriod.start
        if start is not None:
            return _Located(_date_time_text(start), path + ".effectivePeriod.start")
        message = "effectivePeriod needs a start: the time the measurement began"
        out.issues.append(Issue("error", "required", message, path + ".effectivePeriod.start"))
        return None
    if observation.effectiveTiming is not None:
        message = "effectiveTiming is not supported; give effectiveDateTime"
        out.issues.append(Issue("error", "not-supported", message, path + ".effectiveTiming"))
        return None
    if parent is not None and parent.measured_at is not None:
        return parent.measured_at
    message = "effectiveDateTime (when the measurement was taken) is required"
    out.issues.append(Issue("error", "required", message, path + ".effectiveDateTime"))
    return None


def _date_time_text(value: object) -> str:
    # fhir.resources gives datetime for full date-times and str/date for partial dates; the
    # native validator then explains why a partial date cannot be scored.
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _patient(observation: Observation, path: str) -> _Located | None:
    subject = observation.subject
    if subject is None or subject.reference is None:
        return None
    match = _PATIENT_REFERENCE.search(subject.reference)
    if match is None or match.end() != len(subject.reference):
        return None
    return _Located(match.group(1), path + ".subject.reference")


def _loinc(concept: CodeableConcept | None, path: str) -> list[_Located]:
    if concept is None:
        return []
    return [
        _Located(coding.code, f"{path}.coding[{index}].code")
        for index, coding in enumerate(concept.coding or ())
        if coding.system == LOINC_SYSTEM and coding.code
    ]


def _quantity(
    element: Observation | ObservationComponent, vital: VitalType, *, path: str, out: _Collector
) -> _Quantity | None:
    present = [name for name in _VALUE_ELEMENTS if getattr(element, name) is not None]
    if not present:
        absent = element.dataAbsentReason
        if absent is not None:
            out.not_scored.append(f"no value: dataAbsentReason is {_concept_text(absent)}")
            if isinstance(element, ObservationComponent):  # say which one was left out
                message = f"component not scored: dataAbsentReason is {_concept_text(absent)}"
                out.issues.append(Issue("information", "informational", message, path))
            return None
        message = "a value (valueQuantity) or a dataAbsentReason is required"
        out.issues.append(Issue("error", "required", message, path + ".valueQuantity"))
        return None
    quantity = element.valueQuantity
    if quantity is None:
        message = f"{vital.value} must be sent as valueQuantity with a UCUM unit"
        out.issues.append(Issue("error", "structure", message, f"{path}.{present[0]}"))
        return None
    problems: list[Issue] = []
    if quantity.comparator is not None:
        message = "a comparator (<, <=, >=, >) cannot be scored; send the measured value"
        problems.append(Issue("error", "value", message, path + ".valueQuantity.comparator"))
    if quantity.system is not None and quantity.system != UCUM_SYSTEM:
        message = f"unit system must be UCUM ({UCUM_SYSTEM})"
        problems.append(Issue("error", "code-invalid", message, path + ".valueQuantity.system"))
    if quantity.value is None:
        message = "required element is missing"
        problems.append(Issue("error", "required", message, path + ".valueQuantity.value"))
    unit: _Located | None = None
    if quantity.code:
        unit = _Located(quantity.code, path + ".valueQuantity.code")
    elif quantity.unit:
        unit = _Located(quantity.unit, path + ".valueQuantity.unit")
    else:
        message = "a UCUM unit code is required"
        problems.append(Issue("error", "required", message, path + ".valueQuantity.code"))
    out.issues.extend(problems)
    if problems or unit is None or quantity.value is None:
        return None
    return _Quantity(float(quantity.value), unit, path + ".valueQuantity.value")


def _concept_text(concept: CodeableConcept) -> str:
    for coding in concept.coding or ():
        if coding.code:
            return repr(coding.code)
    return repr(concept.text or "given")


def _item(
    path: str,
    reading_id: _Located,
    *,
    vital: VitalType,
    code: _Located,
    quantity: _Quantity,
    measured_at: _Located,
    patient: _Located | None,
) -> MappedItem:
    item: dict[str, object] = {
        "reading_id": reading_id.value,
        "type": vital.value,
        "value": quantity.value,
        "unit": quantity.unit.value,
        "measured_at": measured_at.value,
    }
    paths = {
        "": path,
        "reading_id": reading_id.path,
        "type": code.path,
        "value": quantity.value_path,
        "unit": quantity.unit.path,
        "measured_at": measured_at.path,
    }
    if patient is not None:
        item["patient_id"] = patient.value
        paths["patient_id"] = patient.path
    return MappedItem(item, paths)

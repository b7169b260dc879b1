"""FHIR R4 Observation search: parameters to a reading query, stored readings to Observations.

Supported: ``patient`` (or ``subject``), ``code`` (LOINC, or this platform's vital-type codes;
a comma means "or", a repeated parameter "and"), ``date`` with the prefixes eq, gt, lt, ge, le,
sa and eb (repeatable), ``_count`` and ``_cursor`` (from a ``next`` link). A date without a
UTC offset is read in the ``local`` time zone given; its precision sets the range it stands
for (``date=2024-05`` is all of May). Other parameters are ignored, as FHIR's lenient handling
asks, and named in an OperationOutcome entry of the result.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

from services.ingest.domain.fhir_observation import (
    BLOOD_PRESSURE_PANEL,
    LOINC_SYSTEM,
    UCUM_SYSTEM,
    VITAL_BY_LOINC,
    VITAL_SIGNS_PANEL,
)
from services.ingest.domain.fhir_outcome import Issue, operation_outcome
from services.ingest.domain.reading_query import Cursor, ReadingQuery, StoredReading, parse_limit
from shared.errors import FieldProblem, InvalidInput
from shared.vitals import LOINC, VitalType

__all__ = [
    "VITAL_TYPE_SYSTEM",
    "SearchRequest",
    "observation",
    "observation_id",
    "parse_search",
    "searchset",
]

VITAL_TYPE_SYSTEM: Final = "https://naervagt.dk/fhir/CodeSystem/vital-type"
"""Codes for every vital type (``on_oxygen`` and ``consciousness`` have no LOINC code here)."""
ACVPU_SYSTEM: Final = "https://naervagt.dk/fhir/CodeSystem/acvpu"
DEVICE_READING_SYSTEM: Final = "urn:naervagt:device:"
"""Prefix of the identifier system of a device's reading ids: ``urn:naervagt:device:{id}``."""

DEFAULT_COUNT: Final = 100

_PANEL_MEMBERS: Final[dict[str, frozenset[VitalType]]] = {
    BLOOD_PRESSURE_PANEL: frozenset({VitalType.SYSTOLIC_BP, VitalType.DIASTOLIC_BP}),
    "55284-4": frozenset({VitalType.SYSTOLIC_BP, VitalType.DIASTOLIC_BP}),
    VITAL_SIGNS_PANEL: frozenset(VitalType),
}
_ACVPU_DISPLAY: Final = {
    "A": "Alert",
    "C": "New confusion",
    "V": "Responds to voice",
    "P": "Responds to pain",
    "U": "Unresponsive",
}
_DATE: Final = re.compile(
    r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>Z|(?P<sign>[+-])(?P<off_h>[0-9]{2}):(?P<off_m>[0-9]{2}))?)?)?)?"
)
_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PATIENT: Final = re.compile(r"(?:(?:.*/)?Patient/)?([A-Za-z0-9._-]{1,128})")
_VITAL_CODES: Final = frozenset(v.value for v in VitalType)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: ReadingQuery
    used: tuple[tuple[str, str], ...]
    """The parameters applied (for the ``self`` link), without the cursor."""
    ignored: tuple[str, ...]


def parse_search(
    parameters: Sequence[tuple[str, str]], *, local: tzinfo, page_max: int
) -> SearchRequest:
    """Parse Observation search parameters; raise :class:`InvalidInput` for unusable ones."""
    problems: list[FieldProblem] = []
    patient: str | None = None
    types: frozenset[VitalType] | None = None
    start: datetime | None = None
    end: datetime | None = None
    count = min(DEFAULT_COUNT, page_max)
    after: Cursor | None = None
    used: list[tuple[str, str]] = []
    ignored: list[str] = []
    for name, value in parameters:
        if name in ("patient", "subject"):
            match = _PATIENT.fullmatch(value)
            if match is None or (patient is not None and patient != match.group(1)):
                problems.append(FieldProblem(name, "give one patient: Patient/{id} or {id}"))
            else:
                patient = match.group(1)
                used.append((name, value))
        elif name == "code":
            matched = _types_for_codes(value)
            types = matched if types is None else types & matched
            used.append((name, value))
        elif name == "date":
            bounds = _date_bounds(value, local=local)
            if isinstance(bounds, str):
                problems.append(FieldProblem("date", bounds))
                continue
            lower, upper = bounds
            if lower is not None and (start is None or lower > start):
                start = lower
            if upper is not None and (end is None or upper < end):
                end = upper
            used.append((name, value))
        elif name == "_count":
            parsed = parse_limit(value, page_max=page_max)
            if isinstance(parsed, str):
                problems.append(FieldProblem("_count", parsed))
            else:
                count = parsed
                used.append((name, value))
        elif name == "_cursor":
            after = Cursor.decode(value)
            if after is None:
                problems.append(FieldProblem("_cursor", "not a cursor from a previous page"))
        else:
            ignored.append(name)
    if patient is None and not any(p.field in ("patient", "subject") for p in problems):
        problems.append(FieldProblem("patient", "required: searches are for one patient at a time"))
    if problems:
        raise InvalidInput("invalid search parameters", problems)
    assert patient is not None
    query = ReadingQuery(patient, types, start, end, count, after)
    return SearchRequest(query, tuple(used), tuple(dict.fromkeys(ignored)))


def _types_for_codes(value: str) -> frozenset[VitalType]:
    found: set[VitalType] = set()
    for token in value.split(","):
        system, bar, code = token.rpartition("|")
        if not bar:
            system, code = "", token
        if system in ("", LOINC_SYSTEM):
            if code in VITAL_BY_LOINC:
                found.add(VITAL_BY_LOINC[code])
            found.update(_PANEL_MEMBERS.get(code, ()))
        if system in ("", VITAL_TYPE_SYSTEM) and code in _VITAL_CODES:
            found.add(VitalType(code))
    return frozenset(found)


def _date_bounds(value: str, *, local: tzinfo) -> tuple[datetime | None, datetime | None] | str:
    """(inclusive lower, exclusive upper) bounds on the moment of measurement."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    if prefix in ("ne", "ap"):
        return f"the prefix {prefix} is not supported; use eq, gt, lt, ge, le, sa or eb"
    match = _DATE.fullmatch(text)
    if match is None:
        return (
            "must be a FHIR date or dateTime after an optional prefix, "
            "e.g. ge2024-05-01 or lt2024-05-01T12:00:00+02:00"
        )
    try:
        low, high = (moment.astimezone(UTC) for moment in _range(match, local=local))
    except (ValueError, OverflowError):
        return f"is not a valid date or time: {text!r}"
    if prefix == "eq":
        return low, high
    if prefix in ("gt", "sa"):
        return high, None
    if prefix in ("lt", "eb"):
        return None, low
    if prefix == "ge":
        return low, None
    return None, high  # le


def _range(match: re.Match[str], *, local: tzinfo) -> tuple[datetime, datetime]:
    part = match.groupdict()
    where = local
    if part["zone"] == "Z":
        where = UTC
    elif part["zone"] is not None:
        offset = timedelta(hours=int(part["off_h"]), minutes=int(part["off_m"]))
        where = timezone(-offset if part["sign"] == "-" else offset)
    year = int(part["year"])
    if part["month"] is None:
        low = datetime(year, 1, 1, tzinfo=where)
        return low, datetime(year + 1, 1, 1, tzinfo=where)
    month = int(part["month"])
    if part["day"] is None:
        low = datetime(year, month, 1, tzinfo=where)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=where)
        return low, following
    day = int(part["day"])
    if part["hour"] is None:
        low = datetime(year, month, day, tzinfo=where)
        # Calendar days in the local zone: the next midnight, whatever daylight saving does.
        following = (low.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=where)
        return low, following
    hour, minute = int(part["hour"]), int(part["minute"])
    if part["second"] is None:
        low = datetime(year, month, day, hour, minute, tzinfo=where)
        return low, low + timedelta(minutes=1)
    second = int(part["second"])
    fraction = part["fraction"] or ""
    micros = int((fraction + "000000")[:6]) if fraction else 0
    low = datetime(year, month, day, hour, minute, second, micros, tzinfo=where)
    step = timedelta(microseconds=10 ** (6 - min(len(fraction), 6))) if fraction else None
    return low, low + (step or timedelta(seconds=1))


# --- results -------------------------------------------------------------------------------


def observation_id(device_id: str, reading_id: str) -> str:
    """The Observation's logical id: stable, a valid FHIR id, and free of patient data.

    Reading ids may be longer than the 64 characters a FHIR id allows, so the device's id is
    followed by a digest of the reading id.
    """
    digest = hashlib.sha256(reading_id.encode()).hexdigest()[:32]
    return f"{device_id}.{digest}"


def observation(reading: StoredReading) -> dict[str, Any]:
    """A stored reading as a FHIR R4 vital-signs Observation (JSON-ready)."""
    codings = []
    if reading.type in LOINC:
        codings.append({"system": LOINC_SYSTEM, "code": LOINC[reading.type]})
    codings.append({"system": VITAL_TYPE_SYSTEM, "code": reading.type.value})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(reading.device_id, reading.reading_id),
        "identifier": [
            {"system": DEVICE_READING_SYSTEM + reading.device_id, "value": reading.reading_id}
        ],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": codings, "text": reading.type.value.replace("_", " ")},
        "subject": {"reference": f"Patient/{reading.patient_id}"},
        "effectiveDateTime": reading.measured_at.isoformat(),
        "issued": reading.received_at.isoformat(),
        "device": {"identifier": {"system": "urn:naervagt:device", "value": reading.device_id}},
    }
    if isinstance(reading.value, bool):
        resource["valueBoolean"] = reading.value
    elif isinstance(reading.value, str):
        resource["valueCodeableConcept"] = {
            "coding": [
                {
                    "system": ACVPU_SYSTEM,
                    "code": reading.value,
                    "display": _ACVPU_DISPLAY.get(reading.value, reading.value),
                }
            ]
        }
    else:
        resource["valueQuantity"] = {
            "value": reading.value,
            "unit": reading.unit,
            "system": UCUM_SYSTEM,
            "code": reading.unit,
        }
    return resource


def searchset(
    readings: Sequence[StoredReading],
    *,
    base_url: str,
    self_url: str,
    next_url: str | None,
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """A searchset Bundle of the readings, with self and next links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    entries: list[dict[str, Any]] = []
    for reading in readings:
        resource = observation(reading)
        entries.append(
            {
                "fullUrl": f"{base_url}/Observation/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
    if ignored:
        note = Issue(
            "warning",
            "not-supported",
            f"search parameters ignored: {', '.join(ignored)}",
        )
        entries.append({"resource": operation_outcome([note]), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle

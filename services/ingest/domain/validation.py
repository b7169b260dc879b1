"""Validation and normalisation of native reading items, with per-field errors for each rejection.

>>> readings, rejections = validate_batch(
...     [{"reading_id": "r1", "type": "heart_rate", "value": 72, "unit": "bpm",
...       "measured_at": "2024-05-01T08:30:00+02:00"}],
...     patient_id="p-1", now=datetime(2024, 5, 1, 7, 0, tzinfo=UTC))
>>> readings[0].value, readings[0].unit, rejections
(72.0, '/min', [])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, NamedTuple

from services.ingest.domain.plausibility import is_plausible, range_text
from services.ingest.domain.units import ACCEPTED_UNITS, to_canonical
from shared.vitals import CANONICAL_UNIT, CONSCIOUSNESS_LEVELS, VitalType

__all__ = [
    "DUPLICATE_READING_ID",
    "ITEM",
    "READING_ID_MAX_LENGTH",
    "FieldError",
    "Reading",
    "Rejection",
    "is_reading_id",
    "parse_date_time",
    "validate_batch",
]

ITEM: Final = ""
"""Field name used when the error concerns the item as a whole (e.g. it is not an object)."""

READING_ID_MAX_LENGTH: Final = 128

DUPLICATE_READING_ID: Final = "duplicate reading_id in this request"
"""Start of the message given to the second and later items that repeat a reading_id."""

_REQUIRED: Final = ("reading_id", "type", "value", "unit", "measured_at")
_OPTIONAL: Final = ("patient_id",)
_FIELDS: Final = frozenset(_REQUIRED + _OPTIONAL)
_VITALS: Final = {v.value: v for v in VitalType}
_READING_ID: Final = re.compile(r"[A-Za-z0-9._:-]+")
# RFC 3339 date-time; the offset is optional here only so that its absence gets its own message.
_DATE_TIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_DATE_TIME_EXAMPLE: Final = "2024-05-01T08:30:00+02:00 or 2024-05-01T06:30:00Z"
_NUMERIC: Final = frozenset(CANONICAL_UNIT) - {VitalType.ON_OXYGEN, VitalType.CONSCIOUSNESS}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reading_id: str | None
    errors: tuple[FieldError, ...]


class Reading(NamedTuple):
    """A valid reading, its value in the canonical unit of its type (a named tuple: cheap to
    make, as every accepted reading is one)."""

    reading_id: str
    type: VitalType
    value: float | bool | str
    unit: str
    measured_at: datetime  # timezone-aware, UTC
    late: bool
    original_value: float | bool | str
    original_unit: str


def validate_batch(
    items: Sequence[object],
    *,
    patient_id: str,
    now: datetime,
    late_limit: timedelta = timedelta(days=30),
    future_tolerance: timedelta = timedelta(minutes=5),
    late_after: timedelta = timedelta(hours=1),
) -> tuple[list[Reading], list[Rejection]]:
    """Split decoded JSON items into normalised readings and per-item rejections.

    ``patient_id`` is the patient the sending device is bound to. Readings measured more than
    ``late_after`` before ``now`` are accepted with ``late=True``; more than ``late_limit`` before,
    or more than ``future_tolerance`` after ``now``, they are rejected. Both lists keep input order.
    Never raises for bad items; raises ``ValueError`` only if ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    context = _Context(
        patient_id=patient_id,
        now=now,
        late_limit=late_limit,
        future_tolerance=future_tolerance,
        late_after=late_after,
        latest=now + future_tolerance,
        earliest=now - late_limit,
        late_before=now - late_after,
    )
    seen: dict[str, int] = {}
    accepted: list[tuple[int, Reading]] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        outcome = _quick(index, item, context=context, seen=seen) or _check_item(
            index, item, context=context, seen=seen
        )
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        else:
            accepted.append((index, outcome))
    accepted, inconsistent = _reject_diastolic_above_systolic(accepted)
    if inconsistent:
        rejections = sorted(rejections + inconsistent, key=lambda r: r.index)
    return [reading for _, reading in accepted], rejections


@dataclass(frozen=True, slots=True)
class _Context:
    patient_id: str
    now: datetime
    late_limit: timedelta
    future_tolerance: timedelta
    late_after: timedelta
    latest: datetime
    earliest: datetime
    late_before: datetime


def is_reading_id(text: str) -> bool:
    """Whether ``text`` is acceptable as a reading_id."""
    return len(text) <= READING_ID_MAX_LENGTH and _READING_ID.fullmatch(text) is not None


def _quick(index: int, item: object, *, context: _Context, seen: dict[str, int]) -> Reading | None:
    """The common case in one pass: a numeric reading with exactly the required fields, all
    valid. Anything else gives None and goes through :func:`_check_item`, which explains
    what is wrong; for what passes here, both give the same reading."""
    if type(item) is not dict or len(item) != len(_REQUIRED):
        return None
    reading_id, kind = item.get("reading_id"), item.get("type")
    value, unit, stamp = item.get("value"), item.get("unit"), item.get("measured_at")
    if type(reading_id) is not str or type(kind) is not str or type(unit) is not str:
        return None
    if type(stamp) is not str or not (type(value) is float or type(value) is int):
        return None
    vital = _VITALS.get(kind)
    if vital is None or vital not in _NUMERIC or unit not in ACCEPTED_UNITS[vital]:
        return None
    if reading_id in seen or not is_reading_id(reading_id):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number):
        return None
    canonical = to_canonical(vital, number, unit)
    measured_at = parse_date_time(stamp)
    if (
        not is_plausible(vital, canonical)
        or isinstance(measured_at, str)
        or measured_at > context.latest
        or measured_at < context.earliest
    ):
        return None
    seen[reading_id] = index
    return Reading(
        reading_id,
        vital,
        canonical,
        CANONICAL_UNIT[vital],
        measured_at,
        measured_at < context.late_before,
        value,
        unit,
    )


def _check_item(
    index: int, item: object, *, context: _Context, seen: dict[str, int]
) -> Reading | Rejection:
    if type(item) is not dict and not isinstance(item, Mapping):
        message = f"each reading must be a JSON object, got {_json_type(item)}"
        return Rejection(index, None, (FieldError(ITEM, message),))
    errors: list[FieldError] = []
    for key in item:
        if key not in _FIELDS:
            accepted = ", ".join(_REQUIRED + _OPTIONAL)
            errors.append(FieldError(str(key), f"unknown field; accepted fields: {accepted}"))
    for key in _REQUIRED:
        if key not in item:
            errors.append(FieldError(key, "required field is missing"))

    reading_id = _check_reading_id(item, errors, seen=seen, index=index)
    _check_patient(item, errors, bound=context.patient_id)
    vital = _check_type(item, errors)
    unit = _check_unit(item, errors, vital=vital)
    value = _check_value(item, errors, vital=vital)
    measured_at = _check_measured_at(item, errors, context=context)

    canonical: float | bool | str | None = None
    if vital is not None and unit is not None and value is not None:
        canonical = _normalise(vital, value, unit=unit, errors=errors)

    if (
        errors
        or reading_id is None
        or vital is None
        or unit is None
        or value is None
        or canonical is None
        or measured_at is None
    ):
        return Rejection(index, reading_id, tuple(errors))
    return Reading(
        reading_id=reading_id,
        type=vital,
        value=canonical,
        unit=CANONICAL_UNIT[vital],
        measured_at=measured_at,
        late=context.now - measured_at > context.late_after,
        original_value=value,
        original_unit=unit,
    )


def _check_reading_id(
    item: Mapping[object, object], errors: list[FieldError], *, seen: dict[str, int], index: int
) -> str | None:
    if "reading_id" not in item:
        return None
    raw = item["reading_id"]
    if not isinstance(raw, str):
        errors.append(FieldError("reading_id", f"must be a string, got {_json_type(raw)}"))
        return None
    if not raw:
        errors.append(FieldError("reading_id", "must not be empty"))
        return None
    if len(raw) > READING_ID_MAX_LENGTH:
        message = f"must be at most {READING_ID_MAX_LENGTH} characters, got {len(raw)}"
        errors.append(FieldError("reading_id", message))
        return None
    if not _READING_ID.fullmatch(raw):
        message = "may contain only letters A-Z and a-z, digits 0-9 and the characters . _ : -"
        errors.append(FieldError("reading_id", message))
        return None
    first = seen.setdefault(raw, index)
    if first != index:
        message = f"{DUPLICATE_READING_ID} (first used by the item at index {first})"
        errors.append(FieldError("reading_id", message))
    return raw


def _check_patient(item: Mapping[object, object], errors: list[FieldError], *, bound: str) -> None:
    # null is treated as absent: many JSON encoders write optional fields that way.
    raw = item.get("patient_id")
    if raw is None:
        return
    if not isinstance(raw, str):
        errors.append(FieldError("patient_id", f"must be a string, got {_json_type(raw)}"))
    elif raw != bound:
        message = "does not match the patient this device is bound to; omit it or correct it"
        errors.append(FieldError("patient_id", message))


def _check_type(item: Mapping[object, object], errors: list[FieldError]) -> VitalType | None:
    if "type" not in item:
        return None
    raw = item["type"]
    if not isinstance(raw, str):
        errors.append(FieldError("type", f"must be a string, got {_json_type(raw)}"))
        return None
    vital = _VITALS.get(raw)
    if vital is None:
        accepted = ", ".join(v.value for v in VitalType)
        errors.append(FieldError("type", f"unknown type {raw!r}; accepted types: {accepted}"))
    return vital


def _check_unit(
    item: Mapping[object, object], errors: list[FieldError], *, vital: VitalType | None
) -> str | None:
    if "unit" not in item:
        return None
    raw = item["unit"]
    if not isinstance(raw, str):
        errors.append(FieldError("unit", f"must be a string, got {_json_type(raw)}"))
        return None
    if vital is None:
        return raw
    accepted = ACCEPTED_UNITS[vital]
    if raw not in accepted:
        message = f"unknown unit {raw!r} for {vital.value}; accepted units: {', '.join(accepted)}"
        errors.append(FieldError("unit", message))
        return None
    return raw


def _check_value(
    item: Mapping[object, object], errors: list[FieldError], *, vital: VitalType | None
) -> float | bool | str | None:
    if "value" not in item or vital is None:
        return None
    raw = item["value"]
    if vital is VitalType.ON_OXYGEN:
        if isinstance(raw, bool):
            return raw
        errors.append(FieldError("value", f"must be true or false, got {_json_type(raw)}"))
        return None
    if vital is VitalType.CONSCIOUSNESS:
        if isinstance(raw, str) and raw in CONSCIOUSNESS_LEVELS:
            return raw
        levels = ", ".join(CONSCIOUSNESS_LEVELS)
        shown = repr(raw) if isinstance(raw, str) else _json_type(raw)
        message = f"must be one of {levels} (ACVPU scale) for consciousness, got {shown}"
        errors.append(FieldError("value", message))
        return None
    # bool is an int in Python, but true/false is never a measurement.
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        hint = " (send the number without quotes)" if isinstance(raw, str) else ""
        message = f"must be a number for {vital.value}, got {_json_type(raw)}{hint}"
        errors.append(FieldError("value", message))
        return None
    try:
        number = float(raw)
    except OverflowError:
        errors.append(FieldError("value", "number is too large"))
        return None
    if not math.isfinite(number):
        errors.append(FieldError("value", "must be a finite number, not NaN or Infinity"))
        return None
    return number


def _normalise(
    vital: VitalType, value: float | bool | str, *, unit: str, errors: list[FieldError]
) -> float | bool | str | None:
    if vital not in _NUMERIC or isinstance(value, bool | str):
        return value
    canonical = to_canonical(vital, value, unit)
    if is_plausible(vital, canonical):
        return canonical
    shown = f"{value:g} {unit}"
    if unit != CANONICAL_UNIT[vital]:
        shown += f" ({canonical:g} {CANONICAL_UNIT[vital]})"
    message = (
        f"{vital.value} {shown} is outside the physiologically possible range "
        f"{range_text(vital)}; check the unit and the sensor"
    )
    errors.append(FieldError("value", message))
    return None


def _check_measured_at(
    item: Mapping[object, object], errors: list[FieldError], *, context: _Context
) -> datetime | None:
    if "measured_at" not in item:
        return None
    raw = item["measured_at"]
    if not isinstance(raw, str):
        errors.append(FieldError("measured_at", f"must be a string, got {_json_type(raw)}"))
        return None
    parsed = parse_date_time(raw)
    if isinstance(parsed, str):
        errors.append(FieldError("measured_at", parsed))
        return None
    if parsed > context.now + context.future_tolerance:
        ahead = _duration(parsed - context.now)
        message = (
            f"is {ahead} in the future (more than {_duration(context.future_tolerance)} "
            "ahead of the server clock); check the device clock"
        )
        errors.append(FieldError("measured_at", message))
        return None
    if context.now - parsed > context.late_limit:
        message = f"is older than {_duration(context.late_limit)}; readings that old are refused"
        errors.append(FieldError("measured_at", message))
        return None
    return parsed


def parse_date_time(raw: str) -> datetime | str:
    """The instant in UTC, or a message saying what is wrong."""
    match = _DATE_TIME.fullmatch(raw)
    if match is None:
        return f"must be an RFC 3339 date-time with a UTC offset, e.g. {_DATE_TIME_EXAMPLE}"
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu is None and sign is None:
        return (
            "has no UTC offset, so the moment of measurement is ambiguous; "
            f"add one, e.g. {_DATE_TIME_EXAMPLE}"
        )
    if (
        raw[10] == "T"
        and zulu != "z"
        and (fraction is None or len(fraction) <= 7)
        and (sign is None or (int(off_h) <= 23 and int(off_m) <= 59))
    ):
        # The common shape, which the C parser reads the same way, only faster.
        try:
            return datetime.fromisoformat(raw).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    try:
        offset = timedelta(0)
        if sign is not None:
            if int(off_h) > 23 or int(off_m) > 59:
                return f"has an invalid UTC offset {sign}{off_h}:{off_m}"
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            if sign == "-":
                offset = -offset
        micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(offset),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return f"is not a valid calendar date and time: {raw!r}"


def _reject_diastolic_above_systolic(
    accepted: list[tuple[int, Reading]],
) -> tuple[list[tuple[int, Reading]], list[Rejection]]:
    systolic: dict[datetime, Reading] = {}
    for _, reading in accepted:
        if reading.type is VitalType.SYSTOLIC_BP:
            systolic.setdefault(reading.measured_at, reading)
    kept: list[tuple[int, Reading]] = []
    rejected: list[Rejection] = []
    for index, reading in accepted:
        partner = systolic.get(reading.measured_at)
        if (
            reading.type is VitalType.DIASTOLIC_BP
            and partner is not None
            and isinstance(reading.value, float)
            and isinstance(partner.value, float)
            and reading.value > partner.value
        ):
            unit = CANONICAL_UNIT[VitalType.SYSTOLIC_BP]
            message = (
                f"diastolic {reading.value:g} {unit} is above the systolic {partner.value:g} "
                f"{unit} of the same measurement (reading_id {partner.reading_id!r})"
            )
            error = FieldError("value", message)
            rejected.append(Rejection(index, reading.reading_id, (error,)))
        else:
            kept.append((index, reading))
    return kept, rejected


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _duration(span: timedelta) -> str:
    """Largest two units, e.g. "2 hours 5 minutes"; enough precision for a clock-skew message."""
    remaining = int(span.total_seconds())
    parts: list[str] = []
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        count, remaining = divmod(remaining, size)
        if count and len(parts) < 2:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
        elif parts:
            break
    return " ".join(parts) or "0 seconds"

"""What a clinician asks of a patient's stored readings, from the native query parameters.

>>> query = native_query("pt-1", [("type", "spo2"), ("from", "2024-05-01T00:00:00Z")],
...                      page_max=1000)
>>> sorted(query.types), query.start.isoformat(), query.limit
([<VitalType.SPO2: 'spo2'>], '2024-05-01T00:00:00+00:00', 1000)

Pages are ordered by (measured_at, device_id, reading_id); a page's cursor is the last row's
key, so the next page starts right after it even when readings share a moment.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.ingest.domain.validation import parse_date_time
from shared.errors import FieldProblem, InvalidInput
from shared.vitals import VitalType

__all__ = ["Cursor", "ReadingQuery", "StoredReading", "native_query", "parse_limit"]


@dataclass(frozen=True, slots=True)
class Cursor:
    measured_at: datetime
    device_id: str
    reading_id: str

    def encode(self) -> str:
        text = json.dumps([self.measured_at.isoformat(), self.device_id, self.reading_id])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> Cursor | None:
        """The cursor in ``token``, or None if it is not one this service issued."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            stamp, device_id, reading_id = json.loads(raw)
            moment = datetime.fromisoformat(stamp)
        except (binascii.Error, ValueError, TypeError):
            return None
        if moment.tzinfo is None or not isinstance(device_id, str):
            return None
        if not isinstance(reading_id, str):
            return None
        return Cursor(moment, device_id, reading_id)


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    patient_id: str
    types: frozenset[VitalType] | None
    """None for every type; an empty set matches nothing."""
    start: datetime | None
    """Inclusive."""
    end: datetime | None
    """Exclusive."""
    limit: int
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class StoredReading:
    device_id: str
    reading_id: str
    patient_id: str
    type: VitalType
    value: float | bool | str
    unit: str
    measured_at: datetime
    received_at: datetime
    late: bool

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.measured_at, self.device_id, self.reading_id)


_NATIVE_PARAMETERS = ("type", "from", "to", "limit", "after")


def native_query(
    patient_id: str, parameters: Sequence[tuple[str, str]], *, page_max: int
) -> ReadingQuery:
    """Parse ``?type=&from=&to=&limit=&after=``; raise :class:`InvalidInput` per bad field.

    ``type`` may repeat or list types separated by commas; ``from`` is inclusive and ``to``
    exclusive, both RFC 3339 date-times with a UTC offset.
    """
    problems: list[FieldProblem] = []
    types: set[VitalType] | None = None
    start = end = None
    after = None
    limit = page_max
    for name, value in parameters:
        if name == "type":
            types = types or set()
            for text in value.split(","):
                try:
                    types.add(VitalType(text.strip()))
                except ValueError:
                    accepted = ", ".join(v.value for v in VitalType)
                    message = f"unknown type {text!r}; one of {accepted}"
                    problems.append(FieldProblem("type", message))
        elif name in ("from", "to"):
            moment = parse_date_time(value)
            if isinstance(moment, str):
                problems.append(FieldProblem(name, moment))
            elif name == "from":
                start = moment
            else:
                end = moment
        elif name == "limit":
            parsed = parse_limit(value, page_max=page_max)
            if isinstance(parsed, str):
                problems.append(FieldProblem("limit", parsed))
            else:
                limit = parsed
        elif name == "after":
            after = Cursor.decode(value)
            if after is None:
                problems.append(FieldProblem("after", "not a cursor from a previous page"))
        else:
            accepted = ", ".join(_NATIVE_PARAMETERS)
            problems.append(FieldProblem(name, f"unknown parameter; accepted: {accepted}"))
    if start is not None and end is not None and end <= start:
        problems.append(FieldProblem("to", "must be later than from"))
    if problems:
        raise InvalidInput("invalid query parameters", problems)
    return ReadingQuery(
        patient_id,
        frozenset(types) if types is not None else None,
        start,
        end,
        limit,
        after,
    )


def parse_limit(text: str, *, page_max: int) -> int | str:
    """A page size from 1 to ``page_max``, or what is wrong with ``text``."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not 1 <= int(text) <= page_max:
        return f"must be a whole number from 1 to {page_max}"
    return int(text)

"""The CSV files of `naervagt score`: long-format readings in, one scored window per distinct
(patient, time) out."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import numpy as np

from services.alerts.domain import news2
from services.alerts.domain.news2 import News2Batch
from services.alerts.model.table import VALUE_COLUMNS, FloatArray, LongReadings, VitalsTable
from shared.vitals import CONSCIOUSNESS_LEVELS, VitalType

READINGS_HEADER = ("patient_id", "time", "type", "value")
PATIENTS_HEADER = ("patient_id", "spo2_scale")
OUTPUT_HEADER = (
    "patient_id",
    "time",
    "news2",
    *(f"news2_{name}" for name in news2.PARAMETERS),
    "single_parameter_3",
    "band",
    "missing",
    "risk",
)
TYPE_OF_PARAMETER = {name: name for name in news2.PARAMETERS} | {
    "air_or_oxygen": VitalType.ON_OXYGEN.value
}
"""The input type that feeds each NEWS2 parameter, as named in the `missing` column."""

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class BadInput(ValueError):
    """A line of an input file that cannot be read; `line` counts from 1 (the header)."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path} line {line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedReadings:
    readings: LongReadings
    time_text: list[str]  # each reading's time as written in the file


def parse_time_h(text: str) -> float:
    """Hours since the Unix epoch of an RFC 3339 timestamp with a zone, e.g.
    2025-01-06T08:00:00+01:00; raises ValueError otherwise."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"time {text!r} is not RFC 3339 (e.g. 2025-01-06T08:00:00Z)")
    fraction = match.group("fraction") or ""
    zone = match.group("zone").upper().replace("Z", "+00:00")
    base = text[: match.start("fraction") if fraction else match.start("zone")]
    moment = datetime.fromisoformat(base.replace("t", "T").replace(" ", "T") + zone)
    micros = round(float(fraction or "0") * 1_000_000)
    moment += timedelta(microseconds=micros)
    whole = (moment - _EPOCH) // timedelta(microseconds=1)
    return whole / 3_600_000_000.0


def parse_value(kind: str, text: str) -> float:
    """The numeric form of one reading: 0/1 for on_oxygen, the ACVPU code for consciousness."""
    cleaned = text.strip()
    if kind == VitalType.ON_OXYGEN:
        lowered = cleaned.lower()
        if lowered in _TRUE:
            return 1.0
        if lowered in _FALSE:
            return 0.0
        raise ValueError(f"on_oxygen value {text!r} is not true/false")
    if kind == VitalType.CONSCIOUSNESS:
        level = cleaned.upper()
        if level not in CONSCIOUSNESS_LEVELS:
            raise ValueError(f"consciousness value {text!r} is not one of A, C, V, P, U")
        return float(CONSCIOUSNESS_LEVELS.index(level))
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"{kind} value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{kind} value {text!r} is not a finite number")
    return value


def _rows(
    path: Path, stream: TextIO, *, header: tuple[str, ...]
) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(stream)
    try:
        first = next(reader)
    except StopIteration:
        raise BadInput(path, 1, f"empty file, expected header {','.join(header)}") from None
    except csv.Error as error:
        raise BadInput(path, 1, str(error)) from None
    if first and first[0].startswith("\ufeff"):
        first[0] = first[0][1:]
    if tuple(field.strip() for field in first) != header:
        raise BadInput(path, 1, f"header must be {','.join(header)}, got {','.join(first)}")
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise BadInput(path, reader.line_num, str(error)) from None
        if not fields:
            continue
        if len(fields) != len(header):
            raise BadInput(
                path, reader.line_num, f"expected {len(header)} fields, got {len(fields)}"
            )
        yield reader.line_num, fields


def read_readings(path: Path) -> ParsedReadings:
    """Parse a readings file; the first bad line raises `BadInput`."""
    ids: list[str] = []
    times: list[float] = []
    texts: list[str] = []
    kinds: list[int] = []
    values: list[float] = []
    known = {name: i for i, name in enumerate(VALUE_COLUMNS)}
    with path.open(newline="", encoding="utf-8") as stream:
        for line, (patient_id, time_text, kind, value_text) in _rows(
            path, stream, header=READINGS_HEADER
        ):
            patient = patient_id.strip()
            if not patient:
                raise BadInput(path, line, "empty patient_id")
            kind = kind.strip()
            if kind not in known:
                raise BadInput(
                    path, line, f"unknown type {kind!r} (expected one of {', '.join(known)})"
                )
            try:
                time_h = parse_time_h(time_text.strip())
                value = parse_value(kind, value_text)
            except ValueError as error:
                raise BadInput(path, line, str(error)) from None
            ids.append(patient)
            times.append(time_h)
            texts.append(time_text.strip())
            kinds.append(known[kind])
            values.append(value)
    readings = LongReadings(
        patient_id=np.asarray(ids, dtype=np.str_),
        time_h=np.asarray(times, dtype=np.float64),
        type_index=np.asarray(kinds, dtype=np.int64),
        value=np.asarray(values, dtype=np.float64),
    )
    return ParsedReadings(readings=readings, time_text=texts)


def read_patients(path: Path) -> dict[str, int]:
    """Parse a patients file of SpO2 scales (1 or 2); a patient listed twice is an error."""
    scales: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for line, (patient_id, scale_text) in _rows(path, stream, header=PATIENTS_HEADER):
            patient = patient_id.strip()
            if not patient:
                raise BadInput(path, line, "empty patient_id")
            if scale_text.strip() not in ("1", "2"):
                raise BadInput(path, line, f"spo2_scale {scale_text!r} must be 1 or 2")
            if patient in scales:
                raise BadInput(path, line, f"patient {patient!r} listed twice")
            scales[patient] = int(scale_text.strip())
    return scales


def write_scores(
    stream: TextIO,
    *,
    table: VitalsTable,
    time_text: list[str],
    scores: News2Batch,
    risk: FloatArray,
) -> None:
    """One line per table row, in table order (patient, then time)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(OUTPUT_HEADER)
    bands = scores.band_names()
    for row in range(len(table)):
        components = [
            str(int(scores.components[name][row])) if scores.present[name][row] else ""
            for name in news2.PARAMETERS
        ]
        missing = ";".join(
            TYPE_OF_PARAMETER[name] for name in news2.PARAMETERS if not scores.present[name][row]
        )
        writer.writerow(
            [
                table.patient_ids[int(table.patient[row])],
                time_text[row],
                int(scores.total[row]),
                *components,
                "true" if scores.single_parameter_3[row] else "false",
                str(bands[row]),
                missing,
                f"{risk[row]:.4f}",
            ]
        )

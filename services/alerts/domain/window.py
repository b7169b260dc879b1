"""Combine sparse home readings into a scoring window, and keep a patient's recent readings.

Home readings arrive at different moments from different devices, so a score uses the latest
value of each parameter within a window `(end - length, end]` and names the parameters that had
no value there; nothing is carried forward from outside the window or made up. A reading that
arrives late with an older `measured_at` never replaces a newer one. When two readings of one
type share a `measured_at`, the one that arrived later wins (it is taken as a correction), but a
repeat of a reading already seen is ignored, so redelivery cannot undo a correction.

>>> from datetime import UTC
>>> t = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
>>> w = latest_window([Observation("spo2", 93, t), Observation("spo2", 95, t + timedelta(hours=1))],
...                   end=t + timedelta(hours=2), length=timedelta(hours=6))
>>> w.values["spo2"], "heart_rate" in w.missing
(95, True)
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.alerts.domain.news2 import News2Inputs
from shared.vitals import CONSCIOUSNESS_LEVELS, VitalType

Value = float | bool | str

NEWS2_TYPES: tuple[str, ...] = tuple(
    str(vital)
    for vital in (
        VitalType.RESPIRATORY_RATE,
        VitalType.SPO2,
        VitalType.ON_OXYGEN,
        VitalType.SYSTOLIC_BP,
        VitalType.HEART_RATE,
        VitalType.CONSCIOUSNESS,
        VitalType.TEMPERATURE,
    )
)
"""The reading types NEWS2 needs; a window reports which of these it lacks."""

_VITAL_ORDER = {str(vital): position for position, vital in enumerate(VitalType)}


class InvalidObservation(ValueError):
    """A reading that cannot be used: a naive timestamp, NaN, or a value of the wrong kind."""

    def __init__(self, type: str, value: object, reason: str) -> None:
        super().__init__(f"{type}={value!r}: {reason}")
        self.type = type
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of one vital type, in the type's canonical unit."""

    type: str
    value: Value
    measured_at: datetime

    def __post_init__(self) -> None:
        if self.measured_at.utcoffset() is None:
            raise InvalidObservation(self.type, self.value, "measured_at has no time zone")
        reason = _unusable(self.type, self.value)
        if reason is not None:
            raise InvalidObservation(self.type, self.value, reason)


def _unusable(type: str, value: Value) -> str | None:
    """Why `value` cannot be a reading of `type`; types the platform does not know pass as-is."""
    if type == VitalType.ON_OXYGEN:
        return None if isinstance(value, bool) else "expected true or false"
    if type == VitalType.CONSCIOUSNESS:
        return None if value in CONSCIOUSNESS_LEVELS else "expected one of A, C, V, P, U"
    if type in _VITAL_ORDER and (isinstance(value, bool | str) or not math.isfinite(value)):
        return "expected a finite number"
    return None


def numeric(observation: Observation) -> float:
    """The reading's value as a number, for reading types that are numbers."""
    if isinstance(observation.value, bool | str):
        raise InvalidObservation(observation.type, observation.value, "expected a number")
    return float(observation.value)


def _check_span(end: datetime, length: timedelta) -> None:
    if end.utcoffset() is None:
        raise InvalidObservation("window", end, "end has no time zone")
    if length <= timedelta(0):
        raise InvalidObservation("window", length, "length must be positive")


def _type_order(type: str) -> tuple[int, str]:
    return (_VITAL_ORDER.get(type, len(_VITAL_ORDER)), type)


@dataclass(frozen=True, slots=True)
class Window:
    """The latest value of each reading type within `(end - length, end]`."""

    end: datetime
    length: timedelta
    values: dict[str, Value]
    measured_at: dict[str, datetime]
    spo2_scale: int = 1
    expected: tuple[str, ...] = NEWS2_TYPES

    @property
    def start(self) -> datetime:
        """The exclusive start of the window."""
        return self.end - self.length

    @property
    def present(self) -> tuple[str, ...]:
        """Types with a value in the window, in `VitalType` order."""
        return tuple(sorted(self.values, key=_type_order))

    @property
    def missing(self) -> tuple[str, ...]:
        """Expected types with no value in the window."""
        return tuple(type for type in self.expected if type not in self.values)

    def age(self, type: str) -> timedelta | None:
        """How old the value of `type` is at the end of the window; None if absent."""
        at = self.measured_at.get(type)
        return None if at is None else self.end - at

    def news2_inputs(self) -> News2Inputs:
        """The window's values as NEWS2 inputs; absent types stay None."""

        def number(type: str) -> float | None:
            value = self.values.get(type)
            return None if value is None else float(value)

        on_oxygen = self.values.get(VitalType.ON_OXYGEN)
        consciousness = self.values.get(VitalType.CONSCIOUSNESS)
        return News2Inputs(
            respiratory_rate=number(VitalType.RESPIRATORY_RATE),
            spo2=number(VitalType.SPO2),
            on_oxygen=None if on_oxygen is None else bool(on_oxygen),
            systolic_bp=number(VitalType.SYSTOLIC_BP),
            heart_rate=number(VitalType.HEART_RATE),
            consciousness=None if consciousness is None else str(consciousness),
            temperature=number(VitalType.TEMPERATURE),
            spo2_scale=self.spo2_scale,
        )


def latest_window(
    observations: Iterable[Observation],
    *,
    end: datetime,
    length: timedelta,
    spo2_scale: int = 1,
    expected: tuple[str, ...] = NEWS2_TYPES,
) -> Window:
    """The latest reading of each type measured within `(end - length, end]`."""
    _check_span(end, length)
    start = end - length
    latest: dict[str, Observation] = {}
    # Everything seen at the held time, so a redelivered reading cannot undo a correction.
    seen_at_latest: dict[str, set[Observation]] = {}
    for observation in observations:
        if not start < observation.measured_at <= end:
            continue
        held = latest.get(observation.type)
        if held is None or observation.measured_at > held.measured_at:
            latest[observation.type] = observation
            seen_at_latest[observation.type] = {observation}
        elif observation.measured_at == held.measured_at:
            seen = seen_at_latest[observation.type]
            if observation not in seen:
                latest[observation.type] = observation
                seen.add(observation)
    return Window(
        end=end,
        length=length,
        values={type: obs.value for type, obs in latest.items()},
        measured_at={type: obs.measured_at for type, obs in latest.items()},
        spo2_scale=spo2_scale,
        expected=expected,
    )


def _measured_at(observation: Observation) -> datetime:
    return observation.measured_at


@dataclass(slots=True)
class PatientVitals:
    """One patient's recent readings, oldest first per type, bounded in time and in count.

    Readings older than `retention` before the patient's newest reading are dropped, and each
    type keeps at most `max_per_type` readings (the oldest go first), so continuous streams
    should be thinned before they reach here or be given a larger cap. Windows and histories see
    only what is retained.
    """

    retention: timedelta = timedelta(days=14)
    max_per_type: int = 2048
    _history: dict[str, list[Observation]] = field(default_factory=dict, init=False)
    _newest: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.retention <= timedelta(0) or self.max_per_type < 1:
            raise ValueError(
                f"retention {self.retention} and max_per_type {self.max_per_type} must be positive"
            )

    def add(self, observation: Observation) -> bool:
        """Keep a reading; True if it is now the latest of its type.

        A repeat of a reading already held (same type, value and time) is ignored, so
        redelivered readings are harmless. A reading older than the retention horizon is dropped.
        """
        if self._newest is not None and observation.measured_at <= self._newest - self.retention:
            return False
        readings = self._history.setdefault(observation.type, [])
        at = observation.measured_at
        same_time = readings[
            bisect_left(readings, at, key=_measured_at) : bisect_right(
                readings, at, key=_measured_at
            )
        ]
        if observation in same_time:
            return False
        insort_right(readings, observation, key=_measured_at)
        if self._newest is None or at > self._newest:
            self._newest = at
            self._forget_before(at - self.retention)
        if len(readings) > self.max_per_type:
            del readings[: len(readings) - self.max_per_type]
        return readings[-1] is observation

    def _forget_before(self, horizon: datetime) -> None:
        for type, readings in list(self._history.items()):
            keep_from = bisect_right(readings, horizon, key=_measured_at)
            if keep_from:
                del readings[:keep_from]
            if not readings:
                del self._history[type]

    def latest(self, type: str) -> Observation | None:
        readings = self._history.get(type)
        return readings[-1] if readings else None

    def history(self, type: str, *, since: datetime | None = None) -> tuple[Observation, ...]:
        """Retained readings of `type`, oldest first; only those after `since` if given."""
        readings = self._history.get(type, [])
        if since is not None:
            readings = readings[bisect_right(readings, since, key=_measured_at) :]
        return tuple(readings)

    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._history, key=_type_order))

    def window(
        self,
        end: datetime,
        length: timedelta,
        *,
        spo2_scale: int = 1,
        expected: tuple[str, ...] = NEWS2_TYPES,
    ) -> Window:
        """The same window `latest_window` would build from the retained readings."""
        _check_span(end, length)
        start = end - length
        values: dict[str, Value] = {}
        measured_at: dict[str, datetime] = {}
        for type, readings in self._history.items():
            upto = bisect_right(readings, end, key=_measured_at)
            if upto and readings[upto - 1].measured_at > start:
                values[type] = readings[upto - 1].value
                measured_at[type] = readings[upto - 1].measured_at
        return Window(
            end=end,
            length=length,
            values=values,
            measured_at=measured_at,
            spo2_scale=spo2_scale,
            expected=expected,
        )

"""Expected measurements that are overdue: a patient's cadence per reading type against the time
of their latest reading of that type, reported once per missed period.

A type is expected only once the patient has measured it (a patient without a scale is not
expected to weigh). When a reading is `cadence` old the first period is missed; each further
`cadence` without a reading is another missed period, reported again.

>>> from datetime import UTC
>>> last = datetime(2026, 1, 14, 8, 0, tzinfo=UTC)
>>> [o.periods for o in overdue({"spo2": last}, {"spo2": timedelta(hours=24)},
...                              now=last + timedelta(hours=30))]
[1]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class InvalidCadence(ValueError):
    """A cadence that is not a positive number of hours."""

    def __init__(self, type: str, hours: object) -> None:
        super().__init__(f"{type}: cadence {hours!r} is not a positive number of hours")
        self.type = type
        self.hours = hours


def cadences(
    defaults: Mapping[str, float | None], overrides: Mapping[str, float | None]
) -> dict[str, timedelta]:
    """How often each type is expected, in hours: the defaults with a patient's overrides laid
    over them; an override of None means the type is not expected at all."""
    merged = {**defaults, **overrides}
    expected: dict[str, timedelta] = {}
    for type, hours in merged.items():
        if hours is None:
            continue
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
            raise InvalidCadence(type, hours)
        expected[type] = timedelta(hours=hours)
    return expected


@dataclass(frozen=True, slots=True)
class Overdue:
    """A type whose next reading is overdue; `due_at` starts the current missed period."""

    type: str
    last_measured: datetime
    cadence: timedelta
    due_at: datetime
    periods: int


def overdue(
    last_measured: Mapping[str, datetime],
    cadence: Mapping[str, timedelta],
    *,
    now: datetime,
    give_up_after: timedelta | None = None,
) -> list[Overdue]:
    """Expected types whose latest reading is at least one cadence old at `now`.

    A type last measured more than `give_up_after` ago is no longer expected: the patient has
    left monitoring or no longer has the device.
    """
    found: list[Overdue] = []
    for type, every in sorted(cadence.items()):
        last = last_measured.get(type)
        if last is None or (give_up_after is not None and now - last > give_up_after):
            continue
        periods = (now - last) // every
        if periods >= 1:
            found.append(Overdue(type, last, every, last + periods * every, periods))
    return found


def not_yet_reported(items: list[Overdue], reported: Mapping[str, datetime]) -> list[Overdue]:
    """The overdue items whose current period has not been reported; `reported` holds, per type,
    the start of the last period reported."""
    return [o for o in items if (seen := reported.get(o.type)) is None or seen < o.due_at]

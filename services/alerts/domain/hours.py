"""Opening hours of general practices on the Danish clock: Europe/Copenhagen, public holidays
and the extra days practices keep closed.

Which days a practice is closed, beyond Saturdays and Sundays:

- the statutory public holidays (*helligdage*) as the ``holidays`` library knows them for
  Denmark: New Year's Day, Maundy Thursday, Good Friday, Easter Sunday and Monday, Ascension
  Day, Whit Sunday and Monday, Christmas Day and Boxing Day, and Store Bededag (the fourth
  Friday after Easter) up to and including 2023 only — it was abolished from 2024;
- Constitution Day (5 June), Christmas Eve (24 December) and New Year's Eve (31 December).
  They are not statutory holidays, but Danish practices keep closed on them and the regions'
  out-of-hours services (*lægevagten*) cover the whole day, so alerts must go there.

Workers' Day (1 May) is not a closed day: it is a day off under some collective agreements
only, and practices are normally open.

Example::

    >>> from datetime import datetime
    >>> is_open(DEFAULT_GP_HOURS, datetime(2024, 3, 28, 10, 0, tzinfo=COPENHAGEN))
    False
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Days practices keep closed although the law does not make them holidays: (month, day) → name.
PRACTICE_CLOSED_DAYS: dict[tuple[int, int], str] = {
    (6, 5): "Grundlovsdag",
    (12, 24): "Juleaftensdag",
    (12, 31): "Nytårsaftensdag",
}

ClockTime = Annotated[time, PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)]


class NaiveDatetimeError(ValueError):
    """A moment without a time zone: on the Danish clock it would be ambiguous."""

    def __init__(self, at: datetime) -> None:
        super().__init__(f"datetime {at.isoformat()} has no time zone")
        self.at = at


class OpeningHours(BaseModel):
    """Opening intervals per weekday, local Copenhagen wall-clock time, each ``[start, end)``.

    A weekday left out is closed. Intervals do not cross midnight.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mon: list[tuple[ClockTime, ClockTime]] = []
    tue: list[tuple[ClockTime, ClockTime]] = []
    wed: list[tuple[ClockTime, ClockTime]] = []
    thu: list[tuple[ClockTime, ClockTime]] = []
    fri: list[tuple[ClockTime, ClockTime]] = []
    sat: list[tuple[ClockTime, ClockTime]] = []
    sun: list[tuple[ClockTime, ClockTime]] = []

    @model_validator(mode="after")
    def _intervals_run_forward(self) -> OpeningHours:
        for day in WEEKDAYS:
            for start, end in self.intervals(day):
                if start >= end:
                    raise ValueError(
                        f"opening interval on {day} must start before it ends: "
                        f"{start:%H:%M}-{end:%H:%M}"
                    )
        return self

    def intervals(self, day: Weekday) -> list[tuple[time, time]]:
        intervals: list[tuple[time, time]] = getattr(self, day)
        return intervals


DEFAULT_GP_HOURS = OpeningHours(
    mon=[(time(8), time(16))],
    tue=[(time(8), time(16))],
    wed=[(time(8), time(16))],
    thu=[(time(8), time(16))],
    fri=[(time(8), time(16))],
)


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> dict[date, str]:
    calendar = holidays.country_holidays("DK", years=year, language="da")
    return {day: str(name) for day, name in calendar.items()}


def closed_day_name(day: date) -> str | None:
    """The Danish name of the holiday or closed day that keeps practices shut, or None."""
    holiday = _public_holidays(day.year).get(day)
    if holiday is not None:
        return holiday
    return PRACTICE_CLOSED_DAYS.get((day.month, day.day))


def local_time(at: datetime) -> datetime:
    """The wall-clock time in Copenhagen of an aware moment.

    Going through UTC normalises a wall time that does not exist (the skipped hour on the
    last Sunday of March) to the instant ``zoneinfo`` gives it, and keeps the fold of an
    ambiguous one (the repeated hour on the last Sunday of October).
    """
    if at.utcoffset() is None:
        raise NaiveDatetimeError(at)
    return at.astimezone(UTC).astimezone(COPENHAGEN)


def is_open(hours: OpeningHours, at: datetime) -> bool:
    """Whether a practice with these hours is open at the aware moment ``at``."""
    local = local_time(at)
    if closed_day_name(local.date()) is not None:
        return False
    wall = local.time().replace(tzinfo=None)
    return any(start <= wall < end for start, end in hours.intervals(WEEKDAYS[local.weekday()]))

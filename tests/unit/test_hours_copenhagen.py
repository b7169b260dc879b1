"""Practice opening hours on the Danish clock: edges, holidays and daylight-saving nights."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import holidays
import pytest
from pydantic import ValidationError

from services.alerts.domain.hours import (
    COPENHAGEN,
    DEFAULT_GP_HOURS,
    NaiveDatetimeError,
    OpeningHours,
    closed_day_name,
    is_open,
)


def cph(year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, fold=fold, tzinfo=COPENHAGEN)


# Tuesday 10 September 2024: an ordinary working day.
@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [(7, 59, False), (8, 0, True), (15, 59, True), (16, 0, False), (12, 0, True), (23, 0, False)],
)
def test_weekday_edges_are_eight_to_sixteen(hour: int, minute: int, expected: bool) -> None:
    assert is_open(DEFAULT_GP_HOURS, cph(2024, 9, 10, hour, minute)) is expected


def test_friday_closes_at_sixteen_and_the_weekend_is_closed() -> None:
    assert is_open(DEFAULT_GP_HOURS, cph(2024, 9, 13, 15, 59))
    assert not is_open(DEFAULT_GP_HOURS, cph(2024, 9, 13, 16, 0))
    assert not is_open(DEFAULT_GP_HOURS, cph(2024, 9, 14, 10, 0))  # Saturday
    assert not is_open(DEFAULT_GP_HOURS, cph(2024, 9, 15, 10, 0))  # Sunday


@pytest.mark.parametrize(
    "day",
    [
        date(2024, 1, 1),  # New Year's Day, Monday
        date(2024, 3, 28),  # Maundy Thursday
        date(2024, 3, 29),  # Good Friday
        date(2024, 4, 1),  # Easter Monday
        date(2024, 5, 9),  # Ascension Day, Thursday
        date(2024, 5, 20),  # Whit Monday
        date(2024, 6, 5),  # Constitution Day, Wednesday
        date(2024, 12, 24),  # Christmas Eve, Tuesday
        date(2024, 12, 25),  # Christmas Day, Wednesday
        date(2024, 12, 26),  # Boxing Day, Thursday
        date(2024, 12, 31),  # New Year's Eve, Tuesday
        date(2023, 5, 5),  # Store Bededag, Friday: still a holiday in 2023
    ],
)
def test_practices_are_closed_on_danish_holidays_and_closed_days(day: date) -> None:
    assert not is_open(DEFAULT_GP_HOURS, cph(day.year, day.month, day.day, 10))
    assert closed_day_name(day) is not None


@pytest.mark.parametrize(
    "day",
    [
        date(2024, 4, 26),  # fourth Friday after Easter 2024: Store Bededag is abolished
        date(2024, 5, 1),  # Workers' Day: not a closed day for practices
        date(2024, 5, 10),  # the Friday after Ascension: a bridge day, not a holiday
        date(2024, 3, 27),  # the Wednesday before Easter
        date(2024, 12, 23),  # Monday before Christmas Eve
        date(2024, 12, 27),  # Friday between Christmas and New Year
    ],
)
def test_practices_are_open_on_ordinary_weekdays_around_holidays(day: date) -> None:
    assert is_open(DEFAULT_GP_HOURS, cph(day.year, day.month, day.day, 10))
    assert closed_day_name(day) is None


def test_store_bededag_is_a_holiday_in_2023_and_not_from_2024() -> None:
    # Easter Sunday 2023 was 9 April, so the fourth Friday after it was 5 May;
    # Easter Sunday 2024 was 31 March, so that Friday was 26 April.
    assert closed_day_name(date(2023, 5, 5)) == "Store bededag"
    assert closed_day_name(date(2024, 4, 26)) is None
    assert date(2023, 5, 5) in holidays.country_holidays("DK", years=2023)
    assert date(2024, 4, 26) not in holidays.country_holidays("DK", years=2024)
    assert date(2025, 5, 16) not in holidays.country_holidays("DK", years=2025)


def test_maundy_thursday_is_named_in_danish() -> None:
    assert closed_day_name(date(2025, 4, 17)) == "Skærtorsdag"


def test_spring_forward_morning_uses_summer_time() -> None:
    # Monday 31 March 2025 is the first working day on summer time (UTC+2):
    # 05:59 UTC is 07:59 in Copenhagen (closed), 06:00 UTC is 08:00 (open).
    assert not is_open(DEFAULT_GP_HOURS, datetime(2025, 3, 31, 5, 59, tzinfo=UTC))
    assert is_open(DEFAULT_GP_HOURS, datetime(2025, 3, 31, 6, 0, tzinfo=UTC))
    # Friday 28 March 2025 was still winter time (UTC+1): 06:30 UTC is 07:30, closed.
    assert not is_open(DEFAULT_GP_HOURS, datetime(2025, 3, 28, 6, 30, tzinfo=UTC))


def test_fall_back_morning_uses_winter_time() -> None:
    # Monday 28 October 2024 is winter time (UTC+1): 06:59 UTC is 07:59, 07:00 UTC is 08:00,
    # and 14:59 UTC is 15:59, 15:00 UTC is 16:00.
    assert not is_open(DEFAULT_GP_HOURS, datetime(2024, 10, 28, 6, 59, tzinfo=UTC))
    assert is_open(DEFAULT_GP_HOURS, datetime(2024, 10, 28, 7, 0, tzinfo=UTC))
    assert is_open(DEFAULT_GP_HOURS, datetime(2024, 10, 28, 14, 59, tzinfo=UTC))
    assert not is_open(DEFAULT_GP_HOURS, datetime(2024, 10, 28, 15, 0, tzinfo=UTC))


def test_a_wall_time_that_does_not_exist_is_read_as_the_instant_it_names() -> None:
    # On Sunday 30 March 2025 the clocks jump from 02:00 to 03:00, so "02:30" never happens;
    # with the winter offset it names 01:30 UTC, which the clock shows as 03:30.
    night_from_three = OpeningHours(sun=[(time(3), time(4))])
    night_from_two = OpeningHours(sun=[(time(2), time(3))])
    skipped = cph(2025, 3, 30, 2, 30)
    assert is_open(night_from_three, skipped)
    assert not is_open(night_from_two, skipped)
    assert not is_open(DEFAULT_GP_HOURS, skipped)


def test_both_readings_of_an_ambiguous_wall_time_are_that_wall_time() -> None:
    # On Sunday 27 October 2024 the clocks show 02:00-03:00 twice: 00:30 UTC and 01:30 UTC
    # are both 02:30 in Copenhagen; 02:00 UTC is 03:00.
    night = OpeningHours(sun=[(time(2), time(3))])
    assert is_open(night, cph(2024, 10, 27, 2, 30, fold=0))
    assert is_open(night, cph(2024, 10, 27, 2, 30, fold=1))
    assert is_open(night, datetime(2024, 10, 27, 0, 30, tzinfo=UTC))
    assert is_open(night, datetime(2024, 10, 27, 1, 30, tzinfo=UTC))
    assert not is_open(night, datetime(2024, 10, 27, 2, 0, tzinfo=UTC))


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2024, 9, 10, 10, 0)
    with pytest.raises(NaiveDatetimeError) as caught:
        is_open(DEFAULT_GP_HOURS, naive)
    assert caught.value.at == naive


def test_opening_hours_load_from_configuration_and_serialise_as_clock_times() -> None:
    hours = OpeningHours.model_validate(
        {"mon": [["08:00", "12:00"], ["12:30", "16:00"]], "fri": [["08:00", "14:00"]]}
    )
    assert is_open(hours, cph(2024, 9, 9, 11, 59))
    assert not is_open(hours, cph(2024, 9, 9, 12, 15))  # lunch break
    assert is_open(hours, cph(2024, 9, 9, 12, 30))
    assert not is_open(hours, cph(2024, 9, 10, 10, 0))  # Tuesday left out: closed
    assert is_open(hours, cph(2024, 9, 13, 13, 59))
    assert not is_open(hours, cph(2024, 9, 13, 14, 0))
    assert hours.model_dump(mode="json")["mon"] == [["08:00", "12:00"], ["12:30", "16:00"]]


@pytest.mark.parametrize("interval", [["16:00", "08:00"], ["08:00", "08:00"]])
def test_an_interval_that_does_not_run_forward_is_refused(interval: list[str]) -> None:
    with pytest.raises(ValidationError, match="must start before it ends"):
        OpeningHours.model_validate({"tue": [interval]})


def test_an_unknown_weekday_is_refused() -> None:
    with pytest.raises(ValidationError):
        OpeningHours.model_validate({"mandag": [["08:00", "16:00"]]})

"""Clinicians' native query parameters: types, a time range, page size and cursor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.domain.reading_query import Cursor, native_query
from shared.errors import InvalidInput
from shared.vitals import VitalType


def test_types_repeat_or_list_and_the_range_is_parsed() -> None:
    query = native_query(
        "pt-1",
        [
            ("type", "spo2,heart_rate"),
            ("type", "temperature"),
            ("from", "2024-05-01T08:00:00+02:00"),
            ("to", "2024-05-02T00:00:00Z"),
            ("limit", "50"),
        ],
        page_max=1000,
    )
    assert query.types == {VitalType.SPO2, VitalType.HEART_RATE, VitalType.TEMPERATURE}
    assert query.start == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    assert query.end == datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
    assert (query.limit, query.after) == (50, None)


def test_no_parameters_ask_for_every_type_one_full_page() -> None:
    query = native_query("pt-1", [], page_max=1000)
    assert (query.types, query.start, query.end, query.limit) == (None, None, None, 1000)


def test_every_bad_parameter_is_named() -> None:
    with pytest.raises(InvalidInput) as refused:
        native_query(
            "pt-1",
            [
                ("type", "spo2,pulse"),
                ("from", "2024-05-01"),
                ("limit", "5000"),
                ("after", "not-a-cursor"),
                ("sort", "desc"),
            ],
            page_max=1000,
        )
    fields = [p.field for p in refused.value.problems]
    assert fields == ["type", "from", "limit", "after", "sort"]
    assert "pulse" in refused.value.problems[0].message


@pytest.mark.parametrize("limit", ["0", "-1", "1.5", "²", "9" * 5000])
def test_a_limit_must_be_a_small_whole_number(limit: str) -> None:
    with pytest.raises(InvalidInput):
        native_query("pt-1", [("limit", limit)], page_max=1000)


def test_the_range_must_not_be_empty() -> None:
    with pytest.raises(InvalidInput) as refused:
        native_query(
            "pt-1", [("from", "2024-05-02T00:00:00Z"), ("to", "2024-05-01T00:00:00Z")], page_max=10
        )
    assert [p.field for p in refused.value.problems] == ["to"]


def test_a_cursor_survives_the_round_trip_and_forgeries_are_refused() -> None:
    cursor = Cursor(datetime(2024, 5, 1, 6, 0, 0, 123456, tzinfo=UTC), "dev-1", "r:1")
    assert Cursor.decode(cursor.encode()) == cursor
    query = native_query("pt-1", [("after", cursor.encode())], page_max=10)
    assert query.after == cursor
    for forged in ["", "e30", "WyIyMDI0LTA1LTAxIiwgMSwgMl0", "%%%"]:
        assert Cursor.decode(forged) is None

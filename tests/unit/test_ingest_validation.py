"""Native reading validation: normalisation, per-field rejections, lateness and batch rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.domain import validation
from services.ingest.domain.validation import FieldError, Reading, Rejection, validate_batch
from shared.vitals import VitalType

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PATIENT = "pt-7f3a"


def make_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "reading_id": "r-1",
        "type": "heart_rate",
        "value": 72,
        "unit": "/min",
        "measured_at": "2024-05-01T11:55:00Z",
    }
    item.update(overrides)
    return item


def validate(*items: object, **kwargs: Any) -> tuple[list[Reading], list[Rejection]]:
    return validate_batch(list(items), patient_id=PATIENT, now=NOW, **kwargs)


def only_rejection(*items: object) -> Rejection:
    readings, rejections = validate(*items)
    assert readings == []
    assert len(rejections) == 1
    return rejections[0]


def fields(rejection: Rejection) -> list[str]:
    return [e.field for e in rejection.errors]


def message(rejection: Rejection, field: str) -> str:
    matching = [e.message for e in rejection.errors if e.field == field]
    assert matching, f"no error for {field}: {rejection.errors}"
    return matching[0]


# --- accepted readings -----------------------------------------------------------------------


def test_valid_reading_is_normalised_to_canonical_unit_and_utc() -> None:
    item = make_item(
        type="temperature", value=100.4, unit="[degF]", measured_at="2024-05-01T13:50:00+02:00"
    )
    readings, rejections = validate(item)
    assert rejections == []
    assert readings == [
        Reading(
            reading_id="r-1",
            type=VitalType.TEMPERATURE,
            value=38.0,
            unit="Cel",
            measured_at=datetime(2024, 5, 1, 11, 50, tzinfo=UTC),
            late=False,
            original_value=100.4,
            original_unit="[degF]",
        )
    ]
    assert readings[0].measured_at.utcoffset() == timedelta(0)


def test_integer_value_becomes_float() -> None:
    readings, _ = validate(make_item(value=72, unit="bpm"))
    assert readings[0].value == 72.0
    assert isinstance(readings[0].value, float)
    assert readings[0].unit == "/min"
    assert readings[0].original_unit == "bpm"


def test_on_oxygen_and_consciousness_keep_their_values() -> None:
    readings, rejections = validate(
        make_item(reading_id="o", type="on_oxygen", value=True, unit="1"),
        make_item(reading_id="c", type="consciousness", value="V", unit="1"),
    )
    assert rejections == []
    assert [(r.type, r.value) for r in readings] == [
        (VitalType.ON_OXYGEN, True),
        (VitalType.CONSCIOUSNESS, "V"),
    ]


def test_matching_patient_id_is_accepted_and_null_counts_as_absent() -> None:
    readings, rejections = validate(
        make_item(reading_id="a", patient_id=PATIENT), make_item(reading_id="b", patient_id=None)
    )
    assert rejections == []
    assert len(readings) == 2


@pytest.mark.parametrize(
    ("measured_at", "late"),
    [
        ("2024-05-01T11:00:00Z", False),  # exactly one hour: not yet late
        ("2024-05-01T10:59:59Z", True),
        ("2024-04-02T12:00:00Z", True),  # exactly 30 days: still accepted
    ],
)
def test_late_flag(measured_at: str, late: bool) -> None:
    readings, rejections = validate(make_item(measured_at=measured_at))
    assert rejections == []
    assert readings[0].late is late


def test_late_after_is_configurable() -> None:
    readings, _ = validate(
        make_item(measured_at="2024-05-01T11:50:00Z"), late_after=timedelta(minutes=5)
    )
    assert readings[0].late is True


@pytest.mark.parametrize(
    "measured_at",
    [
        "2024-05-01T12:05:00Z",  # at the tolerance
        "2024-05-01t11:00:00.123456789z",  # lower-case separators, nanoseconds
        "2024-05-01 13:00:00+02:00",
        "2024-05-01T08:00:00-04:00",
        "2024-05-01T12:00:00-00:00",
    ],
)
def test_accepted_rfc3339_forms(measured_at: str) -> None:
    _, rejections = validate(make_item(measured_at=measured_at))
    assert rejections == []


def test_output_keeps_input_order() -> None:
    items: list[object] = [make_item(reading_id=f"r{i}", value=60 + i) for i in range(5)]
    items.insert(2, "junk")
    readings, rejections = validate(*items)
    assert [r.reading_id for r in readings] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r.index for r in rejections] == [2]


# --- structural errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "got"),
    [(None, "null"), ([1, 2], "array"), ("reading", "string"), (3, "number"), (True, "boolean")],
)
def test_non_object_item_is_rejected_as_a_whole(item: object, got: str) -> None:
    rejection = only_rejection(item)
    assert rejection == Rejection(
        0, None, (FieldError("", f"each reading must be a JSON object, got {got}"),)
    )


def test_every_missing_field_is_reported() -> None:
    rejection = only_rejection({})
    assert sorted(fields(rejection)) == sorted(
        ["reading_id", "type", "value", "unit", "measured_at"]
    )
    assert all(e.message == "required field is missing" for e in rejection.errors)
    assert rejection.reading_id is None


def test_unknown_field_is_named() -> None:
    rejection = only_rejection(make_item(measuredAt="2024-05-01T11:55:00Z"))
    assert fields(rejection) == ["measuredAt"]
    assert "accepted fields" in message(rejection, "measuredAt")
    assert rejection.reading_id == "r-1"


def test_independent_errors_are_all_reported_together() -> None:
    rejection = only_rejection(
        make_item(reading_id="", unit="furlongs", value="fast", measured_at="yesterday")
    )
    assert sorted(fields(rejection)) == ["measured_at", "reading_id", "unit", "value"]


# --- reading_id ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading_id", "needle"),
    [
        ("", "must not be empty"),
        ("x" * 129, "at most 128 characters, got 129"),
        ("has space", "may contain only"),
        ("naïve", "may contain only"),
        ("a/b", "may contain only"),
        (17, "must be a string, got number"),
        (None, "must be a string, got null"),
    ],
)
def test_bad_reading_id(reading_id: object, needle: str) -> None:
    rejection = only_rejection(make_item(reading_id=reading_id))
    assert fields(rejection) == ["reading_id"]
    assert needle in message(rejection, "reading_id")
    assert rejection.reading_id is None  # an invalid id is never echoed back


def test_reading_id_of_all_allowed_characters_and_maximum_length() -> None:
    reading_id = ("AZaz09._:-" * 13)[:128]
    readings, rejections = validate(make_item(reading_id=reading_id))
    assert rejections == []
    assert readings[0].reading_id == reading_id


def test_duplicate_reading_id_rejects_the_second() -> None:
    readings, rejections = validate(
        make_item(reading_id="dup", value=70), make_item(reading_id="dup", value=71)
    )
    assert [r.value for r in readings] == [70.0]
    assert len(rejections) == 1
    assert rejections[0].index == 1
    assert rejections[0].reading_id == "dup"
    assert "duplicate reading_id in this request" in message(rejections[0], "reading_id")
    assert "index 0" in message(rejections[0], "reading_id")


def test_duplicate_counts_even_when_the_first_was_rejected() -> None:
    _, rejections = validate(
        make_item(reading_id="dup", value=1000), make_item(reading_id="dup", value=71)
    )
    assert [r.index for r in rejections] == [0, 1]
    assert fields(rejections[1]) == ["reading_id"]


# --- patient ---------------------------------------------------------------------------------


def test_other_patient_rejects_the_item() -> None:
    rejection = only_rejection(make_item(patient_id="pt-other"))
    assert fields(rejection) == ["patient_id"]
    assert "bound" in message(rejection, "patient_id")
    assert "pt-other" not in message(rejection, "patient_id")


def test_patient_id_of_wrong_type() -> None:
    rejection = only_rejection(make_item(patient_id=12))
    assert message(rejection, "patient_id") == "must be a string, got number"


# --- type, unit, value -----------------------------------------------------------------------


def test_unknown_type_lists_the_accepted_types() -> None:
    rejection = only_rejection(make_item(type="pulse"))
    text = message(rejection, "type")
    assert "'pulse'" in text
    for vital in VitalType:
        assert vital.value in text


def test_unknown_unit_lists_units_for_that_type() -> None:
    rejection = only_rejection(make_item(type="glucose", value=5.5, unit="mmol/dL"))
    text = message(rejection, "unit")
    assert "'mmol/dL'" in text and "glucose" in text
    assert "mmol/L" in text and "mg/dL" in text
    assert "kg" not in text


def test_unit_of_wrong_type() -> None:
    rejection = only_rejection(make_item(unit=None))
    assert message(rejection, "unit") == "must be a string, got null"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (True, "must be a number for heart_rate, got boolean"),
        (False, "must be a number for heart_rate, got boolean"),
        ("72", "got string (send the number without quotes)"),
        (None, "got null"),
        ([72], "got array"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (float("-inf"), "finite"),
        (10**400, "too large"),
    ],
)
def test_bad_numeric_value(value: object, needle: str) -> None:
    rejection = only_rejection(make_item(value=value))
    assert fields(rejection) == ["value"]
    assert needle in message(rejection, "value")


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_on_oxygen_needs_a_boolean(value: object) -> None:
    rejection = only_rejection(make_item(type="on_oxygen", unit="1", value=value))
    assert message(rejection, "value").startswith("must be true or false")


@pytest.mark.parametrize("value", ["a", "X", "", 1, None])
def test_consciousness_needs_an_acvpu_letter(value: object) -> None:
    rejection = only_rejection(make_item(type="consciousness", unit="1", value=value))
    assert "A, C, V, P, U" in message(rejection, "value")


@pytest.mark.parametrize(
    ("vital", "value", "unit", "range_shown"),
    [
        ("heart_rate", 19, "/min", "20-300 /min"),
        ("heart_rate", 301, "bpm", "20-300 /min"),
        ("spo2", 101, "%", "50-100 %"),
        ("spo2", 49, "%", "50-100 %"),
        ("temperature", 98.6, "Cel", "25-45 Cel"),  # Fahrenheit figure sent as Celsius
        ("weight", 180, "g", "1-400 kg"),
        ("glucose", 5.5, "mg/dL", "0.5-60 mmol/L"),
        ("systolic_bp", 320, "mm[Hg]", "40-300 mm[Hg]"),
        ("diastolic_bp", 10, "mm[Hg]", "20-200 mm[Hg]"),
        ("respiratory_rate", 1, "/min", "2-80 /min"),
    ],
)
def test_implausible_value_names_the_range(
    vital: str, value: float, unit: str, range_shown: str
) -> None:
    rejection = only_rejection(make_item(type=vital, value=value, unit=unit))
    text = message(rejection, "value")
    assert range_shown in text
    assert vital in text


def test_implausible_converted_value_shows_both_units() -> None:
    rejection = only_rejection(make_item(type="temperature", value=37.0, unit="[degF]"))
    text = message(rejection, "value")
    assert "37 [degF]" in text
    assert "2.778 Cel" in text


@pytest.mark.parametrize(
    ("vital", "value"), [("heart_rate", 20), ("heart_rate", 300), ("spo2", 100), ("spo2", 50)]
)
def test_range_bounds_are_inclusive(vital: str, value: float) -> None:
    _, rejections = validate(
        make_item(type=vital, value=value, unit="%" if vital == "spo2" else "/min")
    )
    assert rejections == []


# --- measured_at -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured_at", "needle"),
    [
        ("2024-05-01T11:55:00", "has no UTC offset"),
        ("2024-05-01T11:55", "RFC 3339"),
        ("2024-05-01", "RFC 3339"),
        ("20240501T115500Z", "RFC 3339"),
        ("1714564500", "RFC 3339"),
        ("2024-13-01T11:55:00Z", "not a valid calendar date"),
        ("2024-02-30T11:55:00Z", "not a valid calendar date"),
        ("2024-05-01T11:55:00+25:00", "invalid UTC offset"),
        ("\uff12\uff10\uff12\uff14-05-01T11:55:00Z", "RFC 3339"),  # full-width digits
        (1714564500, "must be a string, got number"),
    ],
)
def test_bad_measured_at(measured_at: object, needle: str) -> None:
    rejection = only_rejection(make_item(measured_at=measured_at))
    assert fields(rejection) == ["measured_at"]
    assert needle in message(rejection, "measured_at")


def test_future_beyond_tolerance_is_rejected_with_a_clock_hint() -> None:
    rejection = only_rejection(make_item(measured_at="2024-05-01T14:10:00+02:00"))
    text = message(rejection, "measured_at")
    assert "10 minutes in the future" in text
    assert "device clock" in text


def test_older_than_late_limit_is_rejected() -> None:
    rejection = only_rejection(make_item(measured_at="2024-04-01T11:59:59Z"))
    assert "older than 30 days" in message(rejection, "measured_at")


def test_late_limit_and_future_tolerance_are_configurable() -> None:
    _, rejections = validate(
        make_item(reading_id="old", measured_at="2024-04-30T11:00:00Z"),
        make_item(reading_id="ahead", measured_at="2024-05-01T12:01:00Z"),
        late_limit=timedelta(days=1),
        future_tolerance=timedelta(seconds=30),
    )
    assert [r.reading_id for r in rejections] == ["old", "ahead"]


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_batch([], patient_id=PATIENT, now=datetime(2024, 5, 1, 12, 0))


# --- blood pressure pairs --------------------------------------------------------------------


def bp(
    reading_id: str, vital: str, value: float, at: str = "2024-05-01T11:50:00Z"
) -> dict[str, Any]:
    return make_item(reading_id=reading_id, type=vital, value=value, unit="mm[Hg]", measured_at=at)


def test_diastolic_above_systolic_of_same_measurement_is_rejected() -> None:
    readings, rejections = validate(bp("sys", "systolic_bp", 110), bp("dia", "diastolic_bp", 120))
    assert [r.reading_id for r in readings] == ["sys"]
    assert len(rejections) == 1
    assert rejections[0].index == 1 and rejections[0].reading_id == "dia"
    text = message(rejections[0], "value")
    assert "systolic 110" in text and "'sys'" in text


def test_same_measurement_means_same_instant_across_offsets() -> None:
    _, rejections = validate(
        bp("sys", "systolic_bp", 15, at="2024-05-01T13:50:00+02:00") | {"unit": "kPa"},
        bp("dia", "diastolic_bp", 115, at="2024-05-01T11:50:00Z"),
    )
    assert [r.reading_id for r in rejections] == ["dia"]


def test_diastolic_equal_to_or_below_systolic_or_at_another_time_is_kept() -> None:
    readings, rejections = validate(
        bp("s1", "systolic_bp", 120),
        bp("d1", "diastolic_bp", 120),
        bp("d2", "diastolic_bp", 130, at="2024-05-01T11:51:00Z"),
    )
    assert rejections == []
    assert len(readings) == 3


def test_rejected_systolic_does_not_judge_the_diastolic() -> None:
    readings, rejections = validate(bp("sys", "systolic_bp", 20), bp("dia", "diastolic_bp", 80))
    assert [r.reading_id for r in readings] == ["dia"]
    assert [r.reading_id for r in rejections] == ["sys"]


def test_rejections_are_ordered_by_index_after_the_pair_check() -> None:
    _, rejections = validate(bp("sys", "systolic_bp", 100), bp("dia", "diastolic_bp", 140), "junk")
    assert [r.index for r in rejections] == [1, 2]


# --- robustness ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["heart_rate", "/min", "2024-05-01T11:55:00Z", "r-1", "%", "spo2"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["reading_id", "type", "value", "unit", "measured_at", "patient_id", "other"]
            ),
            children,
            max_size=7,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(json_values, max_size=6))
def test_arbitrary_json_never_raises_and_every_item_is_accounted_for(items: list[object]) -> None:
    readings, rejections = validate(*items)
    assert len(readings) + len(rejections) == len(items)
    for rejection in rejections:
        assert rejection.errors
        assert all(e.message for e in rejection.errors)


@st.composite
def nearly_valid_items(draw: st.DrawFn) -> dict[str, object]:
    """Items of the common shape, each field now and then off in a way that matters."""
    vital = draw(st.sampled_from(list(VitalType)))
    unit = draw(
        st.sampled_from(
            [
                "/min",
                "bpm",
                "%",
                "mm[Hg]",
                "kPa",
                "Cel",
                "[degF]",
                "kg",
                "lb",
                "mmol/L",
                "mg/dL",
                "1",
                "furlong",
            ]
        )
    )
    value = draw(
        st.integers(-10, 400)
        | st.floats(-10, 400)
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.integers(min_value=10**400, max_value=10**400 + 1)
        | st.booleans()
        | st.just("72")
    )
    moment = NOW - draw(st.timedeltas(timedelta(minutes=-10), timedelta(days=31)))
    stamp = draw(
        st.sampled_from(
            [
                moment.isoformat(),
                moment.isoformat().replace("+00:00", "Z"),
                moment.astimezone(timezone(timedelta(hours=-5))).isoformat(),
                moment.isoformat().replace("+00:00", "z"),
                moment.replace(tzinfo=None).isoformat(),
                moment.isoformat().replace("T", " "),
                moment.strftime("%Y-%m-%dT%H:%M:%S.123456789+00:00"),
            ]
        )
    )
    item: dict[str, object] = {
        "reading_id": draw(st.sampled_from(["r-1", "r 2", "x" * 129, "ok:1.2_3"])),
        "type": vital.value,
        "value": value,
        "unit": unit,
        "measured_at": stamp,
    }
    if draw(st.booleans()):
        item[draw(st.sampled_from(["patient_id", "other"]))] = PATIENT
    return item


@settings(max_examples=500, deadline=None, database=None)
@given(nearly_valid_items())
def test_the_one_pass_check_agrees_with_the_full_checks(item: dict[str, object]) -> None:
    context = validation._Context(
        patient_id=PATIENT,
        now=NOW,
        late_limit=timedelta(days=30),
        future_tolerance=timedelta(minutes=5),
        late_after=timedelta(hours=1),
        latest=NOW + timedelta(minutes=5),
        earliest=NOW - timedelta(days=30),
        late_before=NOW - timedelta(hours=1),
    )
    quick = validation._quick(0, item, context=context, seen={})
    full = validation._check_item(0, item, context=context, seen={})
    if quick is not None:
        assert quick == full
    elif isinstance(full, Reading):
        # Only the shapes the one pass leaves to the full checks may be accepted there.
        assert len(item) != 5 or full.type in (VitalType.ON_OXYGEN, VitalType.CONSCIOUSNESS)

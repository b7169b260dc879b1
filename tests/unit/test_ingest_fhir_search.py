"""FHIR Observation search parameters, and stored readings as valid FHIR R4 Observations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from services.ingest.domain.fhir_search import (
    observation,
    observation_id,
    parse_search,
    searchset,
)
from services.ingest.domain.reading_query import StoredReading
from shared.errors import InvalidInput
from shared.vitals import VitalType

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def search(*parameters: tuple[str, str]):  # type: ignore[no-untyped-def]
    return parse_search(list(parameters), local=COPENHAGEN, page_max=1000)


@pytest.mark.parametrize(
    "reference", ["pt-1", "Patient/pt-1", "https://fhir.example.dk/fhir/Patient/pt-1"]
)
def test_the_patient_is_given_as_an_id_or_a_reference(reference: str) -> None:
    assert search(("patient", reference)).query.patient_id == "pt-1"
    assert search(("subject", reference)).query.patient_id == "pt-1"


@pytest.mark.parametrize("reference", ["Device/dev-1", "Patient/", "a b"])
def test_what_is_not_a_patient_is_refused(reference: str) -> None:
    with pytest.raises(InvalidInput):
        search(("patient", reference))


def test_searches_are_for_one_patient() -> None:
    with pytest.raises(InvalidInput) as refused:
        search(("code", "8867-4"))
    assert [p.field for p in refused.value.problems] == ["patient"]
    with pytest.raises(InvalidInput):
        search(("patient", "pt-1"), ("patient", "pt-2"))


@pytest.mark.parametrize(
    ("code", "types"),
    [
        ("8867-4", {VitalType.HEART_RATE}),
        ("http://loinc.org|59408-5", {VitalType.SPO2}),
        ("2708-6", {VitalType.SPO2}),
        ("85354-9", {VitalType.SYSTOLIC_BP, VitalType.DIASTOLIC_BP}),
        ("8867-4,8310-5", {VitalType.HEART_RATE, VitalType.TEMPERATURE}),
        ("https://naervagt.dk/fhir/CodeSystem/vital-type|on_oxygen", {VitalType.ON_OXYGEN}),
        ("consciousness", {VitalType.CONSCIOUSNESS}),
        ("http://snomed.info/sct|8867-4", set()),
        ("1234-5", set()),
    ],
)
def test_codes_select_vital_types(code: str, types: set[VitalType]) -> None:
    assert search(("patient", "pt-1"), ("code", code)).query.types == types


def test_repeated_codes_must_all_match() -> None:
    query = search(("patient", "pt-1"), ("code", "85354-9"), ("code", "8480-6,8867-4")).query
    assert query.types == {VitalType.SYSTOLIC_BP}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=COPENHAGEN)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("date", "start", "end"),
    [
        ("2024-05-01", local(2024, 5, 1), local(2024, 5, 2)),
        ("eq2024-05", local(2024, 5, 1), local(2024, 6, 1)),
        ("eq2024-12", local(2024, 12, 1), local(2025, 1, 1)),
        ("2024", local(2024, 1, 1), local(2025, 1, 1)),
        ("ge2024-05-01", local(2024, 5, 1), None),
        ("gt2024-05-01", local(2024, 5, 2), None),
        ("sa2024-05-01", local(2024, 5, 2), None),
        ("le2024-05-01", None, local(2024, 5, 2)),
        ("lt2024-05-01", None, local(2024, 5, 1)),
        ("eb2024-05-01", None, local(2024, 5, 1)),
        (
            "ge2024-05-01T08:30:00Z",
            datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
            None,
        ),
        (
            "eq2024-05-01T08:30:00+02:00",
            datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
            datetime(2024, 5, 1, 6, 30, 1, tzinfo=UTC),
        ),
        (
            "eq2024-05-01T08:30",
            local(2024, 5, 1, 8, 30),
            local(2024, 5, 1, 8, 31),
        ),
        (
            "eq2024-05-01T08:30:00.25-01:00",
            datetime(2024, 5, 1, 9, 30, 0, 250000, tzinfo=UTC),
            datetime(2024, 5, 1, 9, 30, 0, 260000, tzinfo=UTC),
        ),
    ],
)
def test_a_date_stands_for_the_range_its_precision_gives(
    date: str, start: datetime | None, end: datetime | None
) -> None:
    query = search(("patient", "pt-1"), ("date", date)).query
    assert (query.start, query.end) == (start, end)


def test_a_local_day_on_which_the_clocks_go_forward_has_23_hours() -> None:
    query = search(("patient", "pt-1"), ("date", "2024-03-31")).query
    assert query.start is not None and query.end is not None
    assert query.end - query.start == timedelta(hours=23)


def test_several_dates_narrow_the_range() -> None:
    query = search(
        ("patient", "pt-1"),
        ("date", "ge2024-05-01"),
        ("date", "ge2024-05-03"),
        ("date", "lt2024-06-01"),
        ("date", "le2024-05-10"),
    ).query
    assert (query.start, query.end) == (local(2024, 5, 3), local(2024, 5, 11))


@pytest.mark.parametrize(
    "date",
    [
        "ne2024-05-01",
        "ap2024-05-01",
        "2024-13-01",
        "2024-05-01T25:00",
        "yesterday",
        "2024-05-01T08:30:00+25:00",
    ],
)
def test_unsupported_or_impossible_dates_are_refused(date: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        search(("patient", "pt-1"), ("date", date))
    assert [p.field for p in refused.value.problems] == ["date"]


def test_unknown_parameters_are_ignored_and_named_and_count_is_bounded() -> None:
    request = search(("patient", "pt-1"), ("_sort", "-date"), ("_count", "10"), ("_sort", "x"))
    assert request.ignored == ("_sort",)
    assert request.query.limit == 10
    assert request.used == (("patient", "pt-1"), ("_count", "10"))
    with pytest.raises(InvalidInput):
        search(("patient", "pt-1"), ("_count", "1001"))


def stored(vital: VitalType, value: float | bool | str, unit: str) -> StoredReading:
    return StoredReading(
        device_id="dev-0123456789abcdef",
        reading_id="urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281:8480-6",
        patient_id="pt-1",
        type=vital,
        value=value,
        unit=unit,
        measured_at=datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
        received_at=datetime(2024, 5, 1, 6, 31, tzinfo=UTC),
        late=False,
    )


READINGS = [
    stored(VitalType.HEART_RATE, 72.0, "/min"),
    stored(VitalType.SYSTOLIC_BP, 128.0, "mm[Hg]"),
    stored(VitalType.TEMPERATURE, 37.2, "Cel"),
    stored(VitalType.ON_OXYGEN, True, "1"),
    stored(VitalType.CONSCIOUSNESS, "V", "1"),
]


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.type.value)
def test_each_reading_is_a_valid_fhir_observation(reading: StoredReading) -> None:
    resource = observation(reading)
    parsed = Observation.model_validate(resource)
    assert parsed.subject is not None and parsed.subject.reference == "Patient/pt-1"
    assert resource["effectiveDateTime"] == "2024-05-01T06:30:00+00:00"
    assert resource["identifier"][0]["value"] == reading.reading_id


def test_quantities_carry_ucum_units_and_loinc_codes() -> None:
    resource = observation(READINGS[1])
    assert resource["valueQuantity"] == {
        "value": 128.0,
        "unit": "mm[Hg]",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert {"system": "http://loinc.org", "code": "8480-6"} in resource["code"]["coding"]
    assert observation(READINGS[3])["valueBoolean"] is True
    assert observation(READINGS[4])["valueCodeableConcept"]["coding"][0]["code"] == "V"


def test_an_observation_id_is_a_valid_fhir_id_without_patient_data() -> None:
    long_id = "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281:8480-6"
    made = observation_id("dev-0123456789abcdef", long_id)
    assert re.fullmatch(r"[A-Za-z0-9.\-]{1,64}", made)
    assert made == observation_id("dev-0123456789abcdef", long_id)  # stable
    assert made != observation_id("dev-0123456789abcdef", long_id + "x")
    assert made != observation_id("dev-fedcba9876543210", long_id)


def test_a_searchset_is_a_valid_bundle_with_links_and_an_outcome() -> None:
    bundle = searchset(
        READINGS,
        base_url="https://ingest.example/fhir",
        self_url="https://ingest.example/fhir/Observation?patient=pt-1",
        next_url="https://ingest.example/fhir/Observation?patient=pt-1&_cursor=abc",
        ignored=["_sort"],
    )
    Bundle.model_validate(bundle)
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]
    modes = [entry["search"]["mode"] for entry in bundle["entry"]]
    assert modes == ["match"] * len(READINGS) + ["outcome"]
    assert bundle["entry"][0]["fullUrl"].startswith("https://ingest.example/fhir/Observation/dev-")


def test_an_empty_searchset_has_no_entries() -> None:
    bundle = searchset([], base_url="b", self_url="s", next_url=None)
    assert "entry" not in bundle
    assert bundle["link"] == [{"relation": "self", "url": "s"}]

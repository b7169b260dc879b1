"""Routing alerts to responders: every severity, the Danish clock, and missing mappings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.care import CareStructure, Patient
from services.alerts.domain.hours import COPENHAGEN
from services.alerts.domain.routing import SEVERITIES, Route, RoutingPolicy, Step, route

CARE = CareStructure.from_dict(
    {
        "organisations": [
            {"org_id": "akut-fyn-syd", "kind": "acute_team", "name": "Akutteam Sydfyn",
             "phone": "+45 00 00 01 01", "region": "syddanmark",
             "municipalities": ["svendborg", "faaborg-midtfyn", "aeroe"]},
            {"org_id": "akut-horsens", "kind": "acute_team", "name": "Akutteam Horsens",
             "phone": "+45 00 00 04 01", "region": "midtjylland", "municipalities": ["horsens"]},
            {"org_id": "gp-svendborg-1", "kind": "gp_practice", "name": "Lægehuset Svendborg",
             "phone": "+45 00 00 02 01", "region": "syddanmark"},
            {"org_id": "gp-aeroe-1", "kind": "gp_practice", "name": "Ærø Lægehus",
             "phone": "+45 00 00 02 04", "region": "syddanmark",
             "opening_hours": {
                 "mon": [["08:00", "12:00"], ["12:30", "16:00"]],
                 "tue": [["08:00", "12:00"], ["12:30", "16:00"]],
                 "wed": [["08:00", "16:00"]],
                 "thu": [["08:00", "16:00"]],
                 "fri": [["08:00", "14:00"]]}},
            {"org_id": "gp-horsens-1", "kind": "gp_practice", "name": "Lægehuset Horsens",
             "phone": "+45 00 00 04 02", "region": "midtjylland",
             "opening_hours": {day: [["07:30", "15:30"]]
                               for day in ("mon", "tue", "wed", "thu", "fri")}},
            {"org_id": "ooh-syddanmark", "kind": "out_of_hours",
             "name": "Lægevagten Region Syddanmark", "phone": "70 11 07 07",
             "region": "syddanmark"},
            {"org_id": "ooh-midtjylland", "kind": "out_of_hours",
             "name": "Lægevagten Region Midtjylland", "phone": "70 11 31 31",
             "region": "midtjylland"},
        ],
        "patients": [
            {"patient_id": "pt-svendborg", "municipality": "svendborg",
             "gp_practice_id": "gp-svendborg-1", "region": "syddanmark", "condition": "copd"},
            {"patient_id": "pt-aeroe", "municipality": "aeroe", "gp_practice_id": "gp-aeroe-1",
             "region": "syddanmark", "condition": "heart_failure"},
            {"patient_id": "pt-horsens", "municipality": "horsens",
             "gp_practice_id": "gp-horsens-1", "region": "midtjylland", "condition": "frail"},
        ],
    }
)  # fmt: skip

POLICY = RoutingPolicy()

SVENDBORG = Patient(
    patient_id="pt-svendborg",
    municipality="svendborg",
    gp_practice_id="gp-svendborg-1",
    region="syddanmark",
)
AEROE = Patient(
    patient_id="pt-aeroe", municipality="aeroe", gp_practice_id="gp-aeroe-1", region="syddanmark"
)
HORSENS = Patient(
    patient_id="pt-horsens",
    municipality="horsens",
    gp_practice_id="gp-horsens-1",
    region="midtjylland",
)

# (kind, org_id, ack_timeout_s) of each step, as the default policy promises them.
EMERGENCY = ("emergency_112", None, None)
SYD_ACUTE = "akut-fyn-syd"
SYD_OOH = "ooh-syddanmark"


def cph(year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, fold=fold, tzinfo=COPENHAGEN)


TUESDAY_10 = cph(2024, 9, 10, 10)
SATURDAY_10 = cph(2024, 9, 14, 10)


def steps(result: Route) -> list[tuple[str, str | None, int | None]]:
    return [(step.kind, step.org_id, step.ack_timeout_s) for step in result.chain]


def routed(
    patient: Patient | None, severity: str, at: datetime, policy: RoutingPolicy = POLICY
) -> Route:
    return route(patient, severity_or_kind=severity, at=at, care=CARE, policy=policy)


# --- every severity, for a patient whose mappings are all known --------------------------


@pytest.mark.parametrize("at", [TUESDAY_10, SATURDAY_10, cph(2024, 12, 24, 3)])
def test_high_advises_112_pages_the_acute_team_and_escalates_to_out_of_hours(
    at: datetime,
) -> None:
    result = routed(SVENDBORG, "high", at)
    assert steps(result) == [
        EMERGENCY,
        ("acute_team", SYD_ACUTE, 300),
        ("out_of_hours", SYD_OOH, 600),
    ]
    assert result.chain[0].phone == "112"
    assert result.chain[2].phone == "70 11 07 07"
    assert result.warnings == []


@pytest.mark.parametrize("at", [TUESDAY_10, SATURDAY_10])
def test_medium_goes_to_the_acute_team_then_out_of_hours(at: datetime) -> None:
    result = routed(SVENDBORG, "medium", at)
    assert steps(result) == [("acute_team", SYD_ACUTE, 900), ("out_of_hours", SYD_OOH, 1800)]
    assert result.warnings == []


def test_low_medium_goes_to_the_acute_team_by_default() -> None:
    result = routed(SVENDBORG, "low-medium", TUESDAY_10)
    assert steps(result) == [("acute_team", SYD_ACUTE, 1800), ("out_of_hours", SYD_OOH, 1800)]


def test_low_medium_can_be_sent_to_the_gp_by_policy() -> None:
    policy = RoutingPolicy(low_medium_to="gp")
    assert steps(routed(SVENDBORG, "low-medium", TUESDAY_10, policy)) == [
        ("gp", "gp-svendborg-1", 3600),
        ("acute_team", SYD_ACUTE, 1800),
    ]
    assert steps(routed(SVENDBORG, "low-medium", SATURDAY_10, policy)) == [
        ("out_of_hours", SYD_OOH, 1800),
        ("acute_team", SYD_ACUTE, 1800),
    ]


def test_low_goes_to_the_open_gp_then_the_acute_team() -> None:
    result = routed(SVENDBORG, "low", TUESDAY_10)
    assert steps(result) == [("gp", "gp-svendborg-1", 7200), ("acute_team", SYD_ACUTE, 3600)]
    assert result.chain[0].name == "Lægehuset Svendborg"
    assert result.chain[0].phone == "+45 00 00 02 01"
    assert result.warnings == []


def test_low_goes_to_out_of_hours_then_the_acute_team_when_the_gp_is_closed() -> None:
    result = routed(SVENDBORG, "low", SATURDAY_10)
    assert steps(result) == [("out_of_hours", SYD_OOH, 3600), ("acute_team", SYD_ACUTE, 3600)]
    assert result.warnings == []


def test_trend_follows_the_gp_opening_hours_with_longer_timeouts() -> None:
    assert steps(routed(SVENDBORG, "trend", TUESDAY_10)) == [
        ("gp", "gp-svendborg-1", 14400),
        ("acute_team", SYD_ACUTE, 7200),
    ]
    assert steps(routed(SVENDBORG, "trend", SATURDAY_10)) == [
        ("out_of_hours", SYD_OOH, 7200),
        ("acute_team", SYD_ACUTE, 7200),
    ]


@pytest.mark.parametrize("at", [TUESDAY_10, SATURDAY_10])
def test_a_missing_measurement_becomes_a_task_for_the_acute_team(at: datetime) -> None:
    result = routed(SVENDBORG, "missing_measurement", at)
    assert steps(result) == [("task_list", SYD_ACUTE, None)]
    assert "Akutteam Sydfyn" in result.chain[0].name
    assert result.warnings == []


def test_a_patient_in_another_region_gets_that_regions_responders() -> None:
    assert steps(routed(HORSENS, "high", TUESDAY_10)) == [
        EMERGENCY,
        ("acute_team", "akut-horsens", 300),
        ("out_of_hours", "ooh-midtjylland", 600),
    ]
    low = routed(HORSENS, "low", SATURDAY_10)
    assert steps(low) == [
        ("out_of_hours", "ooh-midtjylland", 3600),
        ("acute_team", "akut-horsens", 3600),
    ]
    assert low.chain[0].phone == "70 11 31 31"


# --- the Danish clock ------------------------------------------------------------------------

GP_SVENDBORG = [("gp", "gp-svendborg-1", 7200), ("acute_team", SYD_ACUTE, 3600)]
OOH_SVENDBORG = [("out_of_hours", SYD_OOH, 3600), ("acute_team", SYD_ACUTE, 3600)]
GP_AEROE = [("gp", "gp-aeroe-1", 7200), ("acute_team", SYD_ACUTE, 3600)]
GP_HORSENS = [("gp", "gp-horsens-1", 7200), ("acute_team", "akut-horsens", 3600)]
OOH_HORSENS = [("out_of_hours", "ooh-midtjylland", 3600), ("acute_team", "akut-horsens", 3600)]


@pytest.mark.parametrize(
    ("patient", "at", "expected"),
    [
        # Tuesday 10 September 2024, weekdays 08:00-16:00.
        (SVENDBORG, cph(2024, 9, 10, 7, 59), OOH_SVENDBORG),
        (SVENDBORG, cph(2024, 9, 10, 8, 0), GP_SVENDBORG),
        (SVENDBORG, cph(2024, 9, 10, 15, 59), GP_SVENDBORG),
        (SVENDBORG, cph(2024, 9, 10, 16, 0), OOH_SVENDBORG),
        # Friday 13 September 2024 at 16:00; Saturday 14 September.
        (SVENDBORG, cph(2024, 9, 13, 15, 59), GP_SVENDBORG),
        (SVENDBORG, cph(2024, 9, 13, 16, 0), OOH_SVENDBORG),
        (SVENDBORG, cph(2024, 9, 14, 10, 0), OOH_SVENDBORG),
        # Ærø: lunch break 12:00-12:30 on Tuesdays, Friday closes at 14:00.
        (AEROE, cph(2024, 9, 10, 11, 59), GP_AEROE),
        (AEROE, cph(2024, 9, 10, 12, 15), OOH_SVENDBORG),
        (AEROE, cph(2024, 9, 10, 12, 30), GP_AEROE),
        (AEROE, cph(2024, 9, 13, 13, 59), GP_AEROE),
        (AEROE, cph(2024, 9, 13, 14, 0), OOH_SVENDBORG),
        # Horsens (Region Midtjylland) opens 07:30-15:30.
        (HORSENS, cph(2024, 9, 10, 7, 29), OOH_HORSENS),
        (HORSENS, cph(2024, 9, 10, 7, 30), GP_HORSENS),
        (HORSENS, cph(2024, 9, 10, 15, 30), OOH_HORSENS),
        # Maundy Thursday 28 March 2024, against the ordinary Wednesday before it.
        (SVENDBORG, cph(2024, 3, 27, 10, 0), GP_SVENDBORG),
        (SVENDBORG, cph(2024, 3, 28, 10, 0), OOH_SVENDBORG),
        (HORSENS, cph(2024, 3, 28, 10, 0), OOH_HORSENS),
        # Store Bededag: Friday 5 May 2023 was a holiday; Friday 26 April 2024 was not.
        (SVENDBORG, cph(2023, 5, 5, 10, 0), OOH_SVENDBORG),
        (SVENDBORG, cph(2024, 4, 26, 10, 0), GP_SVENDBORG),
        (AEROE, cph(2023, 5, 5, 10, 0), OOH_SVENDBORG),
        (AEROE, cph(2024, 4, 26, 10, 0), GP_AEROE),
        # Constitution Day and Christmas Eve are closed days for practices.
        (SVENDBORG, cph(2024, 6, 5, 10, 0), OOH_SVENDBORG),
        (HORSENS, cph(2024, 12, 24, 10, 0), OOH_HORSENS),
    ],
)
def test_low_alerts_follow_the_danish_clock(
    patient: Patient, at: datetime, expected: list[tuple[str, str | None, int | None]]
) -> None:
    assert steps(routed(patient, "low", at)) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Monday 31 March 2025, the first working day of summer time (UTC+2).
        (datetime(2025, 3, 31, 5, 59, tzinfo=UTC), OOH_SVENDBORG),  # 07:59 in Copenhagen
        (datetime(2025, 3, 31, 6, 0, tzinfo=UTC), GP_SVENDBORG),  # 08:00
        (datetime(2025, 3, 31, 13, 59, tzinfo=UTC), GP_SVENDBORG),  # 15:59
        (datetime(2025, 3, 31, 14, 0, tzinfo=UTC), OOH_SVENDBORG),  # 16:00
        # Monday 28 October 2024, the first working day of winter time (UTC+1).
        (datetime(2024, 10, 28, 6, 59, tzinfo=UTC), OOH_SVENDBORG),  # 07:59
        (datetime(2024, 10, 28, 7, 0, tzinfo=UTC), GP_SVENDBORG),  # 08:00
        (datetime(2024, 10, 28, 14, 59, tzinfo=UTC), GP_SVENDBORG),  # 15:59
        (datetime(2024, 10, 28, 15, 0, tzinfo=UTC), OOH_SVENDBORG),  # 16:00
        # Sunday 30 March 2025 02:30 does not exist (02:00 jumps to 03:00): still Sunday.
        (cph(2025, 3, 30, 2, 30), OOH_SVENDBORG),
        # Sunday 27 October 2024 02:30 happens twice: both are Sunday night.
        (cph(2024, 10, 27, 2, 30, fold=0), OOH_SVENDBORG),
        (cph(2024, 10, 27, 2, 30, fold=1), OOH_SVENDBORG),
    ],
)
def test_low_alerts_across_the_daylight_saving_nights(
    at: datetime, expected: list[tuple[str, str | None, int | None]]
) -> None:
    assert steps(routed(SVENDBORG, "low", at)) == expected


@pytest.mark.parametrize(
    "at",
    [cph(2025, 3, 30, 2, 30), cph(2024, 10, 27, 2, 30, fold=0), cph(2024, 10, 27, 2, 30, fold=1)],
)
def test_high_alerts_route_the_same_in_the_daylight_saving_nights(at: datetime) -> None:
    assert steps(routed(SVENDBORG, "high", at)) == [
        EMERGENCY,
        ("acute_team", SYD_ACUTE, 300),
        ("out_of_hours", SYD_OOH, 600),
    ]


# --- missing mappings ------------------------------------------------------------------------


@pytest.mark.parametrize("gp_practice_id", [None, "gp-closed-2019", "akut-fyn-syd"])
def test_without_a_known_gp_low_alerts_go_to_out_of_hours_even_in_opening_hours(
    gp_practice_id: str | None,
) -> None:
    patient = Patient(
        patient_id="pt-nogp",
        municipality="svendborg",
        gp_practice_id=gp_practice_id,
        region="syddanmark",
    )
    result = routed(patient, "low", TUESDAY_10)
    assert steps(result) == OOH_SVENDBORG
    assert result.warnings == [f"patient 'pt-nogp': GP practice {gp_practice_id!r} is not known"]


def test_without_an_acute_team_urgent_alerts_go_to_out_of_hours() -> None:
    patient = Patient(
        patient_id="pt-langeland",
        municipality="langeland",
        gp_practice_id="gp-svendborg-1",
        region="syddanmark",
    )
    warning = "patient 'pt-langeland': no acute team serves municipality 'langeland'"
    high = routed(patient, "high", TUESDAY_10)
    assert steps(high) == [EMERGENCY, ("out_of_hours", SYD_OOH, 600)]
    assert high.warnings == [warning]
    medium = routed(patient, "medium", TUESDAY_10)
    assert steps(medium) == [("out_of_hours", SYD_OOH, 1800)]
    assert medium.warnings == [warning]
    low = routed(patient, "low", TUESDAY_10)
    assert steps(low) == [("gp", "gp-svendborg-1", 7200)]
    task = routed(patient, "missing_measurement", TUESDAY_10)
    assert steps(task) == [("task_list", "gp-svendborg-1", None)]
    assert task.warnings == [warning, "task goes to the GP practice 'Lægehuset Svendborg' instead"]


def test_without_out_of_hours_a_closed_gp_hands_low_alerts_to_the_acute_team() -> None:
    patient = Patient(
        patient_id="pt-border",
        municipality="svendborg",
        gp_practice_id="gp-svendborg-1",
        region="nordjylland",
    )
    result = routed(patient, "low", SATURDAY_10)
    assert steps(result) == [("acute_team", SYD_ACUTE, 3600)]
    assert result.warnings[0] == (
        "patient 'pt-border': region 'nordjylland' has no out-of-hours service"
    )
    assert "Lægehuset Svendborg" in result.warnings[1]
    assert "2024-09-14T10:00+02:00" in result.warnings[1]


NOWHERE = Patient(patient_id="pt-nowhere", municipality="aalborg", region="nordjylland")


def test_when_nothing_is_known_the_policy_fallback_takes_the_alert() -> None:
    policy = RoutingPolicy(fallback_name="Nærvagt driftsvagt", fallback_phone="+45 00 00 09 09")
    medium = routed(NOWHERE, "medium", TUESDAY_10, policy)
    assert medium.chain == [
        Step(
            kind="out_of_hours",
            org_id=None,
            name="Nærvagt driftsvagt",
            phone="+45 00 00 09 09",
            ack_timeout_s=1800,
        )
    ]
    assert medium.warnings[-1] == "no responder known for this alert; using the fallback responder"
    high = routed(NOWHERE, "high", TUESDAY_10, policy)
    assert steps(high) == [EMERGENCY, ("out_of_hours", None, 600)]
    assert high.chain[1].phone == "+45 00 00 09 09"
    task = routed(NOWHERE, "missing_measurement", TUESDAY_10, policy)
    assert steps(task) == [("task_list", None, None)]
    assert task.chain[0].name == policy.fallback_task_list_name


def test_a_fallback_region_lends_its_out_of_hours_service() -> None:
    policy = RoutingPolicy(fallback_region="syddanmark")
    result = routed(NOWHERE, "low", SATURDAY_10, policy)
    assert steps(result) == [("out_of_hours", SYD_OOH, 3600)]
    assert (
        "patient 'pt-nowhere': region 'nordjylland' has no out-of-hours service; using "
        "'Lægevagten Region Syddanmark' of region 'syddanmark'"
    ) in result.warnings


def test_an_alert_without_a_patient_still_routes() -> None:
    high = routed(None, "high", TUESDAY_10)
    assert steps(high) == [EMERGENCY, ("out_of_hours", None, 600)]
    assert high.chain[1].name == POLICY.fallback_name
    assert high.warnings[0] == "alert has no known patient; no responder can be looked up"
    lent = routed(None, "medium", TUESDAY_10, RoutingPolicy(fallback_region="midtjylland"))
    assert steps(lent) == [("out_of_hours", "ooh-midtjylland", 1800)]


def test_an_unknown_severity_routes_as_medium_with_a_warning() -> None:
    result = routed(SVENDBORG, "critical", TUESDAY_10)
    assert steps(result) == [("acute_team", SYD_ACUTE, 900), ("out_of_hours", SYD_OOH, 1800)]
    assert result.warnings == ["unknown severity 'critical'; routed as 'medium'"]


def test_timeouts_are_policy_settings() -> None:
    policy = RoutingPolicy(ack_timeouts_s={"high": {"acute_team": 120}}, default_ack_timeout_s=240)
    assert steps(routed(SVENDBORG, "high", TUESDAY_10, policy)) == [
        EMERGENCY,
        ("acute_team", SYD_ACUTE, 120),
        ("out_of_hours", SYD_OOH, 240),
    ]


# --- shape ----------------------------------------------------------------------------------


def test_a_route_serialises_to_the_documented_json_shape() -> None:
    result = routed(SVENDBORG, "high", TUESDAY_10)
    assert result.chain[1].to_json() == {
        "kind": "acute_team",
        "org_id": "akut-fyn-syd",
        "name": "Akutteam Sydfyn",
        "phone": "+45 00 00 01 01",
        "ack_timeout_s": 300,
    }
    document = result.to_json()
    assert document["chain"][0] == {
        "kind": "emergency_112",
        "org_id": None,
        "name": "Ring 112 (alarmcentralen)",
        "phone": "112",
        "ack_timeout_s": None,
    }
    assert Route.model_validate(document) == result


def test_a_route_cannot_be_empty() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        Route(chain=[], warnings=[])


PATIENTS = st.sampled_from(
    [
        None,
        SVENDBORG,
        AEROE,
        HORSENS,
        NOWHERE,
        Patient(patient_id="pt-empty"),
        Patient(patient_id="pt-odd", municipality="horsens", gp_practice_id="gp-aeroe-1"),
    ]
)


@given(
    patient=PATIENTS,
    severity=st.one_of(st.sampled_from(SEVERITIES), st.text(max_size=12)),
    at=st.datetimes(
        min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
)
def test_no_alert_is_ever_dropped(patient: Patient | None, severity: str, at: datetime) -> None:
    result = routed(patient, severity, at)
    responders = [step for step in result.chain if step.kind != "emergency_112"]
    assert responders, "every alert reaches a responder or a task list"
    for step in responders:
        assert step.name
        assert step.kind == "task_list" or step.ack_timeout_s is not None
    assert (result.chain[0].kind == "emergency_112") == (severity == "high")
    if patient is None:
        assert result.warnings

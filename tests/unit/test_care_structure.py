"""The care structure configuration: its shape, lookups and reference warnings."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.alerts.domain.care import (
    AcuteTeam,
    CareStructure,
    DuplicateIdError,
    GpPractice,
    HospitalDepartment,
    reference_warnings,
)
from services.alerts.domain.hours import COPENHAGEN, is_open


def make_structure(**changes: Any) -> dict[str, Any]:
    structure: dict[str, Any] = {
        "organisations": [
            {
                "org_id": "akut-fyn-syd",
                "kind": "acute_team",
                "name": "Akutteam Sydfyn",
                "phone": "+45 00 00 01 01",
                "region": "syddanmark",
                "municipalities": ["svendborg", "faaborg-midtfyn", "aeroe"],
            },
            {
                "org_id": "gp-svendborg-1",
                "kind": "gp_practice",
                "name": "Lægehuset Svendborg",
                "phone": "+45 00 00 02 01",
                "region": "syddanmark",
                "opening_hours": {"mon": [["08:00", "16:00"]], "tue": [["08:00", "16:00"]]},
            },
            {
                "org_id": "gp-aeroe-1",
                "kind": "gp_practice",
                "name": "Ærø Lægehus",
                "phone": "+45 00 00 02 04",
                "region": "syddanmark",
            },
            {
                "org_id": "ooh-syddanmark",
                "kind": "out_of_hours",
                "name": "Lægevagten Region Syddanmark",
                "phone": "70 11 07 07",
                "region": "syddanmark",
            },
            {
                "org_id": "ouh-lunge",
                "kind": "hospital_department",
                "name": "Lungemedicinsk Afdeling J, OUH",
                "phone": "+45 00 00 03 01",
                "region": "syddanmark",
                "specialties": ["pulmonology"],
            },
        ],
        "patients": [
            {
                "patient_id": "pt-0001",
                "municipality": "svendborg",
                "gp_practice_id": "gp-svendborg-1",
                "region": "syddanmark",
                "spo2_scale": 1,
                "condition": "copd",
            },
            {
                "patient_id": "pt-0002",
                "municipality": "aeroe",
                "gp_practice_id": "gp-aeroe-1",
                "region": "syddanmark",
                "spo2_scale": 2,
                "condition": None,
            },
        ],
    }
    structure.update(changes)
    return structure


def test_the_documented_shape_loads_from_json_text() -> None:
    care = CareStructure.from_json(json.dumps(make_structure()))
    team = care.organisation("akut-fyn-syd")
    assert isinstance(team, AcuteTeam)
    assert team.municipalities == ["svendborg", "faaborg-midtfyn", "aeroe"]
    department = care.organisation("ouh-lunge")
    assert isinstance(department, HospitalDepartment)
    assert department.specialties == ["pulmonology"]
    patient = care.patient("pt-0002")
    assert patient is not None
    assert patient.spo2_scale == 2
    assert patient.condition is None
    assert reference_warnings(care) == []


def test_lookups_find_the_responders_of_a_patient() -> None:
    care = CareStructure.from_dict(make_structure())
    patient = care.patient("pt-0002")
    assert patient is not None
    acute = care.acute_team_for("aeroe")
    gp = care.gp_for(patient)
    ooh = care.out_of_hours_for("syddanmark")
    assert acute is not None and acute.org_id == "akut-fyn-syd"
    assert gp is not None and gp.org_id == "gp-aeroe-1"
    assert ooh is not None and ooh.phone == "70 11 07 07"
    assert care.acute_team_for("odense") is None
    assert care.out_of_hours_for("midtjylland") is None


def test_responsible_orgs_are_acute_team_gp_and_out_of_hours() -> None:
    care = CareStructure.from_dict(make_structure())
    assert care.responsible_orgs("pt-0001") == {"akut-fyn-syd", "gp-svendborg-1", "ooh-syddanmark"}
    assert care.responsible_orgs("pt-9999") == set()


def test_a_practice_without_opening_hours_gets_weekdays_eight_to_sixteen() -> None:
    care = CareStructure.from_dict(make_structure())
    practice = care.organisation("gp-aeroe-1")
    assert isinstance(practice, GpPractice)
    # Friday 13 September 2024 at 15:00 and at 16:00; Saturday 14 September at 10:00.
    assert is_open(practice.opening_hours, datetime(2024, 9, 13, 15, 0, tzinfo=COPENHAGEN))
    assert not is_open(practice.opening_hours, datetime(2024, 9, 13, 16, 0, tzinfo=COPENHAGEN))
    assert not is_open(practice.opening_hours, datetime(2024, 9, 14, 10, 0, tzinfo=COPENHAGEN))


def test_configured_opening_hours_replace_the_default() -> None:
    care = CareStructure.from_dict(make_structure())
    practice = care.organisation("gp-svendborg-1")
    assert isinstance(practice, GpPractice)
    # Only Monday and Tuesday are configured: Wednesday 11 September 2024 is closed.
    assert not is_open(practice.opening_hours, datetime(2024, 9, 11, 10, tzinfo=COPENHAGEN))


def test_broken_references_are_warnings_and_the_patients_still_load() -> None:
    structure = make_structure(
        patients=[
            {"patient_id": "pt-0003", "municipality": "langeland", "region": "syddanmark",
             "gp_practice_id": "gp-closed-2019"},
            {"patient_id": "pt-0004", "municipality": "aeroe", "region": "nordjylland",
             "gp_practice_id": "akut-fyn-syd"},
            {"patient_id": "pt-0005"},
        ]
    )  # fmt: skip
    care = CareStructure.from_dict(structure)
    assert care.patient("pt-0003") is not None
    warnings = reference_warnings(care)
    assert warnings == [
        "patient 'pt-0003' names GP practice 'gp-closed-2019', which is not a known GP practice",
        "patient 'pt-0003' lives in municipality 'langeland', which no acute team serves",
        "patient 'pt-0004' names GP practice 'akut-fyn-syd', which is not a known GP practice",
        "patient 'pt-0005' has no GP practice",
        "patient 'pt-0005' has no municipality",
        "patient 'pt-0005' has no region",
        "region 'nordjylland' has no out-of-hours service",
    ]
    assert care.responsible_orgs("pt-0003") == {"ooh-syddanmark"}
    assert care.responsible_orgs("pt-0004") == {"akut-fyn-syd"}


def test_a_municipality_claimed_twice_is_a_warning_and_the_first_team_serves_it() -> None:
    structure = make_structure()
    structure["organisations"].append(
        {"org_id": "akut-aeroe", "kind": "acute_team", "name": "Akutteam Ærø",
         "region": "syddanmark", "municipalities": ["aeroe"]}
    )  # fmt: skip
    care = CareStructure.from_dict(structure)
    assert reference_warnings(care) == [
        "municipality 'aeroe' is served by both acute teams 'akut-fyn-syd' and 'akut-aeroe'; "
        "using the first"
    ]
    team = care.acute_team_for("aeroe")
    assert team is not None and team.org_id == "akut-fyn-syd"


def test_an_organisation_region_without_out_of_hours_is_a_warning() -> None:
    structure = make_structure()
    structure["organisations"].append(
        {"org_id": "akut-horsens", "kind": "acute_team", "name": "Akutteam Horsens",
         "region": "midtjylland", "municipalities": ["horsens"]}
    )  # fmt: skip
    care = CareStructure.from_dict(structure)
    assert reference_warnings(care) == ["region 'midtjylland' has no out-of-hours service"]


def test_duplicate_ids_fail_the_load() -> None:
    structure = make_structure()
    structure["organisations"].append(dict(structure["organisations"][0]))
    with pytest.raises(ValidationError, match="duplicate organisation id 'akut-fyn-syd'"):
        CareStructure.from_dict(structure)
    structure = make_structure()
    structure["patients"].append({"patient_id": "pt-0001"})
    with pytest.raises(ValidationError, match="duplicate patient id 'pt-0001'"):
        CareStructure.from_dict(structure)
    assert issubclass(DuplicateIdError, ValueError)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("organisations", 0, "kind"), "nursing_home"),
        (("patients", 0, "spo2_scale"), 3),
        (("patients", 0, "condition"), "asthma"),
        (("organisations", 1, "opening_hours"), {"mon": [["16:00", "08:00"]]}),
        (("organisations", 0, "municipalitys"), ["odense"]),
    ],
)
def test_a_malformed_structure_fails_the_load(path: tuple[str, int, str], value: Any) -> None:
    structure = make_structure()
    section, index, key = path
    structure[section][index][key] = value
    with pytest.raises(ValidationError):
        CareStructure.from_dict(structure)

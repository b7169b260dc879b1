"""Clinicians in the care structure, and the warnings an operator gets for one patient."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.alerts.domain.care import (
    CareStructure,
    Patient,
    patient_warnings,
    reference_warnings,
)

ORGS = [
    {"org_id": "akut-a", "kind": "acute_team", "name": "Akutteam A", "region": "syddanmark",
     "municipalities": ["a-by"]},
    {"org_id": "gp-a", "kind": "gp_practice", "name": "Lægehuset A", "region": "syddanmark"},
]  # fmt: skip


def test_clinicians_load_with_their_organisation_and_role() -> None:
    care = CareStructure.from_dict(
        {
            "organisations": ORGS,
            "clinicians": [
                {"clinician_id": "nurse-1", "org_id": "akut-a", "name": "Karen Holm"},
                {"clinician_id": "dr-1", "org_id": "gp-a", "name": "Ole Berg", "role": "gp"},
            ],
        }
    )
    assert [(c.clinician_id, c.role) for c in care.clinicians] == [
        ("nurse-1", "nurse"),
        ("dr-1", "gp"),
    ]
    assert reference_warnings(care) == ["region 'syddanmark' has no out-of-hours service"]


def test_the_same_clinician_may_serve_two_organisations_but_not_twice_in_one() -> None:
    both = [
        {"clinician_id": "nurse-1", "org_id": "akut-a", "name": "Karen Holm"},
        {"clinician_id": "nurse-1", "org_id": "gp-a", "name": "Karen Holm"},
    ]
    assert len(CareStructure.from_dict({"organisations": ORGS, "clinicians": both}).clinicians) == 2
    with pytest.raises(ValidationError, match="duplicate clinician id 'akut-a/nurse-1'"):
        CareStructure.from_dict({"organisations": ORGS, "clinicians": [both[0], both[0]]})


def test_a_clinician_of_an_unknown_organisation_is_a_warning() -> None:
    care = CareStructure.from_dict(
        {"clinicians": [{"clinician_id": "x", "org_id": "gone", "name": "X"}]}
    )
    assert reference_warnings(care) == ["clinician 'x' belongs to unknown organisation 'gone'"]


def test_patient_warnings_name_each_missing_reference_of_that_patient() -> None:
    care = CareStructure.from_dict({"organisations": ORGS})
    fine = Patient(patient_id="p1", municipality="a-by", gp_practice_id="gp-a", region="r")
    assert patient_warnings(care, fine) == []
    lost = Patient(patient_id="p2", municipality="elsewhere", gp_practice_id="gp-x")
    assert patient_warnings(care, lost) == [
        "patient 'p2' names GP practice 'gp-x', which is not a known GP practice",
        "patient 'p2' lives in municipality 'elsewhere', which no acute team serves",
        "patient 'p2' has no region",
    ]

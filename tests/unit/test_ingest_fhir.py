"""FHIR R4 Observations and Bundles in, native readings and FHIR responses out.

The resources are shaped like the vital-signs examples of the FHIR R4 specification (heart-rate,
body-temperature, body-weight, blood-pressure, vitals-panel), with recent effective times.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.domain.fhir import (
    CREATED,
    INVALID,
    NOT_SCORED,
    FhirRequest,
    Settled,
    parse_fhir,
    respond,
    settle,
)
from services.ingest.domain.validation import validate_batch
from shared.vitals import VitalType

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
PATIENT = "example"
WHEN = "2024-05-01T11:30:00+02:00"  # 30 minutes before NOW

VITAL_SIGNS = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs",
            }
        ],
        "text": "Vital Signs",
    }
]


def heart_rate() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "heart-rate",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Heart rate 44 /min</div>',
        },
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
            "text": "Heart rate",
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": WHEN,
        "valueQuantity": {
            "value": 44,
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def body_temperature() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "body-temperature",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}
            ],
            "text": "Body temperature",
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": WHEN,
        "valueQuantity": {
            "value": 99.5,
            "unit": "F",
            "system": "http://unitsofmeasure.org",
            "code": "[degF]",
        },
    }


def body_weight() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "body-weight",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
                {"system": "http://loinc.org", "code": "3141-9", "display": "Body weight Measured"},
                {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight"},
            ]
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": WHEN,
        "valueQuantity": {
            "value": 185,
            "unit": "lbs",
            "system": "http://unitsofmeasure.org",
            "code": "[lb_av]",
        },
    }


def blood_pressure() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "blood-pressure",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "identifier": [
            {
                "system": "urn:ietf:rfc:3986",
                "value": "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281",
            }
        ],
        "basedOn": [{"identifier": {"system": "https://acme.org/identifiers", "value": "1234"}}],
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "85354-9",
                    "display": "Blood pressure panel with all children optional",
                }
            ],
            "text": "Blood pressure systolic & diastolic",
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": WHEN,
        "performer": [{"reference": "Practitioner/example"}],
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "L",
                        "display": "low",
                    }
                ],
                "text": "Below low normal",
            }
        ],
        "bodySite": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}
            ]
        },
        "component": [
            {
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "8480-6",
                            "display": "Systolic blood pressure",
                        },
                        {"system": "http://snomed.info/sct", "code": "271649006"},
                        {"system": "http://acme.org/devices/clinical-codes", "code": "bp-s"},
                    ]
                },
                "valueQuantity": {
                    "value": 107,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "8462-4",
                            "display": "Diastolic blood pressure",
                        }
                    ]
                },
                "valueQuantity": {
                    "value": 60,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }


def vitals_panel(members: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "vitals-panel",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "85353-1",
                    "display": "Vital signs, weight, height, head circumference, oxygen "
                    "saturation and BMI panel",
                }
            ],
            "text": "Vital signs Panel",
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": WHEN,
        "hasMember": [{"reference": reference} for reference in members],
    }


def bundle(*resources: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"http://hl7.org/fhir/Observation/{resource.get('id', i)}",
                "resource": resource,
                "request": {"method": "POST", "url": "Observation"},
            }
            for i, resource in enumerate(resources)
        ],
    }


def run(document: object) -> tuple[FhirRequest, Settled]:
    request = parse_fhir(document)
    readings, rejections = validate_batch(request.native_items(), patient_id=PATIENT, now=NOW)
    return request, settle(request, readings=readings, rejections=rejections)


def issues(outcome: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    OperationOutcome.model_validate(outcome)
    return [
        (issue["severity"], issue["code"], issue.get("expression", []))
        for issue in outcome["issue"]
    ]


def diagnostics(outcome: dict[str, Any]) -> str:
    return " | ".join(issue["diagnostics"] for issue in outcome["issue"])


def response_entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    Bundle.model_validate(body)
    entries: list[dict[str, Any]] = body.get("entry", [])
    return [entry["response"] for entry in entries]


# --- single Observations ---------------------------------------------------------------------


def test_heart_rate_example_becomes_one_reading() -> None:
    request = parse_fhir(heart_rate())
    assert request.native_items() == [
        {
            "reading_id": "heart-rate",
            "type": "heart_rate",
            "value": 44.0,
            "unit": "/min",
            "measured_at": "2024-05-01T11:30:00+02:00",
            "patient_id": "example",
        }
    ]
    _, settled = run(heart_rate())
    assert settled.http_status == 201
    assert [(r.reading_id, r.type, r.value) for r in settled.readings] == [
        ("heart-rate", VitalType.HEART_RATE, 44.0)
    ]
    assert issues(settled.body)[0][0] == "information"


def test_body_temperature_in_fahrenheit_is_converted() -> None:
    _, settled = run(body_temperature())
    (reading,) = settled.readings
    assert reading.type is VitalType.TEMPERATURE
    assert reading.value == 37.5
    assert reading.unit == "Cel"
    assert (reading.original_value, reading.original_unit) == (99.5, "[degF]")


def test_body_weight_in_pounds_is_converted() -> None:
    _, settled = run(body_weight())
    (reading,) = settled.readings
    assert reading.type is VitalType.WEIGHT
    assert reading.value == pytest.approx(83.915, abs=0.001)
    assert reading.reading_id == "body-weight"


def test_blood_pressure_panel_yields_systolic_and_diastolic() -> None:
    _, settled = run(blood_pressure())
    assert settled.http_status == 201
    uuid = "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"
    assert [(r.reading_id, r.type, r.value, r.unit) for r in settled.readings] == [
        (f"{uuid}:8480-6", VitalType.SYSTOLIC_BP, 107.0, "mm[Hg]"),
        (f"{uuid}:8462-4", VitalType.DIASTOLIC_BP, 60.0, "mm[Hg]"),
    ]
    assert {r.measured_at for r in settled.readings} == {datetime(2024, 5, 1, 9, 30, tzinfo=UTC)}


def test_blood_pressure_in_kpa_is_converted() -> None:
    resource = blood_pressure()
    for component in resource["component"]:
        component["valueQuantity"]["code"] = "kPa"
    resource["component"][0]["valueQuantity"]["value"] = 16
    resource["component"][1]["valueQuantity"]["value"] = 10
    _, settled = run(resource)
    assert [r.value for r in settled.readings] == [pytest.approx(120.01), pytest.approx(75.006)]


def test_spo2_with_either_loinc_code() -> None:
    for code in ("59408-5", "2708-6"):
        resource = heart_rate()
        resource["id"] = f"sat-{code}"
        resource["code"]["coding"] = [{"system": "http://loinc.org", "code": code}]
        resource["valueQuantity"] = {
            "value": 95,
            "system": "http://unitsofmeasure.org",
            "code": "%",
        }
        _, settled = run(resource)
        assert [(r.type, r.value) for r in settled.readings] == [(VitalType.SPO2, 95.0)]


def test_reading_id_prefers_identifier_then_id() -> None:
    resource = heart_rate()
    resource["identifier"] = [{"system": "urn:dev"}, {"system": "urn:dev", "value": "hr-0042"}]
    assert parse_fhir(resource).native_items()[0]["reading_id"] == "hr-0042"


def test_effective_period_start_and_instant_are_the_measurement_time() -> None:
    period = heart_rate()
    del period["effectiveDateTime"]
    period["effectivePeriod"] = {"start": "2024-05-01T09:10:00Z", "end": "2024-05-01T09:12:00Z"}
    instant = heart_rate()
    del instant["effectiveDateTime"]
    instant["effectiveInstant"] = "2024-05-01T09:20:00.250Z"
    assert parse_fhir(period).native_items()[0]["measured_at"] == "2024-05-01T09:10:00+00:00"
    _, settled = run(instant)
    assert settled.readings[0].measured_at == datetime(2024, 5, 1, 9, 20, 0, 250000, tzinfo=UTC)


# --- rejections with FHIRPath expressions ----------------------------------------------------


def test_unknown_unit_points_at_the_quantity_code() -> None:
    resource = heart_rate()
    resource["valueQuantity"]["code"] = "Hz"
    _, settled = run(resource)
    assert settled.http_status == 400
    assert settled.readings == []
    assert issues(settled.body) == [("error", "code-invalid", ["Observation.valueQuantity.code"])]
    assert "accepted units: /min" in diagnostics(settled.body)


def test_implausible_value_points_at_the_quantity_value() -> None:
    resource = heart_rate()
    resource["valueQuantity"]["value"] = 440
    _, settled = run(resource)
    assert issues(settled.body) == [("error", "value", ["Observation.valueQuantity.value"])]
    assert "20-300 /min" in diagnostics(settled.body)


def test_date_only_effective_time_of_the_specification_example_is_refused() -> None:
    resource = heart_rate()
    resource["effectiveDateTime"] = "1999-07-02"
    _, settled = run(resource)
    assert settled.http_status == 400
    assert issues(settled.body) == [("error", "value", ["Observation.effectiveDateTime"])]
    assert "RFC 3339" in diagnostics(settled.body)


def test_date_time_without_offset_is_refused_by_the_fhir_model() -> None:
    resource = heart_rate()
    resource["effectiveDateTime"] = "2024-05-01T09:30:00"
    _, settled = run(resource)
    assert issues(settled.body) == [("error", "invalid", ["Observation.effectiveDateTime"])]
    assert "UTC offset" in diagnostics(settled.body)


def test_structural_errors_are_reported_with_paths() -> None:
    resource = blood_pressure()
    resource["component"][1]["valueQuantity"]["value"] = "sixty"
    resource["effectiveDatetime"] = WHEN  # misspelt element
    _, settled = run(resource)
    assert settled.http_status == 400
    assert sorted(issues(settled.body)) == [
        ("error", "invalid", ["Observation.component[1].valueQuantity.value"]),
        ("error", "structure", ["Observation.effectiveDatetime"]),
    ]


def test_diastolic_above_systolic_points_at_the_component() -> None:
    resource = blood_pressure()
    resource["component"][1]["valueQuantity"]["value"] = 120
    _, settled = run(resource)
    assert settled.http_status == 400
    assert settled.readings == []  # the systolic of a refused panel is not kept either
    assert issues(settled.body) == [
        ("error", "value", ["Observation.component[1].valueQuantity.value"])
    ]
    assert "systolic 107" in diagnostics(settled.body)


def test_other_patient_points_at_the_subject() -> None:
    resource = heart_rate()
    resource["subject"] = {"reference": "Patient/someone-else"}
    _, settled = run(resource)
    assert issues(settled.body) == [("error", "forbidden", ["Observation.subject.reference"])]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r: r["code"].update(coding=[{"system": "http://loinc.org", "code": "8302-2"}]),
            ("error", "not-supported", ["Observation.code"]),
        ),
        (
            lambda r: r.pop("effectiveDateTime"),
            ("error", "required", ["Observation.effectiveDateTime"]),
        ),
        (lambda r: r.pop("status"), ("error", "required", ["Observation.status"])),
        (lambda r: r.update(status="done"), ("error", "code-invalid", ["Observation.status"])),
        (lambda r: r.pop("valueQuantity"), ("error", "required", ["Observation.valueQuantity"])),
        (
            lambda r: (r.pop("valueQuantity"), r.update(valueString="44")),
            ("error", "structure", ["Observation.valueString"]),
        ),
        (
            lambda r: r["valueQuantity"].update(comparator=">"),
            ("error", "value", ["Observation.valueQuantity.comparator"]),
        ),
        (
            lambda r: r["valueQuantity"].update(system="http://example.org/units"),
            ("error", "code-invalid", ["Observation.valueQuantity.system"]),
        ),
        (
            lambda r: r["valueQuantity"].pop("value"),
            ("error", "required", ["Observation.valueQuantity.value"]),
        ),
        (
            lambda r: (r["valueQuantity"].pop("code"), r["valueQuantity"].pop("unit")),
            ("error", "required", ["Observation.valueQuantity.code"]),
        ),
        (lambda r: r.pop("id"), ("error", "required", ["Observation.identifier"])),
        (
            lambda r: r.update(effectivePeriod={"end": WHEN}, effectiveDateTime=None),
            ("error", "required", ["Observation.effectivePeriod.start"]),
        ),
        (
            lambda r: r.update(id="hr 1"),
            ("error", "invalid", ["Observation.id"]),
        ),
    ],
)
def test_observation_errors(change: Any, expected: tuple[str, str, list[str]]) -> None:
    resource = heart_rate()
    change(resource)
    resource = {k: v for k, v in resource.items() if v is not None}
    _, settled = run(resource)
    assert settled.http_status == 400
    assert expected in issues(settled.body)
    assert settled.readings == []


def test_unit_text_is_used_when_the_code_is_missing() -> None:
    resource = heart_rate()
    resource["valueQuantity"] = {"value": 61, "unit": "bpm"}
    _, settled = run(resource)
    assert [(r.value, r.original_unit) for r in settled.readings] == [(61.0, "bpm")]


def test_reading_id_of_an_identifier_with_a_slash_is_refused_at_the_identifier() -> None:
    resource = heart_rate()
    resource["identifier"] = [{"value": "acme/hr/1"}]
    _, settled = run(resource)
    assert issues(settled.body) == [("error", "invalid", ["Observation.identifier[0].value"])]


# --- not scored ------------------------------------------------------------------------------


def test_entered_in_error_is_not_scored() -> None:
    resource = heart_rate()
    resource["status"] = "entered-in-error"
    _, settled = run(resource)
    assert settled.http_status == 200
    assert settled.readings == []
    assert "entered-in-error" in diagnostics(settled.body)
    assert issues(settled.body)[0][:2] == ("information", "informational")


def test_data_absent_without_value_is_not_scored() -> None:
    resource = heart_rate()
    del resource["valueQuantity"]
    resource["dataAbsentReason"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}
        ]
    }
    _, settled = run(resource)
    assert settled.http_status == 200
    assert "dataAbsentReason is 'error'" in diagnostics(settled.body)


def test_panel_component_with_data_absent_reason_keeps_the_other() -> None:
    resource = blood_pressure()
    del resource["component"][1]["valueQuantity"]
    resource["component"][1]["dataAbsentReason"] = {"text": "cuff slipped"}
    _, settled = run(resource)
    assert settled.http_status == 201
    assert [r.type for r in settled.readings] == [VitalType.SYSTOLIC_BP]
    assert ("information", "informational", ["Observation.component[1]"]) in issues(settled.body)


# --- panels with members ---------------------------------------------------------------------


def test_vitals_panel_with_contained_members() -> None:
    panel = vitals_panel(["#hr", "#temp", "#bp"])
    members = [heart_rate(), body_temperature(), blood_pressure()]
    for member, local_id in zip(members, ["hr", "temp", "bp"], strict=True):
        member["id"] = local_id
        member.pop("identifier", None)
        del member["effectiveDateTime"]  # inherited from the panel
        del member["subject"]
    panel["contained"] = members
    request, settled = run(panel)
    assert settled.http_status == 201
    assert [(r.reading_id, r.type) for r in settled.readings] == [
        ("vitals-panel:hr", VitalType.HEART_RATE),
        ("vitals-panel:temp", VitalType.TEMPERATURE),
        ("vitals-panel:bp:8480-6", VitalType.SYSTOLIC_BP),
        ("vitals-panel:bp:8462-4", VitalType.DIASTOLIC_BP),
    ]
    assert request.native_items()[0]["patient_id"] == "example"
    assert {r.measured_at for r in settled.readings} == {datetime(2024, 5, 1, 9, 30, tzinfo=UTC)}


def test_contained_member_error_points_into_contained() -> None:
    panel = vitals_panel(["#hr"])
    member = heart_rate()
    member["id"] = "hr"
    member["valueQuantity"]["value"] = 5
    panel["contained"] = [member]
    _, settled = run(panel)
    assert issues(settled.body) == [
        ("error", "value", ["Observation.contained[0].valueQuantity.value"])
    ]


def test_missing_contained_member_is_an_error() -> None:
    _, settled = run(vitals_panel(["#nowhere"]))
    assert issues(settled.body) == [("error", "not-found", ["Observation.hasMember[0].reference"])]


def test_vitals_panel_in_a_bundle_with_its_members_as_entries() -> None:
    document = bundle(
        vitals_panel(["Observation/heart-rate", "Observation/blood-pressure"]),
        heart_rate(),
        blood_pressure(),
    )
    _, settled = run(document)
    assert settled.http_status == 200
    responses = response_entries(settled.body)
    assert [r["status"] for r in responses] == [NOT_SCORED, CREATED, CREATED]
    assert "no scorable values of its own" in diagnostics(responses[0]["outcome"])
    assert [r.type for r in settled.readings] == [
        VitalType.HEART_RATE,
        VitalType.SYSTOLIC_BP,
        VitalType.DIASTOLIC_BP,
    ]


def test_panel_member_outside_the_request_is_a_warning() -> None:
    document = bundle(vitals_panel(["Observation/heart-rate"]))
    _, settled = run(document)
    (response,) = response_entries(settled.body)
    assert response["status"] == NOT_SCORED
    assert ("warning", "not-found", ["Bundle.entry[0].resource.hasMember[0].reference"]) in issues(
        response["outcome"]
    )


# --- bundles ---------------------------------------------------------------------------------


def test_batch_answers_per_entry_with_bundle_paths() -> None:
    bad = heart_rate()
    bad["id"] = "hr-2"
    bad["valueQuantity"]["code"] = "Hz"
    gone = body_weight()
    gone["status"] = "entered-in-error"
    document = bundle(body_temperature(), bad, gone, blood_pressure())
    request, settled = run(document)
    assert request.bundle_type == "batch"
    assert settled.http_status == 200
    assert settled.body["type"] == "batch-response"
    responses = response_entries(settled.body)
    assert [r["status"] for r in responses] == [CREATED, INVALID, NOT_SCORED, CREATED]
    assert issues(responses[1]["outcome"]) == [
        ("error", "code-invalid", ["Bundle.entry[1].resource.valueQuantity.code"])
    ]
    assert [r.type for r in settled.readings] == [
        VitalType.TEMPERATURE,
        VitalType.SYSTOLIC_BP,
        VitalType.DIASTOLIC_BP,
    ]


def test_entries_already_received_answer_200_and_created_ones_name_their_location() -> None:
    request, settled = run(bundle(body_temperature(), blood_pressure()))
    temperature = settled.readings[0]
    status, body = respond(
        request,
        settled.results,
        duplicates={temperature.reading_id},
        location=lambda reading: f"Observation/{reading.reading_id}",
    )
    assert status == 200
    responses = response_entries(body)
    assert [r["status"] for r in responses] == [NOT_SCORED, CREATED]
    assert issues(responses[0]["outcome"])[0][1] == "duplicate"
    assert [r["location"] for r in responses] == [
        f"Observation/{temperature.reading_id}",
        f"Observation/{settled.readings[1].reading_id}",  # the panel's first component
    ]


def test_a_lone_observation_received_before_answers_200() -> None:
    request, settled = run(heart_rate())
    status, outcome = respond(request, settled.results, duplicates={"heart-rate"})
    assert status == 200
    assert issues(outcome) == [("information", "duplicate", [])]
    assert respond(request, settled.results)[0] == 201


def test_collection_is_processed_like_a_batch() -> None:
    _, settled = run(bundle(heart_rate(), kind="collection"))
    assert settled.body["type"] == "batch-response"
    assert len(settled.readings) == 1


def test_transaction_is_all_or_nothing() -> None:
    bad = body_weight()
    bad["valueQuantity"]["value"] = 2000
    request, settled = run(bundle(heart_rate(), bad, kind="transaction"))
    assert request.atomic
    assert settled.http_status == 400
    assert settled.readings == []
    assert issues(settled.body) == [
        ("error", "value", ["Bundle.entry[1].resource.valueQuantity.value"])
    ]


def test_successful_transaction_answers_with_a_transaction_response() -> None:
    _, settled = run(bundle(heart_rate(), body_weight(), kind="transaction"))
    assert settled.body["type"] == "transaction-response"
    assert [r["status"] for r in response_entries(settled.body)] == [CREATED, CREATED]
    assert len(settled.readings) == 2


def test_same_observation_twice_in_a_batch_rejects_the_second() -> None:
    _, settled = run(bundle(heart_rate(), heart_rate()))
    responses = response_entries(settled.body)
    assert [r["status"] for r in responses] == [CREATED, INVALID]
    assert issues(responses[1]["outcome"]) == [
        ("error", "duplicate", ["Bundle.entry[1].resource.id"])
    ]
    assert len(settled.readings) == 1


def test_urn_uuid_full_url_is_the_reading_id_of_an_anonymous_observation() -> None:
    resource = heart_rate()
    del resource["id"]
    document = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f3c4e9a-1f0e-4b7a-9a51-2f6f0d2a1c77",
                "resource": resource,
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    _, settled = run(document)
    assert [r.reading_id for r in settled.readings] == [
        "urn:uuid:0f3c4e9a-1f0e-4b7a-9a51-2f6f0d2a1c77"
    ]


def test_entries_that_are_not_observations_are_not_scored() -> None:
    patient = {"resourceType": "Patient", "id": "example"}
    _, settled = run(bundle(patient, heart_rate()))
    responses = response_entries(settled.body)
    assert [r["status"] for r in responses] == [NOT_SCORED, CREATED]
    assert "'Patient' was ignored" in diagnostics(responses[0]["outcome"])


def test_unsupported_entry_method_and_malformed_entries() -> None:
    document = bundle(heart_rate(), body_weight())
    document["entry"][0]["request"]["method"] = "DELETE"
    document["entry"].extend(["junk", {"fullUrl": "urn:uuid:x"}])
    _, settled = run(document)
    responses = response_entries(settled.body)
    assert [r["status"] for r in responses] == [INVALID, CREATED, INVALID, INVALID]
    assert issues(responses[0]["outcome"]) == [
        ("error", "not-supported", ["Bundle.entry[0].request.method"])
    ]
    assert issues(responses[2]["outcome"]) == [("error", "structure", ["Bundle.entry[2]"])]
    assert issues(responses[3]["outcome"]) == [("error", "required", ["Bundle.entry[3].resource"])]


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ([heart_rate()], "JSON object"),
        ({"resourceType": "Patient"}, "expected an Observation or a Bundle"),
        ({"resourceType": "Bundle", "type": "searchset", "entry": []}, "Bundle.type"),
        ({"resourceType": "Bundle", "type": "batch", "entry": {}}, "must be an array"),
    ],
)
def test_documents_that_are_refused_whole(document: object, needle: str) -> None:
    _, settled = run(document)
    assert settled.http_status == 400
    assert settled.readings == []
    assert issues(settled.body)[0][0] == "fatal"
    assert needle in diagnostics(settled.body)


def test_empty_batch_answers_an_empty_batch_response() -> None:
    _, settled = run({"resourceType": "Bundle", "type": "batch"})
    assert settled.http_status == 200
    assert response_entries(settled.body) == []


def test_input_document_is_not_modified() -> None:
    document = bundle(blood_pressure(), vitals_panel(["#x"]))
    before = copy.deepcopy(document)
    run(document)
    assert document == before


# --- robustness ------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """Specification-shaped resources with one element replaced by arbitrary JSON."""

    def mutate(resource: dict[str, Any], key: str, value: object) -> dict[str, Any]:
        changed = copy.deepcopy(resource)
        changed[key] = value
        return changed

    resources = st.sampled_from(
        [heart_rate(), body_temperature(), body_weight(), blood_pressure(), vitals_panel(["#a"])]
    )
    keys = st.sampled_from(
        [
            "status",
            "code",
            "valueQuantity",
            "effectiveDateTime",
            "component",
            "id",
            "identifier",
            "hasMember",
            "contained",
            "subject",
            "dataAbsentReason",
        ]
    )
    return st.builds(mutate, resources, keys, _json)


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.one_of(
        _json,
        _mutations(),
        st.lists(_mutations(), max_size=3).map(lambda rs: bundle(*rs)),
        st.lists(_json, max_size=3).map(
            lambda es: {"resourceType": "Bundle", "type": "batch", "entry": es}
        ),
    )
)
def test_arbitrary_documents_never_raise_and_answer_valid_fhir(document: object) -> None:
    request, settled = run(document)
    assert settled.http_status in (200, 201, 400)
    if settled.body["resourceType"] == "Bundle":
        assert len(response_entries(settled.body)) == len(request.entries)
    else:
        OperationOutcome.model_validate(settled.body)

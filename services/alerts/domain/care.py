"""The Danish care structure as configuration: organisations, the patients they serve, their
clinicians, and the lookups routing needs (acute team by municipality, GP by patient,
out-of-hours by region).

Example::

    >>> care = CareStructure.from_json(text)  # the caller reads the file
    >>> for warning in reference_warnings(care):
    ...     log.warning(warning)
    >>> care.responsible_orgs("pt-0001")
    {'akut-fyn-syd', 'gp-svendborg-1', 'ooh-syddanmark'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from services.alerts.domain.hours import DEFAULT_GP_HOURS, OpeningHours

OrgKind = Literal["acute_team", "gp_practice", "out_of_hours", "hospital_department"]
Condition = Literal["copd", "heart_failure", "diabetes", "frail"]


class _Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    org_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    phone: str | None = None
    region: str = Field(min_length=1)


class AcuteTeam(_Organisation):
    """A municipal acute team (*akutteam*); one team may serve several municipalities."""

    kind: Literal["acute_team"] = "acute_team"
    municipalities: list[str] = []


class GpPractice(_Organisation):
    """A general practice (*almen praksis*); weekdays 08:00-16:00 unless configured."""

    kind: Literal["gp_practice"] = "gp_practice"
    opening_hours: OpeningHours = DEFAULT_GP_HOURS


class OutOfHoursService(_Organisation):
    """A region's out-of-hours doctor service (*lægevagten*)."""

    kind: Literal["out_of_hours"] = "out_of_hours"


class HospitalDepartment(_Organisation):
    """A hospital department that gives specialist advice."""

    kind: Literal["hospital_department"] = "hospital_department"
    specialties: list[str] = []


Organisation = Annotated[
    AcuteTeam | GpPractice | OutOfHoursService | HospitalDepartment, Field(discriminator="kind")
]


class Patient(BaseModel):
    """A monitored patient, by pseudonymous id, with what routing needs to know."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str = Field(min_length=1)
    municipality: str | None = None
    gp_practice_id: str | None = None
    region: str | None = None
    spo2_scale: Literal[1, 2] = 1
    condition: Condition | None = None


class Clinician(BaseModel):
    """A clinician of an organisation, by the subject of their bearer token: someone an alert
    can be assigned to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clinician_id: str = Field(min_length=1)
    org_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: Literal["nurse", "gp", "specialist"] = "nurse"


class DuplicateIdError(ValueError):
    """Two organisations or two patients share an id, so lookups would be ambiguous."""

    def __init__(self, what: str, duplicate_id: str) -> None:
        super().__init__(f"duplicate {what} id {duplicate_id!r}")
        self.what = what
        self.duplicate_id = duplicate_id


class CareStructure(BaseModel):
    """Organisations and patients, indexed for routing lookups.

    Loading fails only on a malformed structure (bad shape, duplicate ids). References that
    point nowhere are reported by :func:`reference_warnings`; routing copes with them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    organisations: list[Organisation] = []
    patients: list[Patient] = []
    clinicians: list[Clinician] = []

    _orgs: dict[str, AcuteTeam | GpPractice | OutOfHoursService | HospitalDepartment] = PrivateAttr(
        default_factory=dict
    )
    _patients: dict[str, Patient] = PrivateAttr(default_factory=dict)
    _acute_by_municipality: dict[str, AcuteTeam] = PrivateAttr(default_factory=dict)
    _ooh_by_region: dict[str, OutOfHoursService] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _ids_are_unique(self) -> CareStructure:
        seen: set[str] = set()
        for org in self.organisations:
            if org.org_id in seen:
                raise DuplicateIdError("organisation", org.org_id)
            seen.add(org.org_id)
        seen = set()
        for patient in self.patients:
            if patient.patient_id in seen:
                raise DuplicateIdError("patient", patient.patient_id)
            seen.add(patient.patient_id)
        seen = set()
        for clinician in self.clinicians:
            key = f"{clinician.org_id}/{clinician.clinician_id}"
            if key in seen:
                raise DuplicateIdError("clinician", key)
            seen.add(key)
        return self

    def model_post_init(self, context: Any, /) -> None:
        for org in self.organisations:
            self._orgs[org.org_id] = org
            # The first listed wins where two teams claim a municipality or two services a
            # region; reference_warnings names the clash.
            if isinstance(org, AcuteTeam):
                for municipality in org.municipalities:
                    self._acute_by_municipality.setdefault(municipality, org)
            elif isinstance(org, OutOfHoursService):
                self._ooh_by_region.setdefault(org.region, org)
        self._patients = {patient.patient_id: patient for patient in self.patients}

    @classmethod
    def from_json(cls, text: str | bytes) -> CareStructure:
        return cls.model_validate_json(text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CareStructure:
        return cls.model_validate(data)

    def organisation(
        self, org_id: str
    ) -> AcuteTeam | GpPractice | OutOfHoursService | HospitalDepartment | None:
        return self._orgs.get(org_id)

    def patient(self, patient_id: str) -> Patient | None:
        return self._patients.get(patient_id)

    def acute_team_for(self, municipality: str | None) -> AcuteTeam | None:
        if municipality is None:
            return None
        return self._acute_by_municipality.get(municipality)

    def gp_for(self, patient: Patient) -> GpPractice | None:
        if patient.gp_practice_id is None:
            return None
        org = self._orgs.get(patient.gp_practice_id)
        return org if isinstance(org, GpPractice) else None

    def out_of_hours_for(self, region: str | None) -> OutOfHoursService | None:
        if region is None:
            return None
        return self._ooh_by_region.get(region)

    def responsible_orgs(self, patient_id: str) -> set[str]:
        """Ids of the organisations responsible for a patient: the acute team serving the
        municipality, the GP practice and the region's out-of-hours service (those known)."""
        patient = self._patients.get(patient_id)
        if patient is None:
            return set()
        orgs: list[_Organisation | None] = [
            self.acute_team_for(patient.municipality),
            self.gp_for(patient),
            self.out_of_hours_for(patient.region),
        ]
        return {org.org_id for org in orgs if org is not None}


def patient_warnings(care: CareStructure, patient: Patient) -> list[str]:
    """Operator-readable warnings for a patient's references that point nowhere."""
    pid = patient.patient_id
    warnings: list[str] = []
    if patient.gp_practice_id is None:
        warnings.append(f"patient {pid!r} has no GP practice")
    elif care.gp_for(patient) is None:
        warnings.append(
            f"patient {pid!r} names GP practice {patient.gp_practice_id!r}, "
            "which is not a known GP practice"
        )
    if patient.municipality is None:
        warnings.append(f"patient {pid!r} has no municipality")
    elif care.acute_team_for(patient.municipality) is None:
        warnings.append(
            f"patient {pid!r} lives in municipality {patient.municipality!r}, "
            "which no acute team serves"
        )
    if patient.region is None:
        warnings.append(f"patient {pid!r} has no region")
    return warnings


def reference_warnings(care: CareStructure) -> list[str]:
    """Operator-readable warnings for references that point nowhere or clash."""
    warnings: list[str] = []
    claimed: dict[str, str] = {}
    ooh_regions: dict[str, str] = {}
    regions: set[str] = set()
    for org in care.organisations:
        regions.add(org.region)
        if isinstance(org, AcuteTeam):
            for municipality in org.municipalities:
                if municipality in claimed:
                    warnings.append(
                        f"municipality {municipality!r} is served by both acute teams "
                        f"{claimed[municipality]!r} and {org.org_id!r}; using the first"
                    )
                else:
                    claimed[municipality] = org.org_id
        elif isinstance(org, OutOfHoursService):
            if org.region in ooh_regions:
                warnings.append(
                    f"region {org.region!r} has two out-of-hours services "
                    f"{ooh_regions[org.region]!r} and {org.org_id!r}; using the first"
                )
            else:
                ooh_regions[org.region] = org.org_id
    for patient in care.patients:
        warnings.extend(patient_warnings(care, patient))
        if patient.region is not None:
            regions.add(patient.region)
    for clinician in care.clinicians:
        if care.organisation(clinician.org_id) is None:
            warnings.append(
                f"clinician {clinician.clinician_id!r} belongs to unknown organisation "
                f"{clinician.org_id!r}"
            )
    warnings.extend(
        f"region {region!r} has no out-of-hours service"
        for region in sorted(regions)
        if region not in ooh_regions
    )
    return warnings

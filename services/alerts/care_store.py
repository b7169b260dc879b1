"""The care structure in PostgreSQL: organisations, patients and clinicians, read for routing
(organisations cached for a few seconds) and written by the care file loader and the operator API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
from pydantic import TypeAdapter, ValidationError

from services.alerts.domain.care import (
    AcuteTeam,
    CareStructure,
    Clinician,
    GpPractice,
    HospitalDepartment,
    Organisation,
    OutOfHoursService,
    Patient,
)

log = logging.getLogger(__name__)

OrganisationModel = AcuteTeam | GpPractice | OutOfHoursService | HospitalDepartment
ORGANISATION: TypeAdapter[OrganisationModel] = TypeAdapter(Organisation)

_ORG_COLUMNS = "org_id, kind, name, phone, region, municipalities, opening_hours, specialties"
_PATIENT_COLUMNS = "patient_id, municipality, gp_practice_id, region, spo2_scale, condition"


def organisation_from_row(row: Any) -> OrganisationModel:
    data: dict[str, Any] = {
        "org_id": row["org_id"],
        "kind": row["kind"],
        "name": row["name"],
        "phone": row["phone"],
        "region": row["region"],
    }
    if row["kind"] == "acute_team":
        data["municipalities"] = list(row["municipalities"])
    elif row["kind"] == "gp_practice" and row["opening_hours"] is not None:
        data["opening_hours"] = row["opening_hours"]
    elif row["kind"] == "hospital_department":
        data["specialties"] = list(row["specialties"])
    return ORGANISATION.validate_python(data)


def patient_from_row(row: Any) -> Patient:
    return Patient.model_validate(dict(row.items()))


def organisation_json(org: OrganisationModel) -> dict[str, Any]:
    document: dict[str, Any] = org.model_dump(mode="json")
    return document


class CareStore:
    """Reads the care structure for routing; organisations are cached for ``ttl_s``."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._organisations: list[OrganisationModel] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._organisations = None

    async def organisations(
        self, conn: asyncpg.Connection | asyncpg.Pool
    ) -> list[OrganisationModel]:
        now = self._clock()
        if self._organisations is None or now - self._loaded_at > self._ttl_s:
            rows = await conn.fetch(f"SELECT {_ORG_COLUMNS} FROM organisations ORDER BY org_id")
            organisations = []
            for row in rows:
                try:
                    organisations.append(organisation_from_row(row))
                except ValidationError as exc:
                    # One broken row must not stop routing for everyone else.
                    log.warning(
                        "organisation left out of routing",
                        extra={"org_id": row["org_id"], "error": str(exc)[:300]},
                    )
            self._organisations, self._loaded_at = organisations, now
        return list(self._organisations)

    async def structure(
        self, conn: asyncpg.Connection | asyncpg.Pool, patient_ids: Sequence[str]
    ) -> CareStructure:
        """The organisations and the named patients (read fresh, never cached)."""
        rows = await conn.fetch(
            f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE patient_id = ANY($1::text[])",
            list(patient_ids),
        )
        patients = []
        for row in rows:
            try:
                patients.append(patient_from_row(row))
            except ValidationError as exc:
                log.warning(
                    "patient record unusable for routing",
                    extra={"patient_id": row["patient_id"], "error": str(exc)[:300]},
                )
        return CareStructure(organisations=await self.organisations(conn), patients=patients)


async def read_organisation(
    conn: asyncpg.Connection | asyncpg.Pool, org_id: str
) -> OrganisationModel | None:
    row = await conn.fetchrow(f"SELECT {_ORG_COLUMNS} FROM organisations WHERE org_id = $1", org_id)
    return None if row is None else organisation_from_row(row)


async def read_patient(conn: asyncpg.Connection | asyncpg.Pool, patient_id: str) -> Patient | None:
    row = await conn.fetchrow(
        f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE patient_id = $1", patient_id
    )
    return None if row is None else patient_from_row(row)


async def read_clinicians(conn: asyncpg.Connection | asyncpg.Pool, org_id: str) -> list[Clinician]:
    rows = await conn.fetch(
        "SELECT org_id, clinician_id, name, role FROM clinicians "
        "WHERE org_id = $1 AND active ORDER BY name",
        org_id,
    )
    return [Clinician.model_validate(dict(r.items())) for r in rows]


async def upsert_organisations(
    conn: asyncpg.Connection, organisations: Iterable[OrganisationModel]
) -> None:
    await conn.executemany(
        f"""INSERT INTO organisations ({_ORG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (org_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
                phone = EXCLUDED.phone, region = EXCLUDED.region,
                municipalities = EXCLUDED.municipalities,
                opening_hours = EXCLUDED.opening_hours, specialties = EXCLUDED.specialties""",
        [
            (
                org.org_id,
                org.kind,
                org.name,
                org.phone,
                org.region,
                list(getattr(org, "municipalities", [])),
                organisation_json(org)["opening_hours"] if org.kind == "gp_practice" else None,
                list(getattr(org, "specialties", [])),
            )
            for org in organisations
        ],
    )


async def upsert_patients(conn: asyncpg.Connection, patients: Iterable[Patient]) -> None:
    await conn.executemany(
        f"""INSERT INTO patients ({_PATIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (patient_id) DO UPDATE SET municipality = EXCLUDED.municipality,
                gp_practice_id = EXCLUDED.gp_practice_id, region = EXCLUDED.region,
                spo2_scale = EXCLUDED.spo2_scale, condition = EXCLUDED.condition""",
        [
            (p.patient_id, p.municipality, p.gp_practice_id, p.region, p.spo2_scale, p.condition)
            for p in patients
        ],
    )


async def upsert_clinicians(conn: asyncpg.Connection, clinicians: Iterable[Clinician]) -> None:
    await conn.executemany(
        """INSERT INTO clinicians (org_id, clinician_id, name, role, active)
           VALUES ($1, $2, $3, $4, true)
           ON CONFLICT (org_id, clinician_id) DO UPDATE SET name = EXCLUDED.name,
               role = EXCLUDED.role, active = true""",
        [(c.org_id, c.clinician_id, c.name, c.role) for c in clinicians],
    )

"""Demo care structure: the organisations in deploy/care/demo.json and ~200 generated patients."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

CARE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "care" / "demo.json"
CONDITIONS = ("copd", "heart_failure", "diabetes", "frail")


@dataclass(frozen=True, slots=True)
class DemoPatient:
    patient_id: str
    municipality: str
    gp_practice_id: str | None
    region: str
    spo2_scale: int
    condition: str


def load_care(path: Path = CARE_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def generate_patients(care: dict[str, Any], *, count: int, seed: int = 7) -> list[DemoPatient]:
    rng = random.Random(seed)
    orgs = care["organisations"]
    served = [
        (m, o["region"]) for o in orgs if o["kind"] == "acute_team" for m in o["municipalities"]
    ]
    practices = [o for o in orgs if o["kind"] == "gp_practice"]
    patients = []
    for n in range(1, count + 1):
        municipality, region = rng.choice(served)
        stem = municipality.split("-")[0]
        local = [p["org_id"] for p in practices if stem in p["org_id"]]
        gp = rng.choice(local) if local else None
        condition = rng.choices(CONDITIONS, weights=(4, 3, 2, 2))[0]
        scale = 2 if condition == "copd" and rng.random() < 0.3 else 1
        patients.append(DemoPatient(f"pt-{n:04d}", municipality, gp, region, scale, condition))
    return patients


async def seed_care(
    conn: asyncpg.Connection, care: dict[str, Any], patients: list[DemoPatient]
) -> None:
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO organisations (org_id, kind, name, phone, region, municipalities,
                   opening_hours, specialties)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (org_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
                   phone = EXCLUDED.phone, region = EXCLUDED.region,
                   municipalities = EXCLUDED.municipalities,
                   opening_hours = EXCLUDED.opening_hours, specialties = EXCLUDED.specialties""",
            [
                (
                    o["org_id"],
                    o["kind"],
                    o["name"],
                    o.get("phone"),
                    o.get("region"),
                    o.get("municipalities", []),
                    o.get("opening_hours"),
                    o.get("specialties", []),
                )
                for o in care["organisations"]
            ],
        )
        await conn.executemany(
            """INSERT INTO patients (patient_id, municipality, gp_practice_id, region, spo2_scale,
                   condition) VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (patient_id) DO NOTHING""",
            [
                (
                    p.patient_id,
                    p.municipality,
                    p.gp_practice_id,
                    p.region,
                    p.spo2_scale,
                    p.condition,
                )
                for p in patients
            ],
        )

"""The care structure as configuration: load a care file (the shape of deploy/care/demo.json)
into PostgreSQL, and let operators read and edit organisations, patients and clinicians.

Example::

    >>> loaded = await load_care_file(pool, "deploy/care/demo.json")
    >>> loaded.organisations, loaded.warnings

On the command line: ``naervagt care load FILE`` (``DATABASE_URL`` names the database).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import SecretStr, ValidationError

from services.alerts import care_store
from services.alerts.care_store import ORGANISATION, CareStore, organisation_json
from services.alerts.context import CONTEXT
from services.alerts.domain.care import (
    CareStructure,
    Clinician,
    Patient,
    patient_warnings,
    reference_warnings,
)
from services.alerts.http_params import bearer_principal_for_org, json_object, operator
from shared import audit, db
from shared.audit import AuditEntry
from shared.db import database_errors
from shared.errors import FieldProblem, InvalidInput, NotFound, Unavailable
from shared.lifecycle import POOL
from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


class CareFileInvalid(InvalidInput):
    """A care file (or an edit) that does not describe a valid care structure."""

    def __init__(self, source: str, problems: list[FieldProblem]) -> None:
        super().__init__(f"{source} is not a valid care structure", problems)
        self.source = source


def _problems(exc: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(".".join(str(p) for p in error["loc"]) or "body", error["msg"])
        for error in exc.errors()[:50]
    ]


@dataclass(frozen=True, slots=True)
class CareLoaded:
    organisations: int
    patients: int
    clinicians: int
    warnings: list[str] = field(default_factory=list)


async def load_care_file(
    pool: asyncpg.Pool, path: str | Path, *, store: CareStore | None = None
) -> CareLoaded:
    """Load (insert or update) the organisations, patients and clinicians of a care file.

    Nothing is deleted: an organisation or patient left out of the file stays as it was.
    References that point nowhere are loaded and returned (and logged) as warnings; a file
    that is not a valid structure loads nothing and raises :class:`CareFileInvalid`.
    """
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    try:
        care = CareStructure.from_json(text)
    except ValidationError as exc:
        raise CareFileInvalid(str(path), _problems(exc)) from exc
    warnings = reference_warnings(care)
    async with (
        database_errors("loading the care structure"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        await care_store.upsert_organisations(conn, care.organisations)
        await care_store.upsert_patients(conn, care.patients)
        await care_store.upsert_clinicians(conn, care.clinicians)
    for warning in warnings:
        log.warning("care structure reference", extra={"warning": warning})
    if store is not None:
        store.invalidate()
    return CareLoaded(
        organisations=len(care.organisations),
        patients=len(care.patients),
        clinicians=len(care.clinicians),
        warnings=warnings,
    )


async def _load_command(url: str, path: str) -> int:
    pool = await db.create_pool(DatabaseSettings(url=SecretStr(url), pool_min=1, pool_max=2))
    try:
        loaded = await load_care_file(pool, path)
    except CareFileInvalid as exc:
        print(f"naervagt care load: {exc.message}; nothing loaded", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.field}: {problem.message}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(
        f"loaded {loaded.organisations} organisations, {loaded.patients} patients, "
        f"{loaded.clinicians} clinicians"
    )
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    return 0


def care_main(argv: list[str]) -> int:
    """Entry point of ``naervagt care load FILE``; returns the exit code (2 for bad usage)."""
    parser = argparse.ArgumentParser(prog="naervagt care", description="the care structure")
    parser.add_argument("action", choices=["load"])
    parser.add_argument("file", help="a care file in the shape of deploy/care/demo.json")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("naervagt care: DATABASE_URL is not set", file=sys.stderr)
        return 2
    if not Path(args.file).is_file():
        print(f"naervagt care load: no such file {args.file}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_load_command(url, args.file))
    except Unavailable as exc:
        print(f"naervagt care load: {exc.message}", file=sys.stderr)
        return 1


def _reason(request: web.Request, default: str) -> str:
    return request.headers.get("X-Access-Reason", default)[:200]


def _matching_id(document: dict[str, Any], key: str, path_id: str) -> dict[str, Any]:
    given = document.get(key, path_id)
    if given != path_id:
        raise InvalidInput(
            f"{key} in the body differs from the path", [FieldProblem(key, "must match the path")]
        )
    return {**document, key: path_id}


async def list_organisations(request: web.Request) -> web.Response:
    operator(request)
    organisations = await request.app[CONTEXT].store.organisations(request.app[POOL])
    return web.json_response({"organisations": [organisation_json(o) for o in organisations]})


async def get_organisation(request: web.Request) -> web.Response:
    operator(request)
    org_id = request.match_info["org_id"]
    pool = request.app[POOL]
    async with database_errors("reading an organisation"):
        org = await care_store.read_organisation(pool, org_id)
        if org is None:
            raise NotFound("no such organisation")
        clinicians = await care_store.read_clinicians(pool, org_id)
    return web.json_response(
        {
            **organisation_json(org),
            "clinicians": [c.model_dump(mode="json") for c in clinicians],
        }
    )


async def put_organisation(request: web.Request) -> web.Response:
    operator(request)
    org_id = request.match_info["org_id"]
    document = _matching_id(await json_object(request, max_bytes=MAX_BODY), "org_id", org_id)
    try:
        org = ORGANISATION.validate_python(document)
    except ValidationError as exc:
        raise CareFileInvalid("organisation", _problems(exc)) from exc
    pool = request.app[POOL]
    async with (
        database_errors("saving an organisation"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        existed = await conn.fetchval(
            "SELECT true FROM organisations WHERE org_id = $1 FOR UPDATE", org_id
        )
        await care_store.upsert_organisations(conn, [org])
    request.app[CONTEXT].store.invalidate()
    return web.json_response(organisation_json(org), status=200 if existed else 201)


async def _patient_document(pool: asyncpg.Pool, patient: Patient) -> dict[str, Any]:
    orgs = await pool.fetch(
        "SELECT org_id FROM patient_orgs WHERE patient_id = $1 ORDER BY org_id",
        patient.patient_id,
    )
    return {**patient.model_dump(mode="json"), "responsible_orgs": [r["org_id"] for r in orgs]}


async def get_patient(request: web.Request) -> web.Response:
    principal = operator(request)
    patient_id = request.match_info["patient_id"]
    pool = request.app[POOL]
    async with database_errors("reading a patient"):
        patient = await care_store.read_patient(pool, patient_id)
        if patient is None:
            raise NotFound("no such patient")
        document = await _patient_document(pool, patient)
        await audit.record(
            pool,
            [
                AuditEntry(
                    principal,
                    "care.patient.read",
                    patient_id,
                    _reason(request, "care structure administration"),
                )
            ],
        )
    return web.json_response(document)


async def put_patient(request: web.Request) -> web.Response:
    principal = operator(request)
    patient_id = request.match_info["patient_id"]
    document = _matching_id(
        await json_object(request, max_bytes=MAX_BODY), "patient_id", patient_id
    )
    try:
        patient = Patient.model_validate(document)
    except ValidationError as exc:
        raise CareFileInvalid("patient", _problems(exc)) from exc
    context = request.app[CONTEXT]
    pool = request.app[POOL]
    async with (
        database_errors("saving a patient"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        existed = await conn.fetchval(
            "SELECT true FROM patients WHERE patient_id = $1 FOR UPDATE", patient_id
        )
        await care_store.upsert_patients(conn, [patient])
        await audit.record(
            conn,
            [
                AuditEntry(
                    principal,
                    "care.patient.update",
                    patient_id,
                    _reason(request, "care structure administration"),
                    {"patient": patient.model_dump(mode="json")},
                )
            ],
        )
    async with database_errors("reading a patient"):
        care = CareStructure(organisations=await context.store.organisations(pool))
        result = await _patient_document(pool, patient)
    result["warnings"] = patient_warnings(care, patient)
    return web.json_response(result, status=200 if existed else 201)


async def list_clinicians(request: web.Request) -> web.Response:
    org_id = request.match_info["org_id"]
    bearer_principal_for_org(request, org_id)
    async with database_errors("reading clinicians"):
        clinicians = await care_store.read_clinicians(request.app[POOL], org_id)
    return web.json_response({"clinicians": [c.model_dump(mode="json") for c in clinicians]})


async def put_clinician(request: web.Request) -> web.Response:
    operator(request)
    org_id = request.match_info["org_id"]
    clinician_id = request.match_info["clinician_id"]
    document = await json_object(request)
    active = document.pop("active", True)
    if not isinstance(active, bool):
        raise InvalidInput("active must be true or false", [FieldProblem("active", "boolean")])
    try:
        clinician = Clinician.model_validate(
            {**document, "org_id": org_id, "clinician_id": clinician_id}
        )
    except ValidationError as exc:
        raise CareFileInvalid("clinician", _problems(exc)) from exc
    pool = request.app[POOL]
    async with database_errors("saving a clinician"), pool.acquire() as conn:
        if await care_store.read_organisation(conn, org_id) is None:
            raise NotFound("no such organisation")
        await care_store.upsert_clinicians(conn, [clinician])
        if not active:
            await conn.execute(
                "UPDATE clinicians SET active = false WHERE org_id = $1 AND clinician_id = $2",
                org_id,
                clinician_id,
            )
    return web.json_response({**clinician.model_dump(mode="json"), "active": active})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/care/organisations", list_organisations)
    app.router.add_get("/v1/care/organisations/{org_id}", get_organisation)
    app.router.add_put("/v1/care/organisations/{org_id}", put_organisation)
    app.router.add_get("/v1/care/organisations/{org_id}/clinicians", list_clinicians)
    app.router.add_put("/v1/care/organisations/{org_id}/clinicians/{clinician_id}", put_clinician)
    app.router.add_get("/v1/care/patients/{patient_id}", get_patient)
    app.router.add_put("/v1/care/patients/{patient_id}", put_patient)

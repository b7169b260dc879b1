"""The device registry in PostgreSQL: devices bound to one patient, secrets sealed at rest."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.ingest.secretbox import SecretBox
from shared.db import database_errors
from shared.errors import NotFound


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    patient_id: str
    kind: str
    model: str | None
    serial: str | None
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "patient_id": self.patient_id,
            "kind": self.kind,
            "model": self.model,
            "serial": self.serial,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    device_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class ActiveDevice:
    device_id: str
    patient_id: str
    secret: str


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class DeviceRegistry:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self._pool = pool
        self._box = box

    async def register(
        self, *, patient_id: str, kind: str, model: str | None = None, serial: str | None = None
    ) -> Credentials:
        device_id = "dev-" + secrets.token_hex(8)
        secret = _new_secret()
        async with database_errors("registering a device"):
            await self._pool.execute(
                """INSERT INTO devices
                       (device_id, patient_id, kind, model, serial, secret_ciphertext)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                device_id,
                patient_id,
                kind,
                model,
                serial,
                self._box.seal(device_id, secret),
            )
        return Credentials(device_id, secret)

    async def rotate(self, device_id: str) -> Credentials:
        secret = _new_secret()
        async with database_errors("rotating a device secret"):
            updated = await self._pool.fetchval(
                """UPDATE devices SET secret_ciphertext = $2, rotated_at = now()
                   WHERE device_id = $1 AND revoked_at IS NULL RETURNING device_id""",
                device_id,
                self._box.seal(device_id, secret),
            )
        if updated is None:
            raise NotFound(f"no active device {device_id}")
        return Credentials(device_id, secret)

    async def revoke(self, device_id: str) -> None:
        async with database_errors("revoking a device"):
            found = await self._pool.fetchval(
                """UPDATE devices SET revoked_at = coalesce(revoked_at, now())
                   WHERE device_id = $1 RETURNING device_id""",
                device_id,
            )
        if found is None:
            raise NotFound(f"no device {device_id}")

    async def list(self, *, patient_id: str | None = None) -> list[Device]:
        async with database_errors("listing devices"):
            rows = await self._pool.fetch(
                """SELECT device_id, patient_id, kind, model, serial, created_at, revoked_at
                   FROM devices WHERE $1::text IS NULL OR patient_id = $1
                   ORDER BY created_at, device_id""",
                patient_id,
            )
        return [Device(**dict(r.items())) for r in rows]

    async def active(self, device_id: str) -> ActiveDevice | None:
        """The device and its secret, or None when unknown or revoked."""
        async with database_errors("authenticating a device"):
            row = await self._pool.fetchrow(
                """SELECT patient_id, secret_ciphertext FROM devices
                   WHERE device_id = $1 AND revoked_at IS NULL""",
                device_id,
            )
        if row is None:
            return None
        return ActiveDevice(
            device_id, row["patient_id"], self._box.open(device_id, row["secret_ciphertext"])
        )

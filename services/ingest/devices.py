"""The device registry in PostgreSQL: devices bound to one patient, secrets sealed at rest."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.ingest.device_cache import CHANNEL, DeviceCache
from services.ingest.secretbox import SecretBox
from shared.db import database_errors
from shared.errors import Conflict, FieldProblem, InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    patient_id: str
    kind: str
    model: str | None
    serial: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


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


_COLUMNS = "device_id, patient_id, kind, model, serial, created_at, rotated_at, revoked_at"


class DeviceRegistry:
    def __init__(
        self, pool: asyncpg.Pool, box: SecretBox, *, cache: DeviceCache[ActiveDevice]
    ) -> None:
        self._pool = pool
        self._box = box
        self._cache = cache

    async def register(
        self, *, patient_id: str, kind: str, model: str | None = None, serial: str | None = None
    ) -> Credentials:
        """A new device bound to ``patient_id``; its secret is returned this once only."""
        device_id = "dev-" + secrets.token_hex(8)
        secret = _new_secret()
        async with database_errors("registering a device"):
            try:
                inserted = await self._pool.fetchval(
                    """INSERT INTO devices
                           (device_id, patient_id, kind, model, serial, secret_ciphertext)
                       SELECT $1::text, patient_id, $3::text, $4::text, $5::text, $6::bytea
                       FROM patients WHERE patient_id = $2
                       RETURNING device_id""",
                    device_id,
                    patient_id,
                    kind,
                    model,
                    serial,
                    self._box.seal(device_id, secret),
                )
            except asyncpg.UniqueViolationError as exc:
                holder = await self._pool.fetchval(
                    """SELECT device_id FROM devices WHERE kind = $1
                       AND coalesce(model, '') = coalesce($2, '') AND serial = $3
                       AND revoked_at IS NULL""",
                    kind,
                    model,
                    serial,
                )
                raise Conflict(
                    f"this {kind} (serial {serial}) is already registered as {holder}; "
                    "revoke that registration first"
                ) from exc
        if inserted is None:
            raise InvalidInput(
                "unknown patient", [FieldProblem("patient_id", "no patient has this id")]
            )
        return Credentials(device_id, secret)

    async def rotate(self, device_id: str) -> Credentials:
        """A new secret; the old one is refused from now on, by every instance."""
        secret = _new_secret()
        async with database_errors("rotating a device secret"):
            updated = await self._pool.fetchval(
                f"""WITH changed AS (
                        UPDATE devices SET secret_ciphertext = $2, rotated_at = now()
                        WHERE device_id = $1 AND revoked_at IS NULL RETURNING device_id)
                    SELECT device_id FROM changed, pg_notify('{CHANNEL}', device_id)""",
                device_id,
                self._box.seal(device_id, secret),
            )
        self._cache.drop(device_id)
        if updated is None:
            raise NotFound(f"no active device {device_id}")
        return Credentials(device_id, secret)

    async def revoke(self, device_id: str) -> None:
        """Refuse the device from now on, on every instance (revoking twice is harmless)."""
        async with database_errors("revoking a device"):
            found = await self._pool.fetchval(
                f"""WITH changed AS (
                        UPDATE devices SET revoked_at = coalesce(revoked_at, now())
                        WHERE device_id = $1 RETURNING device_id)
                    SELECT device_id FROM changed, pg_notify('{CHANNEL}', device_id)""",
                device_id,
            )
        self._cache.drop(device_id)
        if found is None:
            raise NotFound(f"no device {device_id}")

    async def get(self, device_id: str) -> Device:
        async with database_errors("reading a device"):
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM devices WHERE device_id = $1", device_id
            )
        if row is None:
            raise NotFound(f"no device {device_id}")
        return Device(**dict(row.items()))

    async def list(
        self, *, patient_id: str | None = None, active: bool | None = None
    ) -> list[Device]:
        async with database_errors("listing devices"):
            rows = await self._pool.fetch(
                f"""SELECT {_COLUMNS} FROM devices
                    WHERE ($1::text IS NULL OR patient_id = $1)
                      AND ($2::boolean IS NULL OR (revoked_at IS NULL) = $2)
                    ORDER BY created_at, device_id""",
                patient_id,
                active,
            )
        return [Device(**dict(r.items())) for r in rows]

    async def active(self, device_id: str) -> ActiveDevice | None:
        """The device and its secret, or None when unknown or revoked."""
        cached = self._cache.get(device_id)
        if cached is not None:
            return cached
        epoch = self._cache.epoch
        async with database_errors("authenticating a device"):
            row = await self._pool.fetchrow(
                """SELECT patient_id, secret_ciphertext FROM devices
                   WHERE device_id = $1 AND revoked_at IS NULL""",
                device_id,
            )
        if row is None:
            return None
        device = ActiveDevice(
            device_id, row["patient_id"], self._box.open(device_id, row["secret_ciphertext"])
        )
        self._cache.put(device_id, device, epoch=epoch)
        return device

"""Webhook subscriptions and their durable deliveries.

Every alert event is queued for the subscriptions of the organisations responsible for the
patient, in the event's own transaction. A delivery loop (safe to run on several instances:
rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased while in flight) posts each one,
signed, retries failures with exponential backoff, and after the last attempt writes a
dead-letter record. Receivers deduplicate by the event id: a delivery whose outcome was lost
(the instance died after posting) is posted again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.alerts import alert_metrics
from services.alerts.domain.webhook import (
    CONTENT_TYPE,
    AlertEvent,
    Format,
    event_id,
    payload,
    retry_delay,
    sign,
)
from shared.db import database_errors
from shared.errors import Unavailable

log = logging.getLogger(__name__)


class SecretBox:
    """Seals subscription secrets at rest with AES-256-GCM under a key derived from ``key``."""

    def __init__(self, key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"naervagt/webhook-secrets/v1"
        ).derive(key.encode())
        self._aead = AESGCM(derived)

    def seal(self, secret: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), b"webhook")

    def open(self, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], b"webhook").decode()


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    timeout_s: float
    lease_s: float
    batch: int
    concurrency: int


def subscription_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["subscription_id"]),
        "org_id": row["org_id"],
        "url": row["url"],
        "format": row["format"],
        "changes": list(row["changes"]) if row["changes"] is not None else None,
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
    }


async def create_subscription(
    pool: asyncpg.Pool,
    box: SecretBox,
    *,
    org_id: str,
    url: str,
    format: Format,
    changes: Sequence[str] | None,
    created_by: str,
) -> tuple[dict[str, Any], str]:
    """Store a subscription; return it and its signing secret (shown to the caller once)."""
    secret = "whsec_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    async with database_errors("creating a webhook subscription"):
        row = await pool.fetchrow(
            """INSERT INTO webhook_subscriptions
                   (subscription_id, org_id, url, format, changes, secret_ciphertext, created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
            uuid.uuid4(),
            org_id,
            url,
            format,
            list(changes) if changes is not None else None,
            box.seal(secret),
            created_by,
        )
    return subscription_json(row), secret


async def list_subscriptions(pool: asyncpg.Pool, *, org_id: str | None) -> list[dict[str, Any]]:
    async with database_errors("listing webhook subscriptions"):
        rows = await pool.fetch(
            "SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL "
            "AND ($1::text IS NULL OR org_id = $1) ORDER BY created_at",
            org_id,
        )
    return [subscription_json(r) for r in rows]


async def delete_subscription(pool: asyncpg.Pool, subscription_id: uuid.UUID) -> bool:
    """Stop a subscription; its pending deliveries are cancelled. False if there was none."""
    async with (
        database_errors("deleting a webhook subscription"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        deleted = await conn.fetchval(
            "UPDATE webhook_subscriptions SET deleted_at = now() "
            "WHERE subscription_id = $1 AND deleted_at IS NULL RETURNING true",
            subscription_id,
        )
        if deleted:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'cancelled' "
                "WHERE subscription_id = $1 AND status = 'pending'",
                subscription_id,
            )
    return bool(deleted)


async def list_deliveries(
    pool: asyncpg.Pool, subscription_id: uuid.UUID, *, status: str | None, limit: int
) -> list[dict[str, Any]]:
    async with database_errors("listing webhook deliveries"):
        rows = await pool.fetch(
            """SELECT id, seq, status, attempts, next_attempt_at, last_attempt_at, last_status,
                      last_error, delivered_at
                 FROM webhook_deliveries
                WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)
                ORDER BY id DESC LIMIT $3""",
            subscription_id,
            status,
            limit,
        )
    return [
        {
            "id": r["id"],
            "event_id": event_id(r["seq"]),
            "seq": r["seq"],
            "status": r["status"],
            "attempts": r["attempts"],
            "next_attempt_at": r["next_attempt_at"].isoformat(),
            "last_attempt_at": r["last_attempt_at"].isoformat() if r["last_attempt_at"] else None,
            "last_status": r["last_status"],
            "last_error": r["last_error"],
            "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
        }
        for r in rows
    ]


async def enqueue_deliveries(
    conn: asyncpg.Connection, *, seq: int, org_ids: Sequence[str], change: str
) -> None:
    """Queue event ``seq`` for the live subscriptions of ``org_ids`` that want ``change``."""
    if not org_ids:
        return
    await conn.execute(
        """INSERT INTO webhook_deliveries (subscription_id, seq)
           SELECT subscription_id, $1 FROM webhook_subscriptions
            WHERE org_id = ANY($2::text[]) AND deleted_at IS NULL
              AND (changes IS NULL OR $3 = ANY(changes))
           ON CONFLICT (subscription_id, seq) DO NOTHING""",
        seq,
        list(org_ids),
        change,
    )


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    attempts: int
    url: str
    format: Format
    org_id: str
    sealed_secret: bytes
    deleted: bool
    event: AlertEvent


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivered: bool
    status: int | None
    error: str | None


async def _claim(pool: asyncpg.Pool, *, now: datetime, policy: DeliveryPolicy) -> list[_Claimed]:
    async with database_errors("claiming webhook deliveries"), pool.acquire() as conn:
        rows = await conn.fetch(
            """WITH due AS (
                   SELECT id FROM webhook_deliveries
                    WHERE status = 'pending' AND next_attempt_at <= $1
                    ORDER BY next_attempt_at, id LIMIT $2
                    FOR UPDATE SKIP LOCKED),
               claimed AS (
                   UPDATE webhook_deliveries d
                      SET attempts = d.attempts + 1, last_attempt_at = $1,
                          next_attempt_at = $1 + $3::interval
                     FROM due WHERE d.id = due.id
                   RETURNING d.id, d.subscription_id, d.seq, d.attempts)
               SELECT c.id, c.attempts, s.url, s.format, s.org_id, s.secret_ciphertext,
                      s.deleted_at IS NOT NULL AS deleted,
                      e.seq, e.change, e.actor, e.at, e.body, e.detail
                 FROM claimed c
                 JOIN webhook_subscriptions s ON s.subscription_id = c.subscription_id
                 JOIN alert_events e ON e.seq = c.seq
                ORDER BY c.id""",
            now,
            policy.batch,
            timedelta(seconds=policy.lease_s),
        )
    return [
        _Claimed(
            id=r["id"],
            attempts=r["attempts"],
            url=r["url"],
            format=r["format"],
            org_id=r["org_id"],
            sealed_secret=r["secret_ciphertext"],
            deleted=r["deleted"],
            event=AlertEvent(
                seq=r["seq"],
                change=r["change"],
                actor=r["actor"],
                at=r["at"],
                alert=r["body"],
                detail=r["detail"],
            ),
        )
        for r in rows
    ]


async def _post(
    session: aiohttp.ClientSession,
    box: SecretBox,
    claimed: _Claimed,
    *,
    timeout_s: float,
) -> _Outcome:
    try:
        secret = box.open(claimed.sealed_secret)
    except InvalidTag:
        return _Outcome(False, None, "signing secret cannot be decrypted (key changed?)")
    body = payload(claimed.event, org_id=claimed.org_id, format=claimed.format)
    timestamp = int(time.time())
    headers = {
        "Content-Type": CONTENT_TYPE[claimed.format],
        "User-Agent": "naervagt-webhooks/1",
        "Idempotency-Key": event_id(claimed.event.seq),
        "X-Naervagt-Event-Id": event_id(claimed.event.seq),
        "X-Naervagt-Timestamp": str(timestamp),
        "X-Naervagt-Signature": sign(secret, timestamp=timestamp, body=body),
        "X-Naervagt-Delivery": str(claimed.id),
        "X-Naervagt-Attempt": str(claimed.attempts),
    }
    try:
        async with session.post(
            claimed.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            await response.read()
            if 200 <= response.status < 300:
                return _Outcome(True, response.status, None)
            return _Outcome(False, response.status, f"HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        # The exception text can carry the URL; its type is enough to diagnose.
        return _Outcome(False, None, type(exc).__name__)


async def _record(
    pool: asyncpg.Pool,
    claimed: _Claimed,
    outcome: _Outcome,
    *,
    now: datetime,
    policy: DeliveryPolicy,
) -> str:
    async with (
        database_errors("recording a webhook delivery"),
        pool.acquire() as conn,
        conn.transaction(),
    ):
        if outcome.delivered:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $2, "
                "last_status = $3, last_error = NULL WHERE id = $1",
                claimed.id,
                now,
                outcome.status,
            )
            return "delivered"
        if claimed.attempts >= policy.max_attempts:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'dead', last_status = $2, "
                "last_error = $3 WHERE id = $1",
                claimed.id,
                outcome.status,
                outcome.error,
            )
            await conn.execute(
                """INSERT INTO webhook_dead_letters
                       (delivery_id, subscription_id, seq, attempts, last_status, last_error)
                   SELECT id, subscription_id, seq, attempts, last_status, last_error
                     FROM webhook_deliveries WHERE id = $1
                   ON CONFLICT (delivery_id) DO NOTHING""",
                claimed.id,
            )
            return "dead"
        delay = retry_delay(
            claimed.attempts,
            base_s=policy.backoff_base_s,
            max_s=policy.backoff_max_s,
            jitter=random.random(),
        )
        await conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = $2, last_status = $3, "
            "last_error = $4 WHERE id = $1",
            claimed.id,
            now + delay,
            outcome.status,
            outcome.error,
        )
        return "retry"


async def deliver_due(
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
    box: SecretBox,
    *,
    policy: DeliveryPolicy,
) -> int:
    """Attempt the deliveries that are due; return how many were attempted."""
    claimed = await _claim(pool, now=datetime.now(UTC), policy=policy)
    if not claimed:
        return 0
    gate = asyncio.Semaphore(policy.concurrency)

    async def attempt(item: _Claimed) -> None:
        if item.deleted:
            async with database_errors("cancelling a webhook delivery"):
                await pool.execute(
                    "UPDATE webhook_deliveries SET status = 'cancelled' WHERE id = $1", item.id
                )
            return
        async with gate:
            outcome = await _post(session, box, item, timeout_s=policy.timeout_s)
        result = await _record(pool, item, outcome, now=datetime.now(UTC), policy=policy)
        alert_metrics.webhook_deliveries.labels(result).inc()
        if result != "delivered":
            log.warning(
                "webhook delivery failed",
                extra={
                    "delivery_id": item.id,
                    "event_id": event_id(item.event.seq),
                    "org_id": item.org_id,
                    "attempt": item.attempts,
                    "outcome": result,
                    "error": outcome.error,
                },
            )

    await asyncio.gather(*(attempt(item) for item in claimed))
    return len(claimed)


async def run_deliveries(
    pool: asyncpg.Pool, box: SecretBox, *, policy: DeliveryPolicy, poll_s: float
) -> None:
    """Deliver for as long as the service runs."""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                attempted = await deliver_due(pool, session, box, policy=policy)
            except Unavailable as exc:
                log.warning("webhook deliveries waiting", extra={"error": exc.message})
                attempted = 0
            if attempted < policy.batch:
                await asyncio.sleep(poll_s)

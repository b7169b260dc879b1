"""Authentication primitives: device request signatures and clinician bearer tokens (JWT).

Device requests are signed with HMAC-SHA256 over ``"{timestamp}\\n" + body`` using the device
secret; clinicians present a JWT carrying role and organisation.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal, get_args

import jwt

from shared.errors import BadSignature, Forbidden, InvalidToken, StaleTimestamp

Role = Literal["nurse", "gp", "specialist", "operator"]
ROLES: tuple[str, ...] = get_args(Role)
CLINICIAN_ROLES = frozenset({"nurse", "gp", "specialist"})


def sign_request(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` a device sends: lowercase hex HMAC-SHA256."""
    message = timestamp.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_timestamp(timestamp: str, *, now: float, max_skew_s: int) -> int:
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise StaleTimestamp("X-Timestamp must be unix seconds") from exc
    if abs(now - ts) > max_skew_s:
        raise StaleTimestamp(f"X-Timestamp is more than {max_skew_s} s from the server clock")
    return ts


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str) -> None:
    expected = sign_request(secret, timestamp, body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise BadSignature("signature does not match")


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in clinician or operator."""

    subject: str
    role: str
    org_id: str

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"role {self.role!r} may not do this; needs one of {sorted(roles)}")


def issue_token(
    secret: str, principal: Principal, *, issuer: str = "naervagt", ttl_s: int = 12 * 3600
) -> str:
    now = int(time.time())
    claims = {
        "sub": principal.subject,
        "role": principal.role,
        "org": principal.org_id,
        "iss": issuer,
        "iat": now,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str, *, issuer: str = "naervagt") -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=issuer,
            options={"require": ["sub", "exp", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"bearer token refused: {type(exc).__name__}") from exc
    role, org = claims.get("role"), claims.get("org")
    if role not in ROLES or not isinstance(org, str) or not org:
        raise InvalidToken("bearer token lacks a valid role or organisation")
    return Principal(subject=str(claims["sub"]), role=role, org_id=org)

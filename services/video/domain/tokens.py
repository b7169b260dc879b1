"""Signed, short-lived join tokens that let one person into one video room in one role.

Format: ``base64url(JSON payload) "." base64url(HMAC-SHA256(key, first part))``, unpadded.
The MAC is checked before the payload is parsed.

Errors::

    TokenError                 the token does not let anyone in
    ├── TokenMalformed         not a token of this format, or a payload missing fields
    ├── TokenBadSignature      the MAC does not match (tampered, or another key)
    ├── TokenExpired           past its expiry
    └── TokenWrongRoom         valid, but for another room

Example::

    token = issue_join_token(key=key, room_id="r1", role="patient", display_name="Ida",
                             subject="pt-8f2c", ttl_s=900, now=time.time())
    claims = verify_join_token(token, key=key, now=time.time())
    check_room(claims, "r1")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from services.video.domain.rooms import Role

MIN_KEY_BYTES = 32
MAX_TOKEN_CHARS = 2048
MAX_DISPLAY_NAME_CHARS = 80
MAX_ID_CHARS = 128
_VERSION = 1


class TokenError(Exception):
    """A join token that must be refused; ``reason`` is a short machine-readable word."""

    reason = "invalid"


class TokenMalformed(TokenError):
    reason = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed join token: {detail}")
        self.detail = detail


class TokenBadSignature(TokenError):
    reason = "bad-signature"

    def __init__(self) -> None:
        super().__init__("join token signature does not match")


class TokenExpired(TokenError):
    reason = "expired"

    def __init__(self, expires_at: int, now: float) -> None:
        super().__init__(f"join token expired at {expires_at} (now {now:.0f})")
        self.expires_at = expires_at
        self.now = now


class TokenWrongRoom(TokenError):
    reason = "wrong-room"

    def __init__(self, token_room_id: str, room_id: str) -> None:
        super().__init__("join token is for another room")
        self.token_room_id = token_room_id
        self.room_id = room_id


@dataclass(frozen=True)
class JoinClaims:
    room_id: str
    role: Role
    display_name: str
    subject: str
    issued_at: int
    expires_at: int


def issue_join_token(
    *,
    key: bytes,
    room_id: str,
    role: str,
    display_name: str,
    subject: str,
    ttl_s: int,
    now: float,
) -> str:
    """Sign a token for ``subject`` to join ``room_id`` as ``role`` until ``now + ttl_s``."""
    _check_key(key)
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    claims = JoinClaims(
        room_id=room_id,
        role=Role(role),
        display_name=display_name,
        subject=subject,
        issued_at=int(now),
        expires_at=int(now) + ttl_s,
    )
    problem = _claims_problem(claims)
    if problem:
        raise ValueError(problem)
    payload = {
        "v": _VERSION,
        "room": claims.room_id,
        "role": str(claims.role),
        "name": claims.display_name,
        "sub": claims.subject,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    token = f"{body}.{_b64encode(_mac(key, body))}"
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("join token would be too long; shorten the display name or ids")
    return token


def verify_join_token(token: str, *, key: bytes, now: float) -> JoinClaims:
    """Return the claims of a genuine, unexpired token or raise a ``TokenError``."""
    _check_key(key)
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed("too long")
    body, dot, mac_part = token.partition(".")
    if not dot or not body or "." in mac_part:
        raise TokenMalformed("expected two dot-separated parts")
    mac = _b64decode(mac_part)
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise TokenBadSignature()
    try:
        payload = json.loads(_b64decode(body))
    except ValueError as exc:
        raise TokenMalformed("payload is not JSON") from exc
    claims = _claims_from(payload)
    if now >= claims.expires_at:
        raise TokenExpired(claims.expires_at, now)
    return claims


def check_room(claims: JoinClaims, room_id: str) -> None:
    """Refuse a token issued for a room other than ``room_id``."""
    if not hmac.compare_digest(claims.room_id.encode(), room_id.encode()):
        raise TokenWrongRoom(claims.room_id, room_id)


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the join token key must be at least {MIN_KEY_BYTES} bytes")


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        raw = text.encode("ascii")
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise TokenMalformed("not base64url") from exc
    # The decoder skips stray characters; only the one canonical spelling is a token.
    if _b64encode(decoded) != text:
        raise TokenMalformed("not canonical base64url")
    return decoded


def _claims_from(payload: object) -> JoinClaims:
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise TokenMalformed("unknown payload version")
    strings = {name: payload.get(name) for name in ("room", "role", "name", "sub")}
    times = {name: payload.get(name) for name in ("iat", "exp")}
    for name, value in strings.items():
        if not isinstance(value, str):
            raise TokenMalformed(f"{name!r} must be a string")
    for name, value in times.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TokenMalformed(f"{name!r} must be an integer")
    try:
        role = Role(payload["role"])
    except ValueError as exc:
        raise TokenMalformed("unknown role") from exc
    claims = JoinClaims(
        room_id=payload["room"],
        role=role,
        display_name=payload["name"],
        subject=payload["sub"],
        issued_at=payload["iat"],
        expires_at=payload["exp"],
    )
    problem = _claims_problem(claims)
    if problem:
        raise TokenMalformed(problem)
    return claims


def _claims_problem(claims: JoinClaims) -> str | None:
    if not 0 < len(claims.room_id) <= MAX_ID_CHARS:
        return f"room id must be 1..{MAX_ID_CHARS} characters"
    if not 0 < len(claims.subject) <= MAX_ID_CHARS:
        return f"subject must be 1..{MAX_ID_CHARS} characters"
    if not 0 < len(claims.display_name.strip()) <= MAX_DISPLAY_NAME_CHARS:
        return f"display name must be 1..{MAX_DISPLAY_NAME_CHARS} characters"
    if not claims.display_name.isprintable():
        return "display name must be printable text"
    if claims.expires_at <= claims.issued_at:
        return "a token must expire after it is issued"
    return None

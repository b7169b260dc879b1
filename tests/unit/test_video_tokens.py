"""Join tokens: what they let in, and everything they must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from services.video.domain.rooms import Role
from services.video.domain.tokens import (
    JoinClaims,
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenWrongRoom,
    check_room,
    issue_join_token,
    verify_join_token,
)

KEY = b"k" * 32
NOW = 1_750_000_000.0


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(
    *,
    key: bytes = KEY,
    room_id: str = "room-1",
    role: str = "patient",
    ttl_s: int = 600,
    now: float = NOW,
) -> str:
    return issue_join_token(
        key=key,
        room_id=room_id,
        role=role,
        display_name="Ida Sørensen",
        subject="pt-8f2c",
        ttl_s=ttl_s,
        now=now,
    )


def test_a_fresh_token_names_its_room_role_person_and_expiry() -> None:
    claims = verify_join_token(make_token(role="specialist"), key=KEY, now=NOW + 599)

    assert claims == JoinClaims(
        room_id="room-1",
        role=Role.SPECIALIST,
        display_name="Ida Sørensen",
        subject="pt-8f2c",
        issued_at=int(NOW),
        expires_at=int(NOW) + 600,
    )
    check_room(claims, "room-1")


def test_the_token_is_a_compact_hmac_sha256_signed_json_payload() -> None:
    body, mac = make_token().split(".")

    assert unb64(mac) == hmac.new(KEY, body.encode(), hashlib.sha256).digest()
    payload = json.loads(unb64(body))
    assert payload["room"] == "room-1"
    assert payload["exp"] == int(NOW) + 600


@pytest.mark.parametrize("later", [600, 601, 86_400])
def test_an_expired_token_is_refused(later: int) -> None:
    with pytest.raises(TokenExpired) as caught:
        verify_join_token(make_token(), key=KEY, now=NOW + later)
    assert caught.value.expires_at == int(NOW) + 600


def test_a_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(TokenBadSignature):
        verify_join_token(make_token(key=b"x" * 32), key=KEY, now=NOW)


def test_a_guest_cannot_promote_itself_by_editing_the_payload() -> None:
    body, mac = make_token(role="patient").split(".")
    payload = json.loads(unb64(body))
    payload["role"] = "specialist"
    forged = b64(json.dumps(payload).encode()) + "." + mac

    with pytest.raises(TokenBadSignature):
        verify_join_token(forged, key=KEY, now=NOW)


def test_a_token_cannot_be_stretched_past_its_expiry() -> None:
    body, mac = make_token().split(".")
    payload = json.loads(unb64(body))
    payload["exp"] += 86_400
    forged = b64(json.dumps(payload).encode()) + "." + mac

    with pytest.raises(TokenBadSignature):
        verify_join_token(forged, key=KEY, now=NOW + 1_000)


def test_a_token_for_another_room_does_not_open_this_one() -> None:
    claims = verify_join_token(make_token(room_id="room-2"), key=KEY, now=NOW)

    with pytest.raises(TokenWrongRoom) as caught:
        check_room(claims, "room-1")
    assert (caught.value.token_room_id, caught.value.room_id) == ("room-2", "room-1")


def _signed(payload: object) -> str:
    body = b64(json.dumps(payload).encode())
    return body + "." + b64(hmac.new(KEY, body.encode(), hashlib.sha256).digest())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot-at-all",
        "a.b.c",
        ".abc",
        "abc.",
        "a!b.cde",
        "x" * 5000,
        _signed([1, 2, 3]),
        _signed({"v": 1, "room": "r", "role": "patient", "name": "I", "sub": "s", "iat": 1}),
        _signed(
            {
                "v": 1,
                "room": "r",
                "role": "surgeon",
                "name": "I",
                "sub": "s",
                "iat": 1,
                "exp": 2_000_000_000,
            }
        ),
        _signed(
            {"v": 1, "room": "r", "role": "gp", "name": "I", "sub": "s", "iat": 1, "exp": True}
        ),
        _signed(
            {
                "v": 2,
                "room": "r",
                "role": "gp",
                "name": "I",
                "sub": "s",
                "iat": 1,
                "exp": 2_000_000_000,
            }
        ),
        _signed(
            {
                "v": 1,
                "room": "",
                "role": "gp",
                "name": "I",
                "sub": "s",
                "iat": 1,
                "exp": 2_000_000_000,
            }
        ),
        b64(b"not json") + "." + b64(hmac.new(KEY, b64(b"not json").encode(), "sha256").digest()),
    ],
)
def test_anything_that_is_not_a_well_formed_token_is_refused(token: str) -> None:
    with pytest.raises((TokenMalformed, TokenBadSignature)):
        verify_join_token(token, key=KEY, now=NOW)


def test_signed_but_incomplete_payloads_are_malformed_not_accepted() -> None:
    with pytest.raises(TokenMalformed, match="'exp'"):
        verify_join_token(
            _signed({"v": 1, "room": "r", "role": "patient", "name": "I", "sub": "s", "iat": 1}),
            key=KEY,
            now=NOW,
        )


def test_a_mac_with_stray_characters_is_not_the_same_token() -> None:
    token = make_token()

    with pytest.raises(TokenMalformed):
        verify_join_token(token + "!", key=KEY, now=NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "surgeon"),
        ("display_name", ""),
        ("display_name", "a\nb"),
        ("subject", ""),
        ("ttl_s", 0),
        ("room_id", "r" * 129),
    ],
)
def test_issuing_refuses_tokens_that_could_not_be_used(field: str, value: object) -> None:
    args: dict[str, object] = {
        "key": KEY,
        "room_id": "room-1",
        "role": "gp",
        "display_name": "Dr Lund",
        "subject": "staff-3",
        "ttl_s": 60,
        "now": NOW,
    }
    args[field] = value
    with pytest.raises(ValueError):
        issue_join_token(**args)  # type: ignore[arg-type]


def test_a_short_key_is_refused_on_both_sides() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        make_token(key=b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        verify_join_token(make_token(), key=b"short", now=NOW)

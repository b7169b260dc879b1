"""TURN credentials in coturn's shared-secret (TURN REST API) scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.video.domain.turn import turn_credentials

SECRET = "north-sea-relay-secret"
URLS = ["turn:turn.example.dk:3478?transport=udp", "turns:turn.example.dk:443?transport=tcp"]


def test_credentials_follow_the_coturn_formula() -> None:
    got = turn_credentials(secret=SECRET, peer="a1b2c3", ttl_s=3600, now=1_700_000_000.7, urls=URLS)

    [server] = got["iceServers"]
    # coturn: username "<expiry>:<user>", password base64(HMAC-SHA1(static-auth-secret, username))
    expected_user = "1700003600:a1b2c3"
    expected_password = base64.b64encode(
        hmac.new(SECRET.encode(), expected_user.encode(), hashlib.sha1).digest()
    ).decode()
    assert server == {"urls": URLS, "username": expected_user, "credential": expected_password}
    assert got["ttl_s"] == 3600


def test_another_secret_or_peer_gives_another_credential() -> None:
    def credential(secret: str, peer: str) -> str:
        got = turn_credentials(secret=secret, peer=peer, ttl_s=60, now=0, urls=URLS)
        return str(got["iceServers"][0]["credential"])

    assert credential(SECRET, "a") != credential(SECRET + "x", "a")
    assert credential(SECRET, "a") != credential(SECRET, "b")


@pytest.mark.parametrize(
    ("secret", "peer", "ttl_s", "urls"),
    [
        ("", "a", 60, URLS),
        (SECRET, "", 60, URLS),
        (SECRET, "room:a", 60, URLS),
        (SECRET, "a", 0, URLS),
        (SECRET, "a", 60, []),
        (SECRET, "a", 60, ["https://turn.example.dk"]),
    ],
)
def test_unusable_settings_are_refused(secret: str, peer: str, ttl_s: int, urls: list[str]) -> None:
    with pytest.raises(ValueError):
        turn_credentials(secret=secret, peer=peer, ttl_s=ttl_s, now=0, urls=urls)

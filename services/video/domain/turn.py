"""Time-limited TURN credentials in coturn's shared-secret scheme (``use-auth-secret``).

The username is ``"<expiry unix time>:<peer>"`` and the credential is
``base64(HMAC-SHA1(shared secret, username))``; coturn recomputes both and refuses the
username once its expiry time has passed, so no per-user state lives in the relay.

Example::

    turn_credentials(secret=s, peer="a1b2", ttl_s=3600, now=time.time(),
                     urls=["turn:turn.example.dk:3478?transport=udp"])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

_URL_SCHEMES = ("turn:", "turns:", "stun:", "stuns:")


def turn_credentials(
    *, secret: str, peer: str, ttl_s: int, now: float, urls: Sequence[str]
) -> dict[str, Any]:
    """An RTCConfiguration-shaped ``{"iceServers": [...], "ttl_s": ...}`` for one peer."""
    if not secret:
        raise ValueError("the TURN shared secret is empty")
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    # coturn splits the username at the first ':'; the peer part must not carry another one.
    if not peer or ":" in peer:
        raise ValueError("a TURN peer name is non-empty and has no ':'")
    if not urls:
        raise ValueError("at least one TURN URL is needed")
    for url in urls:
        if not url.startswith(_URL_SCHEMES):
            raise ValueError(f"not a TURN or STUN URL: {url!r}")
    username = f"{int(now) + ttl_s}:{peer}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {
        "iceServers": [
            {
                "urls": list(urls),
                "username": username,
                "credential": base64.b64encode(digest).decode("ascii"),
            }
        ],
        "ttl_s": ttl_s,
    }

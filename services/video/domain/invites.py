"""Invitations into a room: who may be invited, for how long, and the link they get.

Example::

    invite = parse_invite({"role": "patient", "display_name": "Ida", "ttl_s": 900},
                          max_ttl_s=86400)
    join_url("https://video.example.dk", token)   # "https://video.example.dk/join/<token>"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.video.domain.rooms import Role
from services.video.domain.tokens import MAX_DISPLAY_NAME_CHARS
from shared.errors import FieldProblem, InvalidInput

MIN_TTL_S = 60
DEFAULT_TTL_S = 3600


@dataclass(frozen=True)
class Invite:
    role: Role
    display_name: str
    ttl_s: int


def parse_invite(document: object, *, max_ttl_s: int) -> Invite:
    """An invitation body checked field by field; every problem is reported at once."""
    if not isinstance(document, Mapping):
        raise InvalidInput("the body must be a JSON object", [FieldProblem("", "not an object")])
    problems: list[FieldProblem] = []
    role = document.get("role")
    if role not in {r.value for r in Role}:
        problems.append(FieldProblem("role", f"one of {', '.join(r.value for r in Role)}"))
    name = display_name(document.get("display_name"), problems)
    ttl = document.get("ttl_s", DEFAULT_TTL_S)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not MIN_TTL_S <= ttl <= max_ttl_s:
        problems.append(FieldProblem("ttl_s", f"whole seconds from {MIN_TTL_S} to {max_ttl_s}"))
    if problems:
        raise InvalidInput("the invitation is not valid", problems)
    assert isinstance(ttl, int) and name is not None
    return Invite(role=Role(str(role)), display_name=name, ttl_s=ttl)


def display_name(value: object, problems: list[FieldProblem]) -> str | None:
    """A name shown to the other participants: printable text of bounded length."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value.strip()) > MAX_DISPLAY_NAME_CHARS
        or not value.isprintable()
    ):
        problems.append(
            FieldProblem(
                "display_name", f"printable text of 1..{MAX_DISPLAY_NAME_CHARS} characters"
            )
        )
        return None
    return value.strip()


def join_url(base_url: str, token: str) -> str:
    """The link a participant opens; the page moves the token out of the address at once."""
    return f"{base_url.rstrip('/')}/join/{token}"

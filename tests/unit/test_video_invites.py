"""Invitations: role, name and lifetime are checked; the link carries the token in its path."""

from __future__ import annotations

from typing import Any

import pytest

from services.video.domain.invites import DEFAULT_TTL_S, join_url, parse_invite
from services.video.domain.rooms import Role
from shared.errors import InvalidInput


def test_an_invitation_for_a_patient() -> None:
    invite = parse_invite(
        {"role": "patient", "display_name": " Ida Jensen ", "ttl_s": 900}, max_ttl_s=3600
    )

    assert (invite.role, invite.display_name, invite.ttl_s) == (Role.PATIENT, "Ida Jensen", 900)


def test_the_lifetime_has_a_default() -> None:
    invite = parse_invite({"role": "interpreter", "display_name": "Tolk"}, max_ttl_s=86400)
    assert invite.ttl_s == DEFAULT_TTL_S


@pytest.mark.parametrize(
    ("document", "fields"),
    [
        ({"role": "doctor", "display_name": "A", "ttl_s": 600}, {"role"}),
        ({"role": "patient", "display_name": "", "ttl_s": 600}, {"display_name"}),
        ({"role": "patient", "display_name": "A\nB", "ttl_s": 600}, {"display_name"}),
        ({"role": "patient", "display_name": "x" * 81, "ttl_s": 600}, {"display_name"}),
        ({"role": "patient", "display_name": "A", "ttl_s": 59}, {"ttl_s"}),
        ({"role": "patient", "display_name": "A", "ttl_s": 3601}, {"ttl_s"}),
        ({"role": "patient", "display_name": "A", "ttl_s": True}, {"ttl_s"}),
        ({"role": "patient", "display_name": "A", "ttl_s": 600.5}, {"ttl_s"}),
        ({}, {"role", "display_name"}),
        ([], {""}),
    ],
)
def test_bad_invitations_name_their_fields(document: Any, fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_invite(document, max_ttl_s=3600)
    assert {p.field for p in caught.value.problems} == fields


def test_the_join_link() -> None:
    assert (
        join_url("https://video.example.dk/", "abc.def") == "https://video.example.dk/join/abc.def"
    )

"""Video settings: the join-token key, TURN configuration, and refusal of placeholders."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.video.settings import VideoSettings
from shared.settings import AuthSettings

AUTH = AuthSettings(jwt_secret=SecretStr("j" * 48))


def test_without_a_join_key_one_is_derived_from_the_jwt_secret() -> None:
    one = VideoSettings(auth=AUTH).join_token_key()
    other = VideoSettings(auth=AuthSettings(jwt_secret=SecretStr("k" * 48))).join_token_key()

    assert len(one) == 32
    assert one == VideoSettings(auth=AUTH).join_token_key()
    assert one != other
    assert b"j" * 32 not in one


def test_an_explicit_join_key_is_used() -> None:
    settings = VideoSettings(auth=AUTH, join_key=SecretStr("z" * 40))
    assert settings.join_token_key() == b"z" * 40


@pytest.mark.parametrize(
    "changes",
    [
        {"join_key": SecretStr("short")},
        {"turn_secret": SecretStr("REPLACE_WITH_TURN_SHARED_SECRET_0123456789")},
        {"turn_secret": SecretStr("t" * 40)},  # no URLs to hand out with it
        {"room_cap": 1},
    ],
)
def test_unsafe_or_incomplete_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VideoSettings(auth=AUTH, **changes)


def test_turn_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_TURN_SECRET", "s" * 64)
    monkeypatch.setenv("VIDEO_TURN_URLS", '["turn:turn.example.dk:3478?transport=udp"]')

    settings = VideoSettings(auth=AUTH)

    assert settings.turn_secret is not None
    assert settings.turn_secret.get_secret_value() == "s" * 64
    assert settings.turn_urls == ["turn:turn.example.dk:3478?transport=udp"]

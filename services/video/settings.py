"""Video service settings (environment prefix ``VIDEO_``).

Example environment::

    VIDEO_JOIN_KEY=<64 random hex characters>
    VIDEO_TURN_SECRET=<the static-auth-secret of coturn>
    VIDEO_TURN_URLS='["turn:turn.example.dk:3478?transport=udp","turns:turn.example.dk:443"]'
    VIDEO_PUBLIC_URL=https://video.example.dk
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.video.domain.consults import DEFAULT_SPECIALTIES
from services.video.domain.rooms import MIN_CAP
from shared.settings import ServiceSettings, refuse_weak_secret

_JOIN_KEY_LABEL = b"naervagt video join tokens v1"


class VideoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEO_", extra="ignore")

    port: int = 8083
    # Signs join tokens. When unset, a key is derived from the JWT secret, so that every
    # instance of one deployment agrees without another secret to distribute.
    join_key: SecretStr | None = None
    # coturn's static-auth-secret; without it the service hands out no TURN credentials.
    turn_secret: SecretStr | None = None
    turn_urls: list[str] = Field(default_factory=list)
    turn_ttl_s: int = Field(default=3600, ge=60)
    # The address participants reach the service at, for join links; by default the
    # address the request came to.
    public_url: str | None = None
    room_cap: int = Field(default=4, ge=MIN_CAP)
    # An empty room closes this long after its last participant left ...
    room_empty_expiry_s: float = Field(default=600.0, gt=0)
    # ... and a room nobody ever joined, this long after it was made.
    room_unused_expiry_s: float = Field(default=24 * 3600.0, gt=0)
    host_token_ttl_s: int = Field(default=4 * 3600, ge=60)
    invite_max_ttl_s: int = Field(default=24 * 3600, ge=60)
    acute_escalation_s: float = Field(default=300.0, gt=0)
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    presence_ttl_s: float = Field(default=180.0, gt=0)
    vitals_window_h: float = Field(default=72.0, gt=0)
    specialties: list[str] = Field(default_factory=lambda: list(DEFAULT_SPECIALTIES))
    # Development sign-in on the specialist page (demo only; never in production).
    dev_login: bool = False
    # Browser origins allowed to call this API with a bearer token (the alerts console).
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8082", "http://127.0.0.1:8082"]
    )

    @field_validator("join_key", "turn_secret")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if "REPLACE" in value.get_secret_value():
            raise ValueError("still the placeholder from deploy/coturn; set the real secret")
        return refuse_weak_secret(value)

    @model_validator(mode="after")
    def _turn_complete(self) -> VideoSettings:
        if self.turn_secret is not None and not self.turn_urls:
            raise ValueError("turn_urls are needed with a turn_secret")
        return self

    def join_token_key(self) -> bytes:
        """The key that signs and checks join tokens."""
        if self.join_key is not None:
            return self.join_key.get_secret_value().encode()
        jwt_secret = self.auth.jwt_secret.get_secret_value().encode()
        return hmac.new(jwt_secret, _JOIN_KEY_LABEL, hashlib.sha256).digest()

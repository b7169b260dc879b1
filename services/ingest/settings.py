"""Ingest service settings (environment prefix ``INGEST_``)."""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, refuse_weak_secret


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = 8081
    # Encrypts device secrets at rest (AES-256-GCM key derived from this value).
    secret_key: SecretStr
    max_body_bytes: int = 2 * 1024 * 1024
    max_readings: int = 5_000
    clock_skew_s: int = 300
    late_limit_days: int = 30
    store_group: str = "naervagt-ingest-store"

    _check_secret = field_validator("secret_key")(refuse_weak_secret)

"""Settings shared by every service, read from the environment (pydantic-settings).

Each service builds its own settings class once in ``__main__`` and passes it down; nothing
reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"", "change-me", "changeme", "secret", "dev", "test"}


def refuse_weak_secret(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if raw.lower() in _PLACEHOLDERS or len(raw) < 32:
        raise ValueError("must be a real secret of at least 32 characters, not a placeholder")
    return value


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "localhost:9092"
    # Tansu (the embedded broker) rejects idempotent producers; turn this on for Apache Kafka.
    enable_idempotence: bool = False
    partitions: int = 12
    replication_factor: int = 1
    request_timeout_ms: int = 5_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000


class TopicSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOPIC_", extra="ignore")

    readings: str = "naervagt.readings.v1"
    risk: str = "naervagt.risk.v1"
    alerts: str = "naervagt.alerts.v1"
    consults: str = "naervagt.consults.v1"
    deadletter: str = "naervagt.deadletter.v1"

    def all(self) -> list[str]:
        return [self.readings, self.risk, self.alerts, self.consults, self.deadletter]


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = SecretStr("postgresql://postgres@localhost/postgres")
    pool_min: int = 1
    pool_max: int = 10
    command_timeout_s: float = 10.0


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    jwt_secret: SecretStr
    jwt_issuer: str = "naervagt"
    token_ttl_s: int = 12 * 3600

    _check_secret = field_validator("jwt_secret")(refuse_weak_secret)


class ServiceSettings(BaseSettings):
    """What every service needs; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings())


class PlatformSettings(BaseSettings):
    """Settings of the ``naervagt`` launcher itself."""

    model_config = SettingsConfigDict(env_prefix="NAERVAGT_", extra="ignore")

    state_dir: Path = Path(".naervagt")
    broker_port: int = 9092
    ingest_port: int = 8081
    alerts_port: int = 8082
    video_port: int = 8083

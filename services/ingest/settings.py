"""Ingest service settings (environment prefix ``INGEST_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, refuse_weak_secret


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = 8081
    # Encrypts device secrets at rest (AES-256-GCM key derived from this value).
    secret_key: SecretStr
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    max_readings: int = Field(default=5_000, gt=0)
    # Bodies larger than this are decoded and validated on a worker thread, off the event loop.
    offload_bytes: int = Field(default=64 * 1024, ge=0)
    clock_skew_s: int = Field(default=300, gt=0)
    late_limit_days: int = Field(default=30, gt=0)
    store_group: str = "naervagt-ingest-store"
    # Instances that only take requests can leave storing to others (the store scales with
    # the readings topic's partitions, the API with requests).
    store_enabled: bool = True

    # Per-device token bucket: requests (or stream messages) per second, and the burst allowed.
    rate_per_s: float = Field(default=5.0, gt=0)
    rate_burst: int = Field(default=20, gt=0)
    rate_devices: int = Field(default=100_000, gt=0)
    # Signatures remembered to refuse replays (per instance); the oldest are forgotten first.
    replay_memory: int = Field(default=200_000, gt=0)

    # Readings of concurrent requests are committed and published together, in at most this
    # many transactions at a time.
    intake_concurrency: int = Field(default=4, gt=0)
    # Active devices are kept in memory (dropped at once on rotation or revocation) this long.
    device_cache_s: float = Field(default=60.0, ge=0)
    device_cache_entries: int = Field(default=100_000, gt=0)

    # How long a request may wait for the broker's acknowledgement before answering 503.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    # How long a request may wait for a database connection before answering 503.
    db_acquire_timeout_s: float = Field(default=5.0, gt=0)
    retry_after_s: int = Field(default=2, gt=0)

    # Readings the broker acknowledged but lost (an in-memory broker restarted): after a log
    # reset is seen, receipts this far back that have no stored reading are published again.
    redelivery_lookback_s: int = Field(default=600, gt=0)

    # Clinician queries: the most readings (or Observations) one page returns.
    query_page_max: int = Field(default=1_000, gt=0)

    _check_secret = field_validator("secret_key")(refuse_weak_secret)

    @property
    def redelivery_wait_s(self) -> float:
        """Time after a log reset by which every request then in flight has committed or not."""
        return self.publish_timeout_s + 1.0

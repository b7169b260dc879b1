"""Settings of the alert lifecycle, routing, escalation and webhooks (environment prefix
``ALERTS_``, nested values as JSON, e.g. ``ALERTS_ROUTING='{"fallback_region": "hovedstaden"}'``).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.alerts.domain.routing import RoutingPolicy


class LifecycleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ALERTS_", extra="ignore", env_parse_none_str="none"
    )

    # An open or acknowledged alert resolves by itself after this long below the alerting
    # threshold; None ("none" in the environment) keeps every alert until a clinician
    # resolves it.
    auto_resolve_minutes: float | None = 60.0
    max_snooze_minutes: int = 24 * 60
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    # Organisations are re-read from the database at most this old (edits through the
    # operator API take effect at once on the instance that made them).
    care_cache_ttl_s: float = 10.0
    # The escalation scheduler sleeps until the next deadline, but never longer than this, so
    # deadlines planned by other instances are seen in time.
    escalation_poll_s: float = 1.0
    escalation_batch: int = 200
    webhook_poll_s: float = 1.0
    webhook_batch: int = 50
    webhook_concurrency: int = 8
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 8
    webhook_backoff_base_s: float = 5.0
    webhook_backoff_max_s: float = 3600.0
    # While a delivery is in flight it is leased for this long; an instance that dies
    # mid-delivery leaves it to be retried after the lease.
    webhook_lease_s: float = 60.0
    # Key for the webhook signing secrets at rest; derived from the JWT secret when unset.
    webhook_secret_key: SecretStr | None = None

    @property
    def auto_resolve_after(self) -> timedelta | None:
        if self.auto_resolve_minutes is None:
            return None
        return timedelta(minutes=self.auto_resolve_minutes)

    @property
    def longest_snooze(self) -> timedelta:
        return timedelta(minutes=self.max_snooze_minutes)

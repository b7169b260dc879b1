"""Alerts service settings (environment prefix ``ALERTS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", extra="ignore")

    port: int = 8082
    window_minutes: int = 12 * 60
    # A NEWS2 in the 'low' band (0-4) alerts only from this total; higher bands always alert.
    min_low_total: int = 3
    console_ticket_ttl_s: int = 60
    # Development sign-in on the console page (demo only; never in production).
    dev_login: bool = False
    scorer_group: str = "naervagt-alerts-scorer"
    engine_group: str = "naervagt-alerts-engine"

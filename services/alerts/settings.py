"""Alerts service settings (environment prefix ``ALERTS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    # Where the console's "request specialist" button reaches the video service.
    video_url: str = "http://localhost:8083"
    scorer_group: str = "naervagt-alerts-scorer"
    engine_group: str = "naervagt-alerts-engine"
    # Scoring: how much of each patient's history the scorer keeps (the model's baselines look
    # back up to 30 days), and the personal baseline's period, trust and reporting limit.
    history_days: int = 30
    baseline_days: int = 14
    baseline_min_readings: int = 7
    baseline_z_limit: float = 2.0
    # The deterioration model file; the newest shipped one when unset.
    model_path: Path | None = None
    model_top_features: int = 5
    # Clinicians' reference ranges and cadences are re-read at most this old.
    thresholds_ttl_s: float = 30.0
    # Missing measurements: how often to check, the expected cadence per reading type in hours
    # (each patient's thresholds document may change it), and how long after their last reading
    # a patient still counts as monitored.
    missing_check_s: float = 60.0
    missing_cadence_hours: dict[str, float] = Field(
        default_factory=lambda: {"spo2": 24.0, "heart_rate": 24.0}
    )
    missing_lookback_days: int = 30

"""Video service settings (environment prefix ``VIDEO_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class VideoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEO_", extra="ignore")

    port: int = 8083

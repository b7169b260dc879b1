"""Run the alerts service: ``python -m services.alerts`` (configured by environment only)."""

from __future__ import annotations

from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings
from shared import lifecycle, logs


def main() -> None:
    settings = AlertsSettings()
    logs.configure("alerts", settings.log_level)
    lifecycle.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()

"""Run the ingest service: ``python -m services.ingest`` (configured by environment only)."""

from __future__ import annotations

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared import lifecycle, logs


def main() -> None:
    settings = IngestSettings()
    logs.configure("ingest", settings.log_level)
    lifecycle.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()

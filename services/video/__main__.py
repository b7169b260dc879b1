"""Run the video service: ``python -m services.video`` (configured by environment only)."""

from __future__ import annotations

from services.video.app import create_app
from services.video.settings import VideoSettings
from shared import lifecycle, logs


def main() -> None:
    settings = VideoSettings()
    logs.configure("video", settings.log_level)
    lifecycle.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()

"""Run the video service: ``python -m services.video`` (configured by environment only)."""

from __future__ import annotations

import gc

from services.video.app import create_app
from services.video.settings import VideoSettings
from shared import lifecycle, logs


def main() -> None:
    settings = VideoSettings()
    logs.configure("video", settings.log_level)
    app = create_app(settings)
    # Modules, classes and settings live as long as the process: keep them out of the
    # collector's full passes, which pause every room's signaling while they run.
    gc.freeze()
    lifecycle.run(app, host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()

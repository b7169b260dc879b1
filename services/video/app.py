"""Wires the video service: consultation rooms and WebRTC signaling."""

from __future__ import annotations

from aiohttp import web

from services.video.settings import VideoSettings
from shared.http import base_app
from shared.lifecycle import database_ctx


def create_app(settings: VideoSettings) -> web.Application:
    app = base_app(settings.auth)
    app.cleanup_ctx.append(database_ctx(settings.database))
    return app

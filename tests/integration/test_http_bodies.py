"""Request bodies are read whole, however they arrive, and refused past their limit."""

from __future__ import annotations

import io
import json

from aiohttp import web

from shared.http import base_app, read_json
from shared.settings import AuthSettings

LIMIT = 2 * 1024 * 1024


async def echo_size(request: web.Request) -> web.Response:
    body, document = await read_json(request, max_bytes=LIMIT)
    return web.json_response({"bytes": len(body), "items": len(document["items"])})


def app() -> web.Application:
    application = base_app(AuthSettings(jwt_secret="x" * 40), client_max_size=2 * LIMIT)
    application.router.add_post("/echo", echo_size)
    return application


async def test_a_large_body_is_read_whole(serve, http):
    base = await serve(app())
    body = json.dumps({"items": ["y" * 100] * 9000}).encode()  # ~1 MB, many TCP segments
    async with http.post(f"{base}/echo", data=body) as response:
        assert response.status == 200
        assert await response.json() == {"bytes": len(body), "items": 9000}


async def test_a_body_past_the_limit_is_a_413(serve, http):
    base = await serve(app())
    body = json.dumps({"items": ["y" * 100] * 22000}).encode()  # > 2 MiB
    async with http.post(f"{base}/echo", data=io.BytesIO(body)) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "payload_too_large"

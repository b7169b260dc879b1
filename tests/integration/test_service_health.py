"""Every service answers health, readiness and Prometheus metrics."""

from __future__ import annotations

from services.video.app import create_app
from services.video.settings import VideoSettings


async def test_health_readiness_and_metrics(infra, serve, http):
    base = await serve(create_app(VideoSettings(port=0, **infra.common())))
    async with http.get(f"{base}/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
    async with http.get(f"{base}/readyz") as response:
        body = await response.json()
        assert response.status == 200
        assert body["checks"]["database"] is True
    async with http.get(f"{base}/nowhere") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
        assert response.status == 200
        assert 'naervagt_http_requests_total{method="GET",route="/readyz",status="200"}' in text


async def test_the_console_origin_may_call_the_video_api_and_others_may_not(infra, serve, http):
    base = await serve(create_app(VideoSettings(port=0, **infra.common())))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with http.options(
        f"{base}/v1/consults", headers={"Origin": "http://localhost:8082", **preflight}
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8082"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    async with http.options(
        f"{base}/v1/consults", headers={"Origin": "https://evil.example", **preflight}
    ) as response:
        assert "Access-Control-Allow-Origin" not in response.headers

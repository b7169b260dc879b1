"""A real browser in a consultation: Debian's chromium with a fake camera and microphone opens
the join link of an accepted consultation, meets an aiortc peer through the real service, and
keeps the room through a dropped WebSocket and a reload."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from services.video.app import create_app
from services.video.probe import ColourTrack, Probe
from services.video.settings import VideoSettings
from shared.auth import Principal, issue_token
from shared.infra.broker import EmbeddedBroker
from shared.kafka import ensure_topics
from shared.settings import AuthSettings, DatabaseSettings, KafkaSettings, TopicSettings

pytestmark = pytest.mark.e2e

JWT_SECRET = secrets.token_urlsafe(48)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
MEDIA_WAIT_S = 45.0
PAGE_WAIT_MS = 45_000

# The height of the video the page sends, from the sender's statistics.
SENT_HEIGHT = """async () => {
    for (const entry of window.naervagtCall.peers.values()) {
        for (const report of (await entry.pc.getStats()).values()) {
            if (report.type === 'outbound-rtp' && report.kind === 'video' && report.frameHeight)
                return report.frameHeight;
        }
    }
    return 0;
}"""
VIDEO_LIMIT = """() => [...window.naervagtCall.peers.values()].map(entry => {
    const sender = entry.pc.getSenders().find(s => s.track && s.track.kind === 'video');
    const [encoding] = sender.getParameters().encodings;
    return [encoding.maxBitrate ?? null, encoding.scaleResolutionDownBy ?? 1,
            sender.track.getSettings().height];
})"""
VIDEO_DIRECTION = """() => [...window.naervagtCall.peers.values()].map(entry =>
    entry.pc.getTransceivers().find(t => t.receiver.track.kind === 'video').currentDirection)"""

# A remote <video> that is not from before a reconnect and has decoded frames.
PLAYING = """() => [...document.querySelectorAll('video.remote')]
    .some(v => !v.dataset.before && v.videoWidth > 0)"""


@dataclass
class Service:
    base: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        async with self.http.request(
            method, f"{self.base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status in (200, 201), await response.text()
            return await response.json()


@pytest.fixture(scope="module")
async def service(broker: EmbeddedBroker, database: str) -> AsyncIterator[Service]:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        readings=f"b{suffix}.readings",
        risk=f"b{suffix}.risk",
        alerts=f"b{suffix}.alerts",
        consults=f"b{suffix}.consults",
        deadletter=f"b{suffix}.deadletter",
    )
    settings = VideoSettings(
        port=0,
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=1),
        topics=topics,
        database=DatabaseSettings(url=SecretStr(database), pool_max=3),
        auth=AuthSettings(jwt_secret=SecretStr(JWT_SECRET)),
    )
    await ensure_topics(settings.kafka, topics.all())
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Service(f"http://{host}:{port}", http)
    await runner.cleanup()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Consultation:
    patient: str
    team: str
    specialist_url: str
    nurse_token: str
    room_id: str


@pytest.fixture
async def consultation(service: Service, pool: Any) -> Consultation:
    """An accepted consultation about a patient with recent vital signs."""
    s = uuid.uuid4().hex[:8]
    team, lungs, patient = f"akut-{s}", f"lunge-{s}", f"pt-{s}"
    await pool.executemany(
        "INSERT INTO organisations (org_id, kind, name, municipalities, specialties) "
        "VALUES ($1, $2, $3, $4, $5)",
        [
            (team, "acute_team", "Akutteam Sydfyn", [f"by-{s}"], []),
            (lungs, "hospital_department", "Lungemedicinsk Afdeling J", [], ["pulmonology"]),
        ],
    )
    await pool.execute(
        "INSERT INTO patients (patient_id, municipality) VALUES ($1, $2)", patient, f"by-{s}"
    )
    now = datetime.now(UTC)
    await pool.executemany(
        "INSERT INTO readings (device_id, reading_id, patient_id, type, value_num, unit, "
        "measured_at, received_at) VALUES ('dev-b', $1, $2, $3, $4, $5, $6, $6)",
        [
            (f"{s}-1", patient, "spo2", 87.0, "%", now - timedelta(minutes=3)),
            (f"{s}-2", patient, "respiratory_rate", 26.0, "/min", now - timedelta(minutes=3)),
        ],
    )
    nurse = issue_token(JWT_SECRET, Principal("sygeplejerske-b", "nurse", team))
    specialist = issue_token(JWT_SECRET, Principal("overlaege-b", "specialist", lungs))
    consult = await service.call(
        "POST",
        "/v1/consults",
        nurse,
        {
            "patient_id": patient,
            "specialty": "pulmonology",
            "urgency": "acute",
            "reason": "Tiltagende dyspnø, SpO2 87 %",
        },
    )
    accepted = await service.call("POST", f"/v1/consults/{consult['id']}/accept", specialist)
    joined = await service.call("POST", f"/v1/consults/{consult['id']}/join", nurse)
    return Consultation(patient, team, accepted["join_url"], joined["token"], accepted["room_id"])


async def next_video(probe: Probe, browser_peer: str | None) -> tuple[str, int, int]:
    peer_id, frame = await probe.next_frame(MEDIA_WAIT_S)
    assert peer_id != browser_peer, "a frame from the connection before the reconnect"
    return peer_id, frame.width, frame.height


async def open_page(
    browser: Browser, url: str, *, slow_network: bool = False
) -> tuple[Page, list[str]]:
    """A page in its own browser context, with the script errors it raises collected."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if slow_network:
        # DevTools network emulation also sets what navigator.connection reports.
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 150,
                "downloadThroughput": 50_000,
                "uploadThroughput": 50_000,
                "connectionType": "cellular3g",
            },
        )
    await page.goto(url)
    return page, errors


async def mark_remote_videos(page: Page) -> None:
    await page.evaluate(
        "() => document.querySelectorAll('video.remote').forEach(v => v.dataset.before = '1')"
    )


async def test_a_browser_and_an_aiortc_peer_see_each_other_and_survive_reconnects(
    service: Service, browser: Browser, consultation: Consultation
) -> None:
    # The aiortc peer is in the room first, so it offers and the browser answers (polite).
    nurse = Probe(track=lambda: ColourTrack(320, 240, (220, 30, 30)))
    await nurse.join(service.http, service.base, consultation.nurse_token)
    await nurse.welcome
    page, errors = await open_page(browser, consultation.specialist_url)
    try:
        # the token leaves the address bar at once
        assert page.url == f"{service.base}/join"
        await page.wait_for_selector("#check-camera[data-state=ok]")
        await page.wait_for_selector("#check-microphone[data-state=ok]")
        await page.click("#join:enabled")

        await page.wait_for_function(PLAYING, timeout=PAGE_WAIT_MS)
        browser_peer, width, height = await next_video(nurse, None)
        assert width > 0 and height > 0
        assert nurse.offers_made == 1
        # clinicians see the patient's latest vital signs beside the video
        await page.wait_for_selector("#vitals-rows tr[data-type=spo2]")
        assert "87" in await page.inner_text("#vitals-rows tr[data-type=spo2]")
        assert consultation.patient in await page.inner_text("#vitals-patient")

        # low-bandwidth mode caps the video near 360p and 500 kbit/s
        if await page.get_attribute("#low-bw", "aria-pressed") == "true":
            await page.click("#low-bw")
        await page.wait_for_function(
            f"() => ({VIDEO_LIMIT})().every(([bitrate]) => bitrate === null)",
            timeout=PAGE_WAIT_MS,
        )
        [(_, _, captured)] = await page.evaluate(VIDEO_LIMIT)
        assert captured > 360
        await page.click("#low-bw")
        await page.wait_for_function(
            f"() => ({VIDEO_LIMIT})().every(([bitrate]) => bitrate === 500000)",
            timeout=PAGE_WAIT_MS,
        )
        [(_, scale, captured)] = await page.evaluate(VIDEO_LIMIT)
        assert captured / scale <= 360
        await page.wait_for_function(
            f"async () => {{ const h = await ({SENT_HEIGHT})(); return h > 0 && h <= 360; }}",
            timeout=PAGE_WAIT_MS,
        )

        # 1. The WebSocket drops: the page reconnects, stays in the room, media resumes.
        await mark_remote_videos(page)
        await page.evaluate("() => window.naervagtCall.ws.close()")
        await page.wait_for_function(PLAYING, timeout=PAGE_WAIT_MS)
        browser_peer, width, _ = await next_video(nurse, browser_peer)
        assert width > 0
        assert await page.is_visible("#call")

        # 2. The page reloads: it rejoins by itself and media resumes again.
        await page.reload()
        await page.wait_for_function(PLAYING, timeout=PAGE_WAIT_MS)
        _, width, _ = await next_video(nurse, browser_peer)
        assert width > 0
        assert nurse.offers_made == 3
        assert errors == []
    finally:
        await page.context.close()
        await nurse.close()


async def test_a_patient_on_a_slow_line_waits_to_be_let_in_and_never_sees_vital_signs(
    service: Service, browser: Browser, consultation: Consultation
) -> None:
    nurse = Probe(track=lambda: ColourTrack(320, 240, (30, 200, 30)))
    await nurse.join(service.http, service.base, consultation.nurse_token)
    await nurse.welcome
    invited = await service.call(
        "POST",
        f"/v1/rooms/{consultation.room_id}/invites",
        consultation.nurse_token,
        {"role": "patient", "display_name": "Ida Jensen", "ttl_s": 900},
    )
    page, errors = await open_page(browser, invited["join_url"], slow_network=True)
    try:
        # a slow connection turns low-bandwidth mode on before the call starts
        await page.wait_for_selector("#check-network[data-state=warn]")
        assert await page.is_checked("#low-bandwidth")
        await page.click("#join:enabled")
        await page.wait_for_selector("#lobby:visible")
        knock = await asyncio.wait_for(nurse.knocks.get(), MEDIA_WAIT_S)
        assert (knock["role"], knock["display_name"]) == ("patient", "Ida Jensen")

        await nurse.admit(knock["peer_id"])

        await page.wait_for_function(PLAYING, timeout=PAGE_WAIT_MS)
        peer_id, width, _ = await next_video(nurse, None)
        assert (peer_id, width > 0) == (knock["peer_id"], True)
        assert not await page.is_visible("#vitals")
        assert not await page.is_visible("#invite")
        await page.wait_for_function(
            f"() => ({VIDEO_LIMIT})().every(([bitrate]) => bitrate === 500000)",
            timeout=PAGE_WAIT_MS,
        )

        # one click to audio only: the page renegotiates video off with the aiortc peer
        await page.click("#audio-only")
        await page.wait_for_function(
            f"() => ({VIDEO_DIRECTION})().every(d => d === 'inactive')", timeout=PAGE_WAIT_MS
        )
        assert errors == []
    finally:
        await page.context.close()
        await nurse.close()

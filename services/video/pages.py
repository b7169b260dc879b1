"""The web client: the join page (``/join/{token}``), the specialist's queue (``/specialist``)
and their scripts, served as plain files with headers that keep join tokens private."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from shared.errors import NotFound

_STATIC = {
    "call.js": "application/javascript",
    "call.css": "text/css",
    "specialist.js": "application/javascript",
}

# The join token sits in the page's address until the script moves it out: never send it on
# as a referrer, never cache the page, and allow scripts from this origin only.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self)",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws://{host} wss://{host}; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _read(name: str) -> str:
    return resources.files("services.video").joinpath(f"static/{name}").read_text("utf-8")


def _page(request: web.Request, name: str) -> web.Response:
    # The signaling socket is this same host; no other origin is reachable from the page.
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": _CSP.format(host=request.host)}
    return web.Response(text=_read(name), content_type="text/html", headers=headers)


async def join_page(request: web.Request) -> web.Response:
    return _page(request, "join.html")


async def specialist_page(request: web.Request) -> web.Response:
    return _page(request, "specialist.html")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise NotFound("no such file")
    return web.Response(
        text=_read(name),
        content_type=_STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/join", join_page)
    app.router.add_get("/join/{token}", join_page)
    app.router.add_get("/specialist", specialist_page)
    app.router.add_get("/static/video/{name}", static_file)

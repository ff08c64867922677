"""The web app's pages and static files, with their own Content-Security-Policy.

Every page route answers the same small HTML shell (shell.html): the client-side app reads the path and
draws the storefront, a series (with its paywall) or an episode's player from the JSON APIs. The shell
names this build's hashed files and carries the app's public configuration; it is never cached (no-cache),
the files it names are immutable.

The edge's policy forbids every source (nothing else we serve is a document). The pages need, and get
only on their own routes: scripts and styles from this origin (styles also inline, which media-chrome's
shadow roots use; scripts never inline), media from blob: (Media Source Extensions), the hls.js worker
from this origin, XHR/fetch to this origin (APIs, playlists, segments, keys), images from this origin and
data: (posters, storyboard sheets). Framing stays forbidden unless SERIES_WEB_HOST_ORIGINS names the host
applications that may embed the pages.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from aiohttp import hdrs, web

from drm.ids import check_id
from server.config import Settings
from server.edge.security import EDGE_HEADERS
from server.web.assets import IMMUTABLE, WebAssets

SHELL = Path(__file__).with_name("shell.html")
ASSETS = web.AppKey("web_assets", WebAssets)
PAGE_POLICY = web.AppKey("web_page_policy", str)
PAGE_CONFIG = web.AppKey("web_page_config", str)
SHELL_TEMPLATE = web.AppKey("web_shell", str)

PAGE_ROUTES = ("/", "/series/{series_id}", "/series/{series_id}/episodes/{episode_id}")
# the creator studio: the same shell and policy, its own bundle (tus-js-client never loads on a viewer's page)
STUDIO_ROUTES = ("/studio", "/studio/series/{series_id}")


def page_policy(host_origins: tuple[str, ...]) -> str:
    """The pages' Content-Security-Policy: this origin only, plus what playback in the browser needs."""
    ancestors = " ".join(host_origins) if host_origins else "'none'"
    return ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
            f"frame-ancestors {ancestors}; base-uri 'none'; form-action 'none'")


def page_config(settings: Settings, assets: WebAssets) -> str:
    """What the app needs to know of this deployment (nothing secret), as JSON safe inside <script>."""
    config = {"local_sign_in": settings.web.local_sign_in, "test_payments": settings.web.test_payments,
              "host_origins": list(settings.web.host_origins),
              # the studio's tus chunks end on the store's part boundaries: no partial part is carried over
              "upload_chunk_bytes": settings.uploads.part_bytes,
              # what the studio tells creators before they pick a file (the service enforces the same)
              "episode_rules": {"min_duration_s": settings.rules.min_duration_s,
                                "max_duration_s": settings.rules.max_duration_s,
                                "max_upload_bytes": settings.jobs.max_upload_bytes},
              "hls_worker_url": assets.url("hls.worker.js") if assets.is_built else None}
    return json.dumps(config).replace("<", "\\u003c")


def add_routes(app: web.Application, settings: Settings) -> None:
    app[ASSETS] = assets = WebAssets.find()
    app[PAGE_POLICY] = page_policy(settings.web.host_origins)
    app[PAGE_CONFIG] = page_config(settings, assets)
    app[SHELL_TEMPLATE] = SHELL.read_text()
    for route in PAGE_ROUTES:
        app.router.add_get(route, page)
    for route in STUDIO_ROUTES:
        app.router.add_get(route, studio_page)
    app.router.add_get("/assets/{name}", asset)


async def page(request: web.Request) -> web.StreamResponse:
    """The viewer app's shell for any of its paths; a malformed id is 404 like the API's."""
    return _shell(request, "app")


async def studio_page(request: web.Request) -> web.StreamResponse:
    """The creator studio's shell (its own scripts and styles) for any of its paths."""
    return _shell(request, "studio")


def _shell(request: web.Request, entry: str) -> web.StreamResponse:
    for name in ("series_id", "episode_id"):
        if name in request.match_info:
            check_id(name, request.match_info[name])
    assets = request.app[ASSETS]
    html = request.app[SHELL_TEMPLATE].format(script=escape(assets.url(f"{entry}.js")),
                                              style=escape(assets.url(f"{entry}.css")), config=request.app[PAGE_CONFIG])
    return with_page_policy(request, web.Response(text=html, content_type="text/html",
                                                  headers={hdrs.CACHE_CONTROL: "no-cache"}))


async def asset(request: web.Request) -> web.StreamResponse:
    found = request.app[ASSETS].file(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    path, content_type = found
    return with_page_policy(request, web.FileResponse(path, headers={
        hdrs.CACHE_CONTROL: IMMUTABLE, hdrs.CONTENT_TYPE: content_type}))


def with_page_policy(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """The edge's headers with the pages' policy in place of the edge's; X-Frame-Options dropped when host
    applications may frame the pages (frame-ancestors says which). Carrying Server, the response is left
    as it is by the edge middleware."""
    policy = request.app[PAGE_POLICY]
    may_be_framed = "frame-ancestors 'none'" not in policy
    for name, value in request.app[EDGE_HEADERS].for_request(request):
        if name == "Content-Security-Policy":
            value = policy
        elif name == "X-Frame-Options" and may_be_framed:
            continue
        response.headers[name] = value
    return response

"""/openapi.json and the reference page /docs, with its static files at /docs/assets/{version}/{name}.

Swagger UI comes from the npm package swagger-ui-dist (package.json; `npm ci` at set-up, which ./run demo
and ./run tests do), served from node_modules under its version, immutable; our one starter script is
served under a hash of its content. Nothing is fetched from elsewhere: the page's Content-Security-Policy
allows this origin only (and inline styles, which Swagger UI sets). Without node_modules, /docs answers
503 saying how to install it; /openapi.json works regardless.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

from server.edge.security import EDGE_HEADERS
from server.reference.document import openapi_json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SWAGGER_UI = PROJECT_ROOT / "node_modules" / "swagger-ui-dist"
STATIC = Path(__file__).with_name("static")
SWAGGER_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
OUR_FILES = {"reference.js": "text/javascript"}
IMMUTABLE = "public, max-age=31536000, immutable"
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class ReferenceAssetsMissing(Exception):
    code = "reference_assets_missing"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("the reference page's files are not installed: run `npm ci` in the project root "
                         "(./run demo and ./run tests do it); /openapi.json works without them")


@dataclass(frozen=True, slots=True)
class Assets:
    swagger_version: str | None      # None: not installed
    ours_version: str
    swagger_dir: Path

    @classmethod
    def find(cls, swagger_dir: Path | None = None) -> Assets:
        swagger_dir = swagger_dir or SWAGGER_UI
        ours = hashlib.sha256(b"".join((STATIC / name).read_bytes() for name in sorted(OUR_FILES))).hexdigest()[:12]
        try:
            version = json.loads((swagger_dir / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            version = None
        return cls(version, ours, swagger_dir)

    def file(self, version: str, name: str) -> tuple[Path, str] | None:
        """The file and its content type for an asset URL, or None."""
        if self.swagger_version is not None and version == f"swagger-ui-{self.swagger_version}" \
                and name in SWAGGER_FILES:
            return self.swagger_dir / name, SWAGGER_FILES[name]
        if version == f"ours-{self.ours_version}" and name in OUR_FILES:
            return STATIC / name, OUR_FILES[name]
        return None


ASSETS = web.AppKey("reference_assets", Assets)


def add_routes(app: web.Application) -> None:
    app[ASSETS] = Assets.find()
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", page)
    app.router.add_get("/docs/assets/{version}/{name}", asset)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_json(), content_type="application/json",
                        headers={hdrs.CACHE_CONTROL: "no-cache"})


async def page(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    if assets.swagger_version is None:
        raise ReferenceAssetsMissing()
    html = (STATIC / "reference.html").read_text().format(
        swagger_ui=f"/docs/assets/swagger-ui-{assets.swagger_version}", ours=f"/docs/assets/ours-{assets.ours_version}")
    return _with_page_policy(request, web.Response(text=html, content_type="text/html",
                                                   headers={hdrs.CACHE_CONTROL: "no-cache"}))


async def asset(request: web.Request) -> web.StreamResponse:
    found = request.app[ASSETS].file(request.match_info["version"], request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    path, content_type = found
    return _with_page_policy(request, web.FileResponse(path, headers={
        hdrs.CACHE_CONTROL: IMMUTABLE, hdrs.CONTENT_TYPE: content_type}))


def _with_page_policy(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """The edge's headers with the page's own Content-Security-Policy (the edge's forbids every source);
    carrying Server, the response is left as it is by the edge middleware."""
    for name, value in request.app[EDGE_HEADERS].for_request(request):
        response.headers[name] = PAGE_POLICY if name == "Content-Security-Policy" else value
    return response

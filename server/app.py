"""create_app(): the aiohttp service — per-viewer playlists, encrypted segments, and the key server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

from aiohttp import web

from drm.errors import WrongSeries
from drm.ids import check_id
from packager.errors import ObjectMissing
from packager.publish import I_FRAME_PLAYLIST_NAME, MASTER_NAME, MEDIA_PLAYLIST_NAME, EpisodeLocation
from server import catalog_api, edge, health, keyserver, metrics, operator_api, security, webhooks
from server.accesslog import VIEWER_ID, access_log_options
from server.auth import bearer
from server.ingest_api import add_routes as add_ingest_routes
from server.playlists import personalize_master, personalize_media
from server.problems import NotPublished
from server.segments import SEGMENT_NAME, content_type_of, stream_object
from server.services import Services
from server.settings import Settings

SERVICES = web.AppKey("services", Services)
POINTERS = web.AppKey("pointers", dict)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
POINTER_TTL_S = 2.0          # how long a published-version pointer is trusted before re-reading it
NO_STORE = "private, no-store"
IMMUTABLE = "public, max-age=31536000, immutable"

EPISODE = r"/v1/series/{series_id}/episodes/{episode_id}"
VERSIONED = EPISODE + r"/v{version:\d+}/{rendition:\d+p}"


def create_app(settings: Settings, services: Services | None = None) -> web.Application:
    """The service. Without `services`, it opens its own from settings and closes them on cleanup."""
    app_metrics, edge_headers = metrics.Metrics(), security.EdgeHeaders(settings.http)
    app = web.Application(middlewares=[edge.edge_middleware(app_metrics, edge_headers)],
                          client_max_size=settings.http.max_request_bytes)
    app[edge.EDGE_HEADERS] = edge_headers
    app[POINTERS] = {}
    app.cleanup_ctx.append(_services_ctx(settings, services))
    metrics.add_routes(app, app_metrics, token=settings.metrics_token)
    health.add_routes(app, settings, SERVICES)
    app.router.add_get(EPISODE + "/" + MASTER_NAME, master_playlist)
    app.router.add_get(VERSIONED + "/" + MEDIA_PLAYLIST_NAME, media_playlist)
    app.router.add_get(VERSIONED + "/" + I_FRAME_PLAYLIST_NAME, media_playlist)
    app.router.add_get(VERSIONED + "/" + SEGMENT_NAME, segment)
    keyserver.add_routes(app, settings, services_key=SERVICES, token_of=token_of)
    catalog_api.add_routes(app, SERVICES)
    operator_api.add_routes(app, SERVICES)
    webhooks.add_routes(app, SERVICES)
    add_ingest_routes(app, settings, SERVICES)
    return app


async def start_runner(app: web.Application) -> web.AppRunner:
    """Set up `app` the way the service runs it: the JSON access log (configure_access_log() says
    where it goes), and plain key GETs answered ahead of the router (keyserver.answer_keys_first)."""
    runner = web.AppRunner(app, **access_log_options())
    await runner.setup()
    keyserver.answer_keys_first(runner)
    return runner


def _services_ctx(settings: Settings, given: Services | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        services = given or await asyncio.to_thread(Services.open, settings)
        app[SERVICES] = services
        yield
        if given is None:
            services.close()
    return ctx


_PLAIN_TOKEN_QUERY = re.compile(r"token=([A-Za-z0-9_.\-]+)")    # nothing to decode: JWTs are URL-safe


def token_of(request: web.Request) -> str | None:
    """The playback token: in the query (Safari cannot add headers) or as a Bearer header."""
    plain = _PLAIN_TOKEN_QUERY.fullmatch(request.query_string)
    if plain:       # a player's key or playlist request: the query is just the token; no parsing needed
        return plain.group(1)
    token = request.query.get("token")
    if token:
        return token
    return bearer(request)


def _viewer_for_series(request: web.Request, series_id: str):
    """Playlists need a valid token for this series; the entitlement is checked where the key is."""
    token = token_of(request)
    viewer = request.app[SERVICES].tokens.verify(token)
    request[VIEWER_ID] = viewer.viewer_id
    if viewer.series_id != series_id:
        raise WrongSeries(viewer.series_id, series_id)
    return viewer, token


def _location(request: web.Request) -> EpisodeLocation:
    return EpisodeLocation(
        series_id=check_id("series_id", request.match_info["series_id"]),
        episode_id=check_id("episode_id", request.match_info["episode_id"]),
    )


async def _pointer(request: web.Request, location: EpisodeLocation, *, fresh: bool = False) -> dict:
    cache = request.app[POINTERS]
    cached = cache.get(location.pointer_key)
    if cached and cached[1] > time.monotonic() and not fresh:
        return cached[0]
    store = request.app[SERVICES].store
    try:
        pointer = json.loads(await asyncio.to_thread(store.get_bytes, location.pointer_key))
    except ObjectMissing:
        raise NotPublished(f"episode {location.episode_id} of series {location.series_id}") from None
    cache[location.pointer_key] = (pointer, time.monotonic() + POINTER_TTL_S)
    return pointer


async def _live_version(request: web.Request, location: EpisodeLocation) -> int:
    return int((await _pointer(request, location))["version"])


async def _servable_version(request: web.Request, location: EpisodeLocation) -> int:
    """The requested version, if it is the live one or the previous one (players mid-playback).

    Anything else — a version being published, or the orphan of a failed publish — is not served,
    even while its objects exist: nothing half-written is reachable.
    """
    version = int(request.match_info["version"])
    for fresh in (False, True):     # a miss re-reads the pointer: the version may have just gone live
        pointer = await _pointer(request, location, fresh=fresh)
        if version in (pointer["version"], pointer.get("previous_version")):
            return version
    raise NotPublished(f"version {version} of episode {location.episode_id} of series {location.series_id}")


def _playlist_response(text: str) -> web.Response:
    response = web.Response(text=text, content_type=PLAYLIST_TYPE, headers={"Cache-Control": NO_STORE})
    response.enable_compression()   # gzip when the player accepts it (Apple 10.1)
    return response


async def master_playlist(request: web.Request) -> web.Response:
    location = _location(request)
    _, token = _viewer_for_series(request, location.series_id)
    version = await _live_version(request, location)
    store = request.app[SERVICES].store
    stored = await asyncio.to_thread(store.get_bytes, f"{location.version_prefix(version)}/{MASTER_NAME}")
    return _playlist_response(personalize_master(stored.decode(), token, version))


async def media_playlist(request: web.Request) -> web.Response:
    location = _location(request)
    _, token = _viewer_for_series(request, location.series_id)
    version, rendition = await _servable_version(request, location), request.match_info["rendition"]
    name = request.path.rsplit("/", 1)[-1]       # index.m3u8 or iframes.m3u8
    store = request.app[SERVICES].store
    stored = await asyncio.to_thread(store.get_bytes, f"{location.version_prefix(version)}/{rendition}/{name}")
    return _playlist_response(personalize_media(stored.decode(), token))


async def segment(request: web.Request) -> web.StreamResponse:
    """Encrypted segments (and fMP4 init segments, which hold no media), streamed from the private bucket,
    whole or by Range. Ciphertext: cacheable by anyone."""
    location = _location(request)
    version, rendition = await _servable_version(request, location), request.match_info["rendition"]
    key = f"{location.version_prefix(version)}/{rendition}/{request.match_info['segment']}"
    name = request.match_info["segment"]
    return await stream_object(request, request.app[SERVICES].store, key, content_type=content_type_of(name),
                               headers={"Cache-Control": IMMUTABLE})

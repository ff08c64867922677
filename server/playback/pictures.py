"""The routes of an episode's pictures and captions.

Gated (a playback token for the series, and a viewer who may watch the episode: the access room's rule,
the one keys follow), problem+json 401/403 otherwise:
    GET {EPISODE}/v{n}/captions/{track}/index.m3u8         subtitle playlist, the token on every segment URI
    GET {EPISODE}/v{n}/captions/{track}/seg_00000.vtt      WebVTT segments; captions.vtt: the whole track
    GET {EPISODE}/v{n}/storyboard/storyboard.vtt           thumbnails track, the token on every sheet URI
    GET {EPISODE}/v{n}/storyboard/images.m3u8 | sheet_000.jpg
    GET {EPISODE}/storyboard.vtt                            the live version's thumbnails track (catalog's storyboard_url)
    GET /thumbnails/{S}/{E}.jpg?time=&width=&token=        any frame (server/playback/thumbnails.py)
Public (the storefront shows them):
    GET {EPISODE}/poster.jpg | poster.webp ?width=          the live version's poster, the nearest width at or above

Versioned objects are served for the live and previous versions only, like playlists (routes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from aiohttp import web

from drm.errors import InvalidField
from packager.errors import ObjectMissing
from packager.publishing.pictures import (
    IMAGE_PLAYLIST_NAME,
    POSTERS_DIR,
    STORYBOARD_DIR,
    STORYBOARD_VTT_NAME,
    poster_name,
)
from packager.publishing.subtitles import CAPTIONS_DIR, SUBTITLE_PLAYLIST_NAME
from packager.publishing.version_manifest import VersionManifest, read_manifest
from server.access import ACCESS
from server.config import Settings
from server.playback.playlists import personalize_storyboard, personalize_uris
from server.playback.routes import (
    EPISODE,
    NO_STORE,
    NotPublished,
    live_pointer,
    location_of,
    playlist_response,
    servable_version,
    viewer_for_series,
)
from server.playback.thumbnails import render_thumbnail, snapped_width
from server.services import SERVICES

THUMBNAIL_GATE = web.AppKey("thumbnail_gate", asyncio.Semaphore)
MANIFESTS = web.AppKey("manifests", dict)

VERSION = EPISODE + r"/v{version:\d+}"
TRACK = r"{track:[A-Za-z0-9-]{2,35}(?:_forced)?}"
GATED_CACHE = "private, max-age=31536000, immutable"    # a version's objects never change; only the viewer's
WEBVTT_TYPE = "text/vtt; charset=utf-8"
THUMBNAIL_WAIT_S = 2.0       # a thumbnail that cannot start decoding within this is refused (503), not queued
MAX_MANIFESTS = 1000         # versions' manifests remembered (immutable, a few hundred bytes each)
DEFAULT_POSTER_WIDTH = 640


class ThumbnailsBusy(Exception):
    code = "thumbnails_busy"
    http_status = 503
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__("too many thumbnails are being decoded right now; retry in a second")

    def __reduce__(self):
        return type(self), ()


def add_routes(app: web.Application, settings: Settings) -> None:
    app[THUMBNAIL_GATE] = asyncio.Semaphore(settings.pictures.thumbnail_decodes)
    app[MANIFESTS] = {}
    app.router.add_get(f"{VERSION}/{CAPTIONS_DIR}/{TRACK}/{SUBTITLE_PLAYLIST_NAME}", caption_playlist)
    app.router.add_get(VERSION + "/" + CAPTIONS_DIR + "/" + TRACK + r"/{name:seg_\d{5}\.vtt|captions\.vtt}",
                       caption_file)
    app.router.add_get(f"{VERSION}/{STORYBOARD_DIR}/{STORYBOARD_VTT_NAME}", storyboard_track)
    app.router.add_get(f"{VERSION}/{STORYBOARD_DIR}/{IMAGE_PLAYLIST_NAME}", storyboard_playlist)
    app.router.add_get(VERSION + "/" + STORYBOARD_DIR + r"/{name:sheet_\d{3}\.jpg}", storyboard_sheet)
    app.router.add_get(f"{EPISODE}/{STORYBOARD_VTT_NAME}", live_storyboard_track)
    app.router.add_get(EPISODE + r"/poster.{format:jpg|webp}", poster)
    app.router.add_get(r"/thumbnails/{series_id}/{episode_id}.{format:jpg|webp}", thumbnail)


async def _gate(request: web.Request):
    """The viewer's token for the series, and the access room's yes for the episode; (location, token)."""
    location = location_of(request)
    viewer, token = viewer_for_series(request, location.series_id)
    await request.app[ACCESS].require_may_watch(viewer.viewer_id, location.series_id, location.episode_id)
    return location, token


async def _gated_object(request: web.Request) -> tuple[bytes, str]:
    """The bytes of a gated object of a servable version, by the request's path below the version; the token."""
    location, token = await _gate(request)
    version = await servable_version(request, location)
    below = request.path.split(f"/episodes/{location.episode_id}/v{version}/", 1)[1]
    store = request.app[SERVICES].store
    return await asyncio.to_thread(store.get_bytes, f"{location.version_prefix(version)}/{below}"), token


async def caption_playlist(request: web.Request) -> web.Response:
    data, token = await _gated_object(request)
    return playlist_response(personalize_uris(data.decode(), token))


async def caption_file(request: web.Request) -> web.Response:
    data, _ = await _gated_object(request)
    return web.Response(body=data, headers={"Content-Type": WEBVTT_TYPE, "Cache-Control": GATED_CACHE})


async def storyboard_track(request: web.Request) -> web.Response:
    data, token = await _gated_object(request)
    return web.Response(text=personalize_storyboard(data.decode(), token), content_type="text/vtt",
                        charset="utf-8", headers={"Cache-Control": NO_STORE})


async def storyboard_playlist(request: web.Request) -> web.Response:
    data, token = await _gated_object(request)
    return playlist_response(personalize_uris(data.decode(), token))


async def storyboard_sheet(request: web.Request) -> web.Response:
    data, _ = await _gated_object(request)
    return web.Response(body=data, headers={"Content-Type": "image/jpeg", "Cache-Control": GATED_CACHE})


async def live_storyboard_track(request: web.Request) -> web.Response:
    """The live version's storyboard, its sheet URIs pointing into the version (v{n}/storyboard/...)."""
    location, token = await _gate(request)
    version = int((await live_pointer(request, location))["version"])
    store = request.app[SERVICES].store
    try:
        data = await asyncio.to_thread(store.get_bytes,
                                       f"{location.version_prefix(version)}/{STORYBOARD_DIR}/{STORYBOARD_VTT_NAME}")
    except ObjectMissing:
        raise NotPublished(f"a storyboard of episode {location.episode_id}") from None
    return web.Response(text=personalize_storyboard(data.decode(), token, f"v{version}/{STORYBOARD_DIR}/"),
                        content_type="text/vtt", charset="utf-8", headers={"Cache-Control": NO_STORE})


async def _manifest(request: web.Request, location, version: int) -> VersionManifest | None:
    """A version's manifest, remembered (versions never change)."""
    remembered = request.app[MANIFESTS]
    key = (location.prefix, version)
    if key not in remembered:
        manifest = await asyncio.to_thread(read_manifest, request.app[SERVICES].store, location, version)
        if len(remembered) >= MAX_MANIFESTS:
            remembered.pop(next(iter(remembered)))
        remembered[key] = manifest
    return remembered[key]


async def poster(request: web.Request) -> web.Response:
    """Public: the live version's poster at the smallest width at or above ?width= (default 640), else the
    largest; 403 for an unpublished episode, 410 for a deleted one."""
    location = location_of(request)
    image_format = "jpeg" if request.match_info["format"] == "jpg" else "webp"
    asked = _query_number(request, "width", int, DEFAULT_POSTER_WIDTH)
    # public, but not of an episode its creator unpublished or deleted (its files outlive it until gc)
    await request.app[ACCESS].require_shown(location.series_id, location.episode_id)
    version = int((await live_pointer(request, location))["version"])
    manifest = await _manifest(request, location, version)
    images = sorted((image for image in (manifest.poster.images if manifest and manifest.poster else ())
                     if image["format"] == image_format), key=lambda image: image["width"])
    if not images:
        raise NotPublished(f"a poster of episode {location.episode_id} of series {location.series_id}")
    image = next((image for image in images if image["width"] >= asked), images[-1])
    name = poster_name(image["width"], image_format)
    data = await asyncio.to_thread(request.app[SERVICES].store.get_bytes,
                                   f"{location.version_prefix(version)}/{POSTERS_DIR}/{name}")
    max_age = request.app[SERVICES].settings.pictures.poster_max_age_s
    return web.Response(body=data, headers={"Content-Type": f"image/{image_format}",
                                            "Cache-Control": f"public, max-age={max_age}",
                                            "ETag": f'"v{version}-{name}"'})


async def thumbnail(request: web.Request) -> web.Response:
    """The frame nearest ?time= (seconds) at ?width= (snapped to SERIES_THUMBNAIL_WIDTHS), for a viewer who
    may watch the episode; decoded in a thread, at most SERIES_THUMBNAIL_DECODES at once per process."""
    location, _ = await _gate(request)
    services = request.app[SERVICES]
    at_s = _query_number(request, "time", float, None)
    width = snapped_width(_query_number(request, "width", int, 320), services.settings.pictures.thumbnail_widths)
    image_format = "jpeg" if request.match_info["format"] == "jpg" else "webp"
    pointer = await live_pointer(request, location)
    gate = request.app[THUMBNAIL_GATE]
    try:
        await asyncio.wait_for(gate.acquire(), THUMBNAIL_WAIT_S)
    except TimeoutError:
        raise ThumbnailsBusy() from None
    try:
        started = time.monotonic()
        picture = await asyncio.to_thread(render_thumbnail, services.store, services.keystore, location,
                                          version=int(pointer["version"]), duration_s=float(pointer["duration_s"]),
                                          at_s=at_s, width=width, image_format=image_format)
    finally:
        gate.release()
    headers = {"Content-Type": picture.content_type, "Cache-Control": "private, max-age=86400",
               "X-Thumbnail-Time": f"{picture.time_s:.3f}", "X-Thumbnail-Width": str(picture.width),
               "Server-Timing": f"{'cache' if picture.is_cached else 'decode'};dur={(time.monotonic() - started) * 1000:.0f}"}
    return web.Response(body=picture.data, headers=headers)


def _query_number(request: web.Request, name: str, kind: type, default):
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidField(name, f"is required: ?{name}=12.5 (seconds from the start)")
        return default
    with contextlib.suppress(ValueError):
        value = kind(raw)
        if math.isfinite(value):
            return value
    raise InvalidField(name, f"expected {'an integer' if kind is int else 'a number'}, got {raw[:20]!r}")


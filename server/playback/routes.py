"""The playback routes: a viewer's master and media playlists, and the encrypted segments they list.

Playlists need a valid playback token for the series (the entitlement is checked where the key is,
server/keys/); segments are ciphertext, cacheable by anyone, and served only for the live version
or the one before it, so nothing half-published is reachable.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from drm.errors import WrongSeries
from drm.ids import check_id
from packager.errors import ObjectMissing
from packager.publishing.publish import I_FRAME_PLAYLIST_NAME, MASTER_NAME, MEDIA_PLAYLIST_NAME, EpisodeLocation
from packager.publishing.version_manifest import VersionManifest, read_manifest
from server.access.memory import MISSING, AnswerCache
from server.edge.accesslog import VIEWER_ID
from server.edge.auth import token_of
from server.playback import watermark
from server.playback.playlists import personalize_master, personalize_media
from server.playback.segments import SEGMENT_NAME, content_type_of, stream_object
from server.services import SERVICES

POINTERS = web.AppKey("pointers", dict)
MANIFESTS = web.AppKey("manifests", AnswerCache)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
POINTER_TTL_S = 2.0          # how long a published-version pointer is trusted before re-reading it
MAX_MANIFESTS = 1000         # versions' manifests remembered (immutable, a few hundred bytes each)
RECORDED_SESSIONS = 100_000  # (session, episode version) pairs this process remembers having recorded
NO_STORE = "private, no-store"
IMMUTABLE = "public, max-age=31536000, immutable"

EPISODE = r"/v1/series/{series_id}/episodes/{episode_id}"
VERSIONED = EPISODE + r"/v{version:\d+}/{rendition:\d+p}"


class NotPublished(Exception):
    """No version of the episode is live yet."""

    code = "not_published"
    http_status = 404

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not published")
        self.what = what

    def __reduce__(self):
        return type(self), (self.what,)


def add_routes(app: web.Application) -> None:
    """Add the playlist and segment routes; the app's Services must be at app[SERVICES]."""
    app[POINTERS] = {}
    app[MANIFESTS] = AnswerCache(MAX_MANIFESTS, max_age_s=float("inf"))
    watermark.install(app, RECORDED_SESSIONS)
    app.router.add_get(EPISODE + "/" + MASTER_NAME, master_playlist)
    app.router.add_get(VERSIONED + "/" + MEDIA_PLAYLIST_NAME, media_playlist)
    app.router.add_get(VERSIONED + "/" + I_FRAME_PLAYLIST_NAME, media_playlist)
    app.router.add_get(VERSIONED + "/" + SEGMENT_NAME, segment)


def viewer_for_series(request: web.Request, series_id: str):
    """Playlists need a valid token for this series; the entitlement is checked where the key is."""
    token = token_of(request)
    viewer = request.app[SERVICES].tokens.verify(token)
    request[VIEWER_ID] = viewer.viewer_id
    if viewer.series_id != series_id:
        raise WrongSeries(viewer.series_id, series_id)
    return viewer, token


def location_of(request: web.Request) -> EpisodeLocation:
    return EpisodeLocation(
        series_id=check_id("series_id", request.match_info["series_id"]),
        episode_id=check_id("episode_id", request.match_info["episode_id"]),
    )


async def live_pointer(request: web.Request, location: EpisodeLocation, *, fresh: bool = False) -> dict:
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
    return int((await live_pointer(request, location))["version"])


async def servable_version(request: web.Request, location: EpisodeLocation, *, is_media: bool = False) -> int:
    """The requested version, if it is the live one or the previous one (players mid-playback); with
    `is_media` (segments), also the media version either plays: a version built without re-transcoding
    (new captions, a new poster) names the segments of the version it was built from.

    Anything else — a version being published, or the orphan of a failed publish — is not served,
    even while its objects exist: nothing half-written is reachable.
    """
    version = int(request.match_info["version"])
    for fresh in (False, True):     # a miss re-reads the pointer: the version may have just gone live
        pointer = await live_pointer(request, location, fresh=fresh)
        servable = {pointer["version"], pointer.get("previous_version")}
        if is_media:
            servable |= {pointer.get("media_version"), pointer.get("previous_media_version")}
        if version in servable:
            return version
    raise NotPublished(f"version {version} of episode {location.episode_id} of series {location.series_id}")


async def version_manifest(request: web.Request, location: EpisodeLocation, version: int) -> VersionManifest | None:
    """A version's manifest (None for one published before manifests), remembered: versions never change."""
    remembered, key = request.app[MANIFESTS], (location.prefix, version)
    manifest = remembered.get(key, 0.0)
    if manifest is MISSING:
        manifest = await asyncio.to_thread(read_manifest, request.app[SERVICES].store, location, version)
        remembered.put(key, manifest, 0.0)
    return manifest


def playlist_response(text: str) -> web.Response:
    response = web.Response(text=text, content_type=PLAYLIST_TYPE, headers={"Cache-Control": NO_STORE})
    response.enable_compression()   # gzip when the player accepts it (Apple 10.1)
    return response


async def master_playlist(request: web.Request) -> web.Response:
    location = location_of(request)
    _, token = viewer_for_series(request, location.series_id)
    version = await _live_version(request, location)
    store = request.app[SERVICES].store
    stored = await asyncio.to_thread(store.get_bytes, f"{location.version_prefix(version)}/{MASTER_NAME}")
    return playlist_response(personalize_master(stored.decode(), token, version))


async def media_playlist(request: web.Request) -> web.Response:
    """A rendition's media or I-frame playlist with the viewer's token on its key URIs; of a watermarked
    version, both list this session's A/B variants (server/playback/watermark.py)."""
    location = location_of(request)
    viewer, token = viewer_for_series(request, location.series_id)
    version, rendition = await servable_version(request, location), request.match_info["rendition"]
    name = request.path.rsplit("/", 1)[-1]       # index.m3u8 or iframes.m3u8
    store = request.app[SERVICES].store
    stored = await asyncio.to_thread(store.get_bytes, f"{location.version_prefix(version)}/{rendition}/{name}")
    text = personalize_media(stored.decode(), token)
    manifest = await version_manifest(request, location, version)
    text = await watermark.viewer_variants(request.app, viewer, location, manifest, rendition, text,
                                           is_i_frames=name == I_FRAME_PLAYLIST_NAME)
    return playlist_response(text)


async def segment(request: web.Request) -> web.StreamResponse:
    """Encrypted segments (and fMP4 init segments, which hold no media), streamed from the private bucket,
    whole or by Range. Ciphertext: cacheable by anyone."""
    location = location_of(request)
    version = await servable_version(request, location, is_media=True)
    rendition = request.match_info["rendition"]
    key = f"{location.version_prefix(version)}/{rendition}/{request.match_info['segment']}"
    name = request.match_info["segment"]
    return await stream_object(request, request.app[SERVICES].store, key, content_type=content_type_of(name),
                               headers={"Cache-Control": IMMUTABLE})

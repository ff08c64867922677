"""The creator's captions and poster of a published episode: each change a new version published
atomically without re-transcoding (server/publishing/edits.py); a refusal changes nothing.

    GET    /v1/series/{S}/episodes/{E}/captions                     owner or operator: tracks, poster, storyboard
    POST   /v1/series/{S}/episodes/{E}/captions?language=fr[&name=Français][&default=true][&forced=true]
                                                                    body: the WebVTT or SRT file itself
    DELETE /v1/series/{S}/episodes/{E}/captions/{track_id}          track_id as listed: fr, fr_forced
    PUT    /v1/series/{S}/episodes/{E}/poster                       {"time_s": 12.5}

A refused caption file is 422 with the first reason's code (caption_binary, caption_not_utf8,
caption_past_end, caption_out_of_order, ...) and every reason under `issues`; a poster time outside
the episode 422 picture_time_out_of_range; an episode with no live version 409 episode_not_published.
"""

from __future__ import annotations

import asyncio
import functools

from aiohttp import web

from drm.errors import InvalidField
from server.catalog.callers import managed_series
from server.catalog.idempotency import idempotent
from server.catalog.series_api import SERIES
from server.catalog.views import episode_urls
from server.edge.bodies import read_bytes, read_object
from server.playback.routes import POINTERS
from server.publishing.edits import EditResult, EpisodeEditor
from server.publishing.pictures import manifest_json
from server.publishing.versions import EpisodeVersions
from server.services import SERVICES, Services

routes = web.RouteTableDef()
EPISODE = SERIES + "/episodes/{episode_id}"
CAPTIONS = EPISODE + "/captions"
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def editor_for(services: Services) -> EpisodeEditor:
    return EpisodeEditor(settings=services.settings, store=services.store, keystore=services.keystore,
                         catalog=services.catalog, versions=EpisodeVersions(services.db))


def _answer(series_id: str, episode_id: str, shown: dict, notes: tuple[str, ...] = ()) -> web.Response:
    urls = episode_urls(series_id, episode_id)
    body = {"series_id": series_id, "episode_id": episode_id, **shown, "notes": list(notes)}
    if body["poster"]:
        body["poster"]["url"] = urls["poster_url"]
    if body["storyboard"]:
        body["storyboard"]["url"] = urls["storyboard_url"]
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _edited(request: web.Request, series_id: str, episode_id: str, result: EditResult) -> web.Response:
    # this process serves the new version at once; the others within their pointer's 2 s
    request.app[POINTERS].pop(result.published.location.pointer_key, None)
    return _answer(series_id, episode_id, manifest_json(result.manifest), result.notes)


def _with_caption_body(handler):
    """Read the caption file before the Idempotency-Key wrapper does, with the caption size limit (its
    default limit is a JSON body's)."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        await read_bytes(request, limit=request.app[SERVICES].settings.pictures.caption_rules.max_size_bytes + 1)
        return await handler(request)
    return wrapper


@routes.get(CAPTIONS)
async def list_captions(request: web.Request) -> web.Response:
    """The live version's caption tracks, poster and storyboard."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    episode_id = request.match_info["episode_id"]
    manifest = await asyncio.to_thread(editor_for(services).live_manifest, series.series_id, episode_id)
    return _answer(series.series_id, episode_id, manifest_json(manifest))


@routes.post(CAPTIONS)
@_with_caption_body
@idempotent
async def add_captions(request: web.Request) -> web.Response:
    """Add a track (or replace the one of the same language and kind): a new live version."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    episode_id = request.match_info["episode_id"]
    query = request.query
    unknown = set(query) - {"language", "name", "default", "forced"}
    if unknown:
        raise InvalidField(min(unknown), "unknown parameter; expected language, name, default, forced")
    language = query.get("language")
    if not language:
        raise InvalidField("language", "is required: ?language=fr (a BCP 47 tag such as en, fr, pt-BR)")
    data = await read_bytes(request)
    result = await asyncio.to_thread(
        editor_for(services).add_captions, series.series_id, episode_id, data, language=language,
        name=query.get("name"), is_default=_flag(query, "default"), is_forced=_flag(query, "forced"))
    return _edited(request, series.series_id, episode_id, result)


@routes.delete(CAPTIONS + "/{track_id}")
@idempotent
async def remove_captions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    episode_id = request.match_info["episode_id"]
    result = await asyncio.to_thread(editor_for(services).remove_captions, series.series_id, episode_id,
                                     request.match_info["track_id"])
    return _edited(request, series.series_id, episode_id, result)


@routes.put(EPISODE + "/poster")
@idempotent
async def set_poster(request: web.Request) -> web.Response:
    """The poster taken at `time_s` seconds of the episode: a new live version."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    episode_id = request.match_info["episode_id"]
    data = await read_object(request, required={"time_s"})
    at_s = data["time_s"]
    if isinstance(at_s, bool) or not isinstance(at_s, int | float):
        raise InvalidField("time_s", f"expected seconds as a number, got {str(at_s)[:20]!r}")
    result = await asyncio.to_thread(editor_for(services).set_poster, series.series_id, episode_id, float(at_s))
    return _edited(request, series.series_id, episode_id, result)


def _flag(query, name: str) -> bool:
    raw = query.get(name, "false").lower()
    if raw not in _FLAGS:
        raise InvalidField(name, f"expected true or false, got {raw[:10]!r}")
    return _FLAGS[raw]

"""Episodes over HTTP: list in order (by page), create (waiting for its upload), read, edit and move,
set the whole order, unpublish, publish again, delete.

    GET    /v1/series/{S}/episodes?cursor=&limit=          viewers: what they may watch; owner: all, with status
    POST   /v1/series/{S}/episodes                         owner: {episode_id, title?, description?, position?}
    GET    /v1/series/{S}/episodes/{E}
    PATCH  /v1/series/{S}/episodes/{E}                     owner: title, description, is_free_preview, position
    PUT    /v1/series/{S}/order                            owner: {"episode_ids": [every episode, in order]}
    POST   /v1/series/{S}/episodes/{E}/unpublish | publish owner or operator
    DELETE /v1/series/{S}/episodes/{E}                     owner or operator

Media arrive through the ingest API (POST …/episodes/{E}/ingest); the episode's status follows its job.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from drm.catalog.catalog import Episode
from drm.errors import UnknownEpisode
from server.catalog.callers import managed_series, visible_series
from server.catalog.idempotency import idempotent
from server.catalog.series_api import SERIES, cursor_of, query_int
from server.catalog.views import episode_json, page_json
from server.edge.bodies import read_object
from server.services import SERVICES

routes = web.RouteTableDef()
EPISODES = SERIES + "/episodes"
EPISODE = EPISODES + "/{episode_id}"
MAX_EPISODE_PAGE = 100      # more than a series holds: one page is the whole series


def _episode_answer(episode: Episode, status: int = 200) -> web.Response:
    headers = {"Location": f"/v1/series/{episode.series_id}/episodes/{episode.episode_id}"} if status == 201 else None
    return web.json_response(episode_json(episode, full=True), status=status, headers=headers)


@routes.get(EPISODES)
async def list_episodes(request: web.Request) -> web.Response:
    """In the series' order. Viewers see the episodes they may watch; the owner and the operator see every
    episode with its status (uploading, processing with stage and percent, ready, errored, unpublished)."""
    services = request.app[SERVICES]
    caller, series = await visible_series(request, services, request.match_info["series_id"])
    full = caller.manages(series)
    page = await asyncio.to_thread(services.catalog.page_episodes, series.series_id, watchable_only=not full,
                                   cursor=cursor_of(request),
                                   limit=query_int(request, "limit", MAX_EPISODE_PAGE, MAX_EPISODE_PAGE))
    return web.json_response(page_json("episodes", page, [episode_json(e, full=full) for e in page.items]))


@routes.post(EPISODES)
@idempotent
async def create_episode(request: web.Request) -> web.Response:
    """An episode waiting for its upload (status uploading), placed last or at `position`."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    data = await read_object(request, required={"episode_id"},
                             optional={"title", "description", "position", "is_free_preview"})
    episode = await asyncio.to_thread(services.catalog.create_episode, series.series_id, data.pop("episode_id"),
                                      **data)
    return _episode_answer(episode, 201)


@routes.get(EPISODE)
async def get_episode(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    caller, series = await visible_series(request, services, request.match_info["series_id"])
    episode_id = request.match_info["episode_id"]
    episode = await asyncio.to_thread(services.catalog.get_episode, series.series_id, episode_id)
    full = caller.manages(series)
    if not (full or episode.is_watchable):
        raise UnknownEpisode(series.series_id, episode_id)
    return web.json_response(episode_json(episode, full=full))


@routes.patch(EPISODE)
@idempotent
async def update_episode(request: web.Request) -> web.Response:
    """Any of title, description, is_free_preview and position (a move: the others close up); all or nothing."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    data = await read_object(request, optional={"title", "description", "is_free_preview", "position"})
    episode = await asyncio.to_thread(services.catalog.update_episode, series.series_id,
                                      request.match_info["episode_id"], **data)
    return _episode_answer(episode)


@routes.put(SERIES + "/order")
@idempotent
async def set_order(request: web.Request) -> web.Response:
    """The whole order at once; `episode_ids` names every episode exactly once (else 422, nothing moves)."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    data = await read_object(request, required={"episode_ids"})
    episodes = await asyncio.to_thread(services.catalog.set_order, series.series_id, data["episode_ids"])
    return web.json_response({"episodes": [episode_json(e, full=True) for e in episodes], "next_cursor": None})


def _publication_route(is_published: bool, verb: str):
    @idempotent
    async def change(request: web.Request) -> web.Response:
        services = request.app[SERVICES]
        _, series = await managed_series(request, services, request.match_info["series_id"])
        episode = await asyncio.to_thread(services.catalog.set_episode_published, series.series_id,
                                          request.match_info["episode_id"], is_published)
        return _episode_answer(episode)

    change.__name__ = f"{verb}_episode"
    routes.post(f"{EPISODE}/{verb}")(change)
    return change


unpublish_episode = _publication_route(False, "unpublish")
publish_episode = _publication_route(True, "publish")


@routes.delete(EPISODE)
@idempotent
async def delete_episode(request: web.Request) -> web.Response:
    """Gone at once from listings and the key server; its files and keys are removed by `series gc` once
    SERIES_GC_GRACE_S has passed (`removed_after`). Buyers of the series keep the rest of it."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    episode = await asyncio.to_thread(services.catalog.delete_episode, series.series_id,
                                      request.match_info["episode_id"])
    return web.json_response({"series_id": episode.series_id, "episode_id": episode.episode_id,
                              "status": "deleted", "deleted_at": episode.deleted_at,
                              "removed_after": episode.deleted_at + services.settings.gc_grace_s})

"""A viewer's library and resume positions over HTTP.

    GET  /v1/me/library?cursor=&limit=                     viewer: the series they hold, each with its
                                                          episodes in order and where they stopped in each
    POST /v1/series/{S}/episodes/{E}/progress             a player: {"position_s": 312.5}

A player reports progress with the viewer's account token or with the playback token it plays with
(Authorization: Bearer, or ?token=), for an episode the viewer may watch. Reports are limited per viewer
(SERIES_PROGRESS_PER_S, burst SERIES_PROGRESS_BURST; a player reporting every 10 s stays far below),
past which 429 with Retry-After: each accepted report is one small database write.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from drm.errors import TokenInvalid, UnknownEpisode, WrongSeries
from server.access import ACCESS
from server.catalog.callers import ANONYMOUS, VIEWER, identify
from server.catalog.episodes_api import EPISODE
from server.catalog.idempotency import idempotent
from server.catalog.series_api import cursor_of, query_int
from server.catalog.views import episode_json, progress_json, series_json
from server.config import Settings
from server.edge.accesslog import VIEWER_ID
from server.edge.auth import REVOCATION_CHECK, Forbidden, require_account, token_of
from server.edge.bodies import read_object
from server.edge.ratelimit import RateLimited, TokenBuckets
from server.services import SERVICES

routes = web.RouteTableDef()
PROGRESS_LIMIT = web.AppKey("progress_limit", TokenBuckets)
MAX_LIBRARY_PAGE = 50


class ProgressRateLimited(Exception):
    code = "too_many_progress_reports"
    http_status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many progress reports for this viewer; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s

    def __reduce__(self):
        return type(self), (self.retry_after_s,)


def add_progress_limit(app: web.Application, settings: Settings) -> None:
    app[PROGRESS_LIMIT] = TokenBuckets("viewer", rate_per_s=settings.catalog.progress_per_s,
                                       burst=settings.catalog.progress_burst, max_tracked=100_000)


@routes.get("/v1/me/library")
async def library(request: web.Request) -> web.Response:
    """Newest purchase first; each series with the episodes the viewer may watch, in order, and their
    resume positions (`progress`, absent for an episode not started)."""
    services = request.app[SERVICES]
    viewer = require_account(request, services, VIEWER)
    page = await asyncio.to_thread(services.library.owned, viewer.subject, cursor=cursor_of(request),
                                   limit=query_int(request, "limit", 20, MAX_LIBRARY_PAGE))
    progress = await asyncio.to_thread(services.library.progress, viewer.subject,
                                       [owned.series.series_id for owned in page.items])
    items = []
    for owned in page.items:
        episodes = await asyncio.to_thread(services.catalog.list_episodes, owned.series.series_id)
        body = series_json(owned.series, episode_count=len(episodes),
                           total_duration_s=sum(e.duration_s for e in episodes),
                           public_url=services.settings.public_url)
        body.update(source=owned.source, granted_at=owned.granted_at, episodes=[
            episode_json(e, full=False, progress=progress.get((e.series_id, e.episode_id))) for e in episodes])
        items.append(body)
    return web.json_response({"series": items, "next_cursor": page.next_cursor},
                             headers={"Cache-Control": "private, no-store"})


@routes.post(EPISODE + "/progress")
@idempotent
async def report_progress(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    series_id, episode_id = request.match_info["series_id"], request.match_info["episode_id"]
    viewer_id = _reporting_viewer(request, services, series_id)
    request[VIEWER_ID] = viewer_id
    try:
        request.app[PROGRESS_LIMIT].take(viewer_id)
    except RateLimited as exc:
        raise ProgressRateLimited(exc.retry_after_s) from None
    data = await read_object(request, required={"position_s"})
    episode = await asyncio.to_thread(services.catalog.get_episode, series_id, episode_id)
    if episode.published_version is None:
        raise UnknownEpisode(series_id, episode_id)
    # who may watch what, as the key path decides it: unpublished (test viewers excepted), preview, bought
    await request.app[ACCESS].require_may_watch(viewer_id, series_id, episode_id)
    progress = await asyncio.to_thread(services.library.record_progress, viewer_id, series_id, episode_id,
                                       position_s=data["position_s"], duration_s=episode.duration_s)
    return web.json_response({"series_id": series_id, "episode_id": episode_id, **progress_json(progress)})


def _reporting_viewer(request: web.Request, services, series_id: str) -> str:
    """The viewer a report is for: by a playback token of this series (what a player holds), or by the
    viewer's account token."""
    token = token_of(request)
    if token:
        try:
            playback = services.tokens.verify(token)
        except TokenInvalid:
            playback = None         # perhaps an account token: identify() judges it below
        if playback is not None:
            if playback.series_id != series_id:
                raise WrongSeries(playback.series_id, series_id)
            # a signed-out account's playback tokens are refused here as on the key path
            request.app[REVOCATION_CHECK](playback.viewer_id, playback.issued_at, "playback token")
            return playback.viewer_id
    caller = identify(request, services)
    if caller.role == VIEWER:
        return caller.subject
    if caller.role == ANONYMOUS:
        raise TokenInvalid("send the viewer's account token or the playback token as 'Authorization: Bearer <token>'")
    raise Forbidden(f"progress is reported for a viewer; this token is for a {caller.role}")

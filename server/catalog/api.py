"""The catalog API for creators (eligibility) and viewers (what I own, playback tokens); series and
episodes are in series_api.py and episodes_api.py, a viewer's library and progress in viewer_api.py.

Every handler checks who calls (server/edge/auth.py), validates each field, and runs the blocking
drm calls off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from aiohttp import web

from drm.catalog.catalog import Series
from drm.catalog.eligibility import CreatorProfile, evaluate
from drm.errors import InvalidField, UnknownEpisode
from drm.ids import check_id
from drm.payments.purchases import how_access_ended
from server.access import ACCESS
from server.catalog.idempotency import idempotent
from server.catalog.views import episode_urls
from server.edge.auth import is_operator, require_account
from server.edge.bodies import read_object
from server.playback.playlists import master_url, with_token
from server.services import SERVICES, Services

routes = web.RouteTableDef()


def create_series(services: Services, *, creator_id: str, series_id: str, title: Any, price_cents: Any,
                  currency: Any, description: Any = "", status: Any = "published") -> Series:
    """Create a series (published, or a draft) for an eligible (or approved) creator; CreatorNotEligible
    otherwise. Shared by the HTTP API and the CLI so both enforce the eligibility rule.
    """
    services.creators.require_may_publish(creator_id)
    return services.catalog.create_series(series_id=series_id, creator_id=creator_id, title=title,
                                          price_cents=price_cents, currency=currency, description=description,
                                          status=status)


# -- creators --------------------------------------------------------------------------------------

@routes.post("/v1/creators/{creator_id}/eligibility")
@idempotent
async def check_eligibility(request: web.Request) -> web.Response:
    """Judge profile facts. From the operator (the account platform's facts) the verdict is
    recorded and decides whether the creator may publish; from the creator it is a dry run."""
    services = request.app[SERVICES]
    creator_id = check_id("creator_id", request.match_info["creator_id"])
    recorded = is_operator(request, services)
    if not recorded:
        require_account(request, services, "creator", creator_id)
    fields = CreatorProfile.__dataclass_fields__.keys() - {"creator_id"}
    data = await read_object(request, required=fields - {"premium_content_url"},
                             optional={"premium_content_url"})
    profile = CreatorProfile.from_json(creator_id, data)
    if recorded:
        verdict, status = await asyncio.to_thread(services.creators.record, profile)
        return web.json_response({**verdict.as_json(), "recorded": True, "creator": status.as_json()})
    verdict = evaluate(profile, dt.datetime.now(dt.timezone.utc).date())
    return web.json_response({**verdict.as_json(), "recorded": False})


@routes.get("/v1/creators/{creator_id}/eligibility")
async def eligibility_status(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    creator_id = check_id("creator_id", request.match_info["creator_id"])
    if not is_operator(request, services):
        require_account(request, services, "creator", creator_id)
    status = await asyncio.to_thread(services.creators.get, creator_id)
    if status is None:
        return web.json_response({"creator_id": creator_id, "status": "not_checked", "may_publish": False})
    return web.json_response(status.as_json())


@routes.post("/v1/creators/{creator_id}/application")
@idempotent
async def apply(request: web.Request) -> web.Response:
    """Below 10,000 followers with everything else met: apply with a link to premium content sold elsewhere."""
    services = request.app[SERVICES]
    creator_id = check_id("creator_id", request.match_info["creator_id"])
    require_account(request, services, "creator", creator_id)
    data = await read_object(request, required={"premium_content_url"})
    status = await asyncio.to_thread(services.creators.apply, creator_id, data["premium_content_url"])
    return web.json_response(status.as_json(), status=202)


# -- viewers ---------------------------------------------------------------------------------------

@routes.get("/v1/me/entitlements")
async def my_entitlements(request: web.Request) -> web.Response:
    """Active entitlements; with ?include=ended, ended ones too, each saying how it ended (`ended_by`:
    refunded, charged_back or revoked), so that a player refused a key can tell the viewer why."""
    services = request.app[SERVICES]
    viewer = require_account(request, services, "viewer")
    include = request.query.get("include")
    if include not in (None, "ended"):
        raise InvalidField("include", f"expected 'ended' or nothing, got {include[:20]!r}")
    owned = await asyncio.to_thread(services.entitlements.list_for_viewer, viewer.subject)
    shown = [{**dataclasses.asdict(e), "ended_by": how_access_ended(e)} for e in owned
             if e.is_active or include == "ended"]
    return web.json_response({"entitlements": shown}, headers={"Cache-Control": "private, no-store"})


@routes.post("/v1/series/{series_id}/episodes/{episode_id}/playback")
async def playback(request: web.Request) -> web.Response:
    """A playback token and master-playlist URL for an episode the viewer owns or that is a free preview."""
    services = request.app[SERVICES]
    viewer = require_account(request, services, "viewer")
    series_id, episode_id = request.match_info["series_id"], request.match_info["episode_id"]
    episode = await asyncio.to_thread(services.catalog.get_episode, series_id, episode_id)
    if not episode.is_published:
        raise UnknownEpisode(series_id, episode_id)
    # the key path's own rule and memory: unpublished (test viewers excepted), free preview, bought
    await request.app[ACCESS].require_may_watch(viewer.subject, series_id, episode_id)
    access = "free_preview" if episode.is_free_preview else "entitled"
    token = services.tokens.mint(viewer.subject, series_id)
    grant = services.tokens.verify(token)
    return web.json_response({
        "access": access, "token": token, "expires_at": grant.expires_at,
        "master_url": master_url(services.settings.public_url, series_id, episode_id, token),
        # the storyboard is gated like the keys: the player's <track> cannot send a header, so the token rides along
        "storyboard_url": with_token(episode_urls(series_id, episode_id)["storyboard_url"], token),
    }, headers={"Cache-Control": "no-store"})

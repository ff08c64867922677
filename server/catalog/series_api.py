"""Series over HTTP: list (by creator and status, by page), create, read, edit, publish, unpublish, archive,
delete; and the paywall a purchase link leads to.

    GET    /v1/series?creator_id=&status=&cursor=&limit=     anyone: published; owner/operator: any status
    POST   /v1/series                                        creator (eligible)
    GET    /v1/series/{S}                                    anyone who may see it, with its episodes
    PATCH  /v1/series/{S}                                    owner: title, description, price, cover
    POST   /v1/series/{S}/publish | unpublish | archive      owner or operator
    DELETE /v1/series/{S}                                    owner or operator; only without buyers
    GET    /v1/series/{S}/paywall                            anyone: what a buyer is offered
    GET    /v1/series/{S}/purchase-link?ref=                 owner: the deep link to the paywall
    GET    /buy/{S}?ref=                                     the deep link itself (303 to the web app's paywall page)
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from drm.catalog.catalog import ARCHIVED, PUBLISHED, SERIES_STATUSES, UNPUBLISHED, Series
from drm.catalog.cursors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from drm.errors import InvalidField
from drm.ids import check_id, field_id
from server.catalog.api import create_series
from server.catalog.callers import CREATOR, OPERATOR, VIEWER, identify, managed_series, require_creator, visible_series
from server.catalog.idempotency import idempotent
from server.catalog.views import episode_json, page_json, purchase_url, series_json, totals
from server.edge.bodies import read_object
from server.services import SERVICES, Services

routes = web.RouteTableDef()
SERIES = "/v1/series/{series_id}"
_LISTED = tuple(status for status in SERIES_STATUSES if status != "deleted")


def query_int(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise InvalidField(name, f"expected an integer from 1 to {maximum}, got {raw[:20]!r}")
    return int(raw)


def cursor_of(request: web.Request) -> str | None:
    return request.query.get("cursor") or None


async def series_answer(services: Services, series: Series, *, status: int = 200, full: bool = False,
                        with_episodes: bool = False) -> web.Response:
    episodes = await asyncio.to_thread(services.catalog.list_episodes, series.series_id, published_only=False)
    count, seconds = totals(episodes)
    body = series_json(series, episode_count=count, total_duration_s=seconds, public_url=services.settings.public_url)
    if with_episodes:
        body["episodes"] = [episode_json(e, full=full) for e in episodes if full or e.is_watchable]
    headers = {"Location": f"/v1/series/{series.series_id}"} if status == 201 else None
    return web.json_response(body, status=status, headers=headers)


@routes.get("/v1/series")
async def list_series(request: web.Request) -> web.Response:
    """Newest first. Anyone sees published series; a creator listing their own (creator_id = themselves)
    and the operator may ask for any status (default: all but deleted)."""
    services = request.app[SERVICES]
    caller = identify(request, services)
    creator_id = request.query.get("creator_id")
    if creator_id is not None:
        field_id("creator_id", creator_id)
    sees_all = caller.role == OPERATOR or (caller.role == CREATOR and creator_id == caller.subject)
    raw_status = request.query.get("status")
    statuses = tuple(raw_status.split(",")) if raw_status else (_LISTED if sees_all else (PUBLISHED,))
    for status in statuses:
        if status not in _LISTED:
            raise InvalidField("status", f"{status[:20]!r} is not one of {', '.join(_LISTED)}")
    if not sees_all and set(statuses) != {PUBLISHED}:
        raise InvalidField("status", "only the series' creator (with creator_id set to themselves) and the operator "
                           "may list series that are not published")
    page = await asyncio.to_thread(
        services.catalog.page_series, creator_id=creator_id, statuses=statuses, cursor=cursor_of(request),
        limit=query_int(request, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
    counts = await asyncio.to_thread(services.catalog.watchable_totals, [s.series_id for s in page.items])
    items = [series_json(s, episode_count=counts[s.series_id][0], total_duration_s=counts[s.series_id][1],
                         public_url=services.settings.public_url) for s in page.items]
    return web.json_response(page_json("series", page, items))


@routes.post("/v1/series")
@idempotent
async def post_series(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    creator = require_creator(request, services)
    data = await read_object(request, required={"series_id", "title", "price_cents", "currency"},
                             optional={"description", "status"})
    series = await asyncio.to_thread(create_series, services, creator_id=creator.subject, **data)
    return await series_answer(services, series, status=201, full=True, with_episodes=True)


@routes.get(SERIES)
async def get_series(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    caller, series = await visible_series(request, services, request.match_info["series_id"])
    return await series_answer(services, series, full=caller.manages(series), with_episodes=True)


@routes.patch(SERIES)
@idempotent
async def update_series(request: web.Request) -> web.Response:
    """Title, description, price (new purchases only: buyers keep what they paid for), cover episode."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    data = await read_object(request, optional={"title", "description", "price_cents", "currency",
                                                "cover_episode_id"})
    for name, value in data.items():
        if value is None:
            raise InvalidField(name, "may not be null; leave the field out to keep it")
    series = await asyncio.to_thread(services.catalog.update_series, series.series_id, **data)
    return await series_answer(services, series, full=True, with_episodes=True)


def _status_route(status: str, verb: str):
    @idempotent
    async def change(request: web.Request) -> web.Response:
        services = request.app[SERVICES]
        _, series = await managed_series(request, services, request.match_info["series_id"])
        series = await asyncio.to_thread(services.catalog.set_series_status, series.series_id, status)
        return await series_answer(services, series, full=True, with_episodes=True)

    change.__name__ = f"{verb}_series"
    change.__doc__ = f"{verb.capitalize()} the series."
    routes.post(f"{SERIES}/{verb}")(change)
    return change


publish_series = _status_route(PUBLISHED, "publish")
unpublish_series = _status_route(UNPUBLISHED, "unpublish")
archive_series = _status_route(ARCHIVED, "archive")


@routes.delete(SERIES)
@idempotent
async def delete_series(request: web.Request) -> web.Response:
    """Only a series nobody holds; one with buyers is refused (409 series_has_buyers): archive it."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    deleted = await asyncio.to_thread(services.catalog.delete_series, series.series_id)
    return web.json_response({"series_id": deleted.series_id, "status": deleted.status,
                              "deleted_at": deleted.deleted_at,
                              "removed_after": deleted.deleted_at + services.settings.gc_grace_s}, status=200)


@routes.get(SERIES + "/paywall")
async def paywall(request: web.Request) -> web.Response:
    """What the purchase link shows: the series, its price, what is free to watch, and for a signed-in
    viewer whether they hold it already. A series not for sale says why."""
    services = request.app[SERVICES]
    caller, series = await visible_series(request, services, request.match_info["series_id"])
    episodes = await asyncio.to_thread(services.catalog.list_episodes, series.series_id)
    count, seconds = totals(episodes)
    owned = None
    if caller.role == VIEWER:
        owned = await asyncio.to_thread(services.entitlements.is_entitled, caller.subject, series.series_id)
    body: dict[str, Any] = {
        "series": series_json(series, episode_count=count, total_duration_s=seconds,
                              public_url=services.settings.public_url),
        "price": {"amount_cents": series.price_cents, "currency": series.currency},
        "is_for_sale": series.is_for_sale,
        "not_for_sale_reason": None if series.is_for_sale else f"series_{series.status}",
        "free_previews": [episode_json(e, full=False) for e in episodes if e.is_free_preview],
        "is_owned": owned,
        "ref": _ref(request),
    }
    return web.json_response(body)


@routes.get(SERIES + "/purchase-link")
async def purchase_link(request: web.Request) -> web.Response:
    """The link a creator puts in a video or on a profile; `ref` (optional) says where it was posted."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    ref = _ref(request)
    return web.json_response({"series_id": series.series_id, "url": purchase_url(services.settings.public_url,
                                                                                   series.series_id, ref),
                              "paywall_url": f"{services.settings.public_url}{SERIES.format(series_id=series.series_id)}"
                                             "/paywall", "is_for_sale": series.is_for_sale})


@routes.get("/buy/{series_id}")
async def buy(request: web.Request) -> web.Response:
    """The deep link: to the web app's series page (303), which shows the paywall, keeping `ref`."""
    series_id = check_id("series_id", request.match_info["series_id"])
    ref = _ref(request)
    raise web.HTTPSeeOther(f"/series/{series_id}" + (f"?ref={ref}" if ref else ""))


def _ref(request: web.Request) -> str | None:
    ref = request.query.get("ref")
    return field_id("ref", ref) if ref else None


"""A series' sales and refunds over HTTP, for its creator (the studio) and the operator.

    GET /v1/series/{S}/sales                                  owner or operator

Read from the payment and entitlement records (drm/payments/sales.py): sales, refunds and charge-backs per currency,
the buyers holding the series now, and the latest payment events. `series sales S` is the CLI twin.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web

from drm.payments.sales import sales_report
from server.catalog.callers import managed_series
from server.catalog.series_api import SERIES
from server.services import SERVICES

routes = web.RouteTableDef()


@routes.get(SERIES + "/sales")
async def get_sales(request: web.Request) -> web.Response:
    """The series' sales report; 401/403 for anyone but its creator and the operator, 404 for no series."""
    services = request.app[SERVICES]
    _, series = await managed_series(request, services, request.match_info["series_id"])
    report = await asyncio.to_thread(sales_report, services.db, series.series_id)
    return web.json_response(report.as_json(), headers={hdrs.CACHE_CONTROL: "no-store"})

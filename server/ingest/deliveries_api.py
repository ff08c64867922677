"""Completion-webhook deliveries for the operator: every delivery with each attempt's outcome, and redelivery.

    GET  /v1/operator/webhook-deliveries?job_id=&state=&limit=      newest first, each with its attempt log
    POST /v1/operator/webhook-deliveries/{delivery_id}/redeliver    → 202: due now, its schedule started again

The deliveries themselves are server/jobs/webhooks/deliveries.py; whichever engine runs jobs makes the attempts.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.edge.auth import require_operator
from server.ingest.api import JOBS, QUEUE, query_limit
from server.jobs.jobs import JobError
from server.jobs.webhooks.deliveries import DELIVERY_STATES, DeliveryStore
from server.services import SERVICES

DELIVERIES_PATH = "/v1/operator/webhook-deliveries"
DELIVERY_PATH = DELIVERIES_PATH + r"/{delivery_id:dlv_[0-9a-f]{24}}"


class DeliveryQueryError(JobError):
    code = "invalid_query"
    http_status = 400


def add_routes(app: web.Application) -> None:
    """After server.ingest.api.add_routes (the deliveries are in its jobs database)."""
    app.router.add_get(DELIVERIES_PATH, list_deliveries)
    app.router.add_post(DELIVERY_PATH + "/redeliver", redeliver)


def _store(request: web.Request) -> DeliveryStore:
    return DeliveryStore(request.app[JOBS].db, request.app[QUEUE].settings.jobs)


async def list_deliveries(request: web.Request) -> web.Response:
    require_operator(request, request.app[SERVICES])
    state = request.query.get("state")
    if state is not None and state not in DELIVERY_STATES:
        raise DeliveryQueryError(f"state must be one of {', '.join(DELIVERY_STATES)}, not {state!r}")
    store = _store(request)

    def read() -> list[dict]:
        listed = store.list(job_id=request.query.get("job_id"), state=state, limit=query_limit(request))
        return [delivery.as_dict(store.attempts(delivery.delivery_id)) for delivery in listed]
    return web.json_response({"deliveries": await asyncio.to_thread(read)}, headers={"Cache-Control": "no-store"})


async def redeliver(request: web.Request) -> web.Response:
    require_operator(request, request.app[SERVICES])
    delivery = await asyncio.to_thread(_store(request).redeliver, request.match_info["delivery_id"])
    return web.json_response(delivery.as_dict(), status=202, headers={"Cache-Control": "no-store"})

"""The payment system's webhook: signature and replay window checked here, the event applied in drm/payments/purchases.py.

Answers 200 for an applied, duplicate or ignored event (the payment system stops retrying), 401 for
a forged, stale or unsigned request, and 4xx with a reason code for a body that cannot be applied.
A genuine purchase that does not cover the series' price (or is in another currency) is recorded and
answered 200 {"result": "refused", "code": "payment_below_price" | "payment_currency_mismatch"}:
not a 4xx, because the provider would retry it for days and every retry must get the same answer;
the refusal is logged as a warning for support to settle (refund or top-up) with the buyer.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from drm.payments.purchases import SIGNATURE_HEADER, PaymentEvent, verify_signature
from server.edge.auth import NotConfigured
from server.edge.bodies import parse_json, read_bytes
from server.services import SERVICES

WEBHOOK_PATH = "/v1/webhooks/payments"
MAX_WEBHOOK_BYTES = 64 * 1024


routes = web.RouteTableDef()


@routes.post(WEBHOOK_PATH)
async def payment_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    secret = services.settings.webhook_secret
    if secret is None:
        raise NotConfigured("payment webhooks are off: SERIES_WEBHOOK_SECRET is not set")
    body = await read_bytes(request, MAX_WEBHOOK_BYTES)
    # the signature covers the raw bytes: verify before parsing anything
    verify_signature(secret.reveal().encode(), request.headers.get(SIGNATURE_HEADER), body,
                     now=time.time(), tolerance_s=services.settings.webhook_tolerance_s)
    # parsed here, bounded in depth, so drm gets a parsed object: a genuine payment system never sends
    # a 3000-deep array, but a leaked secret must not turn into a 500 either
    event = PaymentEvent.from_json(parse_json(body))
    outcome = await asyncio.to_thread(services.payments.handle, event)
    return web.json_response(outcome.as_json())

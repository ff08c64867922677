"""Test-mode payments: a "test purchase" that goes the way a real one does, and its refund.

POST /v1/test-payments {"series_id"} (a viewer's account token): makes up a payment of the series' price
in its currency, signs it with the payment webhook's secret exactly as the payment system does, and sends
it over HTTP to this very server's /v1/webhooks/payments (the address the request arrived on), so the
purchase is verified, recorded and granted by the same code as a real one. Off unless SERIES_TEST_PAYMENTS
(`series demo` turns it on); off, 404 test_payments_off. Test payment ids start with `testpay_`.

refund_test_purchase() is `series refund`: the payment system's refund of a test purchase, applied by the
same PaymentProcessor a refund webhook reaches. A real payment is refunded in the payment system, whose
webhook revokes access; `series revoke` takes access away without a refund.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time

import aiohttp
from aiohttp import hdrs, web

from drm.errors import NotEntitled
from drm.ids import field_id
from drm.payments.purchases import PURCHASE, REFUND, SIGNATURE_HEADER, Outcome, PaymentEvent, sign
from server.edge.auth import require_account
from server.edge.bodies import read_object
from server.services import SERVICES, Services

log = logging.getLogger(__name__)
TEST_PAYMENTS_PATH = "/v1/test-payments"
WEBHOOK_PATH = "/v1/webhooks/payments"      # the payment system's way in (server/catalog/payments/webhook.py)
TEST_PAYMENT_PREFIX = "testpay_"
WEBHOOK_TIMEOUT_S = 10.0


class PaymentSimulatorOff(Exception):
    code = "test_payments_off"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("test payments are off here: purchases come from the payment system; "
                         "for a local or test set-up, set SERIES_TEST_PAYMENTS=true")


class SimulatedPaymentFailed(Exception):
    """Our own webhook refused the simulated payment (a misconfiguration: the secret, the clock)."""

    code = "test_payment_failed"
    http_status = 502


class NotATestPurchase(Exception):
    code = "not_a_test_purchase"

    def __init__(self, viewer_id: str, series_id: str, how: str) -> None:
        super().__init__(f"viewer {viewer_id} holds series {series_id} {how}, not through a test purchase: refund a "
                         "real payment in the payment system (its webhook revokes access), or take access away "
                         "without a refund with `series revoke`")


def payment_body(event_type: str, payment_id: str, viewer_id: str, series_id: str, amount_cents: int,
                 currency: str) -> bytes:
    """A webhook body as the payment system sends it (README: Catalog, purchases and the API)."""
    return json.dumps({"id": f"evt_{secrets.token_hex(8)}", "type": event_type,
                       "data": {"payment_id": payment_id, "viewer_id": viewer_id, "series_id": series_id,
                                "amount_cents": amount_cents, "currency": currency}}).encode()


async def simulate_purchase(request: web.Request) -> web.Response:
    """Buy the series for the signed-in viewer through our own payment webhook; answers the webhook's outcome
    ({"result": "granted" | "refused" | ..., "detail", "code"?}) with the payment id."""
    services = request.app[SERVICES]
    if not services.settings.web.test_payments:
        raise PaymentSimulatorOff()
    viewer = require_account(request, services, "viewer")
    data = await read_object(request, required={"series_id"})
    series_id = field_id("series_id", data["series_id"])
    series = await asyncio.to_thread(services.catalog.get_series, series_id)      # UnknownSeries: 404
    payment_id = TEST_PAYMENT_PREFIX + secrets.token_hex(10)
    body = payment_body(PURCHASE, payment_id, viewer.subject, series_id, series.price_cents, series.currency)
    status, answer = await _send_webhook(request, services, body)
    if status != 200:
        raise SimulatedPaymentFailed(f"our payment webhook answered {status} {answer.get('code', '')}: "
                                f"{answer.get('detail', '')}".strip())
    log.info("test purchase %s of series %s by viewer %s: %s", payment_id, series_id, viewer.subject,
             answer.get("result"))
    return web.json_response({"payment_id": payment_id, "is_test": True, **answer},
                             headers={hdrs.CACHE_CONTROL: "no-store"})


async def _send_webhook(request: web.Request, services: Services, body: bytes) -> tuple[int, dict]:
    """POST `body`, signed, to /v1/webhooks/payments on the address and port this request arrived on."""
    transport = request.transport
    if transport is None:               # the viewer left: nobody to buy for
        raise ConnectionResetError("the client closed the connection before the test purchase was sent")
    host, port = transport.get_extra_info("sockname")[:2]
    address = f"[{host}]" if ":" in host else host
    stamp = int(time.time())
    headers = {SIGNATURE_HEADER: sign(services.settings.webhook_secret.reveal().encode(), stamp, body),
               hdrs.CONTENT_TYPE: "application/json"}
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(f"http://{address}:{port}{WEBHOOK_PATH}", data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)


def refund_test_purchase(services: Services, viewer_id: str, series_id: str) -> Outcome:
    """Refund the test purchase through which the viewer holds the series, as a refund webhook would.

    Raises NotATestPurchase when the viewer holds it otherwise (a real payment, a comp), UnknownSeries or
    NotEntitled (drm) when there is nothing to refund."""
    held = [e for e in services.entitlements.list_for_viewer(viewer_id) if e.series_id == series_id and e.is_active]
    if not held:
        raise NotEntitled(viewer_id, series_id)
    entitlement = held[0]
    if entitlement.source != "purchase" or not entitlement.reference.startswith(TEST_PAYMENT_PREFIX):
        how = f"as a {entitlement.source}" if entitlement.source != "purchase" else f"by payment {entitlement.reference}"
        raise NotATestPurchase(viewer_id, series_id, how)
    series = services.catalog.get_series(series_id)
    event = PaymentEvent.from_json(json.loads(payment_body(REFUND, entitlement.reference, viewer_id, series_id,
                                                           series.price_cents, series.currency)))
    return services.payments.handle(event)


def add_routes(app: web.Application) -> None:
    app.router.add_post(TEST_PAYMENTS_PATH, simulate_purchase)

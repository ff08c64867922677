"""Purchases from the payment system: signed webhooks in, entitlements granted or revoked.

The payment system signs ``timestamp + "." + body`` with HMAC-SHA256 under a shared secret and sends
``Series-Signature: t=<unix seconds>,v1=<hex>`` (the Stripe scheme; several v1 values are accepted
so the secret can rotate). A signature older or newer than the tolerance is refused, so a captured
request cannot be replayed later; within the window, a replay is harmless because every event is
idempotent on (payment id, event type). A refunded or charged-back payment never grants again.
A payment for less than the series' price, or in another currency, or for a series that is not for sale
(a draft, unpublished, archived or deleted), is recorded but grants nothing; buyers of a series keep it
whatever happens to it later, and a new price applies to purchases made after the change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drm.access.entitlements import Entitlement, EntitlementStore, pair_lock
from drm.catalog.catalog import Catalog, Series, check_currency, series_lock
from drm.errors import InvalidField, UnknownSeries, WebhookRejected
from drm.ids import field_id
from drm.storage.database import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Series-Signature"
DEFAULT_TOLERANCE_S = 300
MAX_SIGNATURE_HEADER_CHARS = 1024

PURCHASE = "payment.succeeded"
REFUND = "payment.refunded"
CHARGEBACK = "payment.charged_back"
EVENT_TYPES = (PURCHASE, REFUND, CHARGEBACK)
_REVOKED_STATUS = {REFUND: "refunded", CHARGEBACK: "charged_back"}
# why a genuine purchase grants nothing: code -> the payment's recorded status
BELOW_PRICE, WRONG_CURRENCY = "payment_below_price", "payment_currency_mismatch"
NOT_FOR_SALE = "series_not_for_sale"
_REFUSED_STATUS = {BELOW_PRICE: "underpaid", WRONG_CURRENCY: "wrong_currency", NOT_FOR_SALE: "not_for_sale"}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The Series-Signature header value the payment system sends for ``body`` at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: bytes, header: str | None, body: bytes, *, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> int:
    """Check a Series-Signature header against ``body``; return its timestamp (unix seconds).

    Raises WebhookRejected with code webhook_signature_missing / _malformed / _invalid, or
    webhook_timestamp_outside_window when the timestamp is more than ``tolerance_s`` from ``now``.
    """
    if not header:
        raise WebhookRejected("webhook_signature_missing", f"the {SIGNATURE_HEADER} header is missing")
    if len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise WebhookRejected("webhook_signature_malformed", f"the {SIGNATURE_HEADER} header is too long")
    timestamp, signatures = None, []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected(
            "webhook_signature_malformed", f"the {SIGNATURE_HEADER} header must be 't=<unix seconds>,v1=<hex>'")
    if abs(now - timestamp) > tolerance_s:
        raise WebhookRejected(
            "webhook_timestamp_outside_window",
            f"the webhook was signed at {timestamp}, more than {tolerance_s} s from now; it may be a replay")
    expected = _mac(secret, timestamp, body)
    # compare_digest on every candidate, no early exit: timing reveals nothing about the expected value
    matches = [hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace")) for candidate in signatures]
    if not any(matches):
        raise WebhookRejected("webhook_signature_invalid", "the webhook signature does not match its body")
    return timestamp


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentEvent:
    event_id: str
    event_type: str  # payment.succeeded | payment.refunded | payment.charged_back
    payment_id: str
    viewer_id: str
    series_id: str
    amount_cents: int
    currency: str

    @classmethod
    def from_json(cls, data: object) -> PaymentEvent:
        """Build from the webhook's JSON body, checking every field; raises InvalidField naming it."""
        if not isinstance(data, dict):
            raise InvalidField("body", "expected a JSON object")
        event_type = data.get("type")
        if event_type not in EVENT_TYPES:
            raise InvalidField("type", f"{event_type!r} is not one of {', '.join(EVENT_TYPES)}")
        payment = data.get("data")
        if not isinstance(payment, dict):
            raise InvalidField("data", "expected a JSON object describing the payment")
        amount = payment.get("amount_cents")
        if type(amount) is not int or not 0 <= amount <= 10**9:
            raise InvalidField("data.amount_cents", f"expected a non-negative integer, got {amount!r}")
        return cls(
            event_id=field_id("id", data.get("id")),
            event_type=event_type,
            payment_id=field_id("data.payment_id", payment.get("payment_id")),
            viewer_id=field_id("data.viewer_id", payment.get("viewer_id")),
            series_id=field_id("data.series_id", payment.get("series_id")),
            amount_cents=amount,
            currency=check_currency(payment.get("currency")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    result: str  # granted | revoked | duplicate | ignored | refused
    detail: str
    entitlement: Entitlement | None
    code: str | None = None  # why a purchase was refused: payment_below_price | payment_currency_mismatch

    def as_json(self) -> dict[str, Any]:
        shown = {"result": self.result, "detail": self.detail}
        return {**shown, "code": self.code} if self.code else shown


class PaymentProcessor:
    """Applies payment events to entitlements, exactly once per (payment id, event type)."""

    def __init__(
        self, db: Database, entitlements: EntitlementStore, catalog: Catalog, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._entitlements = entitlements
        self._catalog = catalog
        self._clock = clock

    def handle_body(self, body: bytes) -> Outcome:
        """Parse a verified webhook body and apply it (see handle)."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidField("body", "is not valid JSON") from exc
        return self.handle(PaymentEvent.from_json(data))

    def handle(self, event: PaymentEvent) -> Outcome:
        """Grant on a purchase, revoke on a refund or chargeback; a repeated event changes nothing.

        The event record, payment state, entitlement and audit line are written in one transaction,
        so a crash leaves either all or none, and a retried delivery is applied at most once. Events
        of one payment, and of one (viewer, series), are applied one at a time even when they arrive
        at several instances at once, so the outcome is that of some order of delivery.
        A purchase that does not pay the series' current price in its currency is recorded (status
        underpaid / wrong_currency) and refused: result "refused" with a code, no entitlement.
        So is a purchase of a series that is not for sale (code series_not_for_sale: a draft, unpublished,
        archived or deleted series); its buyers keep it.
        Raises UnknownSeries for a purchase of a series the catalog does not have.
        """
        refusal = None
        now = self._clock()
        changed_entitlement = False
        with self._db.transaction() as tx:
            # Always the payment first, then the pair (as grant and revoke take it): no lock cycles.
            tx.lock(f"payment:{event.payment_id}")
            tx.lock(pair_lock(event.viewer_id, event.series_id))
            is_new = tx.execute(
                "INSERT INTO payment_events (payment_id, event_type, event_id, received_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (payment_id, event_type) DO NOTHING",
                (event.payment_id, event.event_type, event.event_id, now),
            ).rowcount
            if not is_new:
                return Outcome(result="duplicate", entitlement=None,
                               detail=f"{event.event_type} for payment {event.payment_id} was already applied")
            payment = tx.fetch_one(
                "SELECT viewer_id, series_id, status FROM payments WHERE payment_id = ?", (event.payment_id,)
            )
            if payment is not None and (payment["viewer_id"], payment["series_id"]) != (event.viewer_id, event.series_id):
                raise InvalidField("data.payment_id", f"payment {event.payment_id} belongs to another viewer or series")
            if event.event_type == PURCHASE:
                # under the series' lock, which deleting a series takes too: no purchase lands on a series
                # deleted meanwhile, and the price and status judged are the ones committed now
                tx.lock(series_lock(event.series_id))
                series = self._catalog.series_within(tx, event.series_id)
                if series is None:
                    raise UnknownSeries(event.series_id)
                refusal = _sale_refusal(event, series)
                status = payment["status"] if payment is not None else "paid"
                if payment is not None and payment["status"] != "paid":
                    outcome = Outcome(result="ignored", entitlement=None,
                                      detail=f"payment {event.payment_id} was already {payment['status']}")
                elif refusal is not None:
                    code, detail = refusal
                    outcome = Outcome(result="refused", entitlement=None, code=code, detail=detail)
                    status = _REFUSED_STATUS[code]
                else:
                    entitlement, changed_entitlement = self._entitlements.grant_within(
                        tx, event.viewer_id, event.series_id, source="purchase", actor="payments",
                        reason=f"payment {event.payment_id}", reference=event.payment_id)
                    outcome = Outcome(result="granted", entitlement=entitlement,
                                      detail=f"viewer {event.viewer_id} owns series {event.series_id}")
            else:
                status = _REVOKED_STATUS[event.event_type]
                # a viewer who paid twice for one series keeps it while one payment still stands
                other = tx.fetch_one(
                    "SELECT payment_id FROM payments WHERE viewer_id = ? AND series_id = ? AND status = 'paid'"
                    " AND payment_id != ? ORDER BY updated_at DESC, payment_id DESC LIMIT 1",
                    (event.viewer_id, event.series_id, event.payment_id),
                )
                if other is not None and self._entitlements.transfer_within(
                        tx, event.viewer_id, event.series_id,
                        from_reference=event.payment_id, to_reference=other["payment_id"]):
                    outcome = Outcome(result="ignored", entitlement=None,
                                      detail=f"payment {event.payment_id} {status.replace('_', ' ')}; viewer "
                                             f"{event.viewer_id} keeps series {event.series_id} through payment "
                                             f"{other['payment_id']}")
                else:
                    changed_entitlement = self._entitlements.revoke_within(
                        tx, event.viewer_id, event.series_id, actor="payments",
                        reason=f"{status.replace('_', ' ')}: payment {event.payment_id}",
                        only_reference=event.payment_id)
                    outcome = Outcome(result="revoked", entitlement=None,
                                      detail=f"payment {event.payment_id} {status.replace('_', ' ')}")
            tx.execute(
                "INSERT INTO payments (payment_id, viewer_id, series_id, status, amount_cents, currency, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO UPDATE SET"
                " status = excluded.status, updated_at = excluded.updated_at",
                (event.payment_id, event.viewer_id, event.series_id, status, event.amount_cents, event.currency, now),
            )
        if changed_entitlement:
            self._entitlements.notify_changed(event.viewer_id, event.series_id)
        if outcome.code:
            log.warning("payment %s %s refused: %s", event.payment_id, event.event_type, outcome.detail)
        else:
            log.info("payment %s %s: %s", event.payment_id, event.event_type, outcome.result)
        return outcome


def how_access_ended(entitlement: Entitlement) -> str | None:
    """Why an entitlement stopped: "refunded", "charged_back" (the payment system said so) or "revoked"
    (an operator took it away); None while it is active. Read from the reason handle() writes on revoking."""
    if entitlement.is_active:
        return None
    for event_type, status in _REVOKED_STATUS.items():
        if entitlement.reason.startswith(f"{status.replace('_', ' ')}: payment "):
            return status
    return "revoked"


def _sale_refusal(event: PaymentEvent, series: Series) -> tuple[str, str] | None:
    """(code, detail) when `event` does not buy `series`: not for sale, or not at its current price; else None."""
    if not series.is_for_sale:
        return NOT_FOR_SALE, (f"series {series.series_id} is not for sale (it is {series.status}); payment "
                              f"{event.payment_id} grants nothing and should be refunded")
    if event.currency != series.currency:
        return WRONG_CURRENCY, (f"payment {event.payment_id} is in {event.currency}; series {series.series_id} "
                                f"is sold in {series.currency}")
    if event.amount_cents < series.price_cents:
        return BELOW_PRICE, (f"payment {event.payment_id} of {event.amount_cents} cents is below the price of "
                             f"series {series.series_id}, {series.price_cents} cents {series.currency}")
    return None

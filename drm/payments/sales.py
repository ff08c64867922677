"""A series' sales and refunds, for its creator: read from the payment and entitlement records.

Every payment the payment system reported is a row of `payments` (its latest status: paid, refunded,
charged_back, or refused as underpaid / wrong_currency / not_for_sale) and each event it sent a row of
`payment_events` (when it arrived); `entitlements` says who holds the series now and how (a purchase, or
an operator's comp or gift). Nothing here writes; amounts are integer cents per ISO 4217 currency (a
price change or a second currency keeps them apart rather than adding unlike money).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drm.ids import check_id
from drm.payments.purchases import CHARGEBACK, PURCHASE, REFUND
from drm.storage.database import Database

SOLD_STATUSES = ("paid", "refunded", "charged_back")      # a genuine sale, whatever happened to it since
RECENT_EVENTS = 20
_EVENT_KINDS = {PURCHASE: "sale", REFUND: "refund", CHARGEBACK: "charge_back"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrencyTotals:
    """Money of one currency, in integer cents."""

    currency: str
    sales: int                  # payments that went through (refunded ones included)
    gross_cents: int
    refunds: int
    refunded_cents: int
    charge_backs: int
    charged_back_cents: int

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents - self.charged_back_cents


@dataclass(frozen=True, slots=True, kw_only=True)
class SaleEvent:
    kind: str                   # sale | refund | charge_back | refused
    payment_id: str
    amount_cents: int
    currency: str
    at: float                   # unix seconds the payment system's event arrived


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesReport:
    series_id: str
    buyers: int                 # viewers holding the series through a purchase now
    comps: int                  # viewers holding it through an operator's comp or gift
    refused_payments: int       # genuine payments that granted nothing (below the price, another currency, not for sale)
    totals: tuple[CurrencyTotals, ...]
    recent: tuple[SaleEvent, ...]      # newest first, at most RECENT_EVENTS

    def as_json(self) -> dict[str, Any]:
        return {
            "series_id": self.series_id,
            "buyers": self.buyers,
            "comps": self.comps,
            "refused_payments": self.refused_payments,
            "totals": [{"currency": t.currency, "sales": t.sales, "gross_cents": t.gross_cents, "refunds": t.refunds,
                        "refunded_cents": t.refunded_cents, "charge_backs": t.charge_backs,
                        "charged_back_cents": t.charged_back_cents, "net_cents": t.net_cents} for t in self.totals],
            "recent": [{"kind": e.kind, "payment_id": e.payment_id, "amount_cents": e.amount_cents,
                        "currency": e.currency, "at": e.at} for e in self.recent],
        }


def sales_report(db: Database, series_id: str) -> SalesReport:
    """The series' sales, refunds and charge-backs per currency, its buyers now, and its latest payment
    events. Raises InvalidId for a malformed id; an unknown series simply has no sales (the caller checks
    that the series exists and is the caller's)."""
    check_id("series_id", series_id)
    sold = ", ".join(f"'{status}'" for status in SOLD_STATUSES)
    rows = db.query(
        "SELECT currency,"
        f" SUM(CASE WHEN status IN ({sold}) THEN 1 ELSE 0 END) AS sales,"
        f" SUM(CASE WHEN status IN ({sold}) THEN amount_cents ELSE 0 END) AS gross_cents,"
        " SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END) AS refunds,"
        " SUM(CASE WHEN status = 'refunded' THEN amount_cents ELSE 0 END) AS refunded_cents,"
        " SUM(CASE WHEN status = 'charged_back' THEN 1 ELSE 0 END) AS charge_backs,"
        " SUM(CASE WHEN status = 'charged_back' THEN amount_cents ELSE 0 END) AS charged_back_cents,"
        f" SUM(CASE WHEN status IN ({sold}) THEN 0 ELSE 1 END) AS refused"
        " FROM payments WHERE series_id = ? GROUP BY currency ORDER BY currency", (series_id,))
    totals = tuple(CurrencyTotals(currency=row["currency"], sales=int(row["sales"]), gross_cents=int(row["gross_cents"]),
                                  refunds=int(row["refunds"]), refunded_cents=int(row["refunded_cents"]),
                                  charge_backs=int(row["charge_backs"]),
                                  charged_back_cents=int(row["charged_back_cents"]))
                   for row in rows if int(row["sales"]))
    holders = db.query(
        "SELECT source, COUNT(*) AS holders FROM entitlements WHERE series_id = ? AND revoked_at IS NULL"
        " GROUP BY source", (series_id,))
    by_source = {row["source"]: int(row["holders"]) for row in holders}
    events = db.query(
        "SELECT e.event_type, e.payment_id, e.received_at, p.amount_cents, p.currency, p.status"
        " FROM payment_events e JOIN payments p ON p.payment_id = e.payment_id"
        " WHERE p.series_id = ? ORDER BY e.received_at DESC, e.payment_id LIMIT ?", (series_id, RECENT_EVENTS))
    recent = tuple(SaleEvent(kind=_kind(row["event_type"], row["status"]), payment_id=row["payment_id"],
                             amount_cents=int(row["amount_cents"]), currency=row["currency"],
                             at=float(row["received_at"])) for row in events)
    return SalesReport(series_id=series_id, buyers=by_source.get("purchase", 0),
                       comps=sum(n for source, n in by_source.items() if source != "purchase"),
                       refused_payments=sum(int(row["refused"]) for row in rows), totals=totals, recent=recent)


def _kind(event_type: str, status: str) -> str:
    if event_type == PURCHASE and status not in SOLD_STATUSES:
        return "refused"
    return _EVENT_KINDS.get(event_type, event_type)

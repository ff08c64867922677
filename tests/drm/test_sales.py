"""A series' sales report on both engines: payments that sold (refunded and charged back ones included),
refused ones apart, money kept per currency, buyers and comps from the entitlements, events newest first."""

from __future__ import annotations

from drm.access.entitlements import EntitlementStore
from drm.catalog.catalog import SqlCatalog
from drm.payments.purchases import CHARGEBACK, PURCHASE, REFUND, PaymentEvent, PaymentProcessor
from drm.payments.sales import RECENT_EVENTS, CurrencyTotals, sales_report


def event(event_type: str, payment_id: str, viewer_id: str, *, series_id: str = "s1", amount_cents: int = 499,
          currency: str = "USD") -> PaymentEvent:
    return PaymentEvent(event_id=f"e-{payment_id}-{event_type}", event_type=event_type, payment_id=payment_id,
                        viewer_id=viewer_id, series_id=series_id, amount_cents=amount_cents, currency=currency)


def test_sales_refunds_and_buyers_per_currency(db):
    catalog, entitlements = SqlCatalog(db), EntitlementStore(db)
    payments = PaymentProcessor(db, entitlements, catalog)
    for series_id in ("s1", "other"):
        catalog.create_series(series_id=series_id, creator_id="c1", title="T", price_cents=499, currency="USD")
    for payment_id, viewer in (("p1", "ann"), ("p2", "bo"), ("p3", "cy")):
        assert payments.handle(event(PURCHASE, payment_id, viewer)).result == "granted"
    payments.handle(event(REFUND, "p2", "bo"))
    payments.handle(event(CHARGEBACK, "p3", "cy"))
    assert payments.handle(event(PURCHASE, "p4", "di", amount_cents=100)).result == "refused"     # below the price
    payments.handle(event(PURCHASE, "p5", "ed", series_id="other"))                                # another series
    # the price changes to euros: money stays apart per currency
    catalog.update_series("s1", price_cents=600, currency="EUR")
    assert payments.handle(event(PURCHASE, "p6", "fay", amount_cents=600, currency="EUR")).result == "granted"
    entitlements.grant("gus", "s1", source="comp", reason="press")

    report = sales_report(db, "s1")
    assert report.totals == (
        CurrencyTotals(currency="EUR", sales=1, gross_cents=600, refunds=0, refunded_cents=0, charge_backs=0,
                       charged_back_cents=0),
        CurrencyTotals(currency="USD", sales=3, gross_cents=1497, refunds=1, refunded_cents=499, charge_backs=1,
                       charged_back_cents=499))
    assert [t.net_cents for t in report.totals] == [600, 499]
    assert (report.buyers, report.comps, report.refused_payments) == (2, 1, 1)
    assert sorted((e.payment_id, e.kind) for e in report.recent) == [
        ("p1", "sale"), ("p2", "refund"), ("p2", "sale"), ("p3", "charge_back"), ("p3", "sale"), ("p4", "refused"),
        ("p6", "sale")]
    assert [e.at for e in report.recent] == sorted((e.at for e in report.recent), reverse=True)
    assert sales_report(db, "never-sold").totals == ()


def test_the_latest_events_are_bounded(db):
    catalog = SqlCatalog(db)
    payments = PaymentProcessor(db, EntitlementStore(db), catalog)
    catalog.create_series(series_id="s1", creator_id="c1", title="T", price_cents=499, currency="USD")
    for n in range(RECENT_EVENTS + 5):
        payments.handle(event(PURCHASE, f"p{n}", f"v{n}"))
    report = sales_report(db, "s1")
    assert len(report.recent) == RECENT_EVENTS and report.totals[0].sales == RECENT_EVENTS + 5

"""Series on both engines: drafts, publishing, archiving, deleting, pages of series, and purchases of a
series that is not for sale (refused with a reason; buyers keep what they bought)."""

from __future__ import annotations

import pytest

from drm.access.entitlements import EntitlementStore
from drm.catalog.catalog import SqlCatalog
from drm.errors import InvalidCursor, InvalidField, SeriesStateConflict, UnknownSeries
from drm.payments.purchases import PURCHASE, PaymentEvent, PaymentProcessor
from tests.drm.fixtures import FakeClock
from tests.drm.test_concurrency import race


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def catalog(db, clock):
    return SqlCatalog(db, clock=clock)


@pytest.fixture
def payments(db, catalog):
    return PaymentProcessor(db, EntitlementStore(db), catalog)


def new_series(catalog, series_id="s1", **overrides):
    values = {"series_id": series_id, "creator_id": "c1", "title": "Knots", "price_cents": 499, "currency": "USD"}
    return catalog.create_series(**{**values, **overrides})


def purchase(payment_id: str, viewer_id: str = "v1", series_id: str = "s1", amount_cents: int = 499) -> PaymentEvent:
    return PaymentEvent(event_id=f"evt-{payment_id}", event_type=PURCHASE, payment_id=payment_id, viewer_id=viewer_id,
                        series_id=series_id, amount_cents=amount_cents, currency="USD")


def test_a_draft_is_not_sold_until_published(catalog, payments):
    series = new_series(catalog, status="draft", description="Ten ways to tie a knot")
    assert (series.status, series.published_at, series.description) == ("draft", None, "Ten ways to tie a knot")
    outcome = payments.handle(purchase("p1"))
    assert (outcome.result, outcome.code) == ("refused", "series_not_for_sale") and "draft" in outcome.detail
    published = catalog.set_series_status("s1", "published")
    assert published.status == "published" and published.published_at == 1000.0
    assert payments.handle(purchase("p2")).result == "granted"
    with pytest.raises(InvalidField):
        new_series(catalog, "s2", status="archived")


def test_unpublished_and_archived_series_keep_their_buyers_and_sell_nothing(catalog, payments):
    new_series(catalog)
    assert payments.handle(purchase("p1", "buyer")).result == "granted"
    for status in ("unpublished", "archived"):
        catalog.set_series_status("s1", status)
        outcome = payments.handle(purchase(f"p-{status}", "late"))
        assert outcome.code == "series_not_for_sale" and status in outcome.detail
        assert payments._entitlements.is_entitled("buyer", "s1")
    with pytest.raises(SeriesStateConflict) as caught:
        catalog.set_series_status("s1", "published")
    assert caught.value.code == "series_archived"


def test_a_new_price_applies_to_new_purchases_only(catalog, payments):
    new_series(catalog)
    assert payments.handle(purchase("p1", "early")).result == "granted"
    catalog.update_series("s1", price_cents=999)
    assert payments._entitlements.is_entitled("early", "s1")
    assert payments.handle(purchase("p2", "late", amount_cents=499)).code == "payment_below_price"
    assert payments.handle(purchase("p3", "late", amount_cents=999)).result == "granted"


def test_delete_only_without_buyers(catalog, payments, clock):
    new_series(catalog)
    catalog.create_episode("s1", "1")
    payments.handle(purchase("p1"))
    with pytest.raises(SeriesStateConflict) as caught:
        catalog.delete_series("s1")
    assert caught.value.code == "series_has_buyers" and "archive" in str(caught.value)
    new_series(catalog, "s2")
    catalog.create_episode("s2", "1")
    assert catalog.delete_series("s2").status == "deleted"
    with pytest.raises(UnknownSeries):
        catalog.get_series("s2")
    assert catalog.deleted_episodes(before=1001.0) == [("s2", "1")]
    assert payments.handle(purchase("p2", series_id="s2")).code == "series_not_for_sale"
    assert catalog.purge_deleted_series(before=1001.0) == []        # its episode is still there
    catalog.purge_episode("s2", "1")
    assert catalog.purge_deleted_series(before=1001.0) == ["s2"]


def test_series_pages_are_newest_first_and_stable_under_inserts(catalog, clock):
    for number in range(5):
        clock.now = 1000.0 + number
        new_series(catalog, f"s{number}", status="draft" if number == 2 else "published")
    first = catalog.page_series(creator_id="c1", statuses=("published", "draft"), limit=2)
    assert [s.series_id for s in first.items] == ["s4", "s3"]
    clock.now = 2000.0
    new_series(catalog, "newer")                  # lands before the cursor: the next pages do not shift
    rest = catalog.page_series(creator_id="c1", statuses=("published", "draft"), cursor=first.next_cursor, limit=10)
    assert [s.series_id for s in rest.items] == ["s2", "s1", "s0"] and rest.next_cursor is None
    assert [s.series_id for s in catalog.page_series(statuses=("draft",)).items] == ["s2"]
    with pytest.raises(InvalidCursor, match="other filters"):
        catalog.page_series(creator_id="c1", statuses=("published",), cursor=first.next_cursor)
    with pytest.raises(InvalidField):
        catalog.page_series(statuses=("deleted",))


def test_a_purchase_racing_a_delete_never_lands_on_a_deleted_series(open_db):
    for trial in range(6):
        dbs = [open_db(), open_db()]
        catalog = SqlCatalog(dbs[0])
        series_id = f"race{trial}"
        catalog.create_series(series_id=series_id, creator_id="c1", title="T", price_cents=499, currency="USD")
        payments = PaymentProcessor(dbs[1], EntitlementStore(dbs[1]), SqlCatalog(dbs[1]))
        results = race(lambda: catalog.delete_series(series_id),
                       lambda: payments.handle(purchase(f"p{trial}", series_id=series_id)))
        deleted = not isinstance(results[0], Exception)
        granted = getattr(results[1], "result", None) == "granted"
        assert deleted != granted, results          # one or the other, never both
        if deleted:
            assert results[1].code == "series_not_for_sale"

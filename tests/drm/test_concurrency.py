"""Racing writers, each on its own connection (as separate instances would be): the outcome is always
that of some serial order, on PostgreSQL (READ COMMITTED plus locks) as on SQLite (one writer at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from drm.access.entitlements import EntitlementStore
from drm.catalog.catalog import MAX_EPISODES, SqlCatalog
from drm.errors import EpisodeLimitReached, SeriesExists
from drm.payments.purchases import PURCHASE, REFUND, PaymentEvent, PaymentProcessor

TRIALS = 8


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at once, one thread each; their results (or the exception each raised), in order."""
    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - returned for the test to judge
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def instances(open_db):
    """Four (processor, entitlements, catalog) triples, each on its own connection to one database."""
    made = []
    for _ in range(4):
        db = open_db()
        store, catalog = EntitlementStore(db), SqlCatalog(db)
        made.append((PaymentProcessor(db, store, catalog), store, catalog, db))
    made[0][2].create_series(series_id="s1", creator_id="c1", title="T", price_cents=499, currency="USD")
    return made


def event(event_type: str, payment_id: str, viewer_id: str) -> PaymentEvent:
    return PaymentEvent(event_id=f"e-{payment_id}-{event_type}", event_type=event_type, payment_id=payment_id,
                        viewer_id=viewer_id, series_id="s1", amount_cents=499, currency="USD")


def test_one_event_delivered_to_several_instances_at_once_applies_once(instances):
    for trial in range(TRIALS):
        purchase = event(PURCHASE, f"p{trial}", f"v{trial}")
        outcomes = race(*(lambda processor=processor: processor.handle(purchase) for processor, *_ in instances))
        assert sorted(outcome.result for outcome in outcomes) == ["duplicate", "duplicate", "duplicate", "granted"]
    store, db = instances[0][1], instances[0][3]
    assert len(store.audit_trail(limit=1000)) == TRIALS
    assert db.query_one("SELECT COUNT(*) FROM entitlement_changes")[0] == TRIALS


def test_a_refund_racing_its_purchase_never_leaves_access(instances):
    (buyer, store, _, db), (refunder, *_) = instances[0], instances[1]
    for trial in range(TRIALS):
        viewer, payment = f"v{trial}", f"p{trial}"
        race(lambda: buyer.handle(event(PURCHASE, payment, viewer)),
             lambda: refunder.handle(event(REFUND, payment, viewer)))
        assert not store.is_entitled(viewer, "s1"), f"trial {trial}: refunded, yet entitled"
        assert db.query_one("SELECT status FROM payments WHERE payment_id = ?", (payment,))[0] == "refunded"


def test_buying_again_while_the_first_payment_is_refunded_keeps_access(instances):
    (buyer, store, _, _), (refunder, *_) = instances[0], instances[1]
    for trial in range(TRIALS):
        viewer = f"v{trial}"
        assert buyer.handle(event(PURCHASE, f"a{trial}", viewer)).result == "granted"
        race(lambda: buyer.handle(event(PURCHASE, f"b{trial}", viewer)),
             lambda: refunder.handle(event(REFUND, f"a{trial}", viewer)))
        found = store.get(viewer, "s1")
        assert found.is_active and found.reference == f"b{trial}", f"trial {trial}: {found}"


def test_racing_grants_and_revokes_leave_a_state_the_audit_trail_explains(instances):
    stores = [store for _, store, _, _ in instances]
    for trial in range(TRIALS):
        viewer = f"v{trial}"
        results = race(*(lambda store=store: store.grant(viewer, "s1") for store in stores))
        assert all(result.is_active for result in results)
        trail = stores[0].audit_trail(viewer_id=viewer)
        assert [line.action for line in trail] == ["grant"]        # granted once, not four times
        race(lambda: stores[0].revoke(viewer, "s1"),
             lambda: stores[1].grant(viewer, "s1", source="gift"),
             lambda: stores[2].revoke(viewer, "s1"),
             lambda: stores[3].grant(viewer, "s1", source="gift"))
        trail = stores[0].audit_trail(viewer_id=viewer)
        actions = [line.action for line in reversed(trail)]
        assert all(first != second for first, second in zip(actions, actions[1:]))   # alternating
        assert stores[0].is_entitled(viewer, "s1") == (actions[-1] == "grant")
    db = instances[0][3]
    assert db.query_one("SELECT COUNT(*) FROM entitlement_changes")[0] == \
        db.query_one("SELECT COUNT(*) FROM entitlement_events")[0]


def test_the_last_episode_slot_is_taken_once(instances):
    catalogs = [catalog for _, _, catalog, _ in instances]
    for number in range(MAX_EPISODES - 2):
        catalogs[0].reserve_episode("s1", f"e{number}", duration_s=30.0)
    results = race(*(lambda catalog=catalog, n=n: catalog.reserve_episode("s1", f"new{n}", duration_s=30.0)
                     for n, catalog in enumerate(catalogs)))
    assert results.count(True) == 2
    assert sum(isinstance(result, EpisodeLimitReached) for result in results) == 2
    assert len(catalogs[0].list_episodes("s1", published_only=False)) == MAX_EPISODES


def test_one_new_episode_reserved_at_once_is_new_once(instances):
    catalogs = [catalog for _, _, catalog, _ in instances]
    results = race(*(lambda catalog=catalog: catalog.reserve_episode("s1", "e1", duration_s=30.0)
                     for catalog in catalogs))
    assert sorted(results) == [False, False, False, True]


def test_one_series_id_created_at_once_exists_once(instances):
    catalogs = [catalog for _, _, catalog, _ in instances]
    results = race(*(lambda catalog=catalog, n=n: catalog.create_series(
        series_id="s2", creator_id=f"c{n}", title="T", price_cents=100, currency="USD")
        for n, catalog in enumerate(catalogs)))
    assert sum(isinstance(result, SeriesExists) for result in results) == 3
    assert len([series for series in catalogs[0].list_series() if series.series_id == "s2"]) == 1

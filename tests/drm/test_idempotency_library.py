"""Idempotency keys and viewers' libraries on both engines, racing requests included."""

from __future__ import annotations

import pytest

from drm.access.entitlements import EntitlementStore
from drm.catalog.catalog import SqlCatalog
from drm.catalog.library import Library
from drm.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidCursor, InvalidField
from drm.payments.idempotency import IdempotencyStore, StoredResponse
from tests.drm.fixtures import FakeClock
from tests.drm.test_concurrency import race

ANSWER = StoredResponse(201, {"Content-Type": "application/json"}, b'{"ok": true}')


def test_a_retry_gets_the_first_answer_and_another_request_is_refused(db):
    clock = FakeClock(1000.0)
    keys = IdempotencyStore(db, clock, ttl_s=100.0, lock_s=10.0)
    assert keys.begin("creator:c1", "k1", "fp-a") is None
    with pytest.raises(IdempotencyKeyInFlight):
        keys.begin("creator:c1", "k1", "fp-a")
    with pytest.raises(IdempotencyKeyReused):
        keys.begin("creator:c1", "k1", "fp-b")
    assert keys.begin("creator:c2", "k1", "fp-b") is None          # another client's key of the same name
    keys.finish("creator:c1", "k1", ANSWER)
    assert keys.begin("creator:c1", "k1", "fp-a") == ANSWER
    clock.now += 101                                                # forgotten after its retention
    assert keys.prune() == 2
    assert keys.begin("creator:c1", "k1", "fp-b") is None


def test_a_released_or_abandoned_key_runs_again(db):
    clock = FakeClock(1000.0)
    keys = IdempotencyStore(db, clock, ttl_s=100.0, lock_s=10.0)
    keys.begin("s", "k", "fp")
    keys.release("s", "k")
    assert keys.begin("s", "k", "fp") is None
    clock.now += 11                                                 # its holder died: the lock lapsed
    assert keys.begin("s", "k", "fp") is None


def test_racing_requests_with_one_key_run_once(open_db):
    stores = [IdempotencyStore(open_db()) for _ in range(4)]
    for trial in range(5):
        results = race(*(lambda store=store: store.begin("c", f"k{trial}", "fp") for store in stores))
        assert sum(result is None for result in results) == 1
        assert sum(isinstance(result, IdempotencyKeyInFlight) for result in results) == 3


def test_the_library_pages_what_a_viewer_holds_with_progress(db):
    clock = FakeClock(1000.0)
    catalog, entitlements, library = SqlCatalog(db, clock), EntitlementStore(db, clock), Library(db, clock)
    for number in range(4):
        catalog.create_series(series_id=f"s{number}", creator_id="c1", title="T", price_cents=499, currency="USD")
        clock.now += 1
        entitlements.grant("v1", f"s{number}")
    entitlements.revoke("v1", "s1")
    first = library.owned("v1", limit=2)
    assert [owned.series.series_id for owned in first.items] == ["s3", "s2"]
    rest = library.owned("v1", cursor=first.next_cursor)
    assert [owned.series.series_id for owned in rest.items] == ["s0"] and rest.next_cursor is None
    with pytest.raises(InvalidCursor):
        library.owned("v2", cursor=first.next_cursor)
    progress = library.record_progress("v1", "s0", "e1", position_s=96.0, duration_s=100.0)
    assert progress.is_completed and progress.position_s == 96.0
    library.record_progress("v1", "s0", "e1", position_s=12.5, duration_s=100.0)
    assert library.progress("v1", ["s0", "s2"])[("s0", "e1")].position_s == 12.5
    for bad in (-1, 102, float("nan"), "12", True):
        with pytest.raises(InvalidField):
            library.record_progress("v1", "s0", "e1", position_s=bad, duration_s=100.0)

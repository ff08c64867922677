import pickle

import pytest

from drm import DrmError, Entitlement, EntitlementStore, InvalidId, NotEntitled
from tests.drm.fixtures import FakeClock


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def store(db, clock):
    return EntitlementStore(db, clock=clock)


def test_nobody_is_entitled_by_default(store):
    assert not store.is_entitled("v1", "s1")
    assert store.get("v1", "s1") is None
    assert store.list_for_viewer("v1") == []
    with pytest.raises(NotEntitled) as caught:
        store.require("v1", "s1")
    assert str(caught.value) == "viewer v1 has not bought series s1"
    assert caught.value.code == "not_entitled" and isinstance(caught.value, DrmError)


def test_grant_is_idempotent(store, clock):
    first = store.grant("v1", "s1", source="purchase", reason="order 17")
    assert first == Entitlement(
        viewer_id="v1", series_id="s1", source="purchase", granted_at=1000.0,
        revoked_at=None, reason="order 17",
    )
    clock.advance(10)
    assert store.grant("v1", "s1", source="comp") == first
    assert store.is_entitled("v1", "s1")
    store.require("v1", "s1")
    assert not store.is_entitled("v1", "s2")
    assert not store.is_entitled("v2", "s1")


def test_revoke_and_regrant(store, clock):
    store.grant("v1", "s1")
    clock.advance(5)
    assert store.revoke("v1", "s1", reason="refund") is True
    revoked = store.get("v1", "s1")
    assert revoked is not None
    assert (revoked.revoked_at, revoked.reason, revoked.is_active) == (1005.0, "refund", False)
    assert not store.is_entitled("v1", "s1")
    with pytest.raises(NotEntitled):
        store.require("v1", "s1")
    assert store.revoke("v1", "s1") is False  # already revoked
    assert store.revoke("v1", "never") is False  # never granted

    clock.advance(5)
    regranted = store.grant("v1", "s1", source="purchase", reason="bought again")
    assert (regranted.granted_at, regranted.revoked_at) == (1010.0, None)
    assert regranted.source == "purchase"
    assert store.is_entitled("v1", "s1")


def test_list_for_viewer_includes_revoked(store):
    store.grant("v1", "s2")
    store.grant("v1", "s1")
    store.grant("v2", "s1")
    store.revoke("v1", "s2")
    listed = store.list_for_viewer("v1")
    assert [(e.series_id, e.is_active) for e in listed] == [("s1", True), ("s2", False)]


def test_entitlements_persist_across_reopen(open_db, clock):
    with open_db() as db:
        store = EntitlementStore(db, clock=clock)
        store.grant("v1", "s1")
        store.grant("v1", "s2")
        store.revoke("v1", "s2")
    with open_db() as db:
        store = EntitlementStore(db, clock=clock)
        assert store.is_entitled("v1", "s1")
        assert not store.is_entitled("v1", "s2")
        assert len(store.list_for_viewer("v1")) == 2


@pytest.mark.parametrize("bad", ["../x", "", "a" * 65, "a/b"])
def test_invalid_ids_are_rejected(store, bad):
    calls = [
        lambda: store.grant(bad, "s1"),
        lambda: store.grant("v1", bad),
        lambda: store.revoke(bad, "s1"),
        lambda: store.is_entitled("v1", bad),
        lambda: store.require(bad, "s1"),
        lambda: store.get("v1", bad),
        lambda: store.list_for_viewer(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidId):
            call()
    assert store.list_for_viewer("v1") == []


def test_not_entitled_pickles():
    error = pickle.loads(pickle.dumps(NotEntitled("v1", "s1")))
    assert (error.viewer_id, error.series_id, str(error)) == (
        "v1", "s1", "viewer v1 has not bought series s1",
    )

"""The change feed on both engines: every grant and revoke is seen, nothing else is, limits hold."""

import pytest

from drm.access.entitlement_changes import EntitlementFeed
from drm.access.entitlements import EntitlementStore
from drm.keystore import KeyStore
from tests.drm.fixtures import FakeClock, settings_for


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def store(db, clock):
    return EntitlementStore(db, clock=clock)


@pytest.fixture
def feed(db, clock):
    return EntitlementFeed(db, clock=clock)


def test_grants_and_revokes_are_in_the_feed(store, feed):
    start = feed.watermark()
    assert feed.changes_since(start).pairs == frozenset()
    store.grant("v1", "s1")
    store.grant("v2", "s1")
    first = feed.changes_since(start)
    assert first.pairs == {("v1", "s1"), ("v2", "s1")} and first.is_complete
    store.revoke("v1", "s1")
    second = feed.changes_since(first.watermark)
    assert ("v1", "s1") in second.pairs
    assert second.pairs <= {("v1", "s1"), ("v2", "s1")}       # a pair may come again, none is lost
    assert second.watermark >= first.watermark


def test_writes_that_change_no_access_are_not_in_the_feed(store, feed, db):
    store.grant("v1", "s1")
    mark = feed.changes_since(feed.watermark()).watermark
    store.grant("v1", "s1")                                     # already active: nothing changes
    store.revoke("v2", "s1")                                    # never granted
    KeyStore(db, settings_for()).create_keys("s1", "e1", 2)     # other tables never feed it
    assert feed.changes_since(mark).pairs <= {("v1", "s1")}
    with db.transaction() as tx:
        store.transfer_within(tx, "v1", "s1", from_reference="", to_reference="p2")
    assert feed.changes_since(mark).pairs <= {("v1", "s1")}


def test_a_rolled_back_grant_is_not_in_the_feed(store, feed, db):
    mark = feed.watermark()
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            store.grant_within(tx, "v1", "s1", source="comp")
            raise RuntimeError("the payment record failed")
    assert feed.changes_since(mark).pairs == frozenset()
    assert not store.is_entitled("v1", "s1")


def test_past_the_limit_the_answer_says_it_is_incomplete(store, feed):
    mark = feed.watermark()
    for number in range(5):
        store.grant(f"v{number}", "s1")
    partial = feed.changes_since(mark, limit=3)
    assert not partial.is_complete and len(partial.pairs) == 3
    whole = feed.changes_since(mark, limit=5)
    assert whole.is_complete and len(whole.pairs) == 5


def test_old_changes_are_pruned(store, feed, clock, db):
    store.grant("v1", "s1")
    clock.advance(3600)
    store.grant("v2", "s1")
    assert feed.prune(older_than_s=1800) == 1
    assert [row[0] for row in db.query("SELECT viewer_id FROM entitlement_changes")] == ["v2"]
    with pytest.raises(ValueError):
        feed.prune(older_than_s=5)


def test_a_bad_watermark_is_refused(feed):
    for bad in (-1, "7", 1.5, None):
        with pytest.raises(ValueError):
            feed.changes_since(bad)


def test_is_entitled_is_one_lookup_that_follows_grants_and_revokes(store):
    assert not store.is_entitled("v1", "s1")
    store.grant("v1", "s1")
    assert store.is_entitled("v1", "s1") and not store.is_entitled("v1", "s2")
    store.revoke("v1", "s1")
    assert not store.is_entitled("v1", "s1")


def test_every_catalog_write_that_changes_an_episodes_facts_is_in_the_feed(db, clock, feed):
    """Key servers cache each episode's facts (free preview, unpublished, deleted) and forget them when
    the feed says so: every write that changes them must be there, in the writer's transaction."""
    from drm.catalog.catalog import SqlCatalog

    catalog = SqlCatalog(db, clock=clock)
    heard: list[tuple[str, str]] = []
    catalog.on_episode_change(lambda series_id, episode_id: heard.append((series_id, episode_id)))
    catalog.create_series(series_id="s1", creator_id="c1", title="Knots", price_cents=499, currency="USD")

    def changed(write) -> frozenset:
        mark = feed.changes_since(feed.watermark()).watermark
        heard.clear()
        write()
        found = feed.changes_since(mark)
        assert found.pairs == frozenset()
        assert set(heard) == found.episodes          # this process's listeners heard the same, after the commit
        return found.episodes

    a, b = ("s1", "a"), ("s1", "b")
    assert changed(lambda: catalog.create_episode("s1", "a")) == {a}
    assert changed(lambda: catalog.reserve_episode("s1", "b", duration_s=60.0, is_free_preview=True)) == {b}
    assert changed(lambda: catalog.mark_published("s1", "b", version=1, duration_s=60.0)) == frozenset()
    assert changed(lambda: catalog.mark_published("s1", "a", version=1, duration_s=60.0,
                                                  is_free_preview=True)) == {a}
    assert changed(lambda: catalog.update_episode("s1", "a", title="A new title", position=2)) == frozenset()
    assert changed(lambda: catalog.set_free_preview("s1", "a", False)) == {a}
    assert changed(lambda: catalog.set_episode_published("s1", "a", False)) == {a}
    assert changed(lambda: catalog.set_episode_published("s1", "a", False)) == frozenset()   # already
    assert changed(lambda: catalog.set_episode_published("s1", "a", True)) == {a}
    assert changed(lambda: catalog.delete_episode("s1", "a")) == {a}
    assert changed(lambda: catalog.purge_episode("s1", "a")) == {a}
    catalog.reserve_episode("s1", "c", duration_s=60.0)
    assert changed(lambda: catalog.release_episode("s1", "c")) == {("s1", "c")}
    assert changed(lambda: catalog.delete_series("s1")) == {b}

"""Concurrent publishers of one episode: distinct versions from the shared database, and a pointer
that only ever moves forward, even when the publishes finish out of order. Real SeaweedFS, on SQLite and
on PostgreSQL, one database per publisher (as two processes would have)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from drm.storage.engines import open_database
from packager.encrypt import SegmentKey
from packager.publishing.publish import EpisodeLocation, publish, read_pointer
from packager.publishing.verify import verify_version
from server.publishing.versions import EpisodeVersions
from tests.support.keys import RandomKeys, key_uri

LOCATION = EpisodeLocation(series_id="s1", episode_id="1")


class Keys(RandomKeys):
    """RandomKeys that can hold the publisher back before its first key, to order two publishes."""

    def __init__(self, wait_for: threading.Event | None = None) -> None:
        super().__init__()
        self.wait_for = wait_for

    def key_for(self, period: int) -> SegmentKey:
        if self.wait_for is not None:
            assert self.wait_for.wait(timeout=60), "the other publisher never finished"
        return super().key_for(period)


def test_concurrent_allocations_never_share_a_version(db_target, store):
    databases = [open_database(db_target) for _ in range(6)]
    try:
        allocators = [EpisodeVersions(db) for db in databases]
        with ThreadPoolExecutor(max_workers=6) as pool:
            versions = list(pool.map(lambda a: [a.allocate(store, LOCATION) for _ in range(5)], allocators))
    finally:
        for db in databases:
            db.close()
    flat = sorted(v for chunk in versions for v in chunk)
    assert flat == list(range(1, 31))


def test_allocation_starts_above_versions_already_in_the_store(db_target, store):
    store.put_bytes(LOCATION.version_prefix(7) + "/master.m3u8", b"#EXTM3U\n")   # written before the table existed
    with open_database(db_target) as db:
        versions = EpisodeVersions(db)
        assert versions.allocate(store, LOCATION) == 8
        assert versions.allocate(store, LOCATION) == 9                      # the row, above the store's floor
        store.put_bytes(LOCATION.version_prefix(20) + "/master.m3u8", b"#EXTM3U\n")   # a tool without the table
        assert versions.allocate(store, LOCATION) == 21


def test_out_of_order_publishes_leave_the_pointer_on_the_higher_version(db_target, store, small_encoded):
    with open_database(db_target) as db_a, open_database(db_target) as db_b:
        versions_a, versions_b = EpisodeVersions(db_a), EpisodeVersions(db_b)
        lower = versions_a.allocate(store, LOCATION)
        higher = versions_b.allocate(store, LOCATION)
        assert higher > lower
        higher_live = threading.Event()
        # the lower version cannot start encrypting until the higher one is live: it finishes last
        keys_lower, keys_higher = Keys(wait_for=higher_live), Keys()

        def publish_lower():
            return publish(small_encoded, store, keys_lower, LOCATION, key_uri=key_uri, version=lower,
                           switch_guard=lambda: versions_a.switch_lock(LOCATION))

        def publish_higher():
            try:
                return publish(small_encoded, store, keys_higher, LOCATION, key_uri=key_uri, version=higher,
                               switch_guard=lambda: versions_b.switch_lock(LOCATION))
            finally:
                higher_live.set()

        with ThreadPoolExecutor(max_workers=2) as pool:
            lower_future, higher_future = pool.submit(publish_lower), pool.submit(publish_higher)
            published_lower, published_higher = lower_future.result(), higher_future.result()

    assert (published_lower.version, published_higher.version) == (lower, higher)
    assert published_higher.is_live and not published_lower.is_live
    pointer = read_pointer(store, LOCATION)
    assert pointer["version"] == higher
    for version, keys in ((lower, keys_lower), (higher, keys_higher)):     # both complete and decryptable
        verify_version(store, LOCATION.version_prefix(version), master_name="master.m3u8",
                       keys_by_uri=keys.by_uri(), duration_s=float(small_encoded.duration_s), decode_segment=None)


def test_the_switch_lease_of_a_dead_holder_runs_out(db_target):
    import server.publishing.versions as module

    with open_database(db_target) as db:
        versions = EpisodeVersions(db)
        with db.transaction() as conn:      # a holder whose process died mid-switch
            conn.execute("INSERT INTO episode_versions (series_id, episode_id, last_version, switch_holder,"
                         " switch_until) VALUES (?, ?, 1, 'dead', ?)", ("s1", "1", time.time() + 0.2))
        with pytest.raises(module.SwitchLockTimeout):
            with versions.switch_lock(LOCATION, timeout_s=0.0):
                pass
        with versions.switch_lock(LOCATION, timeout_s=5.0):     # taken over once the lease ran out
            pass


def test_two_publishers_racing_for_the_switch_take_it_one_after_the_other(db_target):
    with open_database(db_target) as db_a, open_database(db_target) as db_b:
        holders, inside, start = [], threading.Lock(), threading.Barrier(2)

        def switch(versions: EpisodeVersions, name: str) -> None:
            start.wait()
            for _ in range(5):
                with versions.switch_lock(LOCATION, timeout_s=30):
                    assert inside.acquire(blocking=False), "two holders of one episode's switch at once"
                    holders.append(name)
                    time.sleep(0.01)
                    inside.release()

        with ThreadPoolExecutor(max_workers=2) as pool:
            done = [pool.submit(switch, EpisodeVersions(db), name) for db, name in ((db_a, "a"), (db_b, "b"))]
            for future in done:
                future.result()
        assert sorted(holders) == ["a"] * 5 + ["b"] * 5

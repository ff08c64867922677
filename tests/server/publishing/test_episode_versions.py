"""Concurrent publishers of one episode: distinct versions from the shared database, and a pointer
that only ever moves forward, even when the publishes finish out of order. Real SeaweedFS, real SQLite,
one database connection per publisher (as two processes would have)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from drm.engines import open_database
from packager.encrypt import SegmentKey
from packager.publish import EpisodeLocation, publish, read_pointer
from packager.verify import verify_version
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


def test_concurrent_allocations_never_share_a_version(tmp_path, store):
    path = tmp_path / "series.db"
    databases = [open_database(path) for _ in range(6)]
    try:
        allocators = [EpisodeVersions(db) for db in databases]
        with ThreadPoolExecutor(max_workers=6) as pool:
            versions = list(pool.map(lambda a: [a.allocate(store, LOCATION) for _ in range(5)], allocators))
    finally:
        for db in databases:
            db.close()
    flat = sorted(v for chunk in versions for v in chunk)
    assert flat == list(range(1, 31))


def test_allocation_starts_above_versions_already_in_the_store(tmp_path, store):
    store.put_bytes(LOCATION.version_prefix(7) + "/master.m3u8", b"#EXTM3U\n")   # written before the table existed
    with open_database(tmp_path / "series.db") as db:
        assert EpisodeVersions(db).allocate(store, LOCATION) == 8


def test_out_of_order_publishes_leave_the_pointer_on_the_higher_version(tmp_path, store, small_encoded):
    path = tmp_path / "series.db"
    with open_database(path) as db_a, open_database(path) as db_b:
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


def test_the_switch_lease_of_a_dead_holder_runs_out(tmp_path):
    import server.publishing.versions as module

    with open_database(tmp_path / "series.db") as db:
        versions = EpisodeVersions(db)
        with db.transaction() as conn:      # a holder whose process died mid-switch
            conn.execute("INSERT INTO episode_versions (series_id, episode_id, last_version, switch_holder,"
                         " switch_until) VALUES (?, ?, 1, 'dead', ?)", ("s1", "1", time.time() + 0.2))
        with pytest.raises(module.SwitchLockTimeout):
            with versions.switch_lock(LOCATION, timeout_s=0.0):
                pass
        with versions.switch_lock(LOCATION, timeout_s=5.0):     # taken over once the lease ran out
            pass

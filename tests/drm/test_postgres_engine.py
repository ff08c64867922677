"""What only the shared engine promises: NOTIFY at commit, a feed safe against commit order, recovery
from a server restart, a clear error when the server is away, no key in the clear in its files."""

import threading
import time

import psycopg
import pytest

from drm import KeyStore
from drm.access.entitlement_changes import EntitlementFeed
from drm.access.entitlements import EntitlementStore
from drm.errors import DatabaseUnavailable
from drm.storage.engines import open_database
from drm.storage.migrations import NOTIFY_CHANNEL
from tests.drm.fixtures import settings_for
from tests.support.s3_server import free_port


@pytest.fixture
def pg(postgres_url):
    with open_database(postgres_url) as database:
        yield database


@pytest.fixture
def listener(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        yield connection


def notifications(connection: psycopg.Connection, timeout_s: float = 0.5) -> list[str]:
    return [notify.payload for notify in connection.notifies(timeout=timeout_s, stop_after=100)]


def test_grants_and_revokes_notify_at_commit_and_nothing_else_does(pg, listener):
    store = EntitlementStore(pg)
    with pg.transaction() as tx:
        store.grant_within(tx, "v1", "s1", source="comp")
        assert notifications(listener, 0.2) == []           # not before the commit
    assert notifications(listener) == ["v1/s1"]
    store.revoke("v1", "s1")
    assert notifications(listener) == ["v1/s1"]
    with pytest.raises(RuntimeError):
        with pg.transaction() as tx:
            store.grant_within(tx, "v2", "s1", source="comp")
            raise RuntimeError("rolled back")
    KeyStore(pg, settings_for()).create_keys("s1", "e1", 3)
    store.grant("v1", "s1")
    assert notifications(listener) == ["v1/s1"]             # the rolled-back grant and the keys sent nothing


def test_a_change_that_commits_late_is_not_skipped(pg, postgres_url):
    """A transaction that wrote first but commits after a later one is still read by the next poll."""
    store, feed = EntitlementStore(pg), EntitlementFeed(pg)
    mark = feed.watermark()
    wrote, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with open_database(postgres_url) as other, other.transaction() as tx:
            EntitlementStore(other).grant_within(tx, "early", "s1", source="comp")
            wrote.set()
            release.wait(10)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert wrote.wait(10)
    store.grant("late", "s1")                               # a later transaction, committed first
    first = feed.changes_since(mark)
    assert first.pairs == {("late", "s1")}
    release.set()
    thread.join()
    second = feed.changes_since(first.watermark)
    assert ("early", "s1") in second.pairs


def test_the_pool_survives_a_server_restart(pg, postgres_cluster):
    store = EntitlementStore(pg)
    store.grant("v1", "s1")
    postgres_cluster.restart()
    assert store.is_entitled("v1", "s1")                    # a dead pooled connection is replaced quietly
    store.grant("v2", "s1")
    assert store.is_entitled("v2", "s1")


def test_a_stopped_server_is_database_unavailable_and_then_back(pg, postgres_cluster):
    store = EntitlementStore(pg)
    store.grant("v1", "s1")
    postgres_cluster.pg_ctl("-m", "fast", "-w", "stop")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            store.is_entitled("v1", "s1")
        assert caught.value.code == "database_unavailable"
        with pytest.raises(DatabaseUnavailable):
            store.grant("v2", "s1")
    finally:
        postgres_cluster.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert store.is_entitled("v1", "s1")
            break
        except DatabaseUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        open_database(f"postgresql://series:hunter2@127.0.0.1:{free_port()}/series")
    assert "hunter2" not in str(caught.value) and "series:***@127.0.0.1" in str(caught.value)
    assert time.monotonic() - started < 30


def test_no_clear_key_bytes_in_the_cluster_files(pg, postgres_cluster):
    created = KeyStore(pg, settings_for()).create_keys("s1", "e1", 20)
    postgres_cluster.admin("CHECKPOINT")
    everything = b"".join(path.read_bytes() for path in postgres_cluster.data_dir.rglob("*") if path.is_file())
    assert created[0].key_id.encode() in everything         # we are looking at the right data
    for key in created:
        assert key.key not in everything and key.key.hex().encode() not in everything

"""Access on both engines: single-flight lookups, what a racing eviction forbids, refusals kept apart from
grants, the freshness bound, failing closed with the database down, and the LISTEN connection's return."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from drm.access.entitlements import EntitlementStore
from drm.errors import DatabaseUnavailable
from drm.storage.engines import open_database
from server.access import Access, AccessUnavailable, Verdict
from server.access.feed import FRESHNESS_S
from server.config import AccessSettings
from server.services import Services
from tests.conftest import settings_for


class Clock:
    """time.monotonic, plus an offset a test can move forward (a process the scheduler left behind)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def services(tmp_path, s3_store, engine, request):
    overrides = {} if engine == "sqlite" else {"SERIES_DATABASE_URL": request.getfixturevalue("postgres_url")}
    with Services.open(settings_for(tmp_path, s3_store, **overrides)) as opened:
        yield opened


@pytest.fixture
async def make_access(services):
    made = []

    async def make(clock=time.monotonic, **limits) -> Access:
        access = Access(services, AccessSettings(**limits), clock=clock)
        await access.start()
        made.append(access)
        return access

    yield make
    for access in made:
        await access.close()


async def eventually(condition, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


def counting(monkeypatch, store: EntitlementStore, *, pause_s: float = 0.0, during=None) -> list:
    """Count (and optionally slow down) is_entitled calls; `during()` runs inside each call."""
    calls, original = [], store.is_entitled

    def is_entitled(viewer_id: str, series_id: str) -> bool:
        calls.append((viewer_id, series_id))
        if during is not None:
            during()
        time.sleep(pause_s)
        return original(viewer_id, series_id)

    monkeypatch.setattr(store, "is_entitled", is_entitled)
    return calls


async def test_one_lookup_per_pair_however_many_ask_at_once(services, make_access, monkeypatch):
    services.entitlements.grant("alice", "s1")
    access = await make_access()
    calls = counting(monkeypatch, services.entitlements, pause_s=0.3)
    verdicts = await asyncio.gather(*(access.verdict("alice", "s1", "e1") for _ in range(50)),
                                    *(access.verdict("bob", "s1", "e1") for _ in range(50)))
    assert verdicts == [Verdict.GRANTED] * 50 + [Verdict.NOT_ENTITLED] * 50
    assert sorted(calls) == [("alice", "s1"), ("bob", "s1")]
    assert access.decide_from_memory("alice", "s1", "e1") is Verdict.GRANTED
    assert access.decide_from_memory("bob", "s1", "e1") is Verdict.NOT_ENTITLED


async def test_a_caller_that_gives_up_does_not_cancel_the_lookup_for_the_others(services, make_access, monkeypatch):
    services.entitlements.grant("alice", "s1")
    access = await make_access()
    counting(monkeypatch, services.entitlements, pause_s=0.3)
    impatient = asyncio.create_task(access.verdict("alice", "s1", "e1"))
    patient = asyncio.create_task(access.verdict("alice", "s1", "e1"))
    await asyncio.sleep(0.1)
    impatient.cancel()
    assert await patient is Verdict.GRANTED


async def test_a_lookup_that_overlaps_an_eviction_is_not_remembered(services, make_access, monkeypatch):
    services.entitlements.grant("alice", "s1")
    access = await make_access()
    loop = asyncio.get_running_loop()
    # the revocation lands while the lookup is in flight: its answer may predate it
    counting(monkeypatch, services.entitlements, pause_s=0.1,
             during=lambda: loop.call_soon_threadsafe(access.forget_entitlement, "alice", "s1"))
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    assert access.decide_from_memory("alice", "s1", "e1") is None


async def test_refusals_cannot_push_buyers_out_of_memory(services, make_access):
    for buyer in ("alice", "carol"):
        services.entitlements.grant(buyer, "s1")
    access = await make_access(entitled_entries=10, refused_entries=10)
    for buyer in ("alice", "carol"):
        assert await access.verdict(buyer, "s1", "e1") is Verdict.GRANTED
    for n in range(200):                                   # a scraper with valid tokens, no purchase
        assert await access.verdict(f"scraper{n}", "s1", "e1") is Verdict.NOT_ENTITLED
    assert access.decide_from_memory("alice", "s1", "e1") is Verdict.GRANTED
    assert access.decide_from_memory("carol", "s1", "e1") is Verdict.GRANTED
    assert access.remembered()["refused"] <= 10


async def test_past_the_freshness_bound_memory_is_not_trusted(services, make_access, monkeypatch):
    services.entitlements.grant("alice", "s1")
    clock = Clock()
    access = await make_access(clock=clock)
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    assert access.decide_from_memory("alice", "s1", "e1") is Verdict.GRANTED
    calls = counting(monkeypatch, services.entitlements)
    feed_reader = access.feed._feed

    def failing_poll(watermark, **options):
        raise DatabaseUnavailable("the change feed cannot be read (a test)")

    monkeypatch.setattr(feed_reader, "changes_since", failing_poll)
    clock.offset += FRESHNESS_S + 1                        # no poll has succeeded for over 5 s
    assert access.decide_from_memory("alice", "s1", "e1") is None
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    assert calls == [("alice", "s1")]                      # asked the database, as every request now would
    assert access.decide_from_memory("alice", "s1", "e1") is None       # and remembered nothing meanwhile
    monkeypatch.undo()
    await eventually(lambda: access.decide_from_memory("alice", "s1", "e1") is not None)   # the next poll


async def test_a_write_through_this_process_is_forgotten_at_once(services, make_access):
    services.entitlements.grant("alice", "s1")
    access = await make_access()
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    await asyncio.to_thread(services.entitlements.revoke, "alice", "s1")
    await asyncio.sleep(0)                                 # the eviction was handed to the loop before revoke returned
    assert access.decide_from_memory("alice", "s1", "e1") is None
    assert await access.verdict("alice", "s1", "e1") is Verdict.NOT_ENTITLED


async def test_a_write_by_another_process_is_read_from_the_feed(services, make_access):
    services.entitlements.grant("alice", "s1")
    access = await make_access()
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    with open_database(services.settings.database_target) as other:                # its own connection: no listener of ours on it
        EntitlementStore(other).revoke("alice", "s1")
    await eventually(lambda: access.decide_from_memory("alice", "s1", "e1") is None, within_s=5)
    assert await access.verdict("alice", "s1", "e1") is Verdict.NOT_ENTITLED


# -- PostgreSQL only: a database that goes away, a LISTEN connection that is killed -------------------

@pytest.mark.parametrize("engine", ["postgresql"])
async def test_with_the_database_down_nothing_is_granted_from_stale_memory(services, make_access,
                                                                           postgres_cluster, engine):
    services.entitlements.grant("alice", "s1")
    clock = Clock()
    access = await make_access(clock=clock)
    assert await access.verdict("alice", "s1", "e1") is Verdict.GRANTED
    await asyncio.to_thread(postgres_cluster.pg_ctl, "-m", "fast", "-w", "stop")
    try:
        clock.offset += FRESHNESS_S + 1                    # the polls have failed for over 5 s
        assert access.decide_from_memory("alice", "s1", "e1") is None
        with pytest.raises(AccessUnavailable) as refused:
            await access.require_may_watch("alice", "s1", "e1")
        assert refused.value.http_status == 503 and "hunter" not in str(refused.value)
    finally:
        await asyncio.to_thread(postgres_cluster.start)
    await eventually(lambda: access.decide_from_memory("alice", "s1", "e1") is Verdict.GRANTED, within_s=30)
    await access.require_may_watch("alice", "s1", "e1")


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_killed_listen_connection_comes_back_and_nothing_it_missed_is_lost(services, make_access,
                                                                                   postgres_cluster, engine,
                                                                                   monkeypatch):
    import server.access.feed as feed

    for viewer in ("alice", "carol"):
        services.entitlements.grant(viewer, "s1")
    monkeypatch.setattr(feed, "RECONNECT_FIRST_S", 1.0)    # slow enough for a change to fall in the gap
    access = await make_access()
    await eventually(lambda: access.feed.is_listening)
    for viewer in ("alice", "carol"):
        assert await access.verdict(viewer, "s1", "e1") is Verdict.GRANTED
    with open_database(services.settings.database_target) as other:
        killed = other.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
                             (f"series-listen-{os.getpid()}",))
        assert killed and all(row[0] for row in killed)
        await eventually(lambda: not access.feed.is_listening)
        EntitlementStore(other).revoke("alice", "s1")      # sent while nobody of ours listens
    await eventually(lambda: access.decide_from_memory("alice", "s1", "e1") is None, within_s=5)
    await eventually(lambda: access.feed.is_listening)
    with open_database(services.settings.database_target) as other:
        EntitlementStore(other).revoke("carol", "s1")      # heard again
    await eventually(lambda: access.decide_from_memory("carol", "s1", "e1") is None, within_s=5)

"""The jobs table under racing writers, on both engines (as two instances would race on a shared
PostgreSQL): one job per Idempotency-Key, one claim per episode, one recovery per dead runner; a
streamed upload claimed only where it is; PostgreSQL going away is a 503, not a 500."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from server.jobs.job_store import JobStore
from server.jobs.jobs import QUEUED, SOURCE_SPOOL, TRANSCODING, JobRequest, JobStoreUnavailable, fingerprint
from server.jobs.owners import local_host

RACERS = 6


def request(key: str, episode_id: str = "1", *, spool_host: str | None = None) -> JobRequest:
    return JobRequest(series_id="s1", episode_id=episode_id, source_kind=SOURCE_SPOOL, idempotency_key=key,
                      fingerprint=fingerprint({"key": key}), spool_path=f"/spool/{key}", spool_host=spool_host,
                      size_bytes=3)


@pytest.fixture
def stores(db_target):
    """One JobStore per racer, each on its own database connection(s), as separate processes would be."""
    opened = [JobStore.open(db_target, busy_timeout_ms=10_000) for _ in range(RACERS)]
    yield opened
    for store in opened:
        store.close()


def race(stores, work) -> list:
    start = threading.Barrier(len(stores))

    def run(index: int):
        start.wait()
        return work(index, stores[index])

    with ThreadPoolExecutor(max_workers=len(stores)) as pool:
        return list(pool.map(run, range(len(stores))))


def test_one_idempotency_key_makes_one_job_however_many_deliver_it_at_once(stores):
    results = race(stores, lambda index, store: store.create(request("same-key")))
    assert sum(created for _, created in results) == 1
    assert len({job.job_id for job, _ in results}) == 1
    assert len(stores[0].list()) == 1


def test_of_two_jobs_of_one_episode_racing_for_a_claim_at_most_one_runs(stores):
    for round_number in range(10):
        episode = f"e{round_number}"
        jobs = [stores[0].create(request(f"{episode}-{n}", episode))[0] for n in range(2)]
        with stores[0].db.transaction() as tx:     # submitted at the same instant (two hosts): neither waits
            tx.execute("UPDATE ingest_jobs SET created_at = 1000 WHERE episode_id = ?", (episode,))
        claimed = race(stores, lambda index, store: store.claim(jobs[index % 2].job_id, 1, f"runner-{index}", 60))
        assert sum(claimed) == 1, claimed


def test_two_instances_recovering_at_once_requeue_a_dead_runners_job_once(stores):
    job, _ = stores[0].create(request("orphan"))
    assert stores[0].claim(job.job_id, 1, "gone-host:1:1:x", lease_s=-1)         # a lease already run out
    assert stores[0].advance(job.job_id, 1, TRANSCODING, 0.5, owner="gone-host:1:1:x")
    results = race(stores, lambda index, store: store.recover(max_attempts=5, upload_retention_s=3600))
    assert sorted(len(requeued) for requeued, _ in results) == [0] * (RACERS - 1) + [1]
    recovered = stores[0].get(job.job_id)
    assert (recovered.state, recovered.attempt) == (QUEUED, 2)


def test_a_streamed_upload_on_another_host_is_left_to_that_host(stores):
    store = stores[0]
    elsewhere, _ = store.create(request("elsewhere", "1", spool_host="another-host"))
    here, _ = store.create(request("here", "2", spool_host=local_host()))
    legacy, _ = store.create(request("legacy", "3"))                           # no host recorded: any host
    assert {job.job_id for job in store.queued(claimable_only=True)} == {here.job_id, legacy.job_id}
    assert not store.claim(elsewhere.job_id, 1, "runner", lease_s=60)
    assert store.claim(here.job_id, 1, "runner", lease_s=60)
    assert store.claim(legacy.job_id, 1, "runner", lease_s=60)


@pytest.mark.parametrize("engine", ["postgresql"])
def test_postgresql_away_is_unavailable_and_changes_nothing(job_store, postgres_cluster, engine):
    job, _ = job_store.create(request("before"))
    postgres_cluster.pg_ctl("-m", "fast", "-w", "stop")
    try:
        with pytest.raises(JobStoreUnavailable) as refused:
            job_store.create(request("during"))
        assert refused.value.http_status == 503 and "retry" in str(refused.value)
        with pytest.raises(JobStoreUnavailable):
            job_store.get(job.job_id)
    finally:
        postgres_cluster.start()
    assert [listed.job_id for listed in listed_when_back(job_store)] == [job.job_id]


def listed_when_back(job_store, within_s: float = 60.0):
    """The pool reconnects by itself, on psycopg_pool's backoff (1 s, doubling with jitter): after a long
    outage its next attempt may come well after the restart, so ask until it answers (bounded)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return job_store.list()
        except JobStoreUnavailable:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize("engine", ["postgresql"])
def test_job_progress_never_notifies(job_store, postgres_url, engine):
    """Progress is written every half second per job (and mirrored onto the episode): a NOTIFY there would
    serialise every commit on PostgreSQL's notification lock and wake every key server for nothing."""
    import psycopg

    from drm.storage.migrations import NOTIFY_CHANNEL

    job_store._catalog.create_series(series_id="s1", creator_id="c1", title="Knots", price_cents=499,
                                     currency="USD")
    job, _ = job_store.create(request("noisy"))
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        assert job_store.claim(job.job_id, 1, "runner", lease_s=60)
        for step in range(20):
            assert job_store.advance(job.job_id, 1, TRANSCODING, step / 20, owner="runner")
        assert job_store.renew("runner", 60, job_ids=[job.job_id]) == 1
        assert job_store.finish_published(job.job_id, 1, version=1, owner="runner")
        assert [notify.payload for notify in listener.notifies(timeout=0.5, stop_after=1)] == []

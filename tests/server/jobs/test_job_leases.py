"""Two service instances on one jobs table: claims with an owner and a lease, recovery that leaves a live
instance's jobs alone, and one job at a time per episode across instances. SQLite and PostgreSQL, real
processes."""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import time

import pytest

from server.app import create_app
from server.jobs.engines.runner import JobRunner
from server.jobs.job_store import JobStore
from server.jobs.jobs import QUEUED, SOURCE_SPOOL, TRANSCODING, JobRequest, fingerprint
from server.services import Services
from tests.support.jobs import AUTH, ingest_settings, wait_for_job

SERIES = "s-leases"


def request(key: str, episode_id: str = "1", spool_path: str = "/spool/x") -> JobRequest:
    return JobRequest(series_id=SERIES, episode_id=episode_id, source_kind=SOURCE_SPOOL, idempotency_key=key,
                      fingerprint=fingerprint({"key": key}), spool_path=spool_path, size_bytes=3)


@pytest.fixture
def two_instances(db_target):
    """Two JobStores on one database (SQLite file or PostgreSQL), as two service processes would open it."""
    first, second = (JobStore.open(db_target, busy_timeout_ms=2000) for _ in range(2))
    yield first, second
    first.close()
    second.close()


def test_a_live_instance_keeps_its_job_and_a_dead_one_loses_it(two_instances):
    first, second = two_instances
    job, _ = first.create(request("k1"))
    assert first.claim(job.job_id, 1, "host-a:1:1:a", lease_s=0.3)
    assert not second.claim(job.job_id, 1, "host-b:1:1:b", lease_s=60)      # held
    assert first.advance(job.job_id, 1, TRANSCODING, 0.4, owner="host-a:1:1:a")
    assert second.recover(max_attempts=3, upload_retention_s=3600) == ([], [])          # the second instance starting up
    assert second.get(job.job_id).state == TRANSCODING
    time.sleep(0.4)                                             # the first instance stopped renewing
    assert second.recover(max_attempts=3, upload_retention_s=3600) == ([job.job_id], [])
    recovered = second.get(job.job_id)
    assert (recovered.state, recovered.attempt, recovered.owner_id) == (QUEUED, 2, None)
    assert not first.advance(job.job_id, 1, TRANSCODING, 0.9, owner="host-a:1:1:a")   # fenced
    assert second.claim(job.job_id, 2, "host-b:1:1:b", lease_s=60)


def test_renewed_leases_outlive_their_first_term(two_instances):
    first, second = two_instances
    job, _ = first.create(request("k1"))
    assert first.claim(job.job_id, 1, "host-a:1:1:a", lease_s=0.3)
    first.advance(job.job_id, 1, TRANSCODING, 0.1, owner="host-a:1:1:a")
    for _ in range(3):
        time.sleep(0.15)
        assert first.renew("host-a:1:1:a", lease_s=0.3, job_ids=[job.job_id]) == 1
    assert second.recover(max_attempts=3, upload_retention_s=3600) == ([], [])


def test_a_dead_process_on_this_host_loses_its_jobs_at_once(two_instances):
    first, second = two_instances
    job, _ = first.create(request("k1"))
    dead_owner = f"{socket.gethostname()}:999999999:12345:dead"   # no such PID: the service was killed
    assert first.claim(job.job_id, 1, dead_owner, lease_s=3600)
    first.advance(job.job_id, 1, TRANSCODING, 0.5, owner=dead_owner)
    assert second.recover(max_attempts=3, upload_retention_s=3600) == ([job.job_id], [])   # not an hour later


def test_jobs_of_one_episode_run_one_at_a_time_in_submission_order(two_instances):
    first, second = two_instances
    older, _ = first.create(request("k1"))
    newer, _ = first.create(request("k2"))
    other_episode, _ = first.create(request("k3", episode_id="2"))
    assert not second.claim(newer.job_id, 1, "b", lease_s=60)             # the older one goes first
    assert first.claim(older.job_id, 1, "a", lease_s=60)
    assert not second.claim(newer.job_id, 1, "b", lease_s=60)             # the episode is held
    assert second.claim(other_episode.job_id, 1, "b", lease_s=60)         # other episodes are not
    assert first.finish_published(older.job_id, 1, version=1, owner="a")
    assert second.claim(newer.job_id, 1, "b", lease_s=60)


async def test_two_runners_share_the_table_without_taking_each_others_work(tmp_path, s3_store, aiohttp_client,
                                                                           landscape_clip, short_clip):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_JOB_LEASE_S="1.5")
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))         # instance A, with the HTTP API
    second_jobs = JobStore.open(settings.db_path)
    second = JobRunner(settings, second_jobs)                               # instance B, on the same database
    try:
        headers = {**AUTH, "Idempotency-Key": "lease-1", "Content-Type": "video/mp4"}
        async with client.post(f"/v1/series/{SERIES}/episodes/1/ingest", headers=headers,
                               data=io.BytesIO(landscape_clip.read_bytes())) as response:
            assert response.status == 202
            first_job = await response.json()
        await wait_for_job(client, first_job["job_id"], until=lambda j: j["state"] == TRANSCODING)
        await second.start()                # B's start-up recovery sees A's running job, and leaves it
        # a re-ingest of the same episode handed to B waits for A's job instead of racing it
        settings.jobs.spool_dir.mkdir(parents=True, exist_ok=True)
        spooled = shutil.copy(short_clip, settings.jobs.spool_dir / "second.upload")
        second_job, _ = await asyncio.to_thread(second_jobs.create, request("lease-2", spool_path=str(spooled)))
        second.submit(second_job)

        first_done = await wait_for_job(client, first_job["job_id"])
        assert (first_done["state"], first_done["attempt"]) == ("published", 1), first_done
        second_done = await wait_for_job(client, second_job.job_id)       # by either heartbeat, once free
        assert (second_done["state"], second_done["error"]["code"]) == ("failed", "media_rejected")
        assert second_done["started_at"] >= first_done["finished_at"]
        assert second_done["attempt"] == 1
    finally:
        await second.close()
        second_jobs.close()
        await client.close()
        services.close()

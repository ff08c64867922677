"""How a job's end is recorded when the database will not take it: written again while it can be, and
otherwise left to the lease and recovery — never "running" for as long as the service lives.

Real SQLite (a second connection holding the write lock is a locked database) and a real JobRunner.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
import time

import pytest

from packager.store import ObjectStore
from server.jobs.engines.runner import JobRunner
from server.jobs.job_store import JobStore
from server.jobs.jobs import (
    FAILED,
    PUBLISHED,
    PUBLISHING,
    QUEUED,
    RUNNING_STATES,
    SOURCE_SPOOL,
    TRANSCODING,
    JobRequest,
    fingerprint,
)
from server.jobs.worker import EndNotRecorded, record_end, run_job
from tests.support.jobs import ingest_settings

DEADLINE_S = 30.0       # a bound so a job kept alive for ever fails the test instead of hanging it
LOCKED_DEADLINE_S = 120.0   # a bound on a worker's writes refused by a locked database, on a loaded machine


SERIES = "s-endings"


def request(key: str, episode_id: str = "1", spool_path: str | None = None) -> JobRequest:
    return JobRequest(series_id=SERIES, episode_id=episode_id, source_kind=SOURCE_SPOOL, idempotency_key=key,
                      fingerprint=fingerprint({"key": key}), spool_path=spool_path or f"/spool/{key}", size_bytes=3)


def test_renew_extends_only_the_jobs_named(job_store):
    running, _ = job_store.create(request("k1"))
    ended, _ = job_store.create(request("k2", episode_id="2"))
    for job in (running, ended):
        assert job_store.claim(job.job_id, 1, "host-a:1:1:a", lease_s=0.3)
        assert job_store.advance(job.job_id, 1, TRANSCODING, 0.5, owner="host-a:1:1:a")
    before = job_store.get(ended.job_id).lease_expires_at
    assert job_store.renew("host-a:1:1:a", 60, job_ids=[running.job_id]) == 1
    assert job_store.renew("host-b:1:1:b", 60, job_ids=[ended.job_id]) == 0       # not its job
    assert job_store.renew("host-a:1:1:a", 60, job_ids=[]) == 0
    assert job_store.get(running.job_id).lease_expires_at > time.time() + 30
    assert job_store.get(ended.job_id).lease_expires_at == before


async def test_a_job_whose_end_was_not_recorded_is_recovered_not_kept_running(tmp_path, s3_store):
    # The state a runner is left with when its worker ended and neither the worker's final write nor the
    # runner's "worker_crashed" went through: the job is still "publishing", claimed by this live runner.
    settings = ingest_settings(tmp_path, s3_store, SERIES_JOB_LEASE_S="1", SERIES_JOB_MAX_ATTEMPTS="1")
    jobs = await asyncio.to_thread(JobStore.open, settings.db_path)
    runner = JobRunner(settings, jobs)
    job, _ = await asyncio.to_thread(jobs.create, request("unrecorded"))
    assert await asyncio.to_thread(jobs.claim, job.job_id, 1, runner.owner_id, 1.0)
    assert await asyncio.to_thread(jobs.advance, job.job_id, 1, PUBLISHING, 0.9, owner=runner.owner_id)
    await runner.start()        # its heartbeat runs every lease_s / 3 and must not keep this job alive
    try:
        deadline = time.monotonic() + DEADLINE_S
        while (current := await asyncio.to_thread(jobs.get, job.job_id)).state == PUBLISHING:
            assert time.monotonic() < deadline, "the job stayed 'publishing' while its runner lives"
            await asyncio.sleep(0.1)
    finally:
        await runner.close()
        await asyncio.to_thread(jobs.close)
    assert (current.state, current.error_code, current.owner_id) == (FAILED, "interrupted", None)
    assert "upload is kept" in current.error_message


def _held_lock(db_path) -> sqlite3.Connection:
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")       # another writer holds the database
    return holder


def test_a_final_write_refused_by_a_locked_database_is_written_once_it_is_free(jobs, tmp_path, caplog):
    job, _ = jobs.create(request("locked-end"))
    assert jobs.claim(job.job_id, 1, "owner", lease_s=60)
    assert jobs.advance(job.job_id, 1, PUBLISHING, 0.9, owner="owner")
    holder = _held_lock(tmp_path / "series.db")
    outcome: list[object] = []
    writer = threading.Thread(target=lambda: outcome.append(record_end(
        job.job_id, lambda: jobs.finish_published(job.job_id, 1, 3, owner="owner"), within_s=60)))
    with caplog.at_level(logging.WARNING, logger="server.jobs.worker"):
        writer.start()
        try:
            deadline = time.monotonic() + DEADLINE_S
            while "could not record its end" not in caplog.text:      # the first try was refused
                assert time.monotonic() < deadline and writer.is_alive(), outcome
                time.sleep(0.02)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        writer.join(DEADLINE_S)
    assert outcome == [True]
    published = jobs.get(job.job_id)
    assert (published.state, published.version, published.owner_id) == ("published", 3, None)


def test_a_final_write_refused_for_too_long_says_so(jobs, tmp_path):
    job, _ = jobs.create(request("locked-for-good"))
    holder = _held_lock(tmp_path / "series.db")
    try:
        with pytest.raises(EndNotRecorded, match="recovery takes the job"):
            record_end(job.job_id, lambda: jobs.fail(job.job_id, 1, "media_rejected", "no video"), within_s=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert jobs.get(job.job_id).state == "queued"        # nothing half-written


async def _until(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_worker_that_cannot_record_its_end_exits_75_and_its_job_is_recovered(
        tmp_path, s3_store, short_clip, caplog):
    # The whole path, each part real: the runner spawns a worker; once it is running the job, a second
    # SQLite connection holds the write lock for longer than the worker's retry window (one lease), so
    # neither its next write nor its final one goes through and it exits 75 (EndNotRecorded). The
    # runner must leave the job to its lease rather than write "worker_crashed"; recovery then takes it
    # like any orphan: with one attempt allowed, it fails it cleanly as "interrupted", keeping the upload
    # (with attempts left it re-queues it, as after a restart: test_job_faults.py). The 5 s clip is an
    # acceptable episode here, to keep the run quick.
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_JOB_LEASE_S="3",
                               SERIES_JOB_MAX_ATTEMPTS="1", SERIES_MIN_DURATION_S="3")
    with ObjectStore(settings.store) as store:
        await asyncio.to_thread(store.ensure_bucket)
    settings.jobs.spool_dir.mkdir(parents=True, exist_ok=True)
    upload = settings.jobs.spool_dir / "upload.mp4"
    shutil.copyfile(short_clip, upload)
    # A busy timeout longer than the lock is held: any write the runner tries meanwhile ("worker_crashed"
    # among them) waits and then goes through, so a write it must not make would show in the outcome.
    jobs = await asyncio.to_thread(JobStore.open, settings.db_path, busy_timeout_ms=int(LOCKED_DEADLINE_S * 1000))
    job, _ = await asyncio.to_thread(jobs.create, request("end-not-recorded", spool_path=str(upload)))
    runner = JobRunner(settings, jobs)
    # a reader of its own, for the test's polling: the runner's connection may be waiting on the lock
    reader = sqlite3.connect(settings.db_path, check_same_thread=False)

    def state() -> str:
        return reader.execute("SELECT state FROM ingest_jobs WHERE job_id = ?", (job.job_id,)).fetchone()[0]

    with caplog.at_level(logging.INFO, logger="server.jobs.child"):
        await runner.start()
        try:
            await _until(lambda: state() != QUEUED, "the worker never started the job")
            assert state() in RUNNING_STATES and len(runner.worker_pids()) == 1
            holder = _held_lock(settings.db_path)
            try:
                # the worker's busy timeout (5 s) per refused write: about 15 s
                await _until(lambda: not runner.worker_pids(), "the worker outlived the locked database",
                             timeout_s=LOCKED_DEADLINE_S)
                await _until(lambda: "could not record the job's end" in caplog.text,
                             "the runner did not see the worker's exit status 75")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            await _until(lambda: state() in (PUBLISHED, FAILED), "the job was never recovered")
        finally:
            await runner.close()
            reader.close()
    ended = await asyncio.to_thread(jobs.get, job.job_id)
    await asyncio.to_thread(jobs.close)
    assert (ended.state, ended.attempt, ended.error_code, ended.owner_id) == (FAILED, 1, "interrupted", None), ended
    assert "the upload is kept for 7 days" in ended.error_message
    assert upload.read_bytes() == short_clip.read_bytes()
    # said once, with what comes next
    about_its_end = [record.getMessage() for record in caplog.records if record.name == "server.jobs.child"
                     and job.job_id in record.getMessage() and "record" in record.getMessage()]
    assert len(about_its_end) == 1, about_its_end
    assert "exit status 75" in about_its_end[0] and "recovery" in about_its_end[0]


def test_a_failed_job_says_how_long_its_upload_is_kept(tmp_path, s3_store, short_clip):
    # an unknown series fails the job at once, before the media is looked at
    settings = ingest_settings(tmp_path, s3_store, SERIES_FAILED_UPLOAD_RETENTION_S="5400")
    upload = tmp_path / "upload.mp4"
    shutil.copyfile(short_clip, upload)
    jobs = JobStore.open(settings.db_path)
    try:
        job, _ = jobs.create(request("unknown-series", spool_path=str(upload)))
        assert run_job(settings, job.job_id, 1) == FAILED
        failed = jobs.get(job.job_id)
    finally:
        jobs.close()
    assert failed.error_message.endswith("(the upload is kept for 90 minutes; the job can be submitted again)")
    assert upload.exists()

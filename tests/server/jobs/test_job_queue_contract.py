"""The JobQueue contract on the in-process runner (SQLite, the embedded default): the same promises the
distributed engine keeps in tests/e2e/test_distributed_workers.py.

A cancelled running job stops within 5 s and publishes nothing; a waiting one fails at once; a finished
one is left as it is. A run that finds its job's version already live (an earlier run switched the pointer
and died before recording it) records it instead of publishing a second version. A run that lost its job
to a later attempt is refused at its pointer switch.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

import pytest

from packager.publishing.publish import EpisodeLocation, read_pointer
from packager.publishing.versions import stored_versions
from packager.store import ObjectStore
from server.app import create_app
from server.ingest.api import QUEUE
from server.jobs.job_store import JobStore
from server.jobs.jobs import SOURCE_SPOOL, JobRequest, fingerprint
from server.jobs.worker import run_job
from tests.support.jobs import AUTH, ingest_settings, wait_for_job
from tests.support.media import clip

SERIES = "s-contract"
CANCEL_BOUND_S = 5.0


@pytest.fixture(scope="module")
def long_enough_clip(media_dir) -> Path:
    return clip(media_dir, "contract.mp4", duration_s=12, width=426, height=240, fps=25)


async def _post(client, media: Path, episode: str, key: str) -> dict:
    headers = {**AUTH, "Idempotency-Key": key, "Content-Type": "video/mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/{episode}/ingest", data=io.BytesIO(media.read_bytes()),
                           headers=headers) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def _cancel(client, job_id: str) -> tuple[int, dict]:
    async with client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH) as response:
        return response.status, await response.json()


async def test_cancel_stops_a_running_job_within_seconds_and_a_waiting_one_at_once(
        tmp_path, s3_store, aiohttp_client, long_enough_clip):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_LADDER_MAX_RENDITIONS="1",
                               SERIES_MIN_DURATION_S="4")
    client = await aiohttp_client(create_app(settings))
    runner = client.app[QUEUE].runner
    running = await _post(client, long_enough_clip, "1", "cancel-running")
    waiting = await _post(client, long_enough_clip, "1", "cancel-waiting")     # the same episode: it waits
    await wait_for_job(client, running["job_id"], until=lambda job: job["state"] in ("transcoding", "failed"))
    (child,) = runner.worker_pids()

    status, cancelled = await _cancel(client, waiting["job_id"])
    assert status == 202 and (cancelled["state"], cancelled["error"]["code"]) == ("failed", "cancelled")

    status, _ = await _cancel(client, running["job_id"])
    asked_at = time.monotonic()
    assert status == 202
    stopped = await wait_for_job(client, running["job_id"])
    while child in runner.worker_pids():
        await asyncio.sleep(0.05)
    assert time.monotonic() - asked_at <= CANCEL_BOUND_S
    assert (stopped["state"], stopped["error"]["code"]) == ("failed", "cancelled")
    with ObjectStore(settings.store) as store:
        store.ensure_bucket()           # nothing was ever published to it
        assert read_pointer(store, EpisodeLocation(series_id=SERIES, episode_id="1")) is None
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)

    status, again = await _cancel(client, running["job_id"])        # finished: answered as it is
    assert status == 202 and again["state"] == "failed"
    async with client.post("/v1/jobs/job_000000000000000000000000/cancel", headers=AUTH) as response:
        assert response.status == 404


def _spooled_request(settings, media: Path, episode: str, key: str) -> JobRequest:
    with ObjectStore(settings.store) as store:
        store.ensure_bucket()           # as the service does at start-up
    spool = settings.jobs.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{key}.upload"
    path.write_bytes(media.read_bytes())
    return JobRequest(series_id=SERIES, episode_id=episode, source_kind=SOURCE_SPOOL, idempotency_key=key,
                      fingerprint=fingerprint({"key": key}), spool_path=str(path), size_bytes=path.stat().st_size)


def test_a_re_run_of_a_job_whose_version_went_live_records_it_and_publishes_nothing(tmp_path, s3_store, short_clip):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_LADDER_MAX_RENDITIONS="1",
                               SERIES_MIN_DURATION_S="4")
    jobs = JobStore.open(settings.database_target)
    try:
        job, _ = jobs.create(_spooled_request(settings, short_clip, "2", "lost-record"))
        first = jobs.start_run(job.job_id, "run-1", settings.jobs.max_attempts,
                               upload_retention_s=settings.jobs.failed_upload_retention_s)
        assert run_job(settings, job.job_id, first.attempt, "run-1") == "published"
        published = jobs.get(job.job_id)
        # the crash the last review found: the pointer switched, then the "published" write was lost
        with jobs.db.transaction() as tx:
            tx.execute("UPDATE ingest_jobs SET state = 'publishing', owner_id = 'run-1' WHERE job_id = ?",
                       (job.job_id,))
        rerun = jobs.start_run(job.job_id, "run-2", settings.jobs.max_attempts,
                               upload_retention_s=settings.jobs.failed_upload_retention_s)
        assert rerun.attempt == first.attempt + 1
        assert run_job(settings, job.job_id, rerun.attempt, "run-2") == "published"
        after = jobs.get(job.job_id)
        assert (after.state, after.version, after.attempt) == ("published", published.version, rerun.attempt)
        with ObjectStore(settings.store) as store:
            location = EpisodeLocation(series_id=SERIES, episode_id="2")
            assert read_pointer(store, location)["version"] == published.version
            assert set(stored_versions(store, location)) == {published.version}     # no second version
    finally:
        jobs.close()


def test_a_superseded_run_is_refused_at_its_pointer_switch(tmp_path, s3_store, short_clip, monkeypatch):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_LADDER_MAX_RENDITIONS="1",
                               SERIES_MIN_DURATION_S="4")
    jobs = JobStore.open(settings.database_target)
    try:
        job, _ = jobs.create(_spooled_request(settings, short_clip, "3", "superseded"))
        run = jobs.start_run(job.job_id, "stale", settings.jobs.max_attempts,
                             upload_retention_s=settings.jobs.failed_upload_retention_s)
        from server.publishing import episode as episode_module

        real_switch = episode_module._fenced_switch

        def take_over_then_switch(versions, location, before_switch):
            # another worker re-runs the job while this one waits for the switch (a long pause, say)
            jobs.start_run(job.job_id, "fresh", settings.jobs.max_attempts,
                           upload_retention_s=settings.jobs.failed_upload_retention_s)
            return real_switch(versions, location, before_switch)

        monkeypatch.setattr(episode_module, "_fenced_switch", take_over_then_switch)
        assert run_job(settings, job.job_id, run.attempt, "stale") == ""
        with ObjectStore(settings.store) as store:
            store.ensure_bucket()
            location = EpisodeLocation(series_id=SERIES, episode_id="3")
            assert read_pointer(store, location) is None                 # nothing went live
            assert stored_versions(store, location) == {}                # and the version was discarded
        after = jobs.get(job.job_id)
        assert (after.state, after.attempt, after.owner_id) == ("queued", run.attempt + 1, "fresh")
    finally:
        jobs.close()


def test_the_cli_lists_with_the_engine_s_view_and_cancels(tmp_path, s3_store, short_clip, capsys, monkeypatch):
    from server.cli.main import main
    from tests.support.jobs import ingest_env

    env = ingest_env(tmp_path, s3_store)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,))
    jobs = JobStore.open(settings.database_target)
    try:
        job, _ = jobs.create(_spooled_request(settings, short_clip, "4", "cli-cancel"))
    finally:
        jobs.close()
    assert main(["jobs"]) == 0
    listed = capsys.readouterr().out
    assert f"{job.job_id}  queued" in listed and "in-process waiting" in listed
    assert main(["jobs", "cancel", job.job_id]) == 0
    assert capsys.readouterr().out.strip() == f"{job.job_id}: cancelled; nothing of it was published"
    assert main(["jobs", "--json", job.job_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["error"]["code"], shown["engine"]["engine"]) == ("failed", "cancelled", "in-process")
    assert main(["jobs", "stop", job.job_id]) == 2           # a typo is one line, not a traceback
    assert main(["worker"]) == 1                             # no distributed engine on SQLite: says so
    assert "series worker` runs jobs from PostgreSQL" in capsys.readouterr().err

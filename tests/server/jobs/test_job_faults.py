"""Faults during ingest jobs: the object store dies, the service or a worker is killed, the database is
locked or full.

Each fault is the real thing (a SeaweedFS process killed by its PID, a `series serve` process killed
with SIGKILL, a second SQLite connection holding the write lock), and each test is bounded in time.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from packager.publishing.publish import EpisodeLocation, read_pointer
from server.app import create_app
from server.ingest.api import JOBS, QUEUE
from server.local.object_store import LocalObjectStore
from server.services import Services
from tests.support.jobs import AUTH, ingest_env, ingest_settings, verify_completion_webhook, wait_for_job
from tests.support.s3_server import free_port, start_test_store

SERIES = "s-faults"
PROJECT_DIR = Path(__file__).resolve().parents[3]


async def _post_upload(client, clip: Path, episode_id: str, key: str, base: str = "", query: str = "") -> dict:
    headers = {**AUTH, "Idempotency-Key": key, "Content-Type": "video/mp4"}
    async with client.post(f"{base}/v1/series/{SERIES}/episodes/{episode_id}/ingest{query}",
                           data=io.BytesIO(clip.read_bytes()), headers=headers) as response:
        assert response.status == 202, await response.text()
        return await response.json()


def _content_keys(settings, episode_id: str) -> int:
    with sqlite3.connect(settings.db_path) as conn:
        return conn.execute("SELECT count(*) FROM content_keys WHERE series_id = ? AND episode_id = ?",
                            (SERIES, episode_id)).fetchone()[0]


@pytest.fixture
def private_store(tmp_path):
    """A SeaweedFS of this test's own, which the test may kill."""
    store = start_test_store(tmp_path / "s3")
    yield store
    store.stop()


async def test_store_killed_mid_job_is_retried_with_a_clear_reason_and_loses_nothing(
        tmp_path, private_store, aiohttp_client, short_clip):
    # The 5 s clip is an acceptable episode here, to keep two transcodes quick. The retry delay is longer
    # than the test: the retry is run by the restarted service, not by a timer.
    settings = ingest_settings(tmp_path / "service", private_store, series=(SERIES,), SERIES_JOB_MAX_ATTEMPTS="2",
                               SERIES_JOB_RETRY_DELAY_S="3600", SERIES_MIN_DURATION_S="3")
    clip = short_clip
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))
    try:
        job = await _post_upload(client, clip, "1", "store-dies")
        # killed once the job is accepted: a spooled job's first store access is its publish, so the store
        # is down for the whole of attempt 1, whichever stage the worker has reached
        os.kill(private_store.pid, signal.SIGKILL)
        await asyncio.to_thread(private_store.stop)         # reaps it and clears its PID file

        waiting = await wait_for_job(client, job["job_id"],
                                     until=lambda j: j["attempt"] == 2 or j["state"] in ("published", "failed"))
        assert (waiting["state"], waiting["attempt"]) == ("queued", 2), waiting
        assert waiting["error"]["code"] == "store_unavailable"
        assert private_store.endpoint in waiting["error"]["message"]
        assert "upload is kept" in waiting["error"]["message"]
    finally:
        await client.close()
    spooled = list(settings.jobs.spool_dir.iterdir())
    assert [path.read_bytes() == clip.read_bytes() for path in spooled] == [True]
    assert await asyncio.to_thread(_content_keys, settings, "1") == 0      # its keys were removed too

    revived = LocalObjectStore(private_store.settings)           # same data, same port
    await asyncio.to_thread(revived.start)
    try:
        location = EpisodeLocation(series_id=SERIES, episode_id="1")
        assert await asyncio.to_thread(read_pointer, services.store, location) is None   # nothing half-published
        client = await aiohttp_client(create_app(settings, services))      # the service comes back too
        published = await wait_for_job(client, job["job_id"])
        assert (published["state"], published["attempt"], published["error"]) == ("published", 2, None)
        # every attempt's reason stays on the job: attempt 1 ended for the store outage
        assert [(e["attempt"], e["code"]) for e in published["attempt_errors"]] == [(1, "store_unavailable")]
        assert (await asyncio.to_thread(read_pointer, services.store, location))["version"] == 1
        await client.close()
    finally:
        services.close()
        await asyncio.to_thread(revived.stop)
    assert not any(settings.jobs.spool_dir.iterdir())


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


async def _wait_until(predicate, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_service_killed_mid_job_resumes_it_on_restart(tmp_path, s3_store, aiohttp_client, landscape_clip,
                                                            webhook_receiver):
    hook_url, received = webhook_receiver
    port = free_port()
    env = {**os.environ, **ingest_env(tmp_path, s3_store, SERIES_LISTEN_PORT=str(port),
                                      SERIES_S3_BUCKET=f"t-{uuid.uuid4().hex[:12]}")}
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_S3_BUCKET=env["SERIES_S3_BUCKET"])
    base = f"http://127.0.0.1:{port}"
    service = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, cwd=PROJECT_DIR,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                try:
                    async with http.get(f"{base}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False
            deadline = time.monotonic() + 60
            while not await ready():
                assert service.poll() is None and time.monotonic() < deadline, "series serve did not start"
                await asyncio.sleep(0.1)
            job = await _post_upload(http, landscape_clip, "1", "killed-service", base=base,
                                     query=f"?webhook_url={quote(hook_url, safe='')}")
            await wait_for_job(http, job["job_id"], base=base, until=lambda j: j["state"] == "transcoding")
            workers = _children(service.pid)
            assert workers, "the job should run in a worker process"
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=10)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    # the workers die with the service instead of racing the restarted one
    await _wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), "orphaned workers")

    services = Services.open(settings)        # the restart
    client = await aiohttp_client(create_app(settings, services))
    try:
        finished = await wait_for_job(client, job["job_id"])
        assert finished["state"] == "published", finished
        assert finished["attempt"] == 2 and finished["version"] == 1 and finished["error"] is None
        assert finished["stage_percent"] == 100 and finished["started_at"] <= finished["finished_at"]
        ladder = finished["ingest_report"]["ladder"]        # what was encoded and why, on the job itself
        assert ladder["mode"] == settings.ladder.mode.value and finished["validation_report"] is None
        assert all(rung["kept"] and rung["measured"]["bytes"] > 0 for rung in ladder["rungs"])
        await wait_for_job(client, job["job_id"], until=lambda j: j["webhook"]["status"] is not None)
        pointer = await asyncio.to_thread(read_pointer, services.store, EpisodeLocation(series_id=SERIES,
                                                                                        episode_id="1"))
        assert pointer["version"] == 1 and pointer["renditions"] == [rung["name"] for rung in ladder["rungs"]]
    finally:
        await client.close()
        services.close()
    assert not any(settings.jobs.spool_dir.iterdir())       # published: the spooled upload has done its work
    (headers, payload), = received                           # one delivery, by the service that finished it
    assert verify_completion_webhook(headers, payload)["event"] == "job.published"
    assert headers["webhook-id"] == f"msg_{job['job_id']}_published"


async def test_locked_database_answers_503_and_corrupts_nothing(tmp_path, s3_store, aiohttp_client, short_clip):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_DB_BUSY_TIMEOUT_MS="200")
    client = await aiohttp_client(create_app(settings))
    holder = sqlite3.connect(settings.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")          # another writer holds the database
    try:
        headers = {**AUTH, "Idempotency-Key": "locked-1", "Content-Type": "video/mp4"}
        url = f"/v1/series/{SERIES}/episodes/1/ingest"
        async with client.post(url, data=short_clip.read_bytes(), headers=headers) as response:
            assert response.status == 503
            assert response.content_type == "application/problem+json"
            assert response.headers["Retry-After"].isdigit()
            assert (await response.json())["code"] == "database_unavailable"
        async with client.get("/v1/jobs", headers=AUTH) as response:
            assert response.status == 200          # reads go on while a writer holds the lock
        assert not any(settings.jobs.spool_dir.iterdir())     # the refused upload left no copy behind
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    async with client.post(url, data=short_clip.read_bytes(), headers=headers) as response:
        assert response.status == 202              # the upload service's retry succeeds
    with sqlite3.connect(settings.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM ingest_jobs").fetchone()[0] == 1


async def test_a_crashed_worker_fails_its_job_and_the_service_goes_on(tmp_path, s3_store, aiohttp_client,
                                                                       landscape_clip, short_clip):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,))
    client = await aiohttp_client(create_app(settings))
    runner = client.app[QUEUE].runner
    crashing = await _post_upload(client, landscape_clip, "1", "crash-1")
    stranded = await _post_upload(client, short_clip, "2", "crash-2")      # waits in the pool's queue
    await wait_for_job(client, crashing["job_id"], until=lambda j: j["state"] == "transcoding")
    (worker,) = runner.worker_pids()
    os.kill(worker, signal.SIGKILL)             # a segfault in native code looks the same from here
    async with client.get("/healthz") as response:
        assert response.status == 200

    crashed = await wait_for_job(client, crashing["job_id"])
    assert (crashed["state"], crashed["error"]["code"]) == ("failed", "worker_crashed")
    assert "the upload is kept for 7 days" in crashed["error"]["message"]     # SERIES_FAILED_UPLOAD_RETENTION_S
    # the job queued behind it was never started: it runs in the new pool instead of failing with it
    other = await wait_for_job(client, stranded["job_id"])
    assert (other["state"], other["error"]["code"], other["attempt"]) == ("failed", "media_rejected", 1)
    assert worker not in runner.worker_pids()


async def test_full_database_answers_503_and_keeps_what_it_had(tmp_path, s3_store, aiohttp_client):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,))
    client = await aiohttp_client(create_app(settings))
    jobs_db = client.app[JOBS].db
    (pages,) = jobs_db.query("PRAGMA page_count")[0]
    jobs_db.query(f"PRAGMA max_page_count = {pages + 2}")     # the disk fills up a few rows from now
    url = f"/v1/series/{SERIES}/episodes/1/ingest"
    accepted, refused = [], None
    for index in range(200):
        headers = {**AUTH, "Idempotency-Key": f"full-{index}-" + "k" * 200, "Content-Type": "video/mp4"}
        async with client.post(url, data=b"not a video", headers=headers) as response:
            if response.status == 503:
                refused = await response.json()
                break
            assert response.status == 202
            accepted.append((await response.json())["job_id"])
    assert refused is not None and refused["code"] == "database_unavailable", "the database never filled up"
    assert accepted
    for job_id in accepted:                     # everything recorded before is still there
        async with client.get(f"/v1/jobs/{job_id}", headers=AUTH) as response:
            assert response.status == 200
    assert jobs_db.query("PRAGMA integrity_check")[0][0] == "ok"
    assert len(list(settings.jobs.spool_dir.iterdir())) == len(accepted)    # the refused upload left nothing

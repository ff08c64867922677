"""Durable completion webhooks: each delivery and every attempt recorded in the database (both engines),
retried on the schedule while the receiver may yet answer, failed at once when no retry would change the
answer, and redelivered by an operator (CLI and API) with the same webhook-id. Attempts are made by the
in-process runner's loop on SQLite and by Procrastinate's task on PostgreSQL, against a real receiver."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from drm.storage.engines import open_database
from server.app import create_app
from server.config import Settings
from server.jobs.job_store import JobStore
from server.jobs.jobs import SOURCE_BUCKET, JobRequest, fingerprint
from server.jobs.webhooks.completion import DeliveryOutcome
from server.jobs.webhooks.deliveries import DELIVERED, FAILED, PENDING, DeliveryLoop, DeliveryStore
from tests.server.catalog_support import OPERATOR_TOKEN
from tests.support.jobs import ingest_env, verify_completion_webhook

PROJECT_DIR = Path(__file__).resolve().parents[3]
DEADLINE_S = 60.0


@pytest.fixture
async def receiver(aiohttp_server):
    """A loopback webhook receiver answering each POST with the next status of `answers` (then 204)."""
    answers: list[int] = []
    seen: list[tuple[dict, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=answers.pop(0) if answers else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), answers, seen


def _settings(tmp_path, s3_store, db_target: str, **overrides: str) -> Settings:
    is_postgresql = db_target.startswith("postgresql")
    database = {"SERIES_DATABASE_URL": db_target} if is_postgresql else {"SERIES_DB_PATH": db_target}
    return Settings.from_env(ingest_env(tmp_path, s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                                        SERIES_JOB_WEBHOOK_RETRY_DELAYS_S="0.2, 0.2", **database, **overrides))


def _finished_job(jobs: JobStore, url: str, key: str = "k1"):
    """A job that ended (failed: the cheapest end to make) with a webhook_url."""
    job, _ = jobs.create(JobRequest(series_id="s", episode_id="1", source_kind=SOURCE_BUCKET, source_bucket="uploads",
                                    source_key=f"raw/{key}.mp4", idempotency_key=key,
                                    fingerprint=fingerprint({"key": key}), webhook_url=url))
    assert jobs.fail(job.job_id, job.attempt, "media_rejected", "no video")
    return jobs.get(job.job_id)


def test_each_attempt_is_kept_and_the_schedule_decides_what_comes_next(tmp_path, s3_store, db_target):
    settings = _settings(tmp_path, s3_store, db_target)
    jobs = JobStore.open(db_target)
    try:
        store = DeliveryStore(jobs.db, settings.jobs)
        job = _finished_job(jobs, "http://127.0.0.1:9/hook")
        delivery = store.record(job)
        assert store.record(job) == delivery                  # one delivery per event, however often asked
        assert (delivery.state, delivery.attempts) == (PENDING, 0) and store.due() == [delivery]

        def attempt(outcome: DeliveryOutcome):
            assert store.take(delivery.delivery_id, "holder") is not None
            assert store.take(delivery.delivery_id, "another") is None      # one attempt at a time
            return store.record_attempt(delivery.delivery_id, "holder", outcome)

        down = DeliveryOutcome(delivered=False, retryable=True, status="failed (HTTP 503)", http_status=503)
        after = attempt(down)
        assert (after.state, after.attempts) == (PENDING, 1) and after.next_attempt_at > time.time()
        assert store.due() == []                                             # not before its delay
        time.sleep(0.25)
        after = attempt(down)
        time.sleep(0.25)
        after = attempt(down)                                                # the schedule (2 delays) is spent
        assert (after.state, after.attempts, after.next_attempt_at) == (FAILED, 3, None)
        assert "not retried (after 3 attempts)" in jobs.get(job.job_id).webhook_status
        assert [a.status for a in store.attempts(delivery.delivery_id)] == ["failed (HTTP 503)"] * 3

        again = store.redeliver(delivery.delivery_id)                        # an operator: the schedule restarts
        assert (again.state, again.attempts) == (PENDING, 0)
        gone = DeliveryOutcome(delivered=False, retryable=False, status="failed (HTTP 410)", http_status=410)
        after = attempt(gone)                                                # no retry changes a 410
        assert (after.state, after.attempts) == (FAILED, 1)
        assert [a.attempt for a in store.attempts(delivery.delivery_id)] == [1, 2, 3, 4]
        store.redeliver(delivery.delivery_id)
        ok = DeliveryOutcome(delivered=True, retryable=False, status="delivered (HTTP 204)", http_status=204)
        after = attempt(ok)
        assert after.state == DELIVERED and after.delivered_at is not None
        assert jobs.get(job.job_id).webhook_status == "delivered (HTTP 204)"
        assert [d.delivery_id for d in store.list(job_id=job.job_id)] == [delivery.delivery_id]
    finally:
        jobs.close()


async def test_the_runner_s_loop_retries_a_receiver_that_was_down(tmp_path, s3_store, receiver):
    url, answers, seen = receiver
    settings = _settings(tmp_path, s3_store, str(tmp_path / "series.db"))
    answers.extend([503, 502])
    jobs = await asyncio.to_thread(JobStore.open, settings.database_target)
    loop = DeliveryLoop(settings.jobs, jobs.db, "runner-1")
    loop.start()
    try:
        job = await asyncio.to_thread(_finished_job, jobs, url)
        await loop.notify(job)
        store = DeliveryStore(jobs.db, settings.jobs)
        delivery = await _until(lambda: next((d for d in store.list(job_id=job.job_id) if d.state == DELIVERED), None))
    finally:
        await loop.close()
        jobs.close()
    assert delivery.attempts == 3 and len(seen) == 3
    ids = {headers["webhook-id"] for headers, _ in seen}
    assert ids == {delivery.message_id}                     # receivers de-duplicate on it
    for headers, payload in seen:
        assert verify_completion_webhook(headers, payload)["job"]["job_id"] == job.job_id


async def test_an_operator_lists_deliveries_and_redelivers_by_api_and_cli(tmp_path, s3_store, receiver,
                                                                          aiohttp_client):
    url, _, seen = receiver
    settings = _settings(tmp_path, s3_store, str(tmp_path / "series.db"))
    client = await aiohttp_client(create_app(settings))
    jobs = await asyncio.to_thread(JobStore.open, settings.database_target)
    try:
        job = await asyncio.to_thread(_finished_job, jobs, url)
        store = DeliveryStore(jobs.db, settings.jobs)
        delivery = await asyncio.to_thread(store.record, job)
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        await _until(lambda: store.get(delivery.delivery_id).state == DELIVERED)     # the service's loop

        async with client.get(f"/v1/operator/webhook-deliveries?job_id={job.job_id}", headers=operator) as response:
            assert response.status == 200
            (listed,) = (await response.json())["deliveries"]
        assert (listed["state"], [a["status"] for a in listed["attempt_log"]]) == (DELIVERED, ["delivered (HTTP 204)"])
        async with client.get("/v1/operator/webhook-deliveries") as response:
            assert response.status == 401
        async with client.post(f"/v1/operator/webhook-deliveries/{delivery.delivery_id}/redeliver",
                               headers=operator) as response:
            assert response.status == 202 and (await response.json())["state"] == PENDING
        await _until(lambda: len(store.attempts(delivery.delivery_id)) == 2)

        env = {**os.environ, **ingest_env(tmp_path, s3_store, SERIES_JOB_WEBHOOK_RETRY_DELAYS_S="0.2")}
        redelivered = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server", "webhooks", "redeliver",
                                                               delivery.delivery_id], cwd=PROJECT_DIR, env=env,
                                              capture_output=True, text=True, timeout=60)
        assert redelivered.returncode == 0, redelivered.stderr
        assert "redelivery queued" in redelivered.stdout
        await _until(lambda: len(store.attempts(delivery.delivery_id)) == 3)
        listing = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server", "webhooks", "deliveries",
                                                           "--job", job.job_id, "--json"], cwd=PROJECT_DIR, env=env,
                                          capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        (shown,) = json.loads(listing.stdout)
        assert [a["attempt"] for a in shown["attempt_log"]] == [1, 2, 3]
        missing = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server", "webhooks", "redeliver",
                                                           "dlv_000000000000000000000000"], cwd=PROJECT_DIR, env=env,
                                          capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "delivery_not_found" in missing.stderr
    finally:
        jobs.close()
    assert len({headers["webhook-id"] for headers, _ in seen}) == 1 and len(seen) == 3


async def test_procrastinate_delivers_and_retries_as_a_task(tmp_path, s3_store, receiver, postgres_url):
    from server.jobs.engines.procrastinate_engine import Engine, run_worker

    url, answers, seen = receiver
    settings = _settings(tmp_path, s3_store, postgres_url)
    answers.append(503)
    worker = asyncio.get_running_loop().create_task(run_worker(settings, queues=["webhooks"], drain_s=1))
    jobs = await asyncio.to_thread(JobStore.open, postgres_url)
    engine = Engine(settings, jobs)
    await engine.open()
    try:
        job = await asyncio.to_thread(_finished_job, jobs, url)
        await engine._finished(job)        # what the transcode task does when a job ends
        store = DeliveryStore(jobs.db, settings.jobs)
        delivery = await _until(lambda: next((d for d in store.list(job_id=job.job_id) if d.state == DELIVERED), None))

        def tasks() -> list[str] | None:       # the engine records a task's end just after the task returns
            with open_database(postgres_url) as db:
                rows = db.query("SELECT status FROM procrastinate_jobs WHERE task_name = 'series.deliver_webhook'")
            statuses = sorted(str(row[0]) for row in rows)
            return statuses if "doing" not in statuses else None
        statuses = await _until(tasks)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await engine.close()
        jobs.close()
    assert delivery.attempts == 2 and len(seen) == 2
    assert statuses == ["succeeded", "succeeded"]        # one task per attempt


async def _until(predicate, timeout_s: float = DEADLINE_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)

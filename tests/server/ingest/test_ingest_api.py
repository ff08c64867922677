"""The ingest hand-off API over real HTTP: 202 at once, the job followed to the end, idempotent retries."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import replace

import pytest

from packager.publishing.publish import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from server.app import create_app
from server.services import Services
from tests.conftest import settings_for
from tests.server.edge.test_metrics import samples, value
from tests.support.jobs import AUTH, ingest_settings, verify_completion_webhook, wait_for_job

SERIES = "s-ingest"


@pytest.fixture
async def api(tmp_path, s3_store, aiohttp_client):
    """(client, settings, services) for a service with the hand-off API open and its own buckets."""
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                               SERIES_MAX_UPLOAD_BYTES=str(4 * 1024 * 1024))
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    with _uploads(settings) as uploads:
        await asyncio.to_thread(uploads.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))
    yield client, settings, services
    await client.close()
    services.close()


def _uploads(settings) -> ObjectStore:
    return ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket))


async def test_referenced_upload_ends_with_a_signed_webhook(api, short_clip, webhook_receiver):
    """A reference into the uploads bucket, followed to its end (publication is in test_job_faults.py)."""
    client, settings, services = api
    hook_url, received = webhook_receiver
    with _uploads(settings) as uploads:
        await asyncio.to_thread(uploads.put_bytes, "raw/ep1.mp4", short_clip.read_bytes())
    body = {"bucket": settings.jobs.uploads_bucket, "key": "raw/ep1.mp4", "webhook_url": hook_url}
    headers = {**AUTH, "Idempotency-Key": "upload-ep1"}

    async with client.post(f"/v1/series/{SERIES}/episodes/1/ingest", json=body, headers=headers) as response:
        assert response.status == 202
        accepted = await response.json()
        assert response.headers["Location"] == f"/v1/jobs/{accepted['job_id']}"
    assert accepted["state"] == "queued"

    # a retry of the same hand-off is the same job; the same key for another object is refused
    async with client.post(f"/v1/series/{SERIES}/episodes/1/ingest", json=body, headers=headers) as response:
        assert response.status == 202
        assert (await response.json())["job_id"] == accepted["job_id"]
    async with client.post(f"/v1/series/{SERIES}/episodes/2/ingest", json=body, headers=headers) as response:
        assert response.status == 422
        assert (await response.json())["code"] == "idempotency_key_reused"

    job = await wait_for_job(client, accepted["job_id"])
    assert (job["state"], job["error"]["code"]) == ("failed", "media_rejected"), job
    assert job["source"] == {"bucket": settings.jobs.uploads_bucket, "key": "raw/ep1.mp4"}
    assert job["started_at"] <= job["finished_at"]
    pointer = await asyncio.to_thread(read_pointer, services.store, EpisodeLocation(series_id=SERIES, episode_id="1"))
    assert pointer is None

    finished = await wait_for_job(client, job["job_id"], until=lambda j: j["webhook"]["status"] is not None)
    assert finished["webhook"]["status"].startswith("delivered")
    headers, payload = received[-1]
    event = verify_completion_webhook(headers, payload)
    assert event["event"] == "job.failed" and event["job"]["job_id"] == job["job_id"]
    assert event["job"]["validation_report"]["reasons"][0]["code"] == "too_short"
    # recorded before the webhook went out
    async with client.get("/metrics") as response:
        found = samples(await response.text())
    assert value(found, "series_job_duration_seconds_count", kind="ingest", outcome="failed") == 1, found


async def test_streamed_upload_that_is_rejected_reports_every_reason_and_keeps_the_upload(api, short_clip):
    client, settings, _ = api
    data = short_clip.read_bytes()
    headers = {**AUTH, "Idempotency-Key": "short-1", "Content-Type": "video/mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/7/ingest", data=data, headers=headers) as response:
        assert response.status == 202, await response.text()
        job_id = (await response.json())["job_id"]
    async with client.post(f"/v1/series/{SERIES}/episodes/7/ingest", data=data, headers=headers) as response:
        assert (await response.json())["job_id"] == job_id
    async with client.post(f"/v1/series/{SERIES}/episodes/7/ingest", data=data + b"x", headers=headers) as response:
        assert response.status == 422

    job = await wait_for_job(client, job_id)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "media_rejected"
    assert job["validation_report"]["verdict"] == "rejected"
    assert "too_short" in {issue["code"] for issue in job["validation_report"]["reasons"]}
    assert job["source"] == {"upload_bytes": len(data)}
    spooled = list(settings.jobs.spool_dir.iterdir())
    assert [path.read_bytes() == data for path in spooled] == [True]     # kept, and only one copy


async def test_requests_that_cannot_be_accepted_are_4xx_problems(api):
    client, settings, _ = api
    url = f"/v1/series/{SERIES}/episodes/1/ingest"
    keyed = {**AUTH, "Idempotency-Key": "k1"}
    cases = [
        ({}, {"bucket": settings.jobs.uploads_bucket, "key": "a"}, 401, "ingest_unauthorized"),
        ({"Authorization": "Bearer wrong-token-wrong-token", "Idempotency-Key": "k"}, {}, 401, "ingest_unauthorized"),
        (AUTH, {"bucket": settings.jobs.uploads_bucket, "key": "a"}, 400, "bad_ingest_request"),
        (keyed, {"bucket": "someone-elses", "key": "a"}, 400, "bad_ingest_request"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "../../series/x"}, 400, "bad_ingest_request"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "a", "webhook_url": "http://"}, 400,
         "bad_ingest_request"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "a", "webhook_url": "file:///etc"}, 400,
         "bad_ingest_request"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "a", "webhook_url": "gopher://127.0.0.1/x"}, 422,
         "webhook_url_not_allowed"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "a", "webhook_url": "http://169.254.169.254/latest"},
         422, "webhook_url_not_allowed"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "a", "webhook_url": "http://u:p@127.0.0.1/x"}, 422,
         "webhook_url_not_allowed"),
        (keyed, {"bucket": settings.jobs.uploads_bucket, "key": "never-uploaded"}, 422, "upload_not_found"),
        (keyed, [1, 2], 400, "bad_ingest_request"),
    ]
    for headers, body, status, code in cases:
        async with client.post(url, json=body, headers=headers) as response:
            assert (response.status, (await response.json())["code"]) == (status, code), body
            assert response.content_type == "application/problem+json"

    async with client.post("/v1/series/no-such-series/episodes/1/ingest", data=b"\0" * 1024,
                           headers={**keyed, "Content-Type": "video/mp4"}) as response:
        assert (response.status, (await response.json())["code"]) == (404, "unknown_series")
        assert not any(settings.jobs.spool_dir.glob("*"))    # refused before the upload was taken

    too_big = b"\0" * (settings.jobs.max_upload_bytes + 1)
    async with client.post(url, data=io.BytesIO(too_big), headers={**keyed, "Content-Type": "video/mp4"}) as response:
        assert response.status == 413           # refused on its Content-Length, before reading it

    async def chunked():                        # no Content-Length: refused once the limit is crossed
        for _ in range(len(too_big) // 65536 + 1):
            yield too_big[:65536]

    async with client.post(url, data=chunked(), headers={**keyed, "Content-Type": "video/mp4"}) as response:
        assert response.status == 413
    async with client.post(url, data=b"", headers={**keyed, "Content-Type": "video/mp4"}) as response:
        assert response.status == 400
    assert not any(settings.jobs.spool_dir.iterdir())          # refused uploads leave nothing behind

    async with client.get("/v1/jobs/job_" + "0" * 24, headers=AUTH) as response:
        assert response.status == 404
    async with client.get("/v1/jobs?state=bogus", headers=AUTH) as response:
        assert response.status == 400
    async with client.get("/v1/jobs", headers=AUTH) as response:
        assert (await response.json()) == {"jobs": []}


async def test_the_api_is_closed_when_no_ingest_token_is_configured(tmp_path, s3_store, aiohttp_client):
    settings = settings_for(tmp_path, s3_store)
    assert settings.jobs.ingest_token is None
    client = await aiohttp_client(create_app(settings))
    async with client.get("/v1/jobs", headers=AUTH) as response:
        assert response.status == 401
        assert "SERIES_INGEST_TOKEN" in (await response.json())["detail"]

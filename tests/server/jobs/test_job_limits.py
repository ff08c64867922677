"""A job's limits and how its failures read: a wall-time limit that kills the worker, errors naming what the
uploader sent (not our spool file) with the retention note, for rejected media as for other failures."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from packager.store import ObjectStore
from server.app import create_app
from server.services import Services
from tests.support.jobs import AUTH, ingest_settings, wait_for_job

SERIES = "s-limits"


@pytest.fixture
async def service(tmp_path, s3_store, aiohttp_client):
    """Factory: await service(**SERIES_* overrides) → (client, settings)."""
    opened = []

    async def make(**overrides: str):
        settings = ingest_settings(tmp_path / f"s{len(opened)}", s3_store, series=(SERIES,),
                                   SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}", **overrides)
        services = Services.open(settings)
        await asyncio.to_thread(services.store.ensure_bucket)
        client = await aiohttp_client(create_app(settings, services))
        opened.append((client, services))
        return client, settings

    yield make
    for client, services in opened:
        await client.close()
        services.close()


async def _stream(client, data: bytes, episode: str, key: str) -> dict:
    headers = {**AUTH, "Idempotency-Key": key, "Content-Type": "video/mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/{episode}/ingest", data=io.BytesIO(data),
                           headers=headers) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def test_a_job_past_its_wall_time_is_killed_and_failed_with_the_reason(service, landscape_clip):
    client, settings = await service(SERIES_JOB_MAX_S="1")
    job = await _stream(client, landscape_clip.read_bytes(), "1", "slow-1")
    failed = await wait_for_job(client, job["job_id"])
    assert failed["state"] == "failed" and failed["error"]["code"] == "job_timed_out", failed
    message = failed["error"]["message"]
    assert "after running for 1 second" in message and "SERIES_JOB_MAX_S" in message
    assert "the upload is kept for 7 days" in message
    assert [p.read_bytes() == landscape_clip.read_bytes() for p in settings.jobs.spool_dir.iterdir()] == [True]


async def test_a_rejected_streamed_upload_is_named_as_sent_and_carries_the_retention_note(service, not_media):
    client, settings = await service()
    job = await _stream(client, not_media.read_bytes(), "2", "notes-1")
    failed = await wait_for_job(client, job["job_id"])
    assert failed["error"]["code"] == "media_rejected"
    message = failed["error"]["message"]
    assert message.startswith("the upload is not a media file FFmpeg can read"), message
    assert "the upload is kept for 7 days; the job can be submitted again" in message
    assert "job_" not in message and ".upload" not in message            # never our spool file's name
    assert failed["validation_report"]["file"] == "the upload"


async def test_a_rejected_bucket_object_is_named_by_its_key(service, not_media):
    client, settings = await service()
    with ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket)) as uploads:
        await asyncio.to_thread(uploads.ensure_bucket)
        await asyncio.to_thread(uploads.put_bytes, "raw/episode 9.mp4", not_media.read_bytes())
    body = {"bucket": settings.jobs.uploads_bucket, "key": "raw/episode 9.mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/9/ingest", json=body,
                           headers={**AUTH, "Idempotency-Key": "ref-9"}) as response:
        assert response.status == 202, await response.text()
        job = await response.json()
    failed = await wait_for_job(client, job["job_id"])
    assert failed["error"]["message"].startswith("episode 9.mp4 is not a media file"), failed["error"]
    assert "the upload stays in the uploads bucket" in failed["error"]["message"]
    assert not any(Path(settings.work_dir).glob("upload-*"))            # the temporary copy is gone

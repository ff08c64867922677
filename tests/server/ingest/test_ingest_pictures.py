"""The hand-off API's poster time: named in the JSON reference or the streamed upload's query, kept on the
job, honoured by the worker (the report and the poster say so), refused when malformed, and a time past
the episode's end failing the job with its code while nothing is published."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from packager.store import ObjectStore
from server.app import create_app
from server.services import Services
from tests.support.jobs import AUTH, ingest_settings, wait_for_job
from tests.support.media import clip
from tests.support.pictures import DURATION_S, FPS, SUBTITLES

SERIES = "s-pictures"


@pytest.fixture
async def api(tmp_path, s3_store, aiohttp_client):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                               SERIES_MIN_DURATION_S="5")
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))
    yield client, settings, services
    await client.close()
    services.close()


@pytest.fixture(scope="module")
def captioned(media_dir):
    return clip(media_dir, "pictures-captioned.mp4", duration_s=DURATION_S, width=320, height=180, fps=FPS,
                black_until_s=1.0, subtitles=SUBTITLES)


async def test_a_named_poster_time_reaches_the_published_poster(api, captioned):
    client, settings, _ = api
    with ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket)) as uploads:
        await asyncio.to_thread(uploads.ensure_bucket)
        await asyncio.to_thread(uploads.put_bytes, "raw/1.mp4", captioned.read_bytes(), content_type="video/mp4")
    body = {"bucket": settings.jobs.uploads_bucket, "key": "raw/1.mp4", "poster_at_s": 4.2}
    async with client.post(f"/v1/series/{SERIES}/episodes/1/ingest", json=body,
                           headers={**AUTH, "Idempotency-Key": "pictures-1"}) as response:
        assert response.status == 202, await response.text()
        assert (await response.json())["poster_at_s"] == 4.2
        job_id = (await response.json())["job_id"]
    job = await wait_for_job(client, job_id)
    assert job["state"] == "published", job["error"]
    report = job["ingest_report"]
    assert report["pictures"]["poster"]["chosen_by"] == "creator"
    assert abs(report["pictures"]["poster"]["time_s"] - 4.2) <= 1 / FPS
    assert [track["language"] for track in report["captions"]["tracks"]] == ["en"]
    assert report["pictures"]["storyboard"]["tiles"] >= 1


async def test_poster_times_are_checked_at_the_door_and_past_the_end_by_the_job(api, captioned):
    client, _, services = api
    headers = {**AUTH, "Content-Type": "video/mp4"}
    for bad in ("-1", "soon", "nan"):
        async with client.post(f"/v1/series/{SERIES}/episodes/2/ingest?poster_at_s={bad}", data=b"x",
                               headers={**headers, "Idempotency-Key": f"bad-{bad}"}) as response:
            assert response.status == 400, bad
    async with client.post(f"/v1/series/{SERIES}/episodes/2/ingest?poster_at_s=30", data=captioned.read_bytes(),
                           headers={**headers, "Idempotency-Key": "late-poster"}) as response:
        assert response.status == 202, await response.text()
        job_id = (await response.json())["job_id"]
    job = await wait_for_job(client, job_id)
    assert job["state"] == "failed" and job["error"]["code"] == "picture_time_out_of_range"
    assert "outside the episode" in job["error"]["message"]
    assert not await asyncio.to_thread(services.store.list_keys, f"series/{SERIES}/episodes/2/")

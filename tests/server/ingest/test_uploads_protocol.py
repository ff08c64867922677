"""The tus 1.0 protocol at /v1/uploads over real HTTP, with the real object store: discovery, creation
(the size cap and series rules before a byte is stored), chunks smaller than an S3 part carried in a tail,
offsets, checksums, termination, and the ingest job queued once when the last byte arrives."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3

import pytest

from drm.errors import UnknownEpisode
from server.app import create_app
from server.services import Services
from tests.support.jobs import AUTH, wait_for_job
from tests.support.uploads import (
    PART_BYTES,
    TUS,
    checksum,
    creation_headers,
    cut_off_patch,
    patch_headers,
    stored_traces,
    upload_settings,
    uploads_bucket,
)

SERIES = "s-tus"
CAP_BYTES = 24 * 1024 * 1024


@pytest.fixture
async def service(tmp_path, s3_store, aiohttp_client):
    settings = upload_settings(tmp_path, s3_store, series=(SERIES,), SERIES_MAX_UPLOAD_BYTES=str(CAP_BYTES))
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    bucket = uploads_bucket(settings)
    await asyncio.to_thread(bucket.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))
    yield client, settings, services, bucket
    await client.close()
    bucket.close()
    services.close()


async def create(client, length: int, auth=AUTH, **values: str):
    values = {"series": SERIES, "episode": "1", "filename": "clip.mp4", **values}
    return await client.post("/v1/uploads", headers=creation_headers(auth, length, **values))


async def created(client, length: int, **values: str) -> str:
    async with await create(client, length, **values) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Tus-Resumable"] == "1.0.0"
        return response.headers["Location"]


async def offset_of(client, url: str, auth=AUTH) -> int:
    async with client.head(url, headers={**auth, **TUS}) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        return int(response.headers["Upload-Offset"])


async def test_discovery_says_what_the_server_speaks(service):
    client, settings, *_ = service
    async with client.options("/v1/uploads") as response:
        assert response.status == 204
        assert response.headers["Tus-Version"] == "1.0.0" and response.headers["Tus-Resumable"] == "1.0.0"
        assert set(response.headers["Tus-Extension"].split(",")) == {
            "creation", "creation-with-upload", "termination", "expiration", "checksum"}
        assert int(response.headers["Tus-Max-Size"]) == CAP_BYTES
        assert {"sha1", "sha256"} <= set(response.headers["Tus-Checksum-Algorithm"].split(","))


async def test_chunks_smaller_than_a_part_are_carried_to_the_end_and_queue_one_job(service):
    client, settings, services, bucket = service
    data = os.urandom(2 * PART_BYTES + 123_457)         # two full parts and a short last one
    url = await created(client, len(data), title="The bowline")
    assert url.startswith("/v1/uploads/up_")
    episode = await asyncio.to_thread(services.catalog.get_episode, SERIES, "1")
    assert (episode.status, episode.title) == ("uploading", "The bowline")   # its slot is taken at once
    offset, chunk_bytes = 0, 3 * 1024 * 1024 + 17       # never on a part boundary
    while offset < len(data):
        chunk = data[offset:offset + chunk_bytes]
        async with client.patch(url, data=io.BytesIO(chunk), headers=patch_headers(AUTH, offset)) as response:
            assert response.status == 204, await response.text()
            offset = int(response.headers["Upload-Offset"])
        assert await offset_of(client, url) == offset if offset < len(data) else True
    assert offset == len(data)
    job_id = response.headers["Series-Job-Id"]
    async with client.get(url, headers=AUTH) as response:
        shown = await response.json()
    assert (shown["state"], shown["job_id"], shown["percent"]) == ("completed", job_id, 100.0)
    joined = await asyncio.to_thread(bucket.get_bytes, shown and f"tus/{url.rsplit('/', 1)[1]}/media/clip.mp4")
    assert joined == data                               # every byte, in order, tails included
    assert (await asyncio.to_thread(stored_traces, bucket))[1] == []      # no multipart upload left open
    async with client.head(url, headers={**AUTH, **TUS}) as response:
        assert int(response.headers["Upload-Offset"]) == len(data) and "Upload-Expires" not in response.headers
    # a PATCH after the end is refused; the job was queued once
    async with client.patch(url, data=b"x", headers=patch_headers(AUTH, len(data))) as response:
        assert response.status == 409 and (await response.json())["code"] == "upload_complete"
    jobs = [job for job in (await (await client.get("/v1/jobs", headers=AUTH)).json())["jobs"]]
    assert [job["job_id"] for job in jobs] == [job_id]
    job = await wait_for_job(client, job_id)
    assert job["error"]["code"] == "media_rejected"      # random bytes: the pipeline judged the file we joined
    assert "clip.mp4" in job["error"]["message"] or job["validation_report"]


async def test_size_cap_and_series_rules_refuse_before_anything_is_stored(service):
    client, settings, services, bucket = service
    async with await create(client, CAP_BYTES + 1) as response:
        assert response.status == 413 and (await response.json())["code"] == "upload_too_large"
        assert response.headers["Tus-Resumable"] == "1.0.0"
    async with await create(client, 10, series="no-such-series") as response:
        assert response.status == 404 and (await response.json())["code"] == "unknown_series"
    for number in range(2, 82):                          # 80 episodes: the series is full
        await asyncio.to_thread(services.catalog.create_episode, SERIES, str(number))
    async with await create(client, 10, episode="81st") as response:
        assert response.status == 409 and (await response.json())["code"] == "episode_limit_reached"
    async with client.get("/v1/uploads", headers=AUTH) as response:
        assert (await response.json())["uploads"] == []
    assert await asyncio.to_thread(stored_traces, bucket) == ([], [])
    # a new version of an existing episode takes no new slot
    assert (await created(client, 10, episode="2")).startswith("/v1/uploads/")


async def test_bad_requests_get_the_tus_answers(service):
    client, *_ = service
    async with client.post("/v1/uploads", headers={**AUTH, "Upload-Length": "5"}) as response:
        assert response.status == 412 and response.headers["Tus-Version"] == "1.0.0"
    async with client.post("/v1/uploads", headers=creation_headers(AUTH, 5, series=SERIES)) as response:
        assert response.status == 400 and "episode" in (await response.json())["detail"]
    async with client.post("/v1/uploads", headers={**AUTH, **TUS, "Upload-Defer-Length": "1"}) as response:
        assert response.status == 400
    async with client.post("/v1/uploads", headers={**TUS, "Upload-Length": "5"}) as response:
        assert response.status == 401
    url = await created(client, 10)
    async with client.patch(url, data=b"abc", headers={**patch_headers(AUTH, 0), "Content-Type": "video/mp4"}) as r:
        assert r.status == 415
    async with client.patch(url, data=b"abc", headers=patch_headers(AUTH, 4)) as response:
        assert response.status == 409 and (await response.json())["code"] == "upload_offset_mismatch"
    async with client.patch(url, data=b"0123456789ab", headers=patch_headers(AUTH, 0)) as response:
        assert response.status == 413 and (await response.json())["code"] == "upload_length_exceeded"
    assert await offset_of(client, url) == 0
    async with client.head("/v1/uploads/up_000000000000000000000000", headers={**AUTH, **TUS}) as response:
        assert response.status == 404


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
async def test_a_checksum_mismatch_is_460_and_keeps_nothing_of_the_chunk(service, algorithm):
    client, settings, services, bucket = service
    data = os.urandom(PART_BYTES + 4096)                 # the chunk fills a part before it can be judged
    url = await created(client, len(data) + 10)
    wrong = checksum(algorithm, data[:-1] + b"\0")
    async with client.patch(url, data=io.BytesIO(data), headers=patch_headers(AUTH, 0, **{"Upload-Checksum": wrong})) as response:
        assert response.status == 460 and (await response.json())["code"] == "checksum_mismatch"
    assert await offset_of(client, url) == 0
    async with client.patch(url, data=io.BytesIO(data), headers=patch_headers(AUTH, 0, **{"Upload-Checksum": "md4 AAAA"})) as r:
        assert r.status == 400
    right = checksum(algorithm, data)
    async with client.patch(url, data=io.BytesIO(data), headers=patch_headers(AUTH, 0, **{"Upload-Checksum": right})) as response:
        assert response.status == 204 and int(response.headers["Upload-Offset"]) == len(data)
    async with client.patch(url, data=b"0123456789", headers=patch_headers(AUTH, len(data))) as response:
        assert response.status == 204
    upload_id = url.rsplit("/", 1)[1]
    assert await asyncio.to_thread(bucket.get_bytes, f"tus/{upload_id}/media/clip.mp4") == data + b"0123456789"


async def test_two_patches_at_one_offset_one_wins_the_other_409(service):
    client, *_ = service
    url = await created(client, 200_000)
    release = asyncio.Event()

    async def slow_body():
        yield b"a" * 50_000
        await release.wait()
        yield b"b" * 50_000

    first = asyncio.ensure_future(client.patch(url, data=slow_body(), headers=patch_headers(AUTH, 0)))
    await asyncio.sleep(0.5)                             # the first holds the upload, mid-body
    async with client.patch(url, data=b"c" * 100_000, headers=patch_headers(AUTH, 0)) as response:
        assert response.status == 409 and (await response.json())["code"] == "upload_locked"
    release.set()
    async with await first as response:
        assert response.status == 204 and response.headers["Upload-Offset"] == "100000"
    async with client.patch(url, data=b"c" * 100_000, headers=patch_headers(AUTH, 0)) as response:
        assert response.status == 409 and (await response.json())["code"] == "upload_offset_mismatch"
    # racing for real: many at once at the same offset, exactly one kept
    responses = await asyncio.gather(*(client.patch(url, data=bytes([65 + i]) * 1000,
                                                    headers=patch_headers(AUTH, 100_000)) for i in range(6)))
    statuses = sorted(response.status for response in responses)
    for response in responses:
        response.release()
    assert statuses.count(204) == 1 and set(statuses) == {204, 409}, statuses
    assert await offset_of(client, url) == 101_000


async def test_termination_clears_the_store_and_withdraws_the_new_episode(service):
    client, settings, services, bucket = service
    data = os.urandom(PART_BYTES + 1000)
    url = await created(client, 3 * PART_BYTES, episode="7")
    async with client.patch(url, data=io.BytesIO(data), headers=patch_headers(AUTH, 0)) as response:
        assert response.status == 204
    upload_id = url.rsplit("/", 1)[1]
    keys, multiparts = await asyncio.to_thread(stored_traces, bucket, upload_id)
    assert len(keys) == 1 and len(multiparts) == 1       # a tail object, and the multipart upload with a part
    async with client.delete(url, headers={**AUTH, **TUS}) as response:
        assert response.status == 204 and response.headers["Tus-Resumable"] == "1.0.0"
    assert await asyncio.to_thread(stored_traces, bucket, upload_id) == ([], [])
    async with client.head(url, headers={**AUTH, **TUS}) as response:
        assert response.status == 410
    async with client.patch(url, data=b"x", headers=patch_headers(AUTH, len(data))) as response:
        assert response.status == 410 and (await response.json())["code"] == "upload_terminated"
    with pytest.raises(UnknownEpisode):                  # created by the upload, never given media: gone
        await asyncio.to_thread(services.catalog.get_episode, SERIES, "7")
    assert (await created(client, 10, episode="7")).startswith("/v1/uploads/")    # its id is free again


async def test_creation_with_upload_takes_the_first_bytes(service):
    client, settings, services, bucket = service
    headers = {**creation_headers(AUTH, 12, series=SERIES, episode="3"),
               "Content-Type": "application/offset+octet-stream"}
    async with client.post("/v1/uploads", data=b"hello", headers=headers) as response:
        assert response.status == 201 and response.headers["Upload-Offset"] == "5"
        url = response.headers["Location"]
    async with client.patch(url, data=b" world!", headers=patch_headers(AUTH, 5)) as response:
        assert response.status == 204 and response.headers["Upload-Offset"] == "12"
        assert response.headers["Series-Job-Id"].startswith("job_")


async def send_cut_off(client, url: str, offset: int, chunk: bytes, *, sent_bytes: int, **extra: str) -> None:
    await cut_off_patch(client.host, client.port, url, {**AUTH, **extra}, offset, chunk, sent_bytes=sent_bytes)


async def resume_offset(client, url: str) -> int:
    """HEAD until the cut-off request has let go of the upload (a client retries the same way)."""
    for _ in range(50):
        offset = await offset_of(client, url)
        async with client.patch(url, data=b"", headers=patch_headers(AUTH, offset)) as response:
            if response.status == 204:
                return offset
        await asyncio.sleep(0.1)
    raise AssertionError("the cut-off request never let go of the upload")


async def test_a_chunk_cut_off_midway_keeps_what_arrived(service):
    client, settings, services, bucket = service
    data = os.urandom(PART_BYTES + 2_000_000)
    url = await created(client, len(data))
    await send_cut_off(client, url, 0, data, sent_bytes=PART_BYTES + 700_000)
    offset = await resume_offset(client, url)
    assert PART_BYTES <= offset <= PART_BYTES + 700_000            # the full part and what arrived after it
    async with client.patch(url, data=io.BytesIO(data[offset:]), headers=patch_headers(AUTH, offset)) as response:
        assert response.status == 204, await response.text()
    upload_id = url.rsplit("/", 1)[1]
    assert await asyncio.to_thread(bucket.get_bytes, f"tus/{upload_id}/media/clip.mp4") == data


async def test_a_chunk_with_a_checksum_cut_off_midway_keeps_nothing(service):
    client, *_ = service
    data = os.urandom(PART_BYTES + 2_000_000)
    url = await created(client, len(data))
    await send_cut_off(client, url, 0, data, sent_bytes=PART_BYTES + 700_000,
                       **{"Upload-Checksum": checksum("sha256", data)})
    assert await resume_offset(client, url) == 0


async def test_a_browser_may_speak_tus_across_origins(service):
    """The studio's tus-js-client: its preflight allows the tus headers, and the answers expose them."""
    client, *_ = service
    preflight = {"Origin": "https://studio.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,content-type"}
    async with client.options("/v1/uploads/up_000000000000000000000000", headers=preflight) as response:
        assert response.status == 204
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert all(name in allowed for name in ("tus-resumable", "upload-offset", "upload-length",
                                                "upload-metadata", "upload-checksum"))
    async with await create(client, 10, episode="cors") as response:
        pass
    async with client.head(response.headers["Location"], headers={**AUTH, **TUS, "Origin": "https://studio.example"}) \
            as response:
        exposed = response.headers["Access-Control-Expose-Headers"]
        assert all(name in exposed for name in ("Upload-Offset", "Location", "Tus-Resumable", "Upload-Expires"))


async def test_a_creation_whose_data_fails_its_checksum_still_names_the_upload(service):
    client, *_ = service
    headers = {**creation_headers(AUTH, 12, series=SERIES, episode="4"),
               "Content-Type": "application/offset+octet-stream", "Upload-Checksum": checksum("sha1", b"other")}
    async with client.post("/v1/uploads", data=b"hello", headers=headers) as response:
        assert response.status == 460
        url = response.headers["Location"]
    assert await offset_of(client, url) == 0                # created, nothing of the chunk kept: resume from 0


async def test_answers_match_the_description(service):
    """Real answers of every uploads route, each checked against the OpenAPI description's schemas."""
    from server.reference.document import openapi_document
    from tests.server.reference.openapi_support import ResponseValidator

    client, *_ = service
    validator = ResponseValidator(openapi_document())

    async def check(response) -> None:
        body = await response.read()
        validator.check(response.method, response.url.path, response.status,
                        response.headers.get("Content-Type", ""), body)

    async with client.options("/v1/uploads") as response:
        await check(response)
    async with await create(client, 20, episode="9") as response:
        await check(response)
        url = response.headers["Location"]
    for method, path, kwargs in (
            ("PATCH", url, {"data": b"0123456789", "headers": patch_headers(AUTH, 0)}),
            ("PATCH", url, {"data": b"x", "headers": patch_headers(AUTH, 3)}),
            ("PATCH", url, {"data": b"abcdefghij",
                            "headers": patch_headers(AUTH, 10, **{"Upload-Checksum": checksum("sha1", b"no")})}),
            ("HEAD", url, {"headers": {**AUTH, **TUS}}),
            ("GET", url, {"headers": AUTH}),
            ("GET", "/v1/uploads?state=active&limit=5", {"headers": AUTH}),
            ("GET", "/v1/uploads?limit=0", {"headers": AUTH}),
            ("DELETE", url, {"headers": {**AUTH, **TUS}}),
            ("DELETE", url, {"headers": {**AUTH, **TUS}}),
            ("POST", "/v1/uploads", {"headers": {**AUTH, "Upload-Length": "1"}})):
        async with client.request(method, path, **kwargs) as response:
            await check(response)


async def test_completing_again_queues_no_second_job(service):
    """A completion that ran again (a crash after the job was queued, before the upload said so; the next
    HEAD or sweep completes it) finds the same job: queued exactly once."""
    client, settings, services, bucket = service
    url = await created(client, 10, episode="5")
    async with client.patch(url, data=b"0123456789", headers=patch_headers(AUTH, 0)) as response:
        job_id = response.headers["Series-Job-Id"]
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE resumable_uploads SET state = 'completing', job_id = NULL, holder = NULL")
    async with client.head(url, headers={**AUTH, **TUS}) as response:
        assert response.status == 200 and response.headers["Series-Job-Id"] == job_id
    async with client.get("/v1/jobs", headers=AUTH) as response:
        assert [job["job_id"] for job in (await response.json())["jobs"]] == [job_id]


async def test_an_episode_deleted_during_its_upload_rejects_the_upload_at_the_end(service):
    client, settings, services, bucket = service
    url = await created(client, 10, episode="6")
    await asyncio.to_thread(services.catalog.delete_episode, SERIES, "6")
    async with client.patch(url, data=b"0123456789", headers=patch_headers(AUTH, 0)) as response:
        assert response.status == 410 and (await response.json())["code"] == "episode_deleted"
    async with client.get(url, headers=AUTH) as response:
        shown = await response.json()
    assert (shown["state"], shown["error"]["code"], shown["job_id"]) == ("rejected", "episode_deleted", None)
    async with client.head(url, headers={**AUTH, **TUS}) as response:
        assert response.status == 410
    assert await asyncio.to_thread(stored_traces, bucket, url.rsplit("/", 1)[1]) == ([], [])

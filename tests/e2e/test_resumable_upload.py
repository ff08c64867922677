"""The resumable-upload walk, with real processes, sockets, store and media: a creator's 50+ MB episode sent
in chunks through tus (tuspy, the protocol's own Python client, with checksums), the connection killed
mid-chunk, the upload resumed from the offset the server reports on a second instance (another process on
another port, same store and database), which takes the next chunk; the rest finished on the first. The
episode is published once and plays to its last frame through FFmpeg's HLS demuxer, with its keys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from tusclient.client import TusClient

from packager.publishing.publish import EpisodeLocation, read_pointer
from server.app import create_app
from server.config import Settings
from server.services import Services
from tests.support.catalog import add_series
from tests.support.jobs import AUTH, ingest_env, wait_for_job
from tests.support.media import count_frames, noisy_clip
from tests.support.s3_server import free_port
from tests.support.uploads import TUS, cut_off_patch, patch_headers, uploads_bucket

PROJECT_DIR = Path(__file__).resolve().parents[2]
SERIES, CREATOR, BUYER = "big-uploads", "creator-1", "alice"
MIB = 1024 * 1024
CHUNK = 6 * MIB                     # what the client sends at a time; parts are 8 MiB: chunks never line up
SOURCE_FRAMES = 32 * 25


@pytest.fixture(scope="module")
def big_clip(media_dir) -> Path:
    return noisy_clip(media_dir, "noisy-50mb.mp4", min_bytes=50 * MIB)


@pytest.fixture
async def two_instances(tmp_path, s3_store, aiohttp_server):
    """(instance A in this process, base URL of instance B in its own process, Services, settings)."""
    env = ingest_env(tmp_path, s3_store, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                     SERIES_LADDER_MAX_RENDITIONS="1")
    settings = Settings.from_env(env)
    services = Services.open(settings)
    services.store.ensure_bucket()
    with uploads_bucket(settings) as bucket:
        bucket.ensure_bucket()
    add_series(services, SERIES, creator_id=CREATOR)
    services.entitlements.grant(BUYER, SERIES)
    server_a = await aiohttp_server(create_app(settings, services))
    port_b = free_port()
    log_b = open(tmp_path / "instance-b.log", "wb")
    instance_b = subprocess.Popen([sys.executable, "-m", "server", "serve"], cwd=PROJECT_DIR, stdout=log_b,
                                  stderr=subprocess.STDOUT, env={**os.environ, **env, "SERIES_LISTEN_PORT": str(port_b)})
    base_b = f"http://127.0.0.1:{port_b}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.get(f"{base_b}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert instance_b.poll() is None and time.monotonic() < deadline, "instance B did not start"
                await asyncio.sleep(0.1)
        yield server_a, base_b, services, settings
    finally:
        instance_b.terminate()
        try:
            instance_b.wait(timeout=20)
        except subprocess.TimeoutExpired:
            instance_b.kill()
            instance_b.wait()
        log_b.close()
        await server_a.close()
        services.close()


async def resumable_offset(http: aiohttp.ClientSession, url: str, headers: dict) -> int:
    """The offset the server reports, once no request holds the upload (the cut-off one lets go within a
    moment): HEAD, then an empty PATCH there to prove it, as a tus client retries after a 409."""
    for _ in range(100):
        async with http.head(url, headers={**headers, **TUS}) as response:
            assert response.status == 200
            offset = int(response.headers["Upload-Offset"])
        async with http.patch(url, data=b"", headers=patch_headers(headers, offset)) as response:
            if response.status == 204:
                return offset
            assert response.status == 409, await response.text()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} stayed held")


async def test_a_dropped_upload_resumes_on_another_instance_and_publishes_once(two_instances, big_clip):
    with open(big_clip, "rb") as stream:           # tuspy leaves a file it opened itself open
        await _walk(*two_instances, big_clip, stream)


async def _walk(server_a, base_b: str, services, settings, big_clip: Path, stream) -> None:
    size = big_clip.stat().st_size
    assert size >= 50 * MIB
    base_a = str(server_a.make_url("")).rstrip("/")
    creator = {"Authorization": f"Bearer {services.tokens.mint_account(CREATOR, 'creator')}"}
    metadata = {"series": SERIES, "episode": "1", "title": "A big one", "filename": big_clip.name}

    # tuspy creates the upload on A and sends two checksummed chunks
    uploader = TusClient(f"{base_a}/v1/uploads", headers=creator).uploader(
        file_stream=stream, chunk_size=CHUNK, metadata=metadata, upload_checksum=True)
    for _ in range(2):
        await asyncio.to_thread(uploader.upload_chunk)
    assert uploader.offset == 2 * CHUNK
    path = uploader.url.removeprefix(base_a)

    # the next chunk's connection dies after 9 MiB of its 12
    chunk = big_clip.read_bytes()[2 * CHUNK:4 * CHUNK]
    await cut_off_patch(server_a.host, server_a.port, path, creator, 2 * CHUNK, chunk, sent_bytes=9 * MIB)

    async with aiohttp.ClientSession() as http:
        # resumed on instance B from the offset B reports: every byte that arrived was kept
        offset = await resumable_offset(http, f"{base_b}{path}", creator)
        assert 2 * CHUNK + 8 * MIB <= offset <= 2 * CHUNK + 9 * MIB, offset
        on_b = TusClient(f"{base_b}/v1/uploads", headers=creator).uploader(
            file_stream=stream, url=f"{base_b}{path}", chunk_size=CHUNK, upload_checksum=True)
        assert on_b.offset == offset
        await asyncio.to_thread(on_b.upload_chunk)                  # B takes the next chunk
        assert on_b.offset == offset + CHUNK
        async with http.head(f"{base_a}{path}", headers={**creator, **TUS}) as response:
            assert int(response.headers["Upload-Offset"]) == offset + CHUNK     # and A sees it

        # the rest on A again, in bigger chunks without checksums (made in a thread: tuspy asks A for the
        # offset at once, and A answers from this event loop)
        rest = await asyncio.to_thread(TusClient(f"{base_a}/v1/uploads", headers=creator).uploader,
                                       file_stream=stream, url=f"{base_a}{path}", chunk_size=16 * MIB)
        await asyncio.to_thread(rest.upload)
        assert rest.offset == size
        async with http.get(f"{base_a}{path}", headers=creator) as response:
            upload = await response.json()
        assert (upload["state"], upload["offset_bytes"]) == ("completed", size), upload

        job = await wait_for_job(http, upload["job_id"], base=base_a)
        assert (job["state"], job["version"], job["error"]) == ("published", 1, None), job
        async with http.get(f"{base_a}/v1/jobs", headers=AUTH) as response:
            jobs = [j for j in (await response.json())["jobs"] if j["series_id"] == SERIES]
        assert [j["job_id"] for j in jobs] == [job["job_id"]]         # queued once, by whichever instance
    pointer = await asyncio.to_thread(read_pointer, services.store, EpisodeLocation(series_id=SERIES, episode_id="1"))
    assert pointer["version"] == 1
    episode = await asyncio.to_thread(services.catalog.get_episode, SERIES, "1")
    assert (episode.status, episode.title) == ("ready", "A big one")

    token = services.tokens.mint(BUYER, SERIES)
    master = str(server_a.make_url(f"/v1/series/{SERIES}/episodes/1/master.m3u8?token={token}"))
    frames, seconds = await asyncio.to_thread(count_frames, master)
    assert frames == SOURCE_FRAMES
    assert seconds == pytest.approx(32 - 1 / 25, abs=0.05)

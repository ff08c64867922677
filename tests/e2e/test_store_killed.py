"""The object store dies halfway through publishing v2: v1 keeps playing, nothing of v2 is reachable,
and garbage collection removes what v2 left behind once the store is back."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import aiohttp
import pytest

from packager.errors import StoreError
from packager.publishing.publish import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from server.app import create_app
from server.local.object_store import LocalObjectStore
from server.publishing.episode import ingest_episode
from server.publishing.garbage import collect_garbage
from server.services import Services
from tests.conftest import settings_for
from tests.support.catalog import add_series
from tests.support.media import clip, count_frames
from tests.support.s3_server import start_test_store

SERIES, EPISODE, BUYER = "s1", "1", "alice"
LOCATION = EpisodeLocation(series_id=SERIES, episode_id=EPISODE)
SOURCE_FRAMES = 14 * 25


class StoreKilledAfterUploads(ObjectStore):
    """The real store client; after `uploads` segments are stored, the S3 server is SIGKILLed by its PID."""

    def __init__(self, settings, server: LocalObjectStore, uploads: int) -> None:
        super().__init__(settings, retry_attempts=2, retry_max_wait_s=0.2)
        self._server, self._uploads, self._lock = server, uploads, threading.Lock()
        self.stored_segments = 0

    def put_bytes(self, key: str, data: bytes, **kwargs) -> None:
        super().put_bytes(key, data, **kwargs)
        if key.endswith(".ts"):
            with self._lock:
                self.stored_segments += 1
                if self.stored_segments == self._uploads:
                    os.kill(self._server.pid, signal.SIGKILL)


@pytest.fixture
def private_store(tmp_path):
    server = start_test_store(tmp_path / "s3")
    holder = {"server": server}
    yield holder
    holder["server"].stop()


async def test_store_killed_mid_publish_leaves_v1_playing_and_v2_unreachable(tmp_path, private_store,
                                                                            media_dir, aiohttp_server):
    server = private_store["server"]
    source = clip(media_dir, "small.mp4", duration_s=14, width=320, height=180, fps=25)
    settings = settings_for(tmp_path / "data", server, SERIES_MIN_DURATION_S="5")
    services = Services.open(settings)
    services.store.ensure_bucket()
    add_series(services, SERIES)
    v1 = await asyncio.to_thread(ingest_episode, source, series_id=SERIES, episode_id=EPISODE, settings=settings,
                                 store=services.store, keystore=services.keystore, catalog=services.catalog)
    services.entitlements.grant(BUYER, SERIES)

    killing = StoreKilledAfterUploads(settings.store, server, uploads=1)
    with pytest.raises(StoreError) as failure:
        await asyncio.to_thread(ingest_episode, source, series_id=SERIES, episode_id=EPISODE, settings=settings,
                                store=killing, keystore=services.keystore, catalog=services.catalog)
    killing.close()
    assert killing.stored_segments >= 1          # uploads in flight when it died may have landed
    assert failure.value.code == "store_unavailable" and "unreachable" in str(failure.value)

    # the same data directory and port: an operator restarting the crashed store
    server.stop()                                # reaps the killed process, removes its stale pid file
    server = private_store["server"] = LocalObjectStore(server.settings)
    server.start()
    v2_prefix = LOCATION.version_prefix(v1.version + 1)
    # half of v2 is in the bucket: some segments, and the version.json publish writes first
    leftovers = [key for key in services.store.list_keys(v2_prefix + "/") if key.endswith(".ts")]
    assert leftovers and set(services.store.list_keys(v2_prefix + "/")) - set(leftovers) <= {f"{v2_prefix}/version.json"}
    assert read_pointer(services.store, LOCATION)["version"] == v1.version

    web_server = await aiohttp_server(create_app(settings, services))
    try:
        token = services.tokens.mint(BUYER, SERIES)
        base = f"/v1/series/{SERIES}/episodes/{EPISODE}"
        frames, _ = await asyncio.to_thread(count_frames, str(web_server.make_url(f"{base}/master.m3u8?token={token}")))
        assert frames == SOURCE_FRAMES
        async with aiohttp.ClientSession() as http:
            for leftover in leftovers:
                rendition_and_name = leftover.removeprefix(LOCATION.prefix + "/")
                async with http.get(str(web_server.make_url(f"{base}/{rendition_and_name}"))) as response:
                    assert response.status == 404, leftover
                    assert (await response.json(content_type=None))["code"] == "not_published"
            rendition = leftovers[0].split("/")[-2]
            url = web_server.make_url(f"{base}/v{v1.version + 1}/{rendition}/index.m3u8?token={token}")
            async with http.get(str(url)) as response:
                assert response.status == 404

        collected = await asyncio.to_thread(collect_garbage, services.store, services.keystore, grace_s=0)
        assert [c.plan.delete for c in collected] == [(v1.version + 1,)]
        assert services.store.list_keys(v2_prefix + "/") == []
        frames, _ = await asyncio.to_thread(count_frames, str(web_server.make_url(f"{base}/master.m3u8?token={token}")))
        assert frames == SOURCE_FRAMES
    finally:
        await web_server.close()
        services.close()

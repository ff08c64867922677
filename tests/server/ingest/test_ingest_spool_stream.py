"""A streamed upload is hashed and written off the event loop, and what it promises is unchanged: the
same idempotency fingerprint, the same replay and size-limit answers, the spool file byte for byte."""

from __future__ import annotations

import hashlib
import io
import random
import threading
import types

import pytest

from server.app import create_app
from server.ingest import api as ingest_api
from server.ingest.api import JOBS
from server.jobs.jobs import fingerprint
from tests.support.jobs import AUTH, ingest_settings

SERIES = "s-stream"
LIMIT_BYTES = 4 * 1024 * 1024


class _HashSpy:
    """hashlib.sha256 that records, for every update(), the thread it ran on and how many bytes it took."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int]] = []
        self.module = types.SimpleNamespace(sha256=self._sha256)

    def _sha256(self, *args, **kwargs):
        spy, real = self, hashlib.sha256(*args, **kwargs)

        class Recording:
            def update(self, data) -> None:
                spy.updates.append((threading.get_ident(), len(data)))
                real.update(data)

            def __getattr__(self, name):
                return getattr(real, name)
        return Recording()


@pytest.fixture
async def client(tmp_path, s3_store, aiohttp_client):
    settings = ingest_settings(tmp_path, s3_store, series=(SERIES,), SERIES_MAX_UPLOAD_BYTES=str(LIMIT_BYTES))
    client = await aiohttp_client(create_app(settings))
    yield client
    await client.close()


async def test_upload_is_hashed_off_the_loop_with_the_same_fingerprint_and_replays(client, monkeypatch):
    spy = _HashSpy()
    monkeypatch.setattr(ingest_api, "hashlib", spy.module)
    body = random.Random(7).randbytes(3 * 1024 * 1024 + 12345)      # several batches and a ragged end
    url = f"/v1/series/{SERIES}/episodes/1/ingest"
    headers = {**AUTH, "Idempotency-Key": "stream-1", "Content-Type": "video/mp4"}
    loop_thread = threading.get_ident()         # pytest-aiohttp serves the app on the test's own loop

    async with client.post(url, data=io.BytesIO(body), headers=headers) as response:
        assert response.status == 202, await response.text()
        job_id = (await response.json())["job_id"]
    assert sum(size for _, size in spy.updates) == len(body)
    assert not [size for thread, size in spy.updates if thread == loop_thread], "hashed on the event loop"

    job = client.app[JOBS].get(job_id)
    assert job.fingerprint == fingerprint({"series": SERIES, "episode": "1", "sha256": hashlib.sha256(body).hexdigest(),
                                           "size": len(body), "webhook": None})
    spool_dir = client.app[ingest_api.QUEUE].settings.jobs.spool_dir
    assert [path.read_bytes() == body for path in spool_dir.iterdir()] == [True]

    async def in_pieces(data: bytes, size: int):    # chunked, no Content-Length: other chunk borders
        for start in range(0, len(data), size):
            yield data[start:start + size]

    async with client.post(url, data=in_pieces(body, 10_000), headers=headers) as response:
        assert response.status == 202
        assert (await response.json())["job_id"] == job_id       # a replay: the same job
    changed = body[:-1] + bytes([body[-1] ^ 1])
    async with client.post(url, data=io.BytesIO(changed), headers=headers) as response:
        assert (response.status, (await response.json())["code"]) == (422, "idempotency_key_reused")
    async with client.post(url, data=in_pieces(b"\0" * (LIMIT_BYTES + 1), 65536),
                           headers={**headers, "Idempotency-Key": "stream-2"}) as response:
        assert (response.status, (await response.json())["code"]) == (413, "upload_too_large")
    assert [path.name for path in spool_dir.iterdir()] == [f"{job_id}.upload"]    # replays left no copies

"""Who may upload what, and what abandoned uploads leave behind: creators' account tokens (their own series
and uploads only, a cap on unfinished uploads), expiry and `series gc` (no parts or objects left in the
store, the episode the upload created withdrawn), `series uploads list|show|abort`, and parts no upload owns."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import time
from dataclasses import replace

import pytest

from drm.errors import UnknownEpisode
from server.app import create_app
from server.cli.main import main
from server.ingest.uploads_api import UPLOAD_CONTEXT
from server.ingest.upload_store import UploadStore
from server.ingest.upload_sweep import sweep_uploads
from server.services import Services
from tests.support.catalog import add_series
from tests.support.jobs import AUTH, ingest_env
from tests.support.uploads import PART_BYTES, TUS, creation_headers, patch_headers, stored_traces, uploads_bucket

SERIES = "s-mine"


@pytest.fixture
async def service(tmp_path, s3_store, aiohttp_client, monkeypatch):
    env = ingest_env(tmp_path, s3_store, SERIES_UPLOADS_BUCKET=f"u-{os.urandom(6).hex()}",
                     SERIES_UPLOAD_PART_BYTES=str(PART_BYTES), SERIES_UPLOAD_MAX_PER_CREATOR="2")
    for name, value in env.items():                     # the CLI reads the same settings from the environment
        monkeypatch.setenv(name, value)
    from server.config import Settings
    settings = Settings.from_env(env)
    services = Services.open(settings)
    await asyncio.to_thread(services.store.ensure_bucket)
    add_series(services, SERIES, creator_id="ann")
    add_series(services, "s-other", creator_id="bob")
    bucket = uploads_bucket(settings)
    await asyncio.to_thread(bucket.ensure_bucket)
    client = await aiohttp_client(create_app(settings, services))
    tokens = {name: {"Authorization": f"Bearer {services.tokens.mint_account(name, 'creator')}"}
              for name in ("ann", "bob")}
    yield client, settings, services, bucket, tokens
    await client.close()
    bucket.close()
    services.close()


async def create(client, auth, length: int, **values: str):
    values = {"series": SERIES, "episode": "1", **values}
    return await client.post("/v1/uploads", headers=creation_headers(auth, length, **values))


async def test_creators_upload_to_their_own_series_and_see_their_own_uploads(service):
    client, settings, services, bucket, tokens = service
    ann, bob = tokens["ann"], tokens["bob"]
    async with await create(client, ann, 100, episode="e1") as response:
        assert response.status == 201, await response.text()
        url = response.headers["Location"]
    async with await create(client, ann, 100, series="s-other") as response:
        assert response.status == 403 and (await response.json())["code"] == "not_series_owner"
    async with await create(client, ann, 100, episode="e9", webhook_url="http://127.0.0.1/hook") as response:
        assert response.status == 400                        # webhooks are for upload services
    async with client.head(url, headers={**bob, **TUS}) as response:
        assert response.status == 404                        # another creator's upload does not exist for bob
    async with client.patch(url, data=b"x", headers=patch_headers(bob, 0)) as response:
        assert response.status == 404
    async with client.head(url, headers={**AUTH, **TUS}) as response:
        assert response.status == 200                        # the upload services' token sees every upload
    async with client.get("/v1/uploads", headers=bob) as response:
        assert (await response.json())["uploads"] == []
    async with client.get("/v1/uploads", headers=ann) as response:
        (shown,) = (await response.json())["uploads"]
    assert (shown["created_by"], shown["state"], shown["episode_id"]) == ("ann", "active", "e1")
    viewer = {"Authorization": f"Bearer {services.tokens.mint_account('vic', 'viewer')}"}
    async with await create(client, viewer, 100, episode="e2") as response:
        assert response.status == 403


async def test_a_creator_has_a_cap_on_unfinished_uploads(service):
    client, settings, services, bucket, tokens = service
    for episode_id in ("1", "2"):
        async with await create(client, tokens["ann"], 100, episode=episode_id) as response:
            assert response.status == 201
    async with await create(client, tokens["ann"], 100, episode="3") as response:
        assert response.status == 429 and (await response.json())["code"] == "too_many_uploads"
        assert response.headers["Retry-After"].isdigit()
    async with await create(client, tokens["ann"], 100, episode="1") as response:
        assert response.status == 429
    async with await create(client, AUTH, 100, episode="2") as response:     # one upload per episode at a time
        assert response.status == 409 and (await response.json())["code"] == "upload_in_progress"
    with pytest.raises(UnknownEpisode):                      # refused creations left no episode behind
        await asyncio.to_thread(services.catalog.get_episode, SERIES, "3")


async def _abandoned_upload(client, auth, episode_id: str) -> str:
    """An upload with a stored part and a tail, then left."""
    async with await create(client, auth, 4 * PART_BYTES, episode=episode_id) as response:
        url = response.headers["Location"]
    data = os.urandom(PART_BYTES + 300_000)
    async with client.patch(url, data=io.BytesIO(data), headers=patch_headers(auth, 0)) as response:
        assert response.status == 204
    return url.rsplit("/", 1)[1]


async def test_series_gc_leaves_no_parts_of_abandoned_uploads(service, capsys):
    client, settings, services, bucket, tokens = service
    expired = await _abandoned_upload(client, tokens["ann"], "left")
    live = await _abandoned_upload(client, AUTH, "kept")
    assert len((await asyncio.to_thread(stored_traces, bucket, expired))[1]) == 1
    with sqlite3.connect(settings.db_path) as db:            # a day without a byte: past its expiry
        db.execute("UPDATE resumable_uploads SET expires_at = ? WHERE upload_id = ?", (time.time() - 1, expired))
    async with client.head(f"/v1/uploads/{expired}", headers={**AUTH, **TUS}) as response:
        assert response.status == 410
    async with client.patch(f"/v1/uploads/{expired}", data=b"x", headers=patch_headers(AUTH, PART_BYTES)) as response:
        assert response.status == 410 and (await response.json())["code"] == "upload_expired"

    assert await asyncio.to_thread(main, ["gc", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert [(item["upload_id"], item["action"]) for item in dry["resumable_uploads"]] == [(expired, "expired")]
    assert len((await asyncio.to_thread(stored_traces, bucket, expired))[1]) == 1     # a dry run keeps it

    assert await asyncio.to_thread(main, ["gc"]) == 0
    assert f"resumable upload {expired}: expired" in capsys.readouterr().out
    assert await asyncio.to_thread(stored_traces, bucket, expired) == ([], [])
    with pytest.raises(UnknownEpisode):
        await asyncio.to_thread(services.catalog.get_episode, SERIES, "left")
    keys, multiparts = await asyncio.to_thread(stored_traces, bucket, live)
    assert len(keys) == 1 and len(multiparts) == 1           # the live upload keeps its part and tail

    assert await asyncio.to_thread(main, ["uploads", "list", "--json"]) == 0
    states = {item["upload_id"]: item["state"] for item in json.loads(capsys.readouterr().out)}
    assert states == {expired: "expired", live: "active"}
    assert await asyncio.to_thread(main, ["uploads", "abort", live]) == 0
    assert "aborted" in capsys.readouterr().out
    assert await asyncio.to_thread(stored_traces, bucket) == ([], [])
    assert await asyncio.to_thread(main, ["uploads", "show", live]) == 0
    assert "terminated" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["uploads", "abort", live]) == 1       # already gone: one line, exit 1
    assert "upload_terminated" in capsys.readouterr().err


async def test_parts_and_objects_no_upload_owns_go_once_old(service):
    client, settings, services, bucket, tokens = service
    orphan_key = "tus/up_0123456789abcdef01234567/media/x.mp4"
    multipart_id = await asyncio.to_thread(bucket.start_multipart, orphan_key)      # a crash before its row
    await asyncio.to_thread(bucket.upload_part, orphan_key, multipart_id, 1, b"z" * 1000)
    await asyncio.to_thread(bucket.put_bytes, "tus/up_0123456789abcdef01234567/tail/aa", b"tail")
    live = await _abandoned_upload(client, AUTH, "live")
    context = client.app[UPLOAD_CONTEXT]
    swept, _ = await asyncio.to_thread(sweep_uploads, context)
    assert swept == []                                       # young: it may be a creation under way
    later = replace(context, uploads=UploadStore(services.db, clock=lambda: time.time() + 2 * 3600))
    with sqlite3.connect(settings.db_path) as db:            # the live upload is not expired in two hours
        db.execute("UPDATE resumable_uploads SET expires_at = ?", (time.time() + 86400,))
    swept, _ = await asyncio.to_thread(sweep_uploads, later)
    assert sorted(item.action for item in swept) == ["orphan", "orphan"]
    keys, multiparts = await asyncio.to_thread(stored_traces, bucket)
    assert all(key.startswith(f"tus/{live}/") for key in keys) and len(keys) == 1
    assert multiparts == [f"tus/{live}/media/upload"]

"""The catalog issue's walk, over real HTTP with real media, workers and object store: a creator creates a
series, an upload service adds three episodes out of order, the creator reorders them, retitles one,
unpublishes one (a buyer's key request for it is refused with a reason; the operator's test viewer still
gets it), deletes one (after the grace period its objects and keys are gone from the store and the
database), and the viewer's listing shows the right order, titles, durations and statuses throughout."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import pytest

from server.app import create_app
from server.publishing.garbage import collect_deleted
from server.services import Services
from tests.server.catalog_support import Api, OPERATOR_TOKEN, WEBHOOK_SECRET, payment_body, problem_code
from tests.support.catalog import eligible_facts
from tests.support.jobs import AUTH as INGEST, ingest_settings, wait_for_job
from tests.support.media import clip

SERIES = "knots"
QA = "qa-viewer"


@pytest.fixture(scope="module")
def episode_clip(media_dir):
    return clip(media_dir, "walk-6s.mp4", duration_s=6, width=320, height=180, fps=10)


@pytest.fixture
async def world(tmp_path, s3_store, aiohttp_client):
    settings = ingest_settings(tmp_path, s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                               SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET, SERIES_MIN_DURATION_S="2",
                               SERIES_LADDER_MAX_RENDITIONS="1", SERIES_TEST_VIEWER_IDS=QA)
    services = Services.open(settings)
    services.store.ensure_bucket()
    client = await aiohttp_client(create_app(settings, services))
    yield Api(client, services)
    await client.close()
    services.close()


async def listing(api: Api, headers: dict | None = None) -> list[tuple]:
    async with api.client.get(f"/v1/series/{SERIES}/episodes", headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return [(e["episode_id"], e["position"], e["title"], e["status"], e["duration_s"]) for e in body["episodes"]]


async def key_uri(api: Api, viewer: dict, episode_id: str) -> str:
    """The first key URI of an episode, the way a player finds it: playback token, master, media playlist."""
    async with api.client.post(f"/v1/series/{SERIES}/episodes/{episode_id}/playback", headers=viewer) as response:
        assert response.status == 200, await response.text()
        master_url = (await response.json())["master_url"]
    target = urlsplit(master_url)
    async with api.client.get(f"{target.path}?{target.query}") as response:
        master = await response.text()
    variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
    base = target.path.rsplit("/", 1)[0]
    async with api.client.get(f"{base}/{variant}") as response:
        media = await response.text()
    return re.search(r'#EXT-X-KEY:.*URI="([^"]+)"', media).group(1)


async def test_the_catalog_walk(world, episode_clip):
    api, services = world, world.services
    operator = api.operator_headers
    creator = await api.account("creator-1", "creator")
    buyer, qa = await api.account("buyer", "viewer"), await api.account(QA, "viewer")
    async with api.client.post("/v1/creators/creator-1/eligibility", json=eligible_facts(), headers=operator) as r:
        assert r.status == 200
    async with api.client.post("/v1/series", json={"series_id": SERIES, "title": "Knots", "price_cents": 499,
                                                   "currency": "USD"}, headers=creator) as response:
        assert response.status == 201, await response.text()

    # three episodes handed over out of order: they take places in the order they arrive
    media = episode_clip.read_bytes()
    jobs = []
    for episode_id in ("3", "1", "2"):
        async with api.client.post(f"/v1/series/{SERIES}/episodes/{episode_id}/ingest", data=media,
                                   headers={**INGEST, "Idempotency-Key": f"walk-{episode_id}",
                                            "Content-Type": "video/mp4"}) as response:
            assert response.status == 202, await response.text()
            jobs.append((await response.json())["job_id"])
    statuses = {status for _, _, _, status, _ in await listing(api, creator)}
    assert statuses <= {"processing", "ready"} and [e[0] for e in await listing(api, creator)] == ["3", "1", "2"]
    for job_id in jobs:
        assert (await wait_for_job(api.client, job_id))["state"] == "published"
    shown = await listing(api)
    assert [(e[0], e[1], e[3]) for e in shown] == [("3", 1, "ready"), ("1", 2, "ready"), ("2", 3, "ready")]
    assert all(5.5 < e[4] < 6.5 for e in shown), shown
    owner_view = await (await api.client.get(f"/v1/series/{SERIES}/episodes/1", headers=creator)).json()
    assert owner_view["renditions"] and owner_view["processing"] is None and owner_view["ready_at"]

    # reorder (the whole order, idempotently), then retitle one
    for _ in range(2):
        async with api.client.put(f"/v1/series/{SERIES}/order", json={"episode_ids": ["1", "2", "3"]},
                                  headers={**creator, "Idempotency-Key": "order-1"}) as response:
            assert response.status == 200, await response.text()
    async with api.client.patch(f"/v1/series/{SERIES}/episodes/2", json={"title": "The bowline"},
                                headers=creator) as response:
        assert response.status == 200
    assert [(e[0], e[1], e[2]) for e in await listing(api)] == [
        ("1", 1, "Episode 1"), ("2", 2, "The bowline"), ("3", 3, "Episode 3")]

    # a buyer, and the operator's test viewer (comped)
    async with await api.webhook(payment_body("payment.succeeded", "pay-1", "buyer", SERIES)) as response:
        assert (await response.json())["result"] == "granted"
    async with api.client.post("/v1/operator/entitlements", json={"viewer_id": QA, "series_id": SERIES,
                                                                  "source": "comp"}, headers=operator) as response:
        assert response.status == 201
    buyer_key, qa_key = await key_uri(api, buyer, "2"), await key_uri(api, qa, "2")
    assert (await api.client.get(buyer_key)).status == 200

    # unpublish episode 2: hidden from viewers, its keys refused to the buyer with a reason, not to QA
    async with api.client.post(f"/v1/series/{SERIES}/episodes/2/unpublish", headers=creator) as response:
        assert (await response.json())["status"] == "unpublished"
    refused = await api.client.get(buyer_key)
    assert refused.status == 403 and await problem_code(refused) == "episode_unpublished"
    assert "unpublished" in (await refused.json(content_type=None))["detail"]
    assert (await api.client.get(qa_key)).status == 200
    assert [e[0] for e in await listing(api)] == ["1", "3"]
    assert [(e[0], e[3]) for e in await listing(api, creator)] == [("1", "ready"), ("2", "unpublished"),
                                                                    ("3", "ready")]

    # delete episode 3: gone at once from listings and the key server; files and keys after the grace period
    doomed_key = await key_uri(api, buyer, "3")
    async with api.client.delete(f"/v1/series/{SERIES}/episodes/3", headers=creator) as response:
        deleted = await response.json()
        assert response.status == 200 and deleted["removed_after"] > deleted["deleted_at"]
    gone = await api.client.get(doomed_key)
    assert gone.status == 410 and await problem_code(gone) == "episode_deleted"
    assert [(e[0], e[1]) for e in await listing(api)] == [("1", 1)]
    assert [(e[0], e[1], e[3]) for e in await listing(api, creator)] == [("1", 1, "ready"), ("2", 2, "unpublished")]
    prefix = f"series/{SERIES}/episodes/3/"
    assert services.store.list_keys(prefix)
    removed, _ = await asyncio.to_thread(collect_deleted, services.store, services.keystore, services.catalog,
                                         grace_s=services.settings.gc_grace_s)
    assert removed == []                          # within the grace period nothing goes
    later = time.time() + services.settings.gc_grace_s + 1
    removed, _ = await asyncio.to_thread(collect_deleted, services.store, services.keystore, services.catalog,
                                         grace_s=services.settings.gc_grace_s, now=later)
    assert [(r.location.episode_id, r.objects_deleted > 0, r.keys_deleted > 0) for r in removed] == [("3", True, True)]
    assert services.store.list_keys(prefix) == []
    assert services.db.query_one("SELECT COUNT(*) FROM content_keys WHERE series_id = ? AND episode_id = '3'",
                                 (SERIES,))[0] == 0
    assert services.db.query_one("SELECT COUNT(*) FROM episodes WHERE series_id = ? AND episode_id = '3'",
                                 (SERIES,))[0] == 0
    assert services.store.list_keys(f"series/{SERIES}/episodes/1/")        # the rest of the series stays

    # the buyer's library: what they own, in order, with where they stopped
    async with api.client.post(f"/v1/series/{SERIES}/episodes/1/progress", json={"position_s": 4.0},
                               headers=buyer) as response:
        assert response.status == 200, await response.text()
    library = await (await api.client.get("/v1/me/library", headers=buyer)).json()
    (owned,) = library["series"]
    assert [(e["episode_id"], e.get("progress", {}).get("position_s")) for e in owned["episodes"]] == [("1", 4.0)]

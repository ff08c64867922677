"""The catalog API's rules over real HTTP: who sees what, idempotent writes, progress reports and their
limit, the paywall and purchase link, and purchases of a series that is not for sale."""

from __future__ import annotations

import pytest

from server.app import create_app
from server.services import Services
from tests.server.catalog_support import Api, catalog_settings, payment_body, problem_code, publish_keys
from tests.support.catalog import add_series


@pytest.fixture
async def api(tmp_path, s3_store, aiohttp_client):
    services = Services.open(catalog_settings(tmp_path, s3_store, SERIES_PROGRESS_BURST="2",
                                              SERIES_PROGRESS_PER_S="0.01"))
    add_series(services, "s1", creator_id="creator-1")
    for episode_id in ("1", "2"):
        publish_keys(services, "s1", episode_id)
    client = await aiohttp_client(create_app(services.settings, services))
    yield Api(client, services)
    services.close()


async def test_drafts_are_seen_by_their_creator_and_the_operator_only(api):
    creator = await api.account("creator-1", "creator")
    await api.client.post("/v1/series", headers=creator, json={"series_id": "d1", "title": "Soon", "price_cents": 900,
                                                               "currency": "EUR", "status": "draft"})
    assert (await api.client.get("/v1/series/d1")).status == 404
    assert (await api.client.get("/v1/series/d1", headers=creator)).status == 200
    assert (await api.client.get("/v1/series/d1", headers=api.operator_headers)).status == 200
    public = await (await api.client.get("/v1/series")).json()
    assert [s["series_id"] for s in public["series"]] == ["s1"]
    mine = await (await api.client.get("/v1/series?creator_id=creator-1&status=draft", headers=creator)).json()
    assert [s["series_id"] for s in mine["series"]] == ["d1"]
    refused = await api.client.get("/v1/series?status=draft")
    assert refused.status == 422 and await problem_code(refused) == "invalid_field"


async def test_buyers_keep_an_unpublished_series_and_nobody_else_can_buy_it(api):
    viewer, stranger = await api.account("v1", "viewer"), await api.account("v2", "viewer")
    await api.webhook(payment_body("payment.succeeded", "p1", "v1", "s1"))
    creator = await api.account("creator-1", "creator")
    assert (await api.client.post("/v1/series/s1/unpublish", headers=creator)).status == 200
    assert (await api.client.get("/v1/series/s1", headers=viewer)).status == 200
    assert (await api.client.get("/v1/series/s1", headers=stranger)).status == 404
    late = await (await api.webhook(payment_body("payment.succeeded", "p2", "v2", "s1"))).json()
    assert (late["result"], late["code"]) == ("refused", "series_not_for_sale")
    assert (await api.client.post("/v1/series/s1/episodes/1/playback", headers=viewer)).status == 200
    paywall = await (await api.client.get("/v1/series/s1/paywall", headers=viewer)).json()
    assert (paywall["is_for_sale"], paywall["not_for_sale_reason"], paywall["is_owned"]) == (
        False, "series_unpublished", True)
    refused = await api.client.delete("/v1/series/s1", headers=creator)
    assert refused.status == 409 and await problem_code(refused) == "series_has_buyers"


async def test_idempotent_writes_replay_refuse_reuse_and_stay_per_client(api):
    creator = await api.account("creator-1", "creator")
    keyed = {**creator, "Idempotency-Key": "retitle-1"}
    first = await api.client.patch("/v1/series/s1/episodes/1", json={"title": "One"}, headers=keyed)
    again = await api.client.patch("/v1/series/s1/episodes/1", json={"title": "One"}, headers=keyed)
    assert first.status == again.status == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await again.json()
    other = await api.client.patch("/v1/series/s1/episodes/1", json={"title": "Two"}, headers=keyed)
    assert other.status == 422 and await problem_code(other) == "idempotency_key_reused"
    failed = await api.client.patch("/v1/series/s1/episodes/1", json={"position": 9},
                                    headers={**creator, "Idempotency-Key": "move-1"})
    assert failed.status == 422
    # a refused write changed nothing and kept nothing: the key runs the corrected request
    assert (await api.client.patch("/v1/series/s1/episodes/1", json={"position": 2},
                                   headers={**creator, "Idempotency-Key": "move-1"})).status == 200
    bad = await api.client.patch("/v1/series/s1/episodes/1", json={"title": "X"},
                                 headers={**creator, "Idempotency-Key": "has space"})
    assert bad.status == 400 and await problem_code(bad) == "invalid_idempotency_key"


async def test_progress_reports_need_access_and_are_limited(api):
    viewer = await api.account("v1", "viewer")
    denied = await api.client.post("/v1/series/s1/episodes/1/progress", json={"position_s": 3}, headers=viewer)
    assert denied.status == 403 and await problem_code(denied) == "not_entitled"
    api.services.entitlements.grant("v1", "s1")
    playback = {"Authorization": f"Bearer {api.services.tokens.mint('v1', 's1')}"}
    accepted = await api.client.post("/v1/series/s1/episodes/1/progress", json={"position_s": 58}, headers=playback)
    assert accepted.status == 200 and (await accepted.json())["is_completed"] is True
    # the burst (2) has gone on the refusal and the report: the third is limited
    limited = await api.client.post("/v1/series/s1/episodes/1/progress", json={"position_s": 5}, headers=viewer)
    assert limited.status == 429 and await problem_code(limited) == "too_many_progress_reports"
    assert int(limited.headers["Retry-After"]) >= 1


async def test_the_purchase_link_leads_to_the_paywall(api):
    creator = await api.account("creator-1", "creator")
    link = await (await api.client.get("/v1/series/s1/purchase-link?ref=video-7", headers=creator)).json()
    assert link["url"].endswith("/buy/s1?ref=video-7") and link["is_for_sale"]
    redirected = await api.client.get("/buy/s1?ref=video-7", allow_redirects=False)
    assert redirected.status == 303 and redirected.headers["Location"] == "/series/s1?ref=video-7"    # the web app's
    paywall = await (await api.client.get("/v1/series/s1/paywall?ref=video-7")).json()
    assert (paywall["price"], paywall["series"]["episode_count"], paywall["ref"]) == (
        {"amount_cents": 499, "currency": "USD"}, 2, "video-7")

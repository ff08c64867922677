"""The web app's server side over real HTTP: its switches (local sign-in, test payments) and their defaults,
a test purchase going through our own signed payment webhook, `series refund` of a test purchase only,
the entitlements' `ended_by`, the pages' policy and framing, and the files' names and caching."""

from __future__ import annotations

import json

import pytest

from drm.errors import NotEntitled
from server.app import create_app
from server.config import Settings, SettingsError
from server.services import Services
from server.web import pages
from server.web.assets import WebAssets
from server.web.payment_simulator import NotATestPurchase, refund_test_purchase
from tests.conftest import settings_env
from tests.server.catalog_support import Api, catalog_settings, payment_body, problem_code
from tests.support.catalog import add_series

SERIES = "s1"


async def start(settings: Settings, aiohttp_client) -> Api:
    services = Services.open(settings)
    add_series(services, SERIES, price_cents=799)
    client = await aiohttp_client(create_app(settings, services))
    return Api(client, services)


@pytest.fixture
async def on(tmp_path, s3_store, aiohttp_client):
    """The service with local sign-in and test payments on."""
    api = await start(catalog_settings(tmp_path, s3_store, SERIES_LOCAL_SIGN_IN="true", SERIES_TEST_PAYMENTS="true"),
                      aiohttp_client)
    yield api
    api.services.close()


@pytest.fixture
async def off(tmp_path, s3_store, aiohttp_client):
    """The service as a production one is by default: an external store, both switches off."""
    api = await start(catalog_settings(tmp_path, s3_store), aiohttp_client)
    yield api
    api.services.close()


def test_the_switches_default_off_but_local_sign_in_with_the_embedded_store(tmp_path, s3_store):
    external = Settings.from_env(settings_env(tmp_path, s3_store))
    assert not external.web.local_sign_in and not external.web.test_payments
    embedded = {key: value for key, value in settings_env(tmp_path, s3_store).items()
                if not key.startswith("SERIES_S3_")}
    local = Settings.from_env(embedded)
    assert local.web.local_sign_in and not local.web.test_payments
    assert not Settings.from_env({**embedded, "SERIES_LOCAL_SIGN_IN": "false"}).web.local_sign_in


def test_test_payments_need_the_webhook_secret_and_host_origins_must_be_named(tmp_path, s3_store):
    with pytest.raises(SettingsError, match="SERIES_TEST_PAYMENTS.*SERIES_WEBHOOK_SECRET"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_TEST_PAYMENTS="true"))
    with pytest.raises(SettingsError, match="SERIES_WEB_HOST_ORIGINS"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_WEB_HOST_ORIGINS="*"))
    with pytest.raises(SettingsError, match="SERIES_WEB_HOST_ORIGINS"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_WEB_HOST_ORIGINS="app.example.com"))


async def test_off_the_sign_in_and_the_simulator_answer_404_saying_how_to_turn_them_on(off):
    response = await off.client.post("/v1/local/sign-in", json={"viewer_id": "ann"})
    assert response.status == 404 and await problem_code(response) == "local_sign_in_off"
    assert "SERIES_LOCAL_SIGN_IN" in (await response.json(content_type=None))["detail"]
    viewer = await off.account("ann", "viewer")
    response = await off.client.post("/v1/test-payments", json={"series_id": SERIES}, headers=viewer)
    assert response.status == 404 and await problem_code(response) == "test_payments_off"
    assert not off.services.entitlements.is_entitled("ann", SERIES)


async def test_a_local_sign_in_is_a_viewer_account_token(on):
    response = await on.client.post("/v1/local/sign-in", json={"viewer_id": "ann"})
    assert response.status == 201 and response.headers["Cache-Control"] == "no-store"
    answer = await response.json()
    account = on.services.tokens.verify_account(answer["token"])
    assert (account.subject, account.role, answer["viewer_id"]) == ("ann", "viewer", "ann")
    refused = await on.client.post("/v1/local/sign-in", json={"viewer_id": "../etc"})
    assert refused.status == 422 and await problem_code(refused) == "invalid_field"


async def test_a_local_sign_in_as_a_creator_is_a_creator_account_token(on):
    """The studio's "choose a local creator": a creator token, which sells nothing until the creator is eligible."""
    response = await on.client.post("/v1/local/sign-in", json={"creator_id": "cy"})
    assert response.status == 201
    answer = await response.json()
    account = on.services.tokens.verify_account(answer["token"])
    assert (account.subject, account.role, answer["creator_id"]) == ("cy", "creator", "cy") and "viewer_id" not in answer
    creator = {"Authorization": f"Bearer {answer['token']}"}
    refused = await on.client.post("/v1/series", json={"series_id": "mine", "title": "Mine", "price_cents": 499,
                                                       "currency": "USD"}, headers=creator)
    assert refused.status == 403 and await problem_code(refused) == "creator_not_eligible"
    for body in ({"viewer_id": "ann", "creator_id": "cy"}, {}, {"creator_id": "../etc"}):
        refused = await on.client.post("/v1/local/sign-in", json=body)
        assert refused.status == 422 and await problem_code(refused) == "invalid_field", body


async def test_a_test_purchase_goes_through_the_signed_webhook_and_a_refund_takes_it_back(on):
    token = (await (await on.client.post("/v1/local/sign-in", json={"viewer_id": "ann"})).json())["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    assert (await (await on.client.get(f"/v1/series/{SERIES}/paywall", headers=viewer)).json())["is_owned"] is False

    response = await on.client.post("/v1/test-payments", json={"series_id": SERIES}, headers=viewer)
    assert response.status == 200, await response.text()
    outcome = await response.json()
    assert outcome["result"] == "granted" and outcome["is_test"] and outcome["payment_id"].startswith("testpay_")
    assert (await (await on.client.get(f"/v1/series/{SERIES}/paywall", headers=viewer)).json())["is_owned"] is True
    # recorded as the payment system's purchase: the series' price, the payments actor, the payment's id
    [entitlement] = on.services.entitlements.list_for_viewer("ann")
    assert (entitlement.source, entitlement.reference) == ("purchase", outcome["payment_id"])
    trail = on.services.entitlements.audit_trail(viewer_id="ann")
    assert [event.actor for event in trail] == ["payments"]

    refund = refund_test_purchase(on.services, "ann", SERIES)
    assert refund.result == "revoked"
    ended = await (await on.client.get("/v1/me/entitlements?include=ended", headers=viewer)).json()
    assert [(e["series_id"], e["ended_by"]) for e in ended["entitlements"]] == [(SERIES, "refunded")]
    active = await (await on.client.get("/v1/me/entitlements", headers=viewer)).json()
    assert active["entitlements"] == []
    with pytest.raises(NotEntitled):
        refund_test_purchase(on.services, "ann", SERIES)


async def test_only_a_test_purchase_is_refunded_from_the_cli_and_a_revocation_says_so(on):
    response = await on.webhook(payment_body("payment.succeeded", "real-pay-1", "bob", SERIES, amount_cents=799))
    assert (await response.json())["result"] == "granted"
    with pytest.raises(NotATestPurchase, match="refund a real payment in the payment system"):
        refund_test_purchase(on.services, "bob", SERIES)
    on.services.entitlements.grant("cat", SERIES, source="comp")
    with pytest.raises(NotATestPurchase, match="as a comp"):
        refund_test_purchase(on.services, "cat", SERIES)
    on.services.entitlements.revoke("cat", SERIES, reason="abuse", actor="cli")
    cat = await on.account("cat", "viewer")
    ended = await (await on.client.get("/v1/me/entitlements?include=ended", headers=cat)).json()
    assert [e["ended_by"] for e in ended["entitlements"]] == ["revoked"]
    bad = await on.client.get("/v1/me/entitlements?include=everything", headers=cat)
    assert bad.status == 422


async def test_a_purchase_of_a_series_not_for_sale_is_answered_with_the_webhooks_refusal(on):
    await on.client.post(f"/v1/series/{SERIES}/unpublish", headers=on.operator_headers)
    viewer = await on.account("dan", "viewer")
    response = await on.client.post("/v1/test-payments", json={"series_id": SERIES}, headers=viewer)
    assert response.status == 200
    assert (await response.json())["code"] == "series_not_for_sale"
    assert not on.services.entitlements.is_entitled("dan", SERIES)


async def test_pages_carry_their_own_policy_and_files_are_immutable(on):
    if not on.client.app[pages.ASSETS].is_built:
        pytest.skip("the web app is not built: npm ci && npm run build")
    for path in ("/", f"/series/{SERIES}", f"/series/{SERIES}/episodes/1"):
        response = await on.client.get(path)
        assert response.status == 200 and response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "media-src 'self' blob:" in policy
        assert "frame-ancestors 'none'" in policy and response.headers["X-Frame-Options"] == "DENY"
        html = await response.text()
    config = json.loads(html.split('id="series-config">')[1].split("</script>")[0])
    assert config["local_sign_in"] and config["test_payments"] and config["hls_worker_url"].startswith("/assets/")
    script = html.split('<script type="module" src="')[1].split('"')[0]
    response = await on.client.get(script)
    assert response.status == 200 and response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.content_type == "text/javascript"
    for name in ("manifest.json", "..%2Fshell.html", "app.js", "chunk-AAAAAAAA.js"):
        assert (await on.client.get(f"/assets/{name}")).status == 404
    assert (await on.client.get("/series/bad..id")).status == 404
    # the studio: the same policy, a bundle of its own (the viewer's pages never load the upload client)
    scripts = {}
    for path in ("/studio", f"/studio/series/{SERIES}"):
        response = await on.client.get(path)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
        assert response.headers["Content-Security-Policy"] == policy
        scripts[path] = (await response.text()).split('<script type="module" src="')[1].split('"')[0]
    assert scripts["/studio"] == scripts[f"/studio/series/{SERIES}"] != script and "/studio-" in scripts["/studio"]
    assert (await on.client.get("/studio/series/bad..id")).status == 404


async def test_host_origins_may_frame_the_pages(tmp_path, s3_store, aiohttp_client):
    settings = catalog_settings(tmp_path, s3_store, SERIES_WEB_HOST_ORIGINS="https://app.example.com")
    api = await start(settings, aiohttp_client)
    try:
        if not api.client.app[pages.ASSETS].is_built:
            pytest.skip("the web app is not built: npm ci && npm run build")
        response = await api.client.get("/")
        assert "frame-ancestors https://app.example.com;" in response.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in response.headers
        assert (await api.client.get("/v1/series")).headers["X-Frame-Options"] == "DENY"    # the API still refuses
    finally:
        api.services.close()


async def test_without_a_build_the_pages_say_how_to_make_one(tmp_path, s3_store, aiohttp_client, monkeypatch):
    monkeypatch.setattr("server.web.assets.DIST", tmp_path / "nowhere")
    api = await start(catalog_settings(tmp_path, s3_store), aiohttp_client)
    try:
        assert not WebAssets.find().is_built
        response = await api.client.get("/")
        assert response.status == 503 and await problem_code(response) == "web_assets_missing"
        assert "npm run build" in (await response.json(content_type=None))["detail"]
        assert (await api.client.get("/v1/series")).status == 200
    finally:
        api.services.close()

"""Purchases over real HTTP: signed webhooks grant and revoke, keys follow within a change-feed poll,
free previews need no purchase, and everything survives a restart without a key in the clear."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from drm.payments.purchases import CHARGEBACK, PURCHASE, REFUND, sign
from server.access.feed import POLL_INTERVAL_S
from server.app import create_app
from server.services import Services
from tests.server.catalog_support import WEBHOOK_SECRET, Api, catalog_settings, payment_body, problem_code, publish_keys
from tests.support.catalog import add_series

SERIES, BUYER, STRANGER = "s1", "alice", "bob"


@pytest.fixture
def settings(tmp_path, s3_store):
    return catalog_settings(tmp_path, s3_store)


@pytest.fixture
def key(settings):
    """Series s1 with one paid episode's key, written by a Services that is closed again."""
    services = Services.open(settings)
    try:
        add_series(services, SERIES)
        return publish_keys(services, SERIES, "e1")
    finally:
        services.close()


async def start(settings, aiohttp_client) -> Api:
    services = Services.open(settings)
    client = await aiohttp_client(create_app(settings, services))
    return Api(client, services)


@pytest.fixture
async def api(settings, key, aiohttp_client):
    api = await start(settings, aiohttp_client)
    yield api
    api.services.close()


async def test_signed_purchase_grants_and_replay_changes_nothing(api, key):
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403
    body = payment_body(PURCHASE, "pay-1", BUYER, SERIES)
    first = await api.webhook(body)
    assert first.status == 200 and (await first.json())["result"] == "granted"
    assert await api.key_status(key.key_id, BUYER, SERIES) == 200
    replay = await api.webhook(body)
    assert replay.status == 200 and (await replay.json())["result"] == "duplicate"
    audit = await (await api.client.get("/v1/operator/entitlements/audit", headers=api.operator_headers)).json()
    assert [(event["action"], event["reference"], event["actor"]) for event in audit["events"]] == [
        ("grant", "pay-1", "payments")]


@pytest.mark.parametrize("case, code", [
    ("wrong_secret", "webhook_signature_invalid"),
    ("tampered_body", "webhook_signature_invalid"),
    ("stale", "webhook_timestamp_outside_window"),
    ("future", "webhook_timestamp_outside_window"),
    ("unsigned", "webhook_signature_missing"),
    ("garbled", "webhook_signature_malformed"),
    ("superscript_timestamp", "webhook_signature_malformed"),     # "²".isdigit(), yet int() refuses it
])
async def test_forged_or_stale_webhooks_grant_nothing(api, key, case, code):
    body = payment_body(PURCHASE, "pay-1", BUYER, SERIES)
    now = int(time.time())
    if case == "wrong_secret":
        response = await api.webhook(body, secret="not-the-shared-secret-at-all")
    elif case == "tampered_body":
        good = payment_body(PURCHASE, "pay-1", STRANGER, SERIES)
        response = await api.webhook(body, signature=sign(WEBHOOK_SECRET.encode(), now, good))
    elif case == "stale":
        response = await api.webhook(body, timestamp=now - 301)
    elif case == "future":
        response = await api.webhook(body, timestamp=now + 301)
    elif case == "unsigned":
        response = await api.webhook(body, signature="")
    elif case == "superscript_timestamp":
        response = await api.webhook(body, signature="t=\u00b2,v1=abc")
    else:
        response = await api.webhook(body, signature="v1=abc")
    assert response.status == 401 and await problem_code(response) == code
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403
    assert await api.key_status(key.key_id, STRANGER, SERIES) == 403


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "malformed_body"),          # parsed in server/, like every JSON body
    (b"[" * 3000 + b"]" * 3000, 400, "malformed_body"),
    (b'{"id": "e1", "type": "payment.gifted", "data": {}}', 422, "invalid_field"),
    (payment_body(PURCHASE, "pay-1", BUYER, "no-such-series"), 404, "unknown_series"),
    (payment_body(PURCHASE, "../pay", BUYER, SERIES), 422, "invalid_field"),
    (b"{" + b" " * 70_000 + b"}", 413, "body_too_large"),
])
async def test_signed_but_unusable_bodies_are_refused(api, key, body, status, code):
    response = await api.webhook(body)
    assert response.status == status and await problem_code(response) == code
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403


@pytest.mark.parametrize("revocation", [REFUND, CHARGEBACK])
async def test_refund_revokes_on_the_next_key_request(api, key, revocation):
    await api.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
    assert await api.key_status(key.key_id, BUYER, SERIES) == 200      # now cached as entitled
    response = await api.webhook(payment_body(revocation, "pay-1", BUYER, SERIES))
    assert (await response.json())["result"] == "revoked"
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403      # same instance: forgotten at once
    # a late or replayed purchase event for the refunded payment never grants again
    late = await api.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES, event_id="evt-late"))
    assert (await late.json())["result"] == "duplicate"
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403


async def test_refund_through_another_instance_is_seen_within_a_poll(settings, key, api, aiohttp_client):
    other = await start(settings, aiohttp_client)       # a second instance on the same database
    try:
        await other.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
        assert await api.key_status(key.key_id, BUYER, SERIES) == 200   # api now caches "entitled"
        await other.webhook(payment_body(REFUND, "pay-1", BUYER, SERIES))
        deadline = time.monotonic() + POLL_INTERVAL_S + 2.0      # SQLite: the next poll of the change feed
        while await api.key_status(key.key_id, BUYER, SERIES) == 200:
            assert time.monotonic() < deadline, "revocation not visible within a poll of the change feed"
            await asyncio.sleep(0.1)
        assert await api.key_status(key.key_id, BUYER, SERIES) == 403
    finally:
        other.services.close()


async def test_a_purchase_arriving_after_its_refund_grants_nothing(api, key):
    early = await api.webhook(payment_body(REFUND, "pay-1", BUYER, SERIES))
    assert (await early.json())["result"] == "revoked"
    late = await api.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
    assert (await late.json())["result"] == "ignored"
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403


async def test_refund_of_an_old_payment_keeps_a_newer_purchase(api, key):
    await api.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
    await api.webhook(payment_body(REFUND, "pay-1", BUYER, SERIES))
    await api.webhook(payment_body(PURCHASE, "pay-2", BUYER, SERIES))
    await api.webhook(payment_body(CHARGEBACK, "pay-1", BUYER, SERIES))
    assert await api.key_status(key.key_id, BUYER, SERIES) == 200


async def test_free_preview_key_needs_a_token_but_no_purchase(api, key):
    preview = publish_keys(api.services, SERIES, "trailer", is_free_preview=True)
    assert await api.key_status(preview.key_id, STRANGER, SERIES) == 200
    assert await api.key_status(key.key_id, STRANGER, SERIES) == 403          # the paid episode stays paid
    no_token = await api.client.get(f"/v1/keys/{preview.key_id}")
    assert no_token.status == 401
    other_series = api.services.tokens.mint(STRANGER, "s2")
    wrong = await api.client.get(f"/v1/keys/{preview.key_id}", params={"token": other_series})
    assert wrong.status == 403 and await problem_code(wrong) == "token_wrong_series"


async def test_viewer_lists_what_they_own_and_gets_playback_urls(api, key):
    publish_keys(api.services, SERIES, "trailer", is_free_preview=True)
    viewer = await api.account(BUYER, "viewer")
    owned = await (await api.client.get("/v1/me/entitlements", headers=viewer)).json()
    assert owned == {"entitlements": []}
    refused = await api.client.post(f"/v1/series/{SERIES}/episodes/e1/playback", headers=viewer)
    assert refused.status == 403 and await problem_code(refused) == "not_entitled"
    preview = await api.client.post(f"/v1/series/{SERIES}/episodes/trailer/playback", headers=viewer)
    assert (await preview.json())["access"] == "free_preview"

    await api.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
    owned = await (await api.client.get("/v1/me/entitlements", headers=viewer)).json()
    assert [(e["series_id"], e["source"], e["reference"]) for e in owned["entitlements"]] == [
        (SERIES, "purchase", "pay-1")]
    playback = await api.client.post(f"/v1/series/{SERIES}/episodes/e1/playback", headers=viewer)
    grant = await playback.json()
    assert grant["access"] == "entitled"
    assert grant["master_url"].endswith(f"/v1/series/{SERIES}/episodes/e1/master.m3u8?token={grant['token']}")
    assert api.services.tokens.verify(grant["token"]).viewer_id == BUYER
    unknown = await api.client.post(f"/v1/series/{SERIES}/episodes/e404/playback", headers=viewer)
    assert unknown.status == 404
    creator = await api.account("creator-1", "creator")
    wrong_role = await api.client.get("/v1/me/entitlements", headers=creator)
    assert wrong_role.status == 403


async def test_operator_comps_and_revokes_with_an_audit_trail(api, key):
    grant = await api.client.post("/v1/operator/entitlements", headers=api.operator_headers,
                                  json={"viewer_id": STRANGER, "series_id": SERIES, "source": "gift",
                                        "reason": "contest winner"})
    assert grant.status == 201 and (await grant.json())["source"] == "gift"
    assert await api.key_status(key.key_id, STRANGER, SERIES) == 200
    revoke = await api.client.post("/v1/operator/entitlements/revoke", headers=api.operator_headers,
                                   json={"viewer_id": STRANGER, "series_id": SERIES, "reason": "abuse"})
    assert (await revoke.json())["revoked"] is True
    assert await api.key_status(key.key_id, STRANGER, SERIES) == 403
    audit = await (await api.client.get("/v1/operator/entitlements/audit", params={"viewer_id": STRANGER},
                                        headers=api.operator_headers)).json()
    assert [(e["action"], e["source"], e["reason"], e["actor"]) for e in audit["events"]] == [
        ("revoke", "gift", "abuse", "operator:ops-ann"), ("grant", "gift", "contest winner", "operator:ops-ann")]
    purchase = await api.client.post("/v1/operator/entitlements", headers=api.operator_headers,
                                     json={"viewer_id": STRANGER, "series_id": SERIES, "source": "purchase"})
    assert purchase.status == 422
    unknown = await api.client.post("/v1/operator/entitlements", headers=api.operator_headers,
                                    json={"viewer_id": STRANGER, "series_id": "nope", "source": "comp"})
    assert unknown.status == 404
    bad_limit = await api.client.get("/v1/operator/entitlements/audit", params={"limit": "0"},
                                     headers=api.operator_headers)
    assert bad_limit.status == 422


async def test_entitlements_and_keys_survive_a_restart(settings, key, aiohttp_client):
    first = await start(settings, aiohttp_client)
    await first.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
    await first.client.close()
    first.services.close()

    second = await start(settings, aiohttp_client)
    try:
        token = second.services.tokens.mint(BUYER, SERIES)
        response = await second.client.get(f"/v1/keys/{key.key_id}", params={"token": token})
        assert response.status == 200 and await response.read() == key.key
        assert await second.key_status(key.key_id, STRANGER, SERIES) == 403
        replay = await second.webhook(payment_body(PURCHASE, "pay-1", BUYER, SERIES))
        assert (await replay.json())["result"] == "duplicate"
    finally:
        second.services.close()


def db_bytes(settings) -> tuple[set[str], bytes]:
    """The database file and its -wal/-shm companions, as copied off the server."""
    files = [path for path in settings.db_path.parent.iterdir() if path.name.startswith(settings.db_path.name)]
    return {path.name[len(settings.db_path.name):] for path in files}, b"".join(p.read_bytes() for p in files)


def assert_no_clear_key(raw: bytes, keys) -> None:
    for content_key in keys:
        for form in (content_key.key, content_key.key.hex().encode(), content_key.key.hex().upper().encode(),
                     base64.b64encode(content_key.key), base64.urlsafe_b64encode(content_key.key).rstrip(b"=")):
            assert form not in raw


def test_database_files_hold_no_content_key_in_the_clear(settings, key):
    services = Services.open(settings)
    try:
        keys = [key, *services.keystore.create_keys(SERIES, "e2", 8)]
        suffixes, raw = db_bytes(settings)
        assert suffixes >= {"", "-wal"} and len(raw) > 0     # the WAL still holds the new rows
        assert_no_clear_key(raw, keys)
        assert all(services.keystore.get(k.key_id).key == k.key for k in keys)   # they are there, wrapped
    finally:
        services.close()
    _, raw = db_bytes(settings)                              # checkpointed into the main file on close
    assert_no_clear_key(raw, keys)


@pytest.mark.parametrize("amount_cents, currency, code, status", [
    (498, "USD", "payment_below_price", "underpaid"),
    (0, "USD", "payment_below_price", "underpaid"),
    (499, "EUR", "payment_currency_mismatch", "wrong_currency"),
])
async def test_a_payment_that_does_not_cover_the_price_grants_nothing(api, key, amount_cents, currency, code, status):
    body = payment_body(PURCHASE, "pay-short", BUYER, SERIES, amount_cents=amount_cents, currency=currency)
    # 200: the event is genuine and recorded; a retry could not change the answer, so the provider must stop
    response = await api.webhook(body)
    assert response.status == 200
    assert await response.json() == {"result": "refused", "code": code, "detail": (await response.json())["detail"]}
    assert await api.key_status(key.key_id, BUYER, SERIES) == 403
    replay = await api.webhook(body)
    assert (await replay.json())["result"] == "duplicate"
    assert api.services.db.query("SELECT status, amount_cents, currency FROM payments WHERE payment_id = ?",
                                 ("pay-short",))[0][:] == (status, amount_cents, currency)
    assert not api.services.entitlements.is_entitled(BUYER, SERIES)


async def test_a_payment_above_the_price_grants(api, key):
    response = await api.webhook(payment_body(PURCHASE, "pay-tip", BUYER, SERIES, amount_cents=999))
    assert (await response.json())["result"] == "granted"
    assert await api.key_status(key.key_id, BUYER, SERIES) == 200


async def test_a_malformed_audit_filter_is_a_bad_field_not_an_unknown_path(api):
    response = await api.client.get("/v1/operator/entitlements/audit?viewer_id=../x", headers=api.operator_headers)
    assert response.status == 422 and await problem_code(response) == "invalid_field"

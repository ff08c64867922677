"""Each attack of the hostile-input review, replayed against a running service (a real loopback socket),
and shown refused: SSRF through a webhook redirect, a picture size change hidden behind a small header,
unbounded work, guessing bearer secrets, 3000-deep JSON, clients hanging up mid-body, an 81st episode,
tokens minted by a host application, a cut-off phone upload."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time
import uuid
from dataclasses import dataclass

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drm.payments.purchases import SIGNATURE_HEADER, sign
from server.app import create_app, start_runner
from server.edge.accesslog import ACCESS_LOGGER, quiet_parser_errors
from server.services import Services
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, publish_keys
from tests.server.edge.test_metrics import samples, value
from tests.support.catalog import add_series
from tests.support.jobs import AUTH, ingest_env, wait_for_job
from tests.support.media import size_change_clip, truncated_mp4
from tests.support.s3_server import free_port

SERIES = "s-sec"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DEEP = b"[" * 3000 + b"]" * 3000             # 6 KB, under every body limit
HOST_KEY = ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
async def world(tmp_path, s3_store):
    """Factory: await world(**SERIES_* overrides) → (client, services), the service as `series serve` runs it
    (JSON access log, keys answered first), with the catalog, the ingest API and series SERIES open."""
    opened = []

    async def make(**overrides: str):
        from server.config import Settings

        host_public = HOST_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        env = ingest_env(tmp_path / f"w{len(opened)}", s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                         SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                         SERIES_TOKEN_PUBLIC_KEYS="host-app:" + base64.b64encode(host_public).decode(),
                         SERIES_MIN_DURATION_S="2", **overrides)
        settings = Settings.from_env(env)
        services = Services.open(settings)
        await asyncio.to_thread(services.store.ensure_bucket)
        await asyncio.to_thread(add_series, services, SERIES)
        runner = await start_runner(create_app(settings, services))     # as `series serve` runs it
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        client = Client(aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}"), "127.0.0.1", port)
        opened.append((client, runner, services))
        return client, services

    yield make
    for client, runner, services in opened:
        await client.session.close()
        await runner.cleanup()
        services.close()


@dataclass
class Client:
    """An HTTP client of one running service: session.get("/path") etc., plus where it listens."""

    session: aiohttp.ClientSession
    host: str
    port: int

    def __getattr__(self, name: str):
        return getattr(self.session, name)


async def _upload(client, data: bytes, episode: str, *, query: str = "") -> dict:
    headers = {**AUTH, "Idempotency-Key": f"k-{uuid.uuid4().hex}", "Content-Type": "video/mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/{episode}/ingest{query}", data=io.BytesIO(data),
                           headers=headers) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def test_a_webhook_redirect_to_another_port_is_not_followed(world, aiohttp_server, not_media):
    stolen = []

    async def thief(request: web.Request) -> web.Response:
        stolen.append(await request.read())
        return web.Response(status=200)

    thief_app = web.Application()
    thief_app.router.add_post("/steal", thief)
    thief_server = await aiohttp_server(thief_app)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(thief_server.make_url("/steal")))

    hook_app = web.Application()
    hook_app.router.add_post("/hook", redirect)
    hook_server = await aiohttp_server(hook_app)
    client, _ = await world(SERIES_JOB_WEBHOOK_HOSTS=f"127.0.0.1:{hook_server.port}")
    job = await _upload(client, not_media.read_bytes(), "1",
                        query=f"?webhook_url={hook_server.make_url('/hook')}")
    done = await wait_for_job(client, job["job_id"], until=lambda j: (j["webhook"] or {}).get("status"))
    assert done["webhook"]["status"].startswith("failed (HTTP 307 redirect to"), done["webhook"]
    assert stolen == []


async def test_a_picture_size_change_behind_a_small_header_is_refused_when_it_appears(world, media_dir):
    attack = size_change_clip(media_dir, "sps-8192.mp4")          # 35 s at 320x240, then 8192x8192
    client, services = await world()
    job = await _upload(client, attack.read_bytes(), "2")
    failed = await wait_for_job(client, job["job_id"])
    assert failed["state"] == "failed", failed
    reasons = failed["validation_report"]["reasons"]
    assert [r["code"] for r in reasons] == ["resolution_too_high"]
    assert reasons[0]["message"] == "At 35.0 s the picture becomes 8192x8192; the limit is 4096 px a side"
    assert await asyncio.to_thread(services.catalog.list_episodes, SERIES) == []


async def test_work_beyond_the_budget_is_refused_before_transcoding(world, landscape_clip):
    client, _ = await world(SERIES_MAX_DECODED_PIXELS="1e8")        # 640x360 x 25 fps x 32 s is 1.8e8
    job = await _upload(client, landscape_clip.read_bytes(), "3")
    failed = await wait_for_job(client, job["job_id"])
    assert [r["code"] for r in failed["validation_report"]["reasons"]] == ["over_work_budget"]
    assert "transcoding" not in failed["seen_states"]


@pytest.mark.parametrize("route, method, good_headers", [
    ("/v1/operator/applications", "GET", OPERATOR),
    ("/v1/jobs", "GET", AUTH),
    ("/v1/me/entitlements", "GET", None),                          # account tokens
])
async def test_guessing_a_bearer_secret_is_throttled_per_address(world, route, method, good_headers):
    client, services = await world()
    if good_headers is None:
        good_headers = {"Authorization": f"Bearer {services.tokens.mint_account('v1', 'viewer')}"}
    statuses = []
    for attempt in range(30):
        async with client.request(method, route, headers={"Authorization": f"Bearer guess-{attempt:04d}-xxxxxxxx"}) \
                as response:
            statuses.append(response.status)
            if response.status == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert (await response.json(content_type=None))["code"] == "too_many_auth_failures"
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    # the right secret from the same address waits too: otherwise guessing would go on
    async with client.request(method, route, headers=good_headers) as response:
        assert response.status == 429


async def test_the_metrics_token_is_throttled_too(world):
    client, _ = await world(SERIES_METRICS_TOKEN="scrape-Qw4Er7Ty1Ui5Op8As")
    statuses = []
    for attempt in range(25):
        async with client.get("/metrics", headers={"Authorization": f"Bearer nope-{attempt}"}) as response:
            statuses.append(response.status)
    assert statuses.count(401) == 20 and statuses[-1] == 429


async def test_3000_deep_json_is_a_400_problem_on_every_json_endpoint(world):
    client, services = await world()
    creator = {"Authorization": f"Bearer {services.tokens.mint_account('creator-1', 'creator')}"}
    json_headers = {"Content-Type": "application/json"}
    stamp = int(time.time())
    requests = [
        ("POST", "/v1/series", creator),
        ("PATCH", f"/v1/series/{SERIES}", creator),
        ("POST", "/v1/creators/creator-1/eligibility", OPERATOR),
        ("POST", "/v1/creators/creator-1/application", creator),
        ("POST", "/v1/operator/account-tokens", OPERATOR),
        ("POST", "/v1/operator/entitlements", OPERATOR),
        ("POST", "/v1/operator/entitlements/revoke", OPERATOR),
        ("POST", "/v1/operator/creators/creator-1/decision", OPERATOR),
        ("POST", f"/v1/series/{SERIES}/episodes/5/ingest", {**AUTH, "Idempotency-Key": "deep-1"}),
        ("POST", "/v1/webhooks/payments", {SIGNATURE_HEADER: sign(WEBHOOK_SECRET.encode(), stamp, DEEP)}),
    ]
    for method, path, headers in requests:
        async with client.request(method, path, data=DEEP, headers={**json_headers, **headers}) as response:
            assert response.status == 400, (path, await response.text())
            assert response.content_type == "application/problem+json"
            assert "nests deeper than" in (await response.json(content_type=None))["detail"]


async def test_a_client_that_hangs_up_mid_body_is_a_499_not_a_500(world, caplog):
    client, _ = await world()
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /v1/operator/account-tokens HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {OPERATOR_TOKEN}\r\nContent-Length: 1000\r\n\r\n".encode() + b'{"subj')
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(50):
        if any(r.name == ACCESS_LOGGER for r in caplog.records):
            break
        await asyncio.sleep(0.1)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [line["status"] for line in lines] == [499], caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    async with client.get("/metrics") as response:
        found = samples(await response.text())
    assert value(found, "series_http_requests_total", method="POST", route="/v1/operator/account-tokens",
                 status="499") == 1


async def test_aiohttps_own_parser_errors_are_logged_at_info_without_a_traceback(world, caplog):
    client, _ = await world()
    quiet_parser_errors()         # as `series serve` configures its logs
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert b"400 Bad Request" in answer
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelno == logging.INFO and r.exc_info is None for r in records), records
    assert "BadHttpMessage" in records[0].getMessage() or "InvalidHeader" in records[0].getMessage()


async def test_an_81st_episode_is_refused_with_409_before_a_job_is_queued(world, not_media):
    client, services = await world()
    for n in range(80):
        await asyncio.to_thread(publish_keys, services, SERIES, f"e{n}")
    headers = {**AUTH, "Idempotency-Key": "eighty-one", "Content-Type": "video/mp4"}
    async with client.post(f"/v1/series/{SERIES}/episodes/e80/ingest", data=not_media.read_bytes(),
                           headers=headers) as response:
        assert response.status == 409
        assert (await response.json(content_type=None))["code"] == "episode_limit_reached"
    async with client.get("/v1/jobs", headers=AUTH) as response:
        assert (await response.json())["jobs"] == []
    # a new version of an existing episode takes no slot: still accepted
    async with client.post(f"/v1/series/{SERIES}/episodes/e3/ingest", data=not_media.read_bytes(),
                           headers={**headers, "Idempotency-Key": "new-version"}) as response:
        assert response.status == 202


async def test_a_creator_no_longer_eligible_cannot_queue_episodes(world, not_media):
    client, services = await world()
    from drm.catalog.eligibility import CreatorProfile
    from tests.support.catalog import eligible_facts

    await asyncio.to_thread(services.creators.record,
                            CreatorProfile.from_json("creator-1", eligible_facts(is_in_good_standing=False)))
    async with client.post(f"/v1/series/{SERIES}/episodes/1/ingest", data=not_media.read_bytes(),
                           headers={**AUTH, "Idempotency-Key": "k", "Content-Type": "video/mp4"}) as response:
        assert response.status == 403
        assert (await response.json(content_type=None))["code"] == "creator_not_eligible"


async def test_a_host_application_mints_tokens_without_our_secret(world):
    client, services = await world()
    key = await asyncio.to_thread(publish_keys, services, SERIES, "e1")
    await asyncio.to_thread(services.entitlements.grant, "v1", SERIES)
    now = int(time.time())
    claims = {"sub": "v1", "ser": SERIES, "sid": "s-host", "iat": now, "exp": now + 300, "aud": "playback",
              "jti": "host-1"}
    token = jwt.encode(claims, HOST_KEY, algorithm="EdDSA", headers={"kid": "host-app"})
    async with client.get(f"/v1/keys/{key.key_id}", params={"token": token}) as response:
        assert response.status == 200 and await response.read() == key.key
    forged = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "host-app"})
    async with client.get(f"/v1/keys/{key.key_id}", params={"token": forged}) as response:
        assert response.status == 401


async def test_a_cut_off_phone_upload_is_called_truncated(world, media_dir, landscape_clip):
    client, _ = await world()
    job = await _upload(client, truncated_mp4(media_dir, "cut-off.mp4", landscape_clip).read_bytes(), "4")
    failed = await wait_for_job(client, job["job_id"])
    reasons = failed["validation_report"]["reasons"]
    assert [r["code"] for r in reasons] == ["truncated"]
    assert "the upload was cut off; upload it again" in reasons[0]["message"]

"""A bounded fuzz of every HTTP endpoint the service registers (hypothesis): hostile methods, path parts,
queries, credentials and bodies (garbage, JSON of every shape, deeply nested) never get a 5xx or crash it.

The routes are read from the app itself, so an endpoint added later is fuzzed without touching this file.
(The OpenAPI description is checked by schemathesis in tests/server/reference/test_schemathesis.py.)
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import uuid
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app, start_runner
from server.services import Services
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, publish_keys
from tests.support.catalog import add_series
from tests.support.jobs import INGEST_TOKEN, ingest_env
from tests.support.s3_server import free_port

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def service(tmp_path_factory, s3_store):
    """(port, routes, credentials) of a running service with a series, an episode, a key and a buyer."""
    from server.config import Settings

    settings = Settings.from_env(ingest_env(
        tmp_path_factory.mktemp("http-fuzz"), s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
        SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
        SERIES_MAX_UPLOAD_BYTES="65536", SERIES_AUTH_FAILURES_BURST="1000000",
        SERIES_RATE_IP_BURST="1000000", SERIES_RATE_VIEWER_BURST="1000000"))
    services = Services.open(settings)
    services.store.ensure_bucket()
    add_series(services, "s1")
    key = publish_keys(services, "s1", "1")
    services.entitlements.grant("v1", "s1")
    credentials = {
        "operator": OPERATOR_TOKEN, "ingest": INGEST_TOKEN,
        "creator": services.tokens.mint_account("creator-1", "creator"),
        "viewer": services.tokens.mint_account("v1", "viewer"),
        "playback": services.tokens.mint("v1", "s1"),
    }
    app = create_app(settings, services)
    routes = sorted({(route.method, route.resource.canonical) for route in app.router.routes()
                     if route.resource is not None and route.method != "*"})
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = loop.run_until_complete(start_runner(app))
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-service", daemon=True)
    thread.start()
    yield port, routes, {**credentials, "key_id": key.key_id}
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    services.close()


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
deep_json = st.integers(min_value=10, max_value=5000).map(lambda n: b"[" * n + b"]" * n) | \
    st.integers(min_value=10, max_value=3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)


@st.composite
def requests(draw, routes, credentials):
    method, canonical = draw(st.sampled_from(routes))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    known = {"series_id": "s1", "episode_id": "1", "key_id": credentials["key_id"], "creator_id": "creator-1",
             "job_id": "job_" + "0" * 24, "rendition": "360p", "segment": "seg_00000.ts"}

    def part(match: re.Match) -> str:
        name = match.group(1)
        return draw(st.one_of(st.just(known.get(name, "x")), st.sampled_from(["..", "%2e%2e", "%00", "a" * 300]),
                              st.text(max_size=30).map(lambda text: quote(text, safe=""))))

    path = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", part, canonical)
    if draw(st.booleans()):
        names = st.sampled_from(["token", "limit", "state", "viewer_id", "series_id", "webhook_url", "x"])
        pairs = draw(st.lists(st.tuples(names, st.text(max_size=20)), max_size=3))
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)
    headers = {}
    who = draw(st.sampled_from(["operator", "ingest", "creator", "viewer", "playback", "none", "garbage"]))
    if who == "garbage":
        headers["Authorization"] = draw(header_text)
    elif who != "none":
        headers["Authorization"] = f"Bearer {credentials[who]}"
    headers["Content-Type"] = draw(st.sampled_from(["application/json", "video/mp4", "text/plain",
                                                    "application/json; charset=utf-16"]))
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.one_of(header_text, st.uuids().map(str)))
    body = draw(st.one_of(st.binary(max_size=1024), json_value.map(lambda v: json.dumps(v).encode()), deep_json))
    return method, path, headers, body


@FUZZ
@given(data=st.data())
def test_every_endpoint_answers_hostile_requests_without_a_5xx(service, data):
    port, routes, credentials = service
    method, path, headers, body = data.draw(requests(routes, credentials))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body if method not in ("GET", "HEAD") else None, headers=headers)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    assert response.status < 500, (method, path, headers, body[:200], content[:500])
    if method != "HEAD" and response.getheader("Content-Type", "").startswith("application/problem+json"):
        problem = json.loads(content)
        assert problem["status"] == response.status and problem["code"]


def test_the_fuzz_covers_every_route(service):
    _, routes, _ = service
    paths = {path for _, path in routes}
    assert {"/v1/series", "/v1/webhooks/payments", "/v1/keys/{key_id}", "/v1/jobs"} <= paths, paths
    assert len(routes) >= 20

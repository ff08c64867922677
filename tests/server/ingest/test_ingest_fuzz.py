"""Malformed input of every kind to the hand-off API gets a 4xx, never a 500 (hypothesis, bounded).

The service runs in a thread with its own event loop for the whole module, so hypothesis can drive it
from plain synchronous examples: one set of well-formed HTTP requests with hostile contents, one of
raw bytes on a socket that need not be HTTP at all.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import uuid
from dataclasses import replace
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packager.store import ObjectStore
from server.app import create_app
from server.services import Services
from tests.support.jobs import INGEST_TOKEN, ingest_settings
from tests.support.s3_server import free_port

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def service(tmp_path_factory, s3_store):
    """(port, uploads bucket) of a running service, with one small object in its uploads bucket."""
    bucket = f"u-{uuid.uuid4().hex[:12]}"
    app_settings = ingest_settings(tmp_path_factory.mktemp("fuzz"), s3_store, series=("s1",), SERIES_UPLOADS_BUCKET=bucket,
                                   SERIES_MAX_UPLOAD_BYTES="65536",
                                   # hostile input here, not guessing: bad tokens must not get the address throttled
                                   SERIES_AUTH_FAILURES_BURST="1000000")
    services = Services.open(app_settings)
    services.store.ensure_bucket()
    with ObjectStore(replace(app_settings.store, bucket=bucket)) as uploads:
        uploads.ensure_bucket()
        uploads.put_bytes("raw/a.mp4", b"not really a video")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(app_settings, services))
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-service", daemon=True)
    thread.start()
    yield port, bucket
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    services.close()


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=80)
path_part = st.one_of(st.sampled_from(["s1", "1", "job_" + "0" * 24, "..", "%2e%2e", ""]),
                      st.text(max_size=40).map(lambda text: quote(text, safe="")))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


@st.composite
def requests(draw, bucket: str):
    # mostly the routes that exist, with the method they take, so examples reach the handlers' insides
    endpoint = draw(st.sampled_from(["ingest", "ingest", "ingest", "job", "list", "other"]))
    a, b = draw(path_part), draw(path_part)
    query_value = st.one_of(st.sampled_from(["", "queued", "failed", "0", "1", "500", "501", "-1", "1e3"]),
                            st.text(max_size=20).map(lambda text: quote(text, safe="")))
    if endpoint == "ingest":
        method, path = "POST", f"/v1/series/{a}/episodes/{b}/ingest"
        if draw(st.booleans()):
            path += f"?webhook_url={draw(query_value)}"
    elif endpoint == "job":
        method, path = "GET", f"/v1/jobs/{a}"
    elif endpoint == "list":
        method, path = "GET", f"/v1/jobs?state={draw(query_value)}&limit={draw(query_value)}"
    else:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]))
        path = draw(st.sampled_from(["/v1/jobs", f"/v1/jobs/{a}", f"/v1/series/{a}/episodes/{b}/ingest"]))
    headers = {}
    auth = draw(st.sampled_from(["good", "good", "none", "other"]))
    if auth == "good":
        headers["Authorization"] = f"Bearer {INGEST_TOKEN}"
    elif auth == "other":
        headers["Authorization"] = draw(header_text)
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.one_of(header_text, st.uuids().map(str)))
    headers["Content-Type"] = draw(st.one_of(
        st.sampled_from(["application/json", "video/mp4", "application/octet-stream",
                         "multipart/form-data; boundary=x", "application/json; charset=utf-16"]), header_text))
    fields = st.fixed_dictionaries({}, optional={
        "bucket": st.one_of(st.just(bucket), json_value), "key": st.one_of(st.just("raw/a.mp4"), json_value),
        "webhook_url": st.one_of(st.just("http://127.0.0.1:9/hook"), json_value)})
    body = draw(st.one_of(
        st.binary(max_size=2048),
        json_value.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(st.text(max_size=12), json_value, max_size=5).map(lambda value: json.dumps(value).encode()),
        fields.map(lambda value: json.dumps(value).encode()),
    ))
    return method, path, headers, body


@FUZZ
@given(data=st.data())
def test_hostile_requests_get_4xx_never_5xx(service, data):
    port, bucket = service
    method, path, headers, body = data.draw(requests(bucket))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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


raw_line = st.one_of(
    st.sampled_from([b"POST /v1/series/s1/episodes/1/ingest HTTP/1.1", b"GET /v1/jobs HTTP/1.1",
                     b"POST /v1/jobs HTTP/1.0", b"GET /v1/jobs/job_%ff HTTP/1.1", b"BREW /v1/jobs HTTP/1.1"]),
    st.binary(max_size=100).filter(lambda line: b"\r" not in line and b"\n" not in line),
)
raw_header = st.one_of(
    st.sampled_from([f"Authorization: Bearer {INGEST_TOKEN}".encode(), b"Content-Length: 99999999999999999999",
                     b"Content-Length: -1", b"Content-Length: 5", b"Transfer-Encoding: chunked",
                     b"Transfer-Encoding: gzip, chunked", b"Content-Type: application/json", b"Idempotency-Key: k",
                     b"Host: 127.0.0.1", b"Expect: 100-continue", b": no-name", b"No-Colon"]),
    st.binary(max_size=60).filter(lambda line: b"\r" not in line and b"\n" not in line),
)


@FUZZ
@given(line=raw_line, headers=st.lists(raw_header, max_size=6), body=st.binary(max_size=300))
def test_malformed_http_gets_4xx_never_5xx(service, line, headers, body):
    port, _ = service
    message = line + b"\r\n" + b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert not status_line.startswith((b"HTTP/1.1 5", b"HTTP/1.0 5")), (message[:300], answer[:500])


@pytest.mark.parametrize("limit", ["²", "٣", "0", "501", "1" * 40])
def test_odd_limits_are_400(service, limit):
    port, _ = service
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/v1/jobs?limit={quote(limit)}", headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
        assert connection.getresponse().status == 400
    finally:
        connection.close()

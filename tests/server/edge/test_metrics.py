"""/metrics counts requests, key grants and denials; /healthz tells when the store is down."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from aiohttp.test_utils import TestServer, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.edge.accesslog import access_log_options
from server.edge.metrics import Metrics, is_loopback_request
from server.services import Services
from tests.conftest import settings_for
from tests.server.conftest import STRANGER
from tests.support.s3_server import start_test_store


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_a_grant_and_a_denial(key_world):
    world = await key_world()
    async with world.client.get(world.url(world.token())) as response:
        assert response.status == 200
    async with world.client.get(world.url(world.token(STRANGER))) as response:
        assert response.status == 403
    async with world.client.get(f"/v1/keys/../../etc/passwd?token={world.token()}") as response:
        assert response.status == 404
    async with world.client.get("/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        found = samples(await response.text())

    assert value(found, "series_key_requests_total", outcome="granted") == 1
    assert value(found, "series_key_requests_total", outcome="not_entitled") == 1
    route = "/v1/keys/{key_id}"
    assert value(found, "series_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(found, "series_http_requests_total", method="GET", route=route, status="403") == 1
    assert value(found, "series_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(found, "series_http_request_duration_seconds_count", route=route) == 2
    assert not any("k_" in str(labels) for _, labels in found)       # ids never become labels


def test_jobs_record_their_durations_and_failures():
    metrics = Metrics()
    with metrics.time_job("ingest"):
        pass
    with pytest.raises(RuntimeError), metrics.time_job("ingest"):
        raise RuntimeError("transcoder crashed")
    metrics.observe_job("ingest", 42.0)
    found = samples(metrics.exposition().decode())
    assert value(found, "series_job_duration_seconds_count", kind="ingest", outcome="succeeded") == 2
    assert value(found, "series_job_duration_seconds_count", kind="ingest", outcome="failed") == 1
    assert value(found, "series_job_duration_seconds_sum", kind="ingest", outcome="succeeded") >= 42.0


async def test_healthz_is_503_while_the_store_is_down(tmp_path, aiohttp_client):
    store = start_test_store(tmp_path / "private-s3")     # our own: stopping the session's would hurt others
    services = None
    try:
        settings = settings_for(tmp_path / "data", store)
        services = Services.open(settings)
        server = TestServer(create_app(settings, services))
        await server.start_server(**access_log_options())
        client = await aiohttp_client(server)
        assert await _healthz_until_ok(client) == {"status": "ok", "checks": {"database": "ok", "store": "ok"}}
        await asyncio.to_thread(store.stop)
        async with client.get("/healthz") as response:
            assert response.status == 503
            body = await response.json()
            assert body == {"status": "unavailable", "checks": {"database": "ok", "store": "down"}}
            assert response.headers["Cache-Control"] == "no-store"
        await client.close()
    finally:
        store.stop()
        if services is not None:
            services.close()


async def _healthz_until_ok(client, attempts: int = 20) -> dict:
    """A store just started may still refuse its first requests; give it a bounded while to settle."""
    for _ in range(attempts):
        async with client.get("/healthz") as response:
            body = await response.json()
            if response.status == 200:
                return body
        await asyncio.sleep(0.5)
    return body


async def test_metrics_need_the_token_when_one_is_set(key_world):
    world = await key_world(METRICS_TOKEN="scrape-Qw4Er7Ty1Ui5Op8As")
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}):
        async with world.client.get("/metrics", headers=headers) as response:
            assert response.status == 401
            assert (await response.json())["code"] == "metrics_token_required"
    async with world.client.get("/metrics", headers={"Authorization": "Bearer scrape-Qw4Er7Ty1Ui5Op8As"}) as response:
        assert response.status == 200
        assert "series_http_requests_total" in await response.text()


async def test_without_a_token_metrics_refuse_requests_a_proxy_forwarded(key_world):
    world = await key_world()
    # the peer is loopback, but a reverse proxy on this machine relays it for a remote client
    async with world.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}) as response:
        assert response.status == 403
        assert (await response.json())["code"] == "metrics_loopback_only"
    async with world.client.get("/metrics") as response:
        assert response.status == 200


def test_loopback_check_refuses_remote_peers():
    def request_from(peer: str):
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (peer, 40000) if name == "peername" else default
        return make_mocked_request("GET", "/metrics", transport=transport)

    assert is_loopback_request(request_from("127.0.0.1")) and is_loopback_request(request_from("::1"))
    assert not is_loopback_request(request_from("10.1.2.3"))
    assert not is_loopback_request(request_from("203.0.113.9"))

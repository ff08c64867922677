"""Rate limits on key requests: token buckets per viewer and per client address, over real HTTP."""

from __future__ import annotations

import pytest

from server.config import Settings, SettingsError
from server.edge.ratelimit import RateLimited, TokenBuckets
from tests.server.conftest import BUYER, STRANGER


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_refills_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets("viewer", rate_per_s=0.5, burst=3, max_tracked=10, clock=clock)
    for _ in range(3):
        buckets.take("alice")
    with pytest.raises(RateLimited) as refused:
        buckets.take("alice")
    assert refused.value.retry_after_s == 2          # one token back after 1 / 0.5 s
    buckets.take("bob")                              # another key has its own bucket
    clock.now += 2.0
    buckets.take("alice")
    with pytest.raises(RateLimited):
        buckets.take("alice")


def test_memory_stays_bounded_and_idle_buckets_are_forgotten():
    clock = Clock()
    buckets = TokenBuckets("client address", rate_per_s=1.0, burst=5, max_tracked=100, clock=clock)
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets) == 100
    clock.now += 5.0                                 # burst / rate: every bucket is full again
    buckets.take("192.0.2.1")
    assert len(buckets) == 1


async def test_429_with_retry_after_after_the_burst_and_other_viewers_unaffected(key_world):
    world = await key_world(RATE_VIEWER_BURST="3", RATE_VIEWER_PER_S="0.5")
    token = world.token(BUYER)
    for _ in range(3):
        async with world.client.get(world.url(token)) as response:
            assert response.status == 200
    async with world.client.get(world.url(token)) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert response.content_type == "application/problem+json"
        body = await response.json(content_type=None)
        assert body["code"] == "rate_limited" and "viewer" in body["detail"]
    # a new token for the same viewer does not reset the viewer's bucket
    async with world.client.get(world.url(world.token(BUYER))) as response:
        assert response.status == 429
    world.services.entitlements.grant("carol", "s1")
    async with world.client.get(world.url(world.token("carol"))) as response:
        assert response.status == 200
    async with world.client.get(world.url(world.token(STRANGER))) as response:
        assert response.status == 403                # limited separately, then refused on merit


async def test_one_address_is_limited_across_viewers(key_world):
    world = await key_world(RATE_IP_BURST="2", RATE_IP_PER_S="0.1")
    for viewer in ("v1", "v2"):
        async with world.client.get(world.url(world.token(viewer))) as response:
            assert response.status == 403
    async with world.client.get(world.url(world.token(BUYER))) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) == 10
        assert "client address" in (await response.json(content_type=None))["detail"]


async def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(key_world):
    # a token back every 100 s: on a loaded machine the default 20 per second refills between two requests
    spoofing = await key_world(RATE_IP_BURST="1", RATE_IP_PER_S="0.01")
    token = spoofing.token(BUYER)
    async with spoofing.client.get(spoofing.url(token), headers={"X-Forwarded-For": "198.51.100.1"}) as response:
        assert response.status == 200
    async with spoofing.client.get(spoofing.url(token), headers={"X-Forwarded-For": "198.51.100.2"}) as response:
        assert response.status == 429                # the header is ignored: the peer is not a proxy of ours

    proxied = await key_world(RATE_IP_BURST="1", RATE_IP_PER_S="0.01", TRUSTED_PROXIES="127.0.0.0/8")
    token = proxied.token(BUYER)
    for client_ip in ("198.51.100.1", "198.51.100.2"):
        # the client may prepend anything; the entry our proxy appended is the one that counts
        headers = {"X-Forwarded-For": f"203.0.113.9, {client_ip}"}
        async with proxied.client.get(proxied.url(token), headers=headers) as response:
            assert response.status == 200
    async with proxied.client.get(proxied.url(token), headers={"X-Forwarded-For": "198.51.100.1"}) as response:
        assert response.status == 429


def test_bad_rate_settings_name_the_variable(tmp_path, s3_store):
    from tests.conftest import settings_env

    with pytest.raises(SettingsError, match="SERIES_RATE_VIEWER_BURST has value 0"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_RATE_VIEWER_BURST="0"))
    with pytest.raises(SettingsError, match="SERIES_RATE_IP_PER_S has value 'fast'"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_RATE_IP_PER_S="fast"))
    with pytest.raises(SettingsError, match="SERIES_TRUSTED_PROXIES"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_TRUSTED_PROXIES="proxy.example"))

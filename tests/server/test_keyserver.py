"""The key path's memory: verified tokens until they expire, entitlements as a refreshed snapshot."""

from __future__ import annotations

import asyncio

import pytest

from drm.errors import TokenExpired, TokenInvalid
from drm.tokens import TokenSigner
from server.keyserver import KEY_EDGE, VerifiedTokens
from server.services import Services
from tests.drm.fixtures import FakeClock, settings_for as drm_settings_for
from tests.server.test_metrics import samples, value


def test_a_verified_token_is_remembered_only_until_it_expires():
    clock = FakeClock()
    signer = TokenSigner(drm_settings_for(), clock=clock)
    calls = []

    class CountingSigner:
        def verify(self, token):
            calls.append(token)
            return signer.verify(token)

    tokens = VerifiedTokens(CountingSigner(), max_entries=2, clock=clock)
    token = signer.mint("alice", "s1", ttl_s=60)
    assert tokens.verify(token).viewer_id == "alice"
    assert tokens.verify(token).viewer_id == "alice"
    assert len(calls) == 1
    clock.advance(60)
    with pytest.raises(TokenExpired):
        tokens.verify(token)
    with pytest.raises(TokenExpired):
        tokens.verify(token)                 # still expired, now from memory
    for bad in ("garbage", token[:-4] + "AAAA", None):
        for _ in range(2):                   # refused every time, the second time without PyJWT
            with pytest.raises(TokenInvalid) as refused:
                tokens.verify(bad)
            assert type(refused.value) is TokenInvalid
    assert calls.count("garbage") == 1 and calls.count(None) == 2
    for viewer in ("v1", "v2", "v3"):
        tokens.verify(signer.mint(viewer, "s1"))
    assert len(tokens._tokens) == 2 and len(tokens._refused) == 2


async def test_grants_move_to_memory_and_a_revocation_reaches_the_key_path(key_world):
    world = await key_world()
    edge = world.client.server.app[KEY_EDGE]
    token = world.token()
    await asyncio.to_thread(edge.snapshot.refresh, world.services)   # the background task does this each second
    async with world.client.get(world.url(token)) as response:
        assert response.status == 200
    async with world.client.get("/metrics") as response:
        assert value(samples(await response.text()), "series_key_grants_by_path_total", path="memory") == 1

    # revoked from another process (the CLI): seen through SQLite's data_version
    other = Services.open(world.services.settings)
    try:
        other.entitlements.revoke("alice", "s1")
    finally:
        other.close()
    await asyncio.to_thread(edge.snapshot.refresh, world.services)
    async with world.client.get(world.url(token)) as response:
        assert response.status == 403
    # re-granted through this process's own connection: seen through total_changes
    world.services.entitlements.grant("alice", "s1")
    await asyncio.to_thread(edge.snapshot.refresh, world.services)
    own = world.services.db.own_changes
    assert edge.snapshot.allows("alice", "s1", own)


async def test_a_revocation_through_this_process_is_enforced_on_the_next_request(key_world):
    world = await key_world()
    edge = world.client.server.app[KEY_EDGE]
    token = world.token()
    await asyncio.to_thread(edge.snapshot.refresh, world.services)
    async with world.client.get(world.url(token)) as response:
        assert response.status == 200                      # answered from memory
    world.services.entitlements.revoke("alice", "s1")      # e.g. a refund webhook on this instance
    async with world.client.get(world.url(token)) as response:
        assert response.status == 403                      # no refresh in between

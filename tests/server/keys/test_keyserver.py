"""The key path's memory: verified tokens until they expire, and who may watch what remembered by the
access room, kept true by the change feed (on both engines)."""

from __future__ import annotations

import asyncio

import pytest

from drm.access.tokens import TokenSigner
from drm.errors import TokenExpired, TokenInvalid
from server.access import ACCESS
from server.keys.tokens import VerifiedTokens
from server.services import Services
from tests.drm.fixtures import FakeClock
from tests.drm.fixtures import settings_for as drm_settings_for
from tests.server.conftest import BUYER, SERIES, STRANGER
from tests.server.edge.test_metrics import samples, value


def test_a_verified_token_is_remembered_only_until_it_expires():
    clock = FakeClock()
    signer = TokenSigner(drm_settings_for(), clock=clock)
    calls = []

    class CountingSigner:
        def verify(self, token):
            calls.append(token)
            return signer.verify(token)

    tokens = VerifiedTokens(CountingSigner(), max_entries=2, max_refused=2, clock=clock)
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


async def key_status(world, token: str) -> int:
    async with world.client.get(world.url(token)) as response:
        await response.read()
        return response.status


async def grants_by_path(world) -> dict[str, float]:
    async with world.client.get("/metrics") as response:
        found = samples(await response.text())
    return {path: value(found, "series_key_grants_by_path_total", path=path) for path in ("memory", "database")}


async def test_the_first_grant_reads_the_database_and_the_next_ones_memory(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    token = world.token()
    assert [await key_status(world, token) for _ in range(3)] == [200, 200, 200]
    assert await grants_by_path(world) == {"memory": 2, "database": 1}
    assert await key_status(world, world.token(STRANGER)) == 403     # a refusal is remembered too, apart
    assert await key_status(world, world.token(STRANGER)) == 403
    access = world.client.server.app[ACCESS]
    assert access.remembered() == {"entitled": 1, "refused": 1, "episodes": 1, "sessions": 1, "revoked_accounts": 0}
    polls = ("feed", "revocations")
    assert {what: n for what, n in access.database_queries.items() if what not in polls} == {
        "entitlement": 2, "episode": 1, "session": 1}


async def test_a_revocation_through_this_process_is_enforced_on_the_next_request(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    token = world.token()
    assert await key_status(world, token) == 200
    assert await key_status(world, token) == 200                   # answered from memory
    await asyncio.to_thread(world.services.entitlements.revoke, BUYER, SERIES)   # a refund webhook here, say
    assert await key_status(world, token) == 403                   # no poll in between


async def test_a_revocation_by_another_process_reaches_the_key_path(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    token = world.token()
    assert await key_status(world, token) == 200
    assert await key_status(world, token) == 200
    other = await asyncio.to_thread(Services.open, world.services.settings)     # the CLI, or another instance
    try:
        await asyncio.to_thread(other.entitlements.revoke, BUYER, SERIES)
    finally:
        other.close()
    # PostgreSQL: the NOTIFY evicts within milliseconds; SQLite: the next poll, within about a second
    for _ in range(100):
        if await key_status(world, token) == 403:
            break
        await asyncio.sleep(0.05)
    assert await key_status(world, token) == 403
    other = await asyncio.to_thread(Services.open, world.services.settings)
    try:
        await asyncio.to_thread(other.entitlements.grant, BUYER, SERIES)       # bought again
    finally:
        other.close()
    for _ in range(100):
        if await key_status(world, token) == 200:
            break
        await asyncio.sleep(0.05)
    assert await key_status(world, token) == 200


async def test_a_free_preview_set_elsewhere_opens_the_episode_to_everyone(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    world.services.catalog.create_series(series_id=SERIES, creator_id="c1", title="Knots", price_cents=499,
                                         currency="USD")
    world.services.catalog.reserve_episode(SERIES, "1", duration_s=40.0)
    world.services.catalog.mark_published(SERIES, "1", version=1, duration_s=40.0)
    stranger = world.token(STRANGER)
    assert await key_status(world, stranger) == 403
    assert await key_status(world, stranger) == 403                 # the episode's facts are remembered
    other = await asyncio.to_thread(Services.open, world.services.settings)
    try:
        await asyncio.to_thread(other.catalog.set_free_preview, SERIES, "1", True)
    finally:
        other.close()
    for _ in range(100):
        if await key_status(world, stranger) == 200:
            break
        await asyncio.sleep(0.05)
    assert await key_status(world, stranger) == 200
    await asyncio.to_thread(world.services.catalog.set_free_preview, SERIES, "1", False)   # through this process
    assert await key_status(world, stranger) == 403


async def test_unpublished_and_deleted_episodes_are_refused_from_memory_as_from_the_database(key_world,
                                                                                             engine_overrides):
    """The catalog's rule, applied by the access room: an unpublished episode only for a test viewer (who
    still needs what anyone needs), a deleted one for no one; refused the same way from memory."""
    world = await key_world(TEST_VIEWER_IDS="qa", **engine_overrides)
    catalog = world.services.catalog
    catalog.create_series(series_id=SERIES, creator_id="c1", title="Knots", price_cents=499, currency="USD")
    catalog.reserve_episode(SERIES, "1", duration_s=40.0)
    catalog.mark_published(SERIES, "1", version=1, duration_s=40.0)
    world.services.entitlements.grant("qa", SERIES)
    await asyncio.to_thread(catalog.set_episode_published, SERIES, "1", False)
    for _ in range(2):                                     # from the database, then from memory
        async with world.client.get(world.url(world.token())) as response:
            assert response.status == 403 and (await response.json())["code"] == "episode_unpublished"
        assert await key_status(world, world.token("qa")) == 200
    await asyncio.to_thread(catalog.delete_episode, SERIES, "1")
    for _ in range(2):
        async with world.client.get(world.url(world.token("qa"))) as response:
            assert response.status == 410 and (await response.json())["code"] == "episode_deleted"

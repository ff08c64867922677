"""The key path's memory: verified tokens until they expire, entitlements as a refreshed snapshot."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from drm.engines import open_database
from drm.errors import TokenExpired, TokenInvalid
from drm.tokens import TokenSigner
from server.keys.endpoint import KEY_EDGE, VerifiedTokens
from server.services import Services
from tests.drm.fixtures import FakeClock
from tests.drm.fixtures import settings_for as drm_settings_for
from tests.server.edge.test_metrics import samples, value


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
    assert edge.snapshot.decide("alice", "s1", None, own) is True


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


def test_the_snapshot_decides_like_release_key_or_declines(tmp_path):
    """Entitled or free preview → grant, neither → refuse, a write of this process since the load → ask SQLite."""
    from drm.catalog import SqliteCatalog
    from drm.entitlements import EntitlementStore
    from server.keys.endpoint import EntitlementSnapshot

    db = open_database(tmp_path / "drm.sqlite")
    try:
        catalog, entitlements = SqliteCatalog(db), EntitlementStore(db)
        catalog.create_series(series_id="s1", creator_id="c1", title="Knots", price_cents=499, currency="USD")
        for episode_id, is_preview in (("trailer", True), ("e1", False)):
            catalog.reserve_episode("s1", episode_id, duration_s=40.0, is_free_preview=is_preview)
            catalog.mark_published("s1", episode_id, version=1, duration_s=40.0)
        entitlements.grant("alice", "s1")

        parts = SimpleNamespace(db=db, catalog=catalog, entitlements=entitlements)   # what refresh() reads
        snapshot = EntitlementSnapshot()
        snapshot.refresh(parts)
        own = db.own_changes
        assert snapshot.decide("alice", "s1", "e1", own) is True
        assert snapshot.decide("bob", "s1", "trailer", own) is True
        assert snapshot.decide("bob", "s1", "e1", own) is False
        entitlements.revoke("alice", "s1")
        assert snapshot.decide("alice", "s1", "e1", db.own_changes) is None     # our own write: not trusted
        snapshot.refresh(parts)
        assert snapshot.decide("alice", "s1", "e1", db.own_changes) is False
    finally:
        db.close()


def test_the_snapshot_refuses_unpublished_and_deleted_episodes_as_release_key_does(tmp_path):
    """The catalog's rule from memory: an unpublished episode only for a test viewer, a deleted one for no one."""
    from drm.catalog import SqliteCatalog
    from drm.entitlements import EntitlementStore
    from drm.errors import EpisodeDeleted, EpisodeUnpublished
    from server.keys.endpoint import EntitlementSnapshot

    db = open_database(tmp_path / "drm.sqlite")
    try:
        catalog, entitlements = SqliteCatalog(db), EntitlementStore(db)
        catalog.create_series(series_id="s1", creator_id="c1", title="Knots", price_cents=499, currency="USD")
        for episode_id in ("e1", "e2", "trailer"):
            catalog.reserve_episode("s1", episode_id, duration_s=40.0, is_free_preview=episode_id == "trailer")
            catalog.mark_published("s1", episode_id, version=1, duration_s=40.0)
        for viewer_id in ("alice", "qa"):
            entitlements.grant(viewer_id, "s1")
        catalog.set_episode_published("s1", "e1", False)
        catalog.set_episode_published("s1", "trailer", False)
        catalog.delete_episode("s1", "e2")
        parts = SimpleNamespace(db=db, catalog=catalog, entitlements=entitlements)
        snapshot = EntitlementSnapshot()
        snapshot.refresh(parts)
        own, qa = db.own_changes, frozenset({"qa"})
        for episode_id in ("e1", "trailer"):
            with pytest.raises(EpisodeUnpublished):
                snapshot.decide("alice", "s1", episode_id, own, qa)
            assert snapshot.decide("qa", "s1", episode_id, own, qa) is True
        with pytest.raises(EpisodeDeleted):
            snapshot.decide("qa", "s1", "e2", own, qa)
    finally:
        db.close()

"""Link sharing, over real HTTP on both engines: a session beyond the viewer's limit gets no key (on one key
server or several sharing the database), a refreshed token keeps its session, a revoked account's tokens
are refused everywhere within the revocation memory's bound."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from drm.access.tokens import TokenSigner
from server.access import ACCESS
from server.access.revocations import RELOAD_INTERVAL_S
from server.keys.token_api import revoke_tokens
from server.services import Services
from tests.server.catalog_support import OPERATOR_TOKEN
from tests.server.conftest import BUYER, SERIES, STRANGER


async def key_answer(world, token: str) -> tuple[int, str | None, str | None]:
    """(status, problem code, Retry-After) of a key request with `token`."""
    async with world.client.get(world.url(token)) as response:
        body = await response.json(content_type=None) if response.status != 200 else None
        return response.status, (body or {}).get("code"), response.headers.get("Retry-After")


async def refresh(world, token: str, account: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {account}"} if account else {}
    async with world.client.post("/v1/playback/refresh", json={"token": token}, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def signer_at(world, offset_s: float) -> TokenSigner:
    """The service's signer with its clock moved by offset_s (tokens issued in the past, or later)."""
    return TokenSigner(world.services.settings.drm, clock=lambda: time.time() + offset_s)


async def eventually(check, *, within_s: float) -> None:
    """Await `check()` until it is true, at most `within_s` seconds; fail if it never is."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {within_s} s"
        await asyncio.sleep(0.05)


async def test_a_shared_url_from_a_session_beyond_the_limit_gets_no_key(key_world, engine_overrides):
    world = await key_world(MAX_SESSIONS="2", **engine_overrides)
    tv, phone, posted = world.token(), world.token(), world.token()    # three plays: three sessions
    assert (await key_answer(world, tv))[0] == 200
    assert (await key_answer(world, phone))[0] == 200
    status, code, retry_after = await key_answer(world, posted)
    assert (status, code) == (403, "session_limit_reached")
    assert 0 < int(retry_after) <= 300
    for _ in range(3):                              # refused every time, and the live sessions play on
        assert (await key_answer(world, posted))[:2] == (403, "session_limit_reached")
        assert (await key_answer(world, tv))[0] == 200 and (await key_answer(world, phone))[0] == 200
    # the same URL from a second device is the same session: the limit counts sessions, short tokens
    # bound how long one URL lasts (below: refreshing it needs the token itself or the account)
    assert (await key_answer(world, tv))[0] == 200
    # another viewer's sessions are their own; a refused viewer takes no place at all
    world.services.entitlements.grant("carol", SERIES)
    assert (await key_answer(world, world.token("carol")))[0] == 200
    assert (await key_answer(world, world.token(STRANGER)))[:2] == (403, "not_entitled")
    assert [s.viewer_id for s in world.services.sessions.live(STRANGER, idle_s=300)] == []


async def test_a_session_ended_by_its_player_frees_its_place(key_world, engine_overrides):
    world = await key_world(MAX_SESSIONS="1", **engine_overrides)
    tv, phone = world.token(), world.token()
    assert (await key_answer(world, tv))[0] == 200
    assert (await key_answer(world, phone))[0] == 403
    async with world.client.post("/v1/playback/end", json={"token": tv}) as response:
        assert response.status == 204
    assert (await key_answer(world, phone))[0] == 200
    assert (await key_answer(world, tv))[:2] == (403, "session_limit_reached")
    async with world.client.post("/v1/playback/end", json={"token": "garbage"}) as response:
        assert response.status == 401


async def test_the_limit_holds_across_key_servers_sharing_the_database(key_world, engine, engine_overrides, tmp_path):
    """Two key servers (two apps, each with its own memory: as two processes or two instances) on one
    database: a session admitted by one counts on the other, and memory never lets in one more."""
    shared = engine_overrides or {"DATA_DIR": str(tmp_path / "shared")}    # SQLite: one file for both
    first = await key_world(MAX_SESSIONS="1", **shared)
    second = await key_world(MAX_SESSIONS="1", **shared)
    tv, friend = first.token(), first.token()
    assert (await key_answer(first, tv))[0] == 200
    assert (await key_answer(second, tv))[0] == 200            # the same session, through the other server
    assert (await key_answer(second, friend))[:2] == (403, "session_limit_reached")
    assert (await key_answer(first, friend))[:2] == (403, "session_limit_reached")
    for world in (first, second):
        assert (await key_answer(world, tv))[0] == 200
    # the session ends through the first server: the second lets the friend in, and then refuses tv
    async with first.client.post("/v1/playback/end", json={"token": tv}) as response:
        assert response.status == 204
    assert (await key_answer(second, friend))[0] == 200
    assert (await key_answer(first, world.token()))[:2] == (403, "session_limit_reached")


async def test_a_playing_session_costs_no_database_write_per_key_request(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    token = world.token()
    for _ in range(20):
        assert (await key_answer(world, token))[0] == 200
    assert world.client.server.app[ACCESS].database_queries["session"] == 1
    assert len(world.services.sessions.live(BUYER, idle_s=300)) == 1


async def test_a_refreshed_token_keeps_its_session_and_plays_on(key_world, engine_overrides):
    world = await key_world(MAX_SESSIONS="1", TOKEN_TTL_S="60", **engine_overrides)
    token = world.token()
    assert (await key_answer(world, token))[0] == 200
    status, answer = await refresh(world, token)
    assert status == 200 and answer["token"] != token
    fresh = claims(answer["token"])
    assert (fresh["sid"], fresh["sub"], fresh["ser"]) == (claims(token)["sid"], BUYER, SERIES)
    assert answer["expires_at"] == fresh["exp"] and fresh["exp"] - fresh["iat"] == 60
    assert (await key_answer(world, answer["token"]))[0] == 200         # the same session: within the limit
    assert (await key_answer(world, world.token()))[0] == 403           # a new one is not


async def test_a_playback_token_refreshes_itself_only_within_the_grace(key_world, engine_overrides):
    world = await key_world(TOKEN_REFRESH_GRACE_S="120", **engine_overrides)
    lapsed = signer_at(world, -60 - 600).mint(BUYER, SERIES, ttl_s=600)         # expired 60 s ago
    assert (await key_answer(world, lapsed))[:2] == (401, "token_expired")
    status, answer = await refresh(world, lapsed)
    assert status == 200 and (await key_answer(world, answer["token"]))[0] == 200
    too_late = signer_at(world, -300 - 600).mint(BUYER, SERIES, ttl_s=600)      # expired 300 s ago
    status, answer = await refresh(world, too_late)
    assert (status, answer["code"]) == (401, "token_expired")
    # with the viewer's account token, a token of that viewer refreshes however long ago it expired
    account = world.services.tokens.mint_account(BUYER, "viewer")
    status, answer = await refresh(world, too_late, account)
    assert status == 200 and claims(answer["token"])["sid"] == claims(too_late)["sid"]
    # but not another viewer's, nor with a creator's account, nor garbage
    status, answer = await refresh(world, too_late, world.services.tokens.mint_account(STRANGER, "viewer"))
    assert (status, answer["code"]) == (403, "forbidden")
    status, answer = await refresh(world, too_late, world.services.tokens.mint_account(BUYER, "creator"))
    assert (status, answer["code"]) == (403, "forbidden")
    status, answer = await refresh(world, "garbage")
    assert (status, answer["code"]) == (401, "token_invalid")


async def test_a_token_alone_refreshes_its_session_only_for_the_session_s_maximum_age(key_world):
    world = await key_world(SESSION_MAX_AGE_S="3600")
    token = world.token()
    status, answer = await refresh(world, token)
    # every refresh carries the session's start: a chain of them cannot outlive the maximum age
    assert status == 200 and claims(answer["token"])["sst"] == claims(token)["sst"] == claims(token)["iat"]
    started_long_ago = world.services.tokens.mint(BUYER, SERIES, session_id="s_old",
                                                  session_started_at=int(time.time()) - 3700)
    assert (await key_answer(world, started_long_ago))[0] == 200      # it plays until it expires
    status, answer = await refresh(world, started_long_ago)
    assert (status, answer["code"]) == (401, "token_expired") and "account token" in answer["detail"]
    # the viewer's account vouches for the session again, and the session keeps its start
    status, answer = await refresh(world, started_long_ago, world.services.tokens.mint_account(BUYER, "viewer"))
    assert status == 200 and claims(answer["token"])["sid"] == "s_old"
    assert claims(answer["token"])["sst"] == claims(started_long_ago)["sst"]


async def test_a_revoked_account_token_is_refused_within_the_bound_on_another_server(key_world, engine_overrides):
    world = await key_world(**engine_overrides)
    account = world.services.tokens.mint_account(BUYER, "viewer")
    playback = world.token()
    headers = {"Authorization": f"Bearer {account}"}
    async with world.client.get("/v1/me/entitlements", headers=headers) as response:
        assert response.status == 200
    assert (await key_answer(world, playback))[0] == 200
    other = await asyncio.to_thread(Services.open, world.services.settings)     # the CLI, or another instance
    try:
        await asyncio.to_thread(revoke_tokens, other, BUYER, "cli")
    finally:
        other.close()
    started = time.monotonic()

    async def account_refused() -> bool:
        async with world.client.get("/v1/me/entitlements", headers=headers) as response:
            return response.status == 401 and (await response.json())["code"] == "token_revoked"

    # the bound: one reload interval, plus the reload itself on a loaded machine
    await eventually(account_refused, within_s=RELOAD_INTERVAL_S + 2)
    assert time.monotonic() - started <= RELOAD_INTERVAL_S + 2
    assert (await key_answer(world, playback))[:2] == (401, "token_revoked")     # its playback tokens too
    assert (await refresh(world, playback))[1]["code"] == "token_revoked"        # and no refresh keeps them
    # signing in again (a token issued after the revocation's second) works
    later = signer_at(world, 1.5)
    async with world.client.get("/v1/me/entitlements",
                                headers={"Authorization": f"Bearer {later.mint_account(BUYER, 'viewer')}"}) as response:
        assert response.status == 200
    assert (await key_answer(world, later.mint(BUYER, SERIES)))[0] == 200
    # other accounts are untouched
    async with world.client.get("/v1/me/entitlements", headers={
            "Authorization": f"Bearer {world.services.tokens.mint_account(STRANGER, 'viewer')}"}) as response:
        assert response.status == 200


async def test_the_operator_revokes_an_account_and_this_server_refuses_at_once(key_world):
    world = await key_world(OPERATOR_TOKEN=OPERATOR_TOKEN)
    account = world.services.tokens.mint_account(BUYER, "viewer")
    playback = world.token()
    assert (await key_answer(world, playback))[0] == 200
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "X-Operator": "ann"}
    async with world.client.post("/v1/operator/account-tokens/revoke", json={"subject": BUYER},
                                 headers=operator) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["subject"] == BUYER and answer["sessions_ended"] == 1
    assert abs(answer["not_before"] - time.time()) < 5
    async with world.client.get("/v1/me/entitlements", headers={"Authorization": f"Bearer {account}"}) as response:
        assert response.status == 401                  # no wait: this process noted it when it wrote it
    # nor may its playback tokens report progress (they are refused on keys too)
    async with world.client.post(f"/v1/series/{SERIES}/episodes/1/progress", json={"position_s": 12},
                                 headers={"Authorization": f"Bearer {playback}"}) as response:
        assert response.status == 401 and (await response.json())["code"] == "token_revoked"
    async with world.client.post("/v1/operator/account-tokens/revoke", json={"subject": "../x"},
                                 headers=operator) as response:
        assert response.status == 422
    async with world.client.post("/v1/operator/account-tokens/revoke", json={"subject": BUYER}) as response:
        assert response.status == 401
    assert world.services.revocations.not_before(BUYER) == answer["not_before"]


@pytest.mark.parametrize("variable,value", [("MAX_SESSIONS", "-1"), ("SESSION_IDLE_S", "10"),
                                            ("TOKEN_REFRESH_GRACE_S", "x"), ("SESSION_MAX_AGE_S", "60")])
def test_bad_sharing_settings_name_their_variable(tmp_path, s3_store, variable, value):
    from server.config import SettingsError
    from tests.conftest import settings_for
    with pytest.raises(SettingsError, match=f"SERIES_{variable}"):
        settings_for(tmp_path, s3_store, **{f"SERIES_{variable}": value})


def test_series_tokens_revoke_signs_an_account_out_and_says_so(tmp_path, s3_store):
    from server.config import Settings
    from tests.conftest import settings_env
    from tests.server.cli.test_cli import series

    env = settings_env(tmp_path, s3_store)
    account = series(env, "account-token", "--subject", "v1", "--role", "viewer").stdout.strip()
    revoked = series(env, "tokens", "revoke", "--account", "v1")
    assert revoked.returncode == 0, revoked.stderr
    assert "account v1" in revoked.stdout and "refused" in revoked.stdout
    with Services.open(Settings.from_env(env)) as services:
        issued_at = services.tokens.verify_account(account).issued_at
        assert services.revocations.not_before("v1") >= issued_at
    bad = series(env, "tokens", "revoke", "--account", "../v1")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "account" in bad.stderr
    missing = series(env, "tokens", "revoke")
    assert missing.returncode == 2 and "--account" in missing.stderr

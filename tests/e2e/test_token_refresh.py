"""Short playback tokens in the browser: the web app's player refreshes its token and keeps playing, with
the new token in every key request it makes after the first one expired; a second screen of the same
viewer beyond the session limit is refused with words, and gets in once the first player is closed.

The service runs with 10 s playback tokens, no self-refresh grace (so the refresh goes through the
viewer's account token) and one session per viewer.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.services import Services
from server.web.assets import WebAssets
from tests.e2e.conftest import LANDSCAPE, WEB_SERIES
from tests.e2e.test_web_app import ARTIFACTS, CHROMIUM, PLAYING, console_errors, sign_in, url
from tests.support.browser import Chromium
from tests.support.browser_tab import Tab

TOKEN_TTL_S = 10
VIEWER = "refresher"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(not WebAssets.find().is_built, reason="the web app is not built: npm ci && npm run build"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(web_env):
    env = {**web_env, "SERIES_TOKEN_TTL_S": str(TOKEN_TTL_S), "SERIES_TOKEN_REFRESH_GRACE_S": "0",
           "SERIES_MAX_SESSIONS": "1"}
    settings = Settings.from_env(env)
    services = Services.open(settings)
    services.entitlements.grant(VIEWER, WEB_SERIES)
    server = TestServer(create_app(settings, services), host="127.0.0.1")
    await server.start_server()
    async with Chromium(CHROMIUM) as browser:
        yield server, browser
    await server.close()
    services.close()


def key_tokens(tab: Tab) -> list[str]:
    """The playback token of every key request the page made, in order."""
    return [parse_qs(urlsplit(u).query)["token"][0] for u in tab.requested if "/v1/keys/" in u]


async def test_the_player_refreshes_its_short_token_and_plays_on_past_its_expiry(site):
    server, browser = site
    episode = url(server, f"/series/{WEB_SERIES}/episodes/{LANDSCAPE}")
    async with Tab(browser) as tab:
        await tab.goto(episode)
        await tab.wait_for("document.querySelector('.player-message')?.innerText.includes('Sign in')",
                           what="the episode page asking for a sign-in")
        await sign_in(tab, VIEWER)
        started = time.time()
        # two and a half token lifetimes of playback: keys rotate every 12 s and the player buffers 30 s
        # ahead, so it asks for keys well after the first token expired
        await tab.wait_for(f"{PLAYING} > {2.5 * TOKEN_TTL_S}", timeout_s=90, what="playback past the first tokens")
        assert not await tab.evaluate("document.querySelector('.player-message')"), "the player was refused"
        tokens = key_tokens(tab)
        first = jwt.decode(tokens[0], options={"verify_signature": False})
        assert first["exp"] <= time.time() - TOKEN_TTL_S / 2, "the first token has not expired yet"
        later = [jwt.decode(t, options={"verify_signature": False}) for t in tokens if t != tokens[0]]
        assert later, f"every key request carried the first token: {len(tokens)} requests"
        # refreshed: the same session, a later expiry; and sent after the first token's expiry
        assert {claims["sid"] for claims in later} == {first["sid"]}, [
            (u.split("?")[0], jwt.decode(parse_qs(urlsplit(u).query)["token"][0], options={"verify_signature": False})["sid"]
             if "token=" in u else None) for u in tab.requested if "/v1/" in u]
        assert all(claims["exp"] > first["exp"] for claims in later)
        assert max(claims["iat"] for claims in later) >= first["exp"] - TOKEN_TTL_S / 3 - 1
        assert any("/v1/playback/refresh" in u for u in tab.requested)
        assert time.time() - started > TOKEN_TTL_S
        await tab.screenshot(ARTIFACTS / "refresh-1-playing-past-expiry.png")
        assert not console_errors(tab), tab.console

        # a second screen of the same viewer, beyond the limit of one: refused, and told why
        async with Tab(browser) as second:
            await second.goto(url(server, "/"))
            await second.wait_for("document.querySelector('#viewer-id')", what="the sign-in form")
            await sign_in(second, VIEWER)
            await second.goto(episode)
            message = await second.wait_for("document.querySelector('.player-message')?.innerText",
                                            timeout_s=30, what="the session-limit message")
            assert "too many screens" in message.lower(), message
            await second.screenshot(ARTIFACTS / "refresh-2-second-screen-refused.png")

            # the first screen closes its player (its session ends at once): the second gets in
            await tab.goto(url(server, "/"))
            await second.goto(episode)
            await second.wait_for(f"{PLAYING} > 2", timeout_s=40, what="the second screen playing")

"""The viewer's walk through the web app in headless Chromium, as the issue tells it: the storefront, a series
page with the paywall, a local sign-in, a test purchase through the real payment webhook (the page unlocks
without a reload), the episode playing (time advancing, a picture on screen), a refund from the operator
CLI, and playback stopping at the next key with the "refunded" message; a second viewer who never paid sees
the paywall and never gets a key. Every step's screenshot is kept in var/test-artifacts/web/ (or
$SERIES_TEST_ARTIFACTS/web/) to look at; no request leaves 127.0.0.1 and no console error is logged.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.services import Services
from server.web.assets import WebAssets
from tests.e2e.conftest import KEY_PERIOD_S, LANDSCAPE, PORTRAIT, WEB_SERIES
from tests.support.browser import PROJECT_ROOT, Chromium, find_chromium
from tests.support.browser_tab import PHONE, Tab, region

CHROMIUM = find_chromium()
ARTIFACTS = Path(os.environ.get("SERIES_TEST_ARTIFACTS", PROJECT_ROOT / "var" / "test-artifacts")) / "web"
BUYER, STRANGER = "walker", "never-paid"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(not WebAssets.find().is_built, reason="the web app is not built: npm ci && npm run build"),
    pytest.mark.asyncio(loop_scope="module"),
]

PLAYING = "document.querySelector('hls-video') && document.querySelector('hls-video').currentTime"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(web_env):
    """The service (on the shared published series) and one Chromium for the module."""
    settings = Settings.from_env(web_env)
    services = Services.open(settings)
    server = TestServer(create_app(settings, services), host="127.0.0.1")
    await server.start_server()
    async with Chromium(CHROMIUM) as browser:
        yield server, browser
    await server.close()
    services.close()


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def console_errors(tab: Tab, *, allowed: tuple[str, ...] = ()) -> list[str]:
    return [line for line in tab.console
            if (" error" in line or "exception" in line) and not any(text in line for text in allowed)]


def loopback_only(tab: Tab) -> set[str]:
    return {urlsplit(u).hostname for u in tab.requested if not u.startswith(("data:", "blob:", "about:"))}


async def sign_in(tab: Tab, viewer: str) -> None:
    await tab.fill("#viewer-id", viewer)
    await tab.submit("form.sign-in")
    await tab.wait_for(f"document.querySelector('.who strong')?.textContent === '{viewer}'", what="signed in")


async def test_storefront_paywall_purchase_watch_refund(site, web_env):
    server, browser = site
    async with Tab(browser) as tab:
        # the storefront: poster (placeholder until posters exist), title, creator, price, episodes, length
        await tab.goto(url(server, "/"))
        card = await tab.wait_for("document.querySelector('.card')?.innerText", what="the storefront's cards")
        assert "Knots at sea" in card and "creator-1" in card and "$4.99" in card and "2 episodes" in card, card
        await tab.screenshot(ARTIFACTS / "1-storefront.png")

        # the series page: episodes in order with lengths and the free preview badge, and the paywall
        await tab.click(".card-link")
        await tab.wait_for("document.querySelector('.paywall')", what="the paywall")
        # a client-side navigation moves focus to the new page's heading, as a page load would for a screen reader
        assert await tab.evaluate("document.activeElement.id") == "series-title"
        episodes = await tab.evaluate("[...document.querySelectorAll('.episode')].map(e => e.innerText)")
        assert "The bowline" in episodes[0] and "1:00" in episodes[0] and "locked" in episodes[0].lower(), episodes
        assert "Reef knot" in episodes[1] and "free preview" in episodes[1].lower(), episodes
        assert "Sign in to buy" in await tab.evaluate("document.querySelector('.paywall').innerText")
        await tab.screenshot(ARTIFACTS / "2-series-paywall.png")

        # sign in as a new local viewer; the paywall offers the clearly labelled test purchase
        await sign_in(tab, BUYER)
        paywall = await tab.wait_for("document.querySelector('.paywall .test-mode')?.innerText", what="test purchase")
        assert "test mode" in paywall.lower() and "No money moves" in paywall
        await tab.screenshot(ARTIFACTS / "3-signed-in-paywall.png")
        navigations = await tab.evaluate("performance.getEntriesByType('navigation').length")

        # the test purchase goes through our own payment webhook; the page unlocks where it stands
        await tab.click("button.buy")
        await tab.wait_for("!document.querySelector('.paywall') && document.querySelector('.badge.owned')",
                           what="the series unlocked")
        assert "Purchased" in await tab.evaluate("document.querySelector('.notice.success').innerText")
        assert await tab.evaluate("performance.getEntriesByType('navigation').length") == navigations   # no reload
        assert await tab.evaluate("document.querySelectorAll('.episode.locked').length") == 0
        await tab.screenshot(ARTIFACTS / "4-purchased.png")

        # the episode plays: time advances and the picture on screen is not blank
        await tab.click(".episode a")
        await tab.wait_for(f"{PLAYING} > 3", timeout_s=40, what="playback past 3 s")
        decoded = await tab.evaluate("document.querySelector('hls-video').nativeEl.getVideoPlaybackQuality().totalVideoFrames")
        assert decoded > 10
        await tab.hover("media-controller")
        pixels = await tab.screenshot(ARTIFACTS / "5-playing.png")
        player = region(pixels, await tab.rect("media-controller"))
        assert player.std() > 20, "the player shows a blank picture"
        assert await tab.evaluate("document.querySelector('#next-episode')?.innerText.includes('Reef knot')")
        before_refund = [line for line in tab.console]
        assert not console_errors(tab), tab.console

        # a refund from the operator CLI: the next key the player needs is refused, and the page says why
        refund = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server", "refund", "--viewer", BUYER,
                                                          "--series", WEB_SERIES], env={**os.environ, **web_env},
                                         capture_output=True, text=True, timeout=60)
        assert refund.returncode == 0 and "revoked" in refund.stdout, refund.stderr
        key_requests = sum("/v1/keys/" in u for u in tab.requested)
        # the player holds keys for what it buffered (30 s ahead, keys rotating every 12 s): it plays on until
        # it needs the next key, and is refused it
        message = await tab.wait_for("document.querySelector('.player-message')?.innerText",
                                     timeout_s=30 + 2 * KEY_PERIOD_S, what="the refusal message")
        assert "refunded" in message.lower(), message
        assert await tab.evaluate("document.querySelector('.player-message').dataset.code") == "refunded"
        assert sum("/v1/keys/" in u for u in tab.requested) > key_requests
        assert not await tab.evaluate("document.querySelector('hls-video')")      # the player is gone, not spinning
        await tab.screenshot(ARTIFACTS / "6-refunded.png")
        # only the refused key itself is logged as an error (Chromium logs every 4xx)
        assert not console_errors(tab, allowed=("/v1/keys/", "403")), tab.console[len(before_refund):]
        assert loopback_only(tab) == {"127.0.0.1"}, tab.requested

    # a second viewer, who never paid: the paywall, and no key at all
    async with Tab(browser) as tab:
        await tab.goto(url(server, f"/series/{WEB_SERIES}"))
        await tab.wait_for("document.querySelector('#viewer-id')", what="the sign-in form")
        await sign_in(tab, STRANGER)
        await tab.wait_for("document.querySelector('.paywall .buy')", what="the paywall for the stranger")
        await tab.goto(url(server, f"/series/{WEB_SERIES}/episodes/{LANDSCAPE}"))
        message = await tab.wait_for("document.querySelector('.player-message')?.innerText", what="the refusal")
        assert "Buy the series" in message and await tab.evaluate(
            "document.querySelector('.player-message').dataset.code") == "not_bought"
        await tab.screenshot(ARTIFACTS / "7-stranger-refused.png")
        assert not any("/v1/keys/" in u for u in tab.requested)
        assert not console_errors(tab, allowed=("/playback", "403")), tab.console
        assert loopback_only(tab) == {"127.0.0.1"}, tab.requested


async def test_a_portrait_free_preview_plays_portrait_on_a_phone(site):
    server, browser = site
    async with Tab(browser, PHONE) as tab:
        await tab.goto(url(server, "/"))
        await tab.wait_for("document.querySelector('#viewer-id')", what="the sign-in form")
        await sign_in(tab, "phone-viewer")
        await tab.goto(url(server, f"/series/{WEB_SERIES}/episodes/{PORTRAIT}"))
        # opened by address, not by a click: the browser lets it start only when the viewer presses play
        await tab.wait_for("document.querySelector('media-play-button')", what="the play button")
        await tab.click("media-play-button")
        await tab.wait_for(f"{PLAYING} > 1", timeout_s=40, what="the free preview playing")
        await tab.wait_for("document.querySelector('.player-holder.portrait')", what="a portrait player")
        await tab.hover("media-controller")
        box = await tab.rect("media-controller")
        assert box["height"] > box["width"] * 1.3 and box["width"] <= PHONE["width"], box
        width = await tab.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone"
        await tab.screenshot(ARTIFACTS / "8-portrait-phone.png")
        # the quality menu lists the renditions (and automatic); the captions button is there for tracks to come
        await tab.click("media-rendition-menu-button")
        await tab.wait_for("!document.querySelector('media-rendition-menu').hidden", what="the quality menu open")
        items = await tab.evaluate("[...document.querySelector('media-rendition-menu').shadowRoot"
                                   ".querySelectorAll('media-chrome-menu-item')].map(item => item.textContent.trim())")
        assert {"360p", "234p"} <= set(items) and any(item.startswith("Auto") for item in items), items
        assert await tab.evaluate("Boolean(document.querySelector('media-captions-menu-button'))")
        assert not console_errors(tab), tab.console
        assert loopback_only(tab) == {"127.0.0.1"}, tab.requested


async def test_the_pages_files_are_hashed_immutable_and_the_policy_is_the_pages(site):
    server, _ = site
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(url(server, "/")) as response:
            html = await response.text()
            assert response.headers["Cache-Control"] == "no-cache"
            policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "'unsafe-eval'" not in policy and "frame-ancestors 'none'" in policy
        assets = [part.split('"')[0] for part in html.split('/assets/')[1:]]
        assert assets and all("-" in name for name in assets)
        for name in assets:
            async with http.get(url(server, f"/assets/{name}")) as response:
                assert response.status == 200
                assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        async with http.get(url(server, "/v1/series")) as response:   # the API keeps the edge's policy
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'; frame-ancestors")

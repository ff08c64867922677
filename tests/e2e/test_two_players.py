"""The same AES-128 encrypted episode in two real web players in headless Chromium, hls.js and Shaka Player:
each plays every rendition (pictures of that rendition's height while time advances), seeks to just
before a key rotation boundary and plays across it (a new key fetched), and both refuse a viewer who
never bought the series (the key request answered 403, no picture shown).

The page (tests/support/two_players.html) and the players come from a second loopback server, so every
playlist, segment and key request is cross-origin, as for a player embedded elsewhere. What each player
does differently is in the README's player-support table.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.services import Services
from tests.e2e.conftest import KEY_PERIOD_S, LANDSCAPE, WEB_SERIES
from tests.support.browser import HLS_JS, PROJECT_ROOT, Chromium, find_chromium, static_app

CHROMIUM = find_chromium()
SHAKA = PROJECT_ROOT / "node_modules" / "shaka-player" / "dist" / "shaka-player.compiled.js"
PAGE = Path(__file__).resolve().parents[1] / "support" / "two_players.html"
BUYER, STRANGER = "two-players-buyer", "two-players-stranger"
BOUNDARY_S = 3 * KEY_PERIOD_S          # the start of the fourth key period: past what the players buffer at first
PLAYERS = ("hls", "shaka")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(not (HLS_JS.is_file() and SHAKA.is_file()),
                       reason="no node_modules/hls.js or shaka-player: run `npm ci` in the project root"),
    pytest.mark.asyncio(loop_scope="module"),
]


def players_app() -> web.Application:
    files = {"/two_players.html": (PAGE, "text/html"), "/hls.min.js": (HLS_JS, "text/javascript"),
             "/shaka-player.compiled.js": (SHAKA, "text/javascript")}
    return static_app(files)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(web_env):
    """The service on the shared series, the players' own origin, and one Chromium for the module."""
    settings = Settings.from_env(web_env)
    services = Services.open(settings)
    services.entitlements.grant(BUYER, WEB_SERIES)
    service = TestServer(create_app(settings, services), host="127.0.0.1")
    players = TestServer(players_app(), host="127.0.0.1")
    await service.start_server()
    await players.start_server()
    async with Chromium(CHROMIUM) as browser:
        yield service, players, services, browser
    await players.close()
    await service.close()
    services.close()


async def run(setup, player: str, viewer: str) -> dict:
    service, players, services, browser = setup
    token = services.tokens.mint(viewer, WEB_SERIES)
    src = str(service.make_url(f"/v1/series/{WEB_SERIES}/episodes/{LANDSCAPE}/master.m3u8?token={token}"))
    page = players.make_url(f"/two_players.html?player={player}&boundary={BOUNDARY_S:g}&src={quote(src, safe='')}")
    state = await browser.run_player(str(page), timeout_s=90)
    state["why"] = {k: state.get(k) for k in ("player", "version", "phase", "timed_out", "renditions", "played", "seek",
                                              "fatal", "errors", "maxTime", "keyRequests")}
    state["why"]["events"] = state.get("events", [])[-30:]
    state["why"]["console"] = state.get("console", [])[-20:]
    return state


@pytest.mark.parametrize("player", PLAYERS)
async def test_every_rendition_a_seek_and_a_key_boundary_play(setup, player):
    state = await run(setup, player, BUYER)
    why = state["why"]
    assert state["phase"] == "done" and state["fatal"] is None, why
    assert state["renditions"] == [234, 360], why
    assert [played["height"] for played in state["played"]] == [234, 360], why
    assert all(played["to"] >= played["from"] + 1 for played in state["played"]), why
    seek = state["seek"]
    assert seek["seekedAt"] == pytest.approx(BOUNDARY_S - 2, abs=1.0), why
    assert seek["continuedTo"] >= BOUNDARY_S + 2, why
    keys = state["keyRequests"]
    # every key granted (0: a request the player itself abandoned, as hls.js does on an immediate level switch);
    # one per period played through at least: the first two (the renditions), the fourth and fifth (the seek)
    assert keys and all(key["status"] in (200, 0) for key in keys), why
    granted = {key["uri"] for key in keys if key["status"] == 200}
    assert len(granted) >= 4 and granted == {key["uri"] for key in keys}, why


@pytest.mark.parametrize("player", PLAYERS)
async def test_a_viewer_who_never_paid_is_refused_the_key(setup, player):
    state = await run(setup, player, STRANGER)
    why = state["why"]
    assert state["phase"] == "failed" and state["fatal"] is not None, why
    assert state["fatal"]["status"] == 403, why
    assert state["maxTime"] == 0 and not state["played"], why
    keys = state["keyRequests"]
    assert all(key["status"] == 403 for key in keys), why
    if player == "shaka" and not keys:
        # Shaka loads the storyboard's image playlist (EXT-X-IMAGE-STREAM-INF) with the master; it is gated
        # like the storyboard, so a viewer who never paid is refused there (a manifest request), before any key
        assert state["fatal"]["requestType"] == 0, why
        return
    assert keys, why
    assert len({key["uri"] for key in keys}) == 1, why       # the first key, asked again on retries

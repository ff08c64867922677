"""hls.js in headless Chromium plays the entitled master URL, and fails on the key for a viewer without one.
The same episode published as fMP4 (EXT-X-MAP, .m4s) plays, switches levels and seeks too.

The page (tests/support/player.html) and hls.js come from a second loopback server, so every playlist,
segment and key request is cross-origin, as it is for a real web player. Requires Debian's `chromium` and
`npm ci` in the project root; skipped otherwise.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from server.app import create_app
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_for
from tests.e2e.test_episode import BUYER, EPISODE, SERIES, STRANGER, master_url, published, served  # noqa: F401
from tests.support.browser import Chromium, find_chromium, find_hlsjs, player_app
from tests.support.catalog import add_series

CHROMIUM = find_chromium()
HLS_JS = find_hlsjs()

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(HLS_JS is None, reason="no node_modules/hls.js: run `npm ci` in the project root"),
]

PLAY_TIMEOUT_S = 40.0       # one run; it takes ~10 s here
SEEK_TO_S, PLAY_UNTIL_S = 20, 25


@pytest.fixture
async def browser():
    async with Chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture
async def player(aiohttp_server):
    """The player page's origin: a loopback server other than the service's."""
    return await aiohttp_server(player_app(HLS_JS))


async def play(browser, player, served, viewer: str) -> dict:
    server, services = served
    src = master_url(server, services.tokens.mint(viewer, SERIES))
    page = player.make_url(f"/player.html?seek={SEEK_TO_S}&until={PLAY_UNTIL_S}&src={quote(src, safe='')}")
    state = await browser.run_player(str(page), timeout_s=PLAY_TIMEOUT_S)
    assert not state["timed_out"], _explain(state, browser)
    return state


@pytest.fixture(scope="module")
def fmp4_published(tmp_path_factory, s3_store, landscape_clip):
    """The same episode as test_episode's, published with fMP4 segments into its own bucket."""
    settings = settings_for(tmp_path_factory.mktemp("browser-fmp4"), s3_store, SERIES_HLS_SEGMENT_FORMAT="fmp4")
    services = Services.open(settings)
    try:
        services.store.ensure_bucket()
        add_series(services, SERIES)
        ingest_episode(landscape_clip, series_id=SERIES, episode_id=EPISODE, settings=settings,
                       store=services.store, keystore=services.keystore, catalog=services.catalog)
        services.entitlements.grant(BUYER, SERIES)
    finally:
        services.close()
    return settings


@pytest.fixture
async def fmp4_served(fmp4_published, aiohttp_server):
    services = Services.open(fmp4_published)
    server = await aiohttp_server(create_app(fmp4_published, services))
    yield server, services
    await server.close()
    services.close()


async def test_entitled_viewer_plays_switches_rendition_and_seeks(browser, player, served):
    state = await play(browser, player, served, BUYER)
    assert_played_switched_and_seeked(state, browser)


async def test_entitled_viewer_plays_an_fmp4_master_switches_rendition_and_seeks(browser, player, fmp4_served):
    state = await play(browser, player, fmp4_served, BUYER)
    assert_played_switched_and_seeked(state, browser)
    why = _explain(state, browser)
    assert state["fragUris"] and all(uri.endswith(".m4s") for uri in state["fragUris"]), why
    assert state["initSegmentRequests"] >= 2, why     # the EXT-X-MAP of each level it played


def assert_played_switched_and_seeked(state: dict, browser) -> None:
    why = _explain(state, browser)

    assert state["phase"] == "done", why
    assert state["fatal"] is None and state["mediaError"] is None, why
    assert state["secureContext"] and state["webCrypto"], why          # http://127.0.0.1 is a secure context
    assert any("WebCrypto AES decrypt" in line for line in state["aesPath"]), why   # not the JS fallback
    assert not any("JS AES decrypt" in line for line in state["aesPath"]), why
    assert sorted(level["height"] for level in state["levels"]) == [234, 360], why
    assert state["playing"], why
    assert state["maxTime"] >= PLAY_UNTIL_S or state["ended"], why
    # hls.js 1.7 emits FRAG_DECRYPTED only for fragments it decrypts on the main thread, not for TS segments
    # its worker decrypts; an AES-128 fragment that reached the SourceBuffer was decrypted, so count those.
    assert state["encryptedFragsBuffered"] >= 3 and state["keysLoaded"] >= 1, why

    switch = state["switch"]                # hls.currentLevel = the other rendition, then it kept playing
    assert switch["to"] != switch["from"] and switch["to"] in state["levelSwitched"], why
    assert state["encryptedFragsByLevel"].get(str(switch["to"]), 0) >= 1, why
    assert switch["continuedTo"] >= switch["switchedAt"] + 1, why

    seek = state["seek"]                    # video.currentTime = 20, then it kept playing past it
    assert seek["seekedAt"] == pytest.approx(SEEK_TO_S, abs=0.5), why
    assert seek["continuedTo"] >= PLAY_UNTIL_S or state["ended"], why


async def test_viewer_without_entitlement_gets_fatal_403_on_the_key(browser, player, served):
    state = await play(browser, player, served, STRANGER)
    why = _explain(state, browser)

    assert state["phase"] == "failed", why
    fatal = state["fatal"]
    assert fatal is not None and fatal["type"] == "networkError", why
    assert fatal["details"] == "keyLoadError" and fatal["code"] == 403, why
    key_errors = [e for e in state["errors"] if e["details"] == "keyLoadError"]
    assert key_errors and all(e["code"] == 403 for e in key_errors), why
    assert not state["playing"] and state["maxTime"] == 0, why
    assert state["encryptedFragsBuffered"] == 0 and state["fragDecrypted"] == 0 and state["keysLoaded"] == 0, why


def _explain(state: dict, browser) -> str:
    """What the page saw, for an assertion message (tokens are stripped by the page)."""
    brief = {k: state.get(k) for k in ("phase", "timed_out", "hlsVersion", "secureContext", "webCrypto", "aesPath",
                                       "levels", "levelSwitched", "fragDecrypted", "encryptedFragsBuffered",
                                       "encryptedFragsByLevel", "keyUris", "fragUris", "initSegmentRequests", "keysLoaded", "currentTime", "maxTime", "ended", "switch", "seek",
                                       "fatal", "mediaError", "errors")}
    events = "\n".join(map(str, state.get("events", [])[-60:]))
    console = "\n".join(state.get("console", [])[-30:])
    return f"{brief}\n-- events --\n{events}\n-- console --\n{console}\n-- chromium --\n{browser.log_tail(15)}"

"""Caption tracks as viewers' players see them, through the real service: hls.js in headless Chromium
lists the episode's subtitle renditions with their languages and shows the right cue text at a chosen
time (read from the <video> element's text tracks); the ffmpeg CLI reads the same renditions from the
per-viewer master (every URI carrying the token); the master with subtitles passes the conformance
check. The page and hls.js come from a second loopback origin, so every request is cross-origin."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import aiohttp
import m3u8
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from packager.hls.conformance import check_parsed_episode, parse_playlist
from server.app import create_app
from server.config import Settings
from server.publishing.edits import EpisodeEditor
from server.services import Services
from tests.support.browser import HLS_JS, Chromium, find_chromium, static_app
from tests.support.episodes import fetch_text, named_playlists
from tests.support.pictures import BUYER, DURATION_S, EPISODE, SERIES, publish_world

CHROMIUM = find_chromium()
FFMPEG = shutil.which("ffmpeg")
PAGE = Path(__file__).resolve().parents[1] / "support" / "captions_player.html"
FRENCH = ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n\n"
          "00:00:04.000 --> 00:00:06.000\nLe nœud de chaise\n\n00:00:07.500 --> 00:00:09.000\nSerrez fort\n").encode()

pytestmark = pytest.mark.asyncio(loop_scope="module")


def page_app() -> web.Application:
    files = {"/captions_player.html": (PAGE, "text/html"), "/hls.min.js": (HLS_JS, "text/javascript")}
    return static_app(files)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(tmp_path_factory, s3_store, media_dir):
    """An episode with an embedded English track and an added French one, served, and the page's origin."""
    world = publish_world(tmp_path_factory.mktemp("captions-player"), s3_store, media_dir)
    services = Services.open(Settings.from_env(world.env))
    EpisodeEditor(settings=services.settings, store=services.store, keystore=services.keystore,
                  catalog=services.catalog, versions=None).add_captions(SERIES, EPISODE, FRENCH, language="fr")
    service = TestServer(create_app(services.settings, services), host="127.0.0.1")
    pages = TestServer(page_app(), host="127.0.0.1")
    await service.start_server()
    await pages.start_server()
    token = services.tokens.mint(BUYER, SERIES)
    master = str(service.make_url(f"/v1/series/{SERIES}/episodes/{EPISODE}/master.m3u8?token={token}"))
    yield master, pages, service
    await pages.close()
    await service.close()
    services.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)")
@pytest.mark.skipif(not HLS_JS.is_file(), reason="no node_modules/hls.js: run `npm ci` in the project root")
@pytest.mark.parametrize("lang, at_s, text", [("fr", 4.5, "Le nœud de chaise"), ("en", 9.0, "Pull it tight")])
async def test_hlsjs_lists_the_tracks_and_shows_the_cue_at_a_time(setup, lang, at_s, text):
    master, pages, _ = setup
    url = pages.make_url(f"/captions_player.html?lang={lang}&at={at_s}&src={quote(master, safe='')}")
    async with Chromium(CHROMIUM) as browser:
        state = await browser.run_player(str(url), timeout_s=60)
    why = {key: state.get(key) for key in ("phase", "errors", "fatal", "tracks", "textTracks", "timed_out")}
    why["console"] = state.get("console", [])[-10:]
    assert state["phase"] == "done", why
    assert sorted((t["lang"], t["name"]) for t in state["tracks"]) == [("en", "English"), ("fr", "Français")], why
    assert state["covering"] == [text], why
    assert text in state["active"], why
    assert any(t["language"] == lang and t["mode"] == "showing" for t in state["textTracks"]), why


@pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg CLI: apt-get install ffmpeg")
async def test_ffmpeg_reads_the_subtitle_renditions_of_the_viewers_master(setup):
    master, _, _ = setup
    # in a thread: the service answering ffmpeg runs on this test's event loop
    probe = await asyncio.to_thread(subprocess.run, [FFMPEG, "-hide_banner", "-strict", "experimental", "-i", master],
                                    capture_output=True, text=True, timeout=60)
    streams = [line.strip() for line in probe.stderr.splitlines() if line.strip().startswith("Stream #")]
    assert any("(en): Subtitle: webvtt" in line for line in streams), probe.stderr[-2000:]
    assert any("(fr): Subtitle: webvtt" in line for line in streams), streams
    french = next(i for i, line in enumerate(line for line in streams if "Subtitle" in line) if "(fr)" in line)
    extracted = await asyncio.to_thread(
        subprocess.run, [FFMPEG, "-hide_banner", "-v", "error", "-strict", "experimental", "-copyts", "-i", master,
                         "-map", f"0:s:{french}", "-c", "copy", "-f", "webvtt", "-"],
        capture_output=True, text=True, timeout=60)
    assert extracted.returncode == 0, extracted.stderr
    assert "00:04.000 --> 00:06.000\nLe nœud de chaise" in extracted.stdout


async def test_the_viewers_master_with_subtitles_conforms(setup):
    """RFC 8216 and Apple's authoring rules for the master with subtitles as a viewer gets it (every URI
    personalized): every variant, I-frame and subtitle playlist it names, checked together."""
    master_url, _, _ = setup
    base = master_url.split("master.m3u8")[0]
    async with aiohttp.ClientSession() as http:
        master = await fetch_text(http, master_url)
        parsed = m3u8.loads(master)
        playlists = {uri: await fetch_text(http, base + uri) for uri in named_playlists(parsed)}
    assert len([m for m in parsed.media if m.type == "SUBTITLES"]) == 2
    found = check_parsed_episode(parse_playlist(master, "master.m3u8"),
                                 {uri: parse_playlist(text, uri) for uri, text in playlists.items()},
                                 duration_s=DURATION_S)
    assert found == []

"""A portrait and a landscape episode, ingested for real, checked against every MUST of the issue:
as stored, and as personalized and served over HTTP. Then the I-frame playlists are played the way
a player does it: Range request, key from the key server, decrypt, decode."""

from __future__ import annotations

import asyncio
import posixpath

import aiohttp
import m3u8
import pytest

from packager.hls.conformance import ParsedPlaylist, check_parsed_episode, parse_playlist
from packager.publishing.publish import EpisodeLocation, read_pointer
from pipeline.encode.playback import decode_segment
from server.services import Services
from tests.conftest import settings_for
from tests.support.episodes import (
    fetch_i_frame,
    fetch_text,
    named_playlists,
    publish_episodes,
    served_playlists,
    serving,
)
from tests.support.media import clip, count_frames

SERIES, BUYER = "conformance", "alice"
EPISODES = {"landscape": ("short_landscape_clip", 12 * 25), "portrait": ("portrait_clip", 12 * 25)}


@pytest.fixture(scope="module")
def short_landscape_clip(media_dir):
    """12 s at 640x360: two rungs, two segments each — enough to cross a key period, quick to ingest."""
    return clip(media_dir, "landscape-12s.mp4", duration_s=12, width=640, height=360, fps=25)


@pytest.fixture(scope="module")
def published(request, tmp_path_factory, s3_store):
    """Both episodes, with a new key every segment and EXT-X-SESSION-KEY on: (settings, {name: episode})."""
    settings = settings_for(tmp_path_factory.mktemp("conformance"), s3_store, SERIES_SEGMENTS_PER_KEY="1",
                            SERIES_HLS_SESSION_KEY="1", SERIES_MIN_DURATION_S="5")
    return settings, publish_episodes(request, settings, SERIES, BUYER, {name: fixture for name, (fixture, _) in EPISODES.items()})


@pytest.fixture
async def served(published, aiohttp_server):
    settings, episodes = published
    async with serving(settings, aiohttp_server) as (server, services):
        yield server, services, episodes


def stored_playlists(services: Services, episode) -> tuple[str, dict[str, str]]:
    prefix = episode.location.version_prefix(episode.version)
    master = services.store.get_bytes(f"{prefix}/master.m3u8").decode()
    parsed = m3u8.loads(master)
    uris = named_playlists(parsed)
    return master, {uri: services.store.get_bytes(f"{prefix}/{uri}").decode() for uri in uris}


def parsed_episode(master: str, playlists: dict[str, str]) -> tuple[ParsedPlaylist, dict[str, ParsedPlaylist]]:
    """A fetched master and the playlists it names (URI -> text), parsed once for check_parsed_episode()."""
    return parse_playlist(master, "master.m3u8"), {uri: parse_playlist(text, uri) for uri, text in playlists.items()}


@pytest.mark.parametrize("name", sorted(EPISODES))
def test_stored_playlists_meet_every_must(published, name):
    settings, episodes = published
    services = Services.open(settings)
    try:
        master, playlists = stored_playlists(services, episodes[name])
        pointer = read_pointer(services.store, EpisodeLocation(series_id=SERIES, episode_id=name))
    finally:
        services.close()
    assert check_parsed_episode(*parsed_episode(master, playlists), duration_s=pointer["duration_s"]) == []
    parsed = m3u8.loads(master)
    assert len(parsed.playlists) == len(parsed.iframe_playlists) == 2
    assert len(parsed.session_keys) == 1
    for variant in parsed.playlists:
        width, height = variant.stream_info.resolution
        assert (height > width) == (name == "portrait")
    # the checker is not blind: the same real playlist with one IV removed fails
    uri, text = next(iter(playlists.items()))
    broken = {**playlists, uri: text.replace(",IV=0x", ",XV=0x", 1)}
    found = check_parsed_episode(*parsed_episode(master, broken), duration_s=pointer["duration_s"])
    assert [v.code for v in found] == ["missing_iv"]




@pytest.mark.parametrize("name", sorted(EPISODES))
async def test_served_playlists_meet_every_must_and_carry_the_token(served, name):
    server, services, episodes = served
    token = services.tokens.mint(BUYER, SERIES)
    base = f"/v1/series/{SERIES}/episodes/{name}/"
    async with aiohttp.ClientSession() as http:
        master, playlists = await served_playlists(http, server, base, token)
    assert check_parsed_episode(*parsed_episode(master, playlists), duration_s=episodes[name].duration_s) == []
    assert all(f"token={token}" in uri for uri in playlists)
    assert f"token={token}" in m3u8.loads(master).session_keys[0].uri
    for text in playlists.values():
        assert all(f"token={token}" in key.uri for key in m3u8.loads(text).keys if key)


async def test_ffmpeg_plays_the_portrait_episode_across_key_periods(served):
    server, services, _ = served
    token = services.tokens.mint(BUYER, SERIES)
    url = str(server.make_url(f"/v1/series/{SERIES}/episodes/portrait/master.m3u8?token={token}"))
    frames, _ = await asyncio.to_thread(count_frames, url)
    assert frames == EPISODES["portrait"][1]


@pytest.mark.parametrize("name", sorted(EPISODES))
async def test_i_frames_play_through_range_requests(served, name):
    server, services, _ = served
    token = services.tokens.mint(BUYER, SERIES)
    base = f"/v1/series/{SERIES}/episodes/{name}/"
    async with aiohttp.ClientSession() as http:
        master = m3u8.loads(await fetch_text(http, server.make_url(f"{base}master.m3u8?token={token}")))
        i_frame_uri = master.iframe_playlists[-1].uri
        i_frames = m3u8.loads(await fetch_text(http, server.make_url(base + i_frame_uri)))
        directory = posixpath.dirname(i_frame_uri.split("?")[0])
        for segment in i_frames.segments:
            assert segment.byterange.endswith("@0")          # each I-frame opens its segment
            plaintext = await fetch_i_frame(http, server, base, directory, segment)
            decoded = await asyncio.to_thread(decode_segment, plaintext)
            assert decoded.video_frames == 1 and decoded.starts_with_key_frame


async def test_segments_stream_whole_or_by_range(served):
    server, services, episodes = served
    episode = episodes["portrait"]
    name = f"{episode.renditions[0]}/seg_00000.ts"
    stored = services.store.get_bytes(f"{episode.location.version_prefix(episode.version)}/{name}")
    url = str(server.make_url(f"/v1/series/{SERIES}/episodes/portrait/v{episode.version}/{name}"))
    async with aiohttp.ClientSession() as http:
        # a player on another origin: the CORS headers must reach a streamed response too
        async with http.get(url, headers={"Origin": "https://player.example"}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp2t"
            assert "immutable" in response.headers["Cache-Control"]
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert await response.read() == stored
        async with http.head(url) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(stored))
            assert await response.read() == b""
        async with http.get(url, headers={"Range": "bytes=-32"}) as response:
            assert response.status == 206
            assert await response.read() == stored[-32:]
        async with http.get(url, headers={"Range": "bytes=16-31"}) as response:
            assert response.status == 206
            assert await response.read() == stored[16:32]
        async with http.get(url, headers={"Range": f"bytes={len(stored)}-"}) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == f"bytes */{len(stored)}"

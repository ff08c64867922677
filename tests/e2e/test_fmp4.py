"""fMP4 segments end to end: a portrait and a landscape episode ingested with SERIES_HLS_SEGMENT_FORMAT=fmp4,
checked against every MUST as stored and as served, then played over real HTTP by the ffmpeg CLI (every
rendition, across key periods) and through the I-frame playlists as a player does (Range, key, decrypt,
init segment in front, decode)."""

from __future__ import annotations

import asyncio
import posixpath
import re
import shutil
import subprocess

import aiohttp
import m3u8
import pytest

from packager.containers.fragmented_mp4 import is_init_segment
from packager.hls.conformance import check_parsed_episode
from pipeline.encode.playback import decode_segment
from server.services import Services
from tests.conftest import settings_for
from tests.e2e.test_conformance import parsed_episode, short_landscape_clip, stored_playlists  # noqa: F401
from tests.support.episodes import (
    fetch_i_frame,
    fetch_text,
    publish_episodes,
    served_playlists,
    serving,
    video_playlists,
)

SERIES, BUYER = "fmp4", "alice"
EPISODES = {"landscape": "short_landscape_clip", "portrait": "portrait_clip"}
FRAMES = 12 * 25              # both clips: 12 s at 25 fps, two segments, two key periods
FFMPEG = shutil.which("ffmpeg")


@pytest.fixture(scope="module")
def published(request, tmp_path_factory, s3_store):
    """Both episodes as fMP4, a new key every segment: (settings, {name: PublishedEpisode})."""
    # each test plays as a new session of the buyer and never ends it: no session limit here (it is
    # tested in tests/server/keys/test_sharing.py)
    settings = settings_for(tmp_path_factory.mktemp("fmp4"), s3_store, SERIES_SEGMENTS_PER_KEY="1",
                            SERIES_HLS_SEGMENT_FORMAT="fmp4", SERIES_MIN_DURATION_S="5", SERIES_MAX_SESSIONS="0")
    return settings, publish_episodes(request, settings, SERIES, BUYER, EPISODES)


@pytest.fixture
async def served(published, aiohttp_server):
    settings, episodes = published
    async with serving(settings, aiohttp_server) as (server, services):
        yield server, services, episodes


@pytest.mark.parametrize("name", sorted(EPISODES))
def test_stored_fmp4_playlists_meet_every_must(published, name):
    settings, episodes = published
    episode = episodes[name]
    services = Services.open(settings)
    try:
        master, playlists = stored_playlists(services, episode)
        prefix = episode.location.version_prefix(episode.version)
        inits = {rendition: services.store.get_bytes(f"{prefix}/{rendition}/init.mp4")
                 for rendition in episode.renditions}
        init_stat = services.store.stat(f"{prefix}/{episode.renditions[0]}/init.mp4")
    finally:
        services.close()
    assert check_parsed_episode(*parsed_episode(master, playlists), duration_s=episode.duration_s) == []
    parsed = m3u8.loads(master)
    assert len(parsed.playlists) == len(parsed.iframe_playlists) == 2
    for variant in parsed.playlists:
        width, height = variant.stream_info.resolution
        assert (height > width) == (name == "portrait")
    for uri, text in video_playlists(master, playlists).items():
        media = m3u8.loads(text)
        assert media.version == (5 if media.is_i_frames_only else 6)
        assert [section.uri for section in media.segment_map] == ["init.mp4"]
        assert text.index("#EXT-X-MAP:") < text.index("#EXT-X-KEY:")
        assert all(segment.uri.endswith(".m4s") for segment in media.segments)
        assert len({segment.key.uri for segment in media.segments}) == 2      # crosses a key period
    assert all(is_init_segment(init) for init in inits.values())             # stored clear, no samples
    assert init_stat.size_bytes == len(inits[episode.renditions[0]])


async def test_served_fmp4_playlists_carry_the_token_and_their_init_segment_is_served(served):
    server, services, episodes = served
    token = services.tokens.mint(BUYER, SERIES)
    base = f"/v1/series/{SERIES}/episodes/portrait/"
    async with aiohttp.ClientSession() as http:
        master, playlists = await served_playlists(http, server, base, token)
        duration_s = episodes["portrait"].duration_s
        assert check_parsed_episode(*parsed_episode(master, playlists), duration_s=duration_s) == []
        for uri, text in video_playlists(master, playlists).items():
            media = m3u8.loads(text)
            assert all(f"token={token}" in key.uri for key in media.keys if key)
            directory = posixpath.dirname(uri.split("?")[0])
            async with http.get(str(server.make_url(f"{base}{directory}/{media.segment_map[0].uri}"))) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "video/mp4"
                assert "immutable" in response.headers["Cache-Control"]
                assert is_init_segment(await response.read())
            async with http.get(str(server.make_url(f"{base}{directory}/{media.segments[0].uri}"))) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "video/iso.segment"
                assert not (await response.read())[4:8] == b"moof"        # encrypted, not plain fMP4


def ffmpeg_count_frames(url: str) -> dict[str, int]:
    """Decode a playlist fully with the ffmpeg CLI; frames per stream type, from its framecrc output."""
    result = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", url, "-map", "0:v", "-map", "0:a",
                             "-f", "framecrc", "-"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr          # no decode errors, no skipped segment
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    return {"video": sum(1 for line in lines if re.match(r"0,", line)),
            "audio": sum(1 for line in lines if re.match(r"1,", line))}


@pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg CLI: apt-get install ffmpeg")
@pytest.mark.parametrize("name", sorted(EPISODES))
async def test_ffmpeg_cli_decodes_every_fmp4_rendition_across_key_periods(served, name):
    server, services, episodes = served
    token = services.tokens.mint(BUYER, SERIES)
    episode = episodes[name]
    for rendition in episode.renditions:
        url = str(server.make_url(f"/v1/series/{SERIES}/episodes/{name}/v{episode.version}/{rendition}/"
                                  f"index.m3u8?token={token}"))
        counts = await asyncio.to_thread(ffmpeg_count_frames, url)
        assert counts["video"] == FRAMES, (rendition, counts)
        assert counts["audio"] >= 12 * 48000 // 1024 - 2, (rendition, counts)


@pytest.mark.parametrize("name", sorted(EPISODES))
async def test_fmp4_i_frames_play_through_range_requests(served, name):
    server, services, _ = served
    token = services.tokens.mint(BUYER, SERIES)
    base = f"/v1/series/{SERIES}/episodes/{name}/"
    async with aiohttp.ClientSession() as http:
        master = m3u8.loads(await fetch_text(http, server.make_url(f"{base}master.m3u8?token={token}")))
        for variant in master.iframe_playlists:
            i_frames = m3u8.loads(await fetch_text(http, server.make_url(base + variant.uri)))
            directory = posixpath.dirname(variant.uri.split("?")[0])
            async with http.get(str(server.make_url(f"{base}{directory}/{i_frames.segment_map[0].uri}"))) as response:
                init = await response.read()
            for segment in i_frames.segments:
                length, offset = map(int, segment.byterange.split("@"))
                assert offset == 0 and length % 16 == 0
                plaintext = await fetch_i_frame(http, server, base, directory, segment)
                assert plaintext[4:8] == b"moof"
                decoded = await asyncio.to_thread(decode_segment, init + plaintext)
                assert decoded.video_frames == 1 and decoded.starts_with_key_frame

"""Upload → validate → transcode → encrypt → publish → token → key → decrypt → decode, over real HTTP.

Playback is checked with FFmpeg's own HLS demuxer (through PyAV), never with our decrypt function.
"""

from __future__ import annotations

import asyncio

import aiohttp
import av
import pytest
import yarl

from packager.publishing.publish import EpisodeLocation, read_pointer
from server.app import create_app
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_for
from tests.support.catalog import add_series
from tests.support.media import count_frames, looks_like_plain_ts

SERIES, EPISODE = "s1", "1"
BUYER, STRANGER = "alice", "bob"
SOURCE_FRAMES = 32 * 25


@pytest.fixture(scope="module")
def published(tmp_path_factory, s3_store, landscape_clip):
    """One episode published once for this module: (settings, PublishedEpisode)."""
    settings = settings_for(tmp_path_factory.mktemp("e2e"), s3_store)
    services = Services.open(settings)
    try:
        services.store.ensure_bucket()
        add_series(services, SERIES)
        episode = ingest_episode(landscape_clip, series_id=SERIES, episode_id=EPISODE, settings=settings,
                                 store=services.store, keystore=services.keystore, catalog=services.catalog)
        services.entitlements.grant(BUYER, SERIES)
    finally:
        services.close()
    return settings, episode


@pytest.fixture
async def served(published, aiohttp_server):
    """The real service on a loopback port, plus its Services for minting tokens."""
    settings, episode = published
    services = Services.open(settings)
    server = await aiohttp_server(create_app(settings, services))
    yield server, services
    await server.close()
    services.close()


def count_variants(url: str) -> int:
    with av.open(url) as container:
        return len(container.streams.video)


def master_url(server, token: str) -> str:
    return str(server.make_url(f"/v1/series/{SERIES}/episodes/{EPISODE}/master.m3u8?token={token}"))


async def test_buyer_decodes_every_frame_through_http(served):
    server, services = served
    url = master_url(server, services.tokens.mint(BUYER, SERIES))
    assert await asyncio.to_thread(count_variants, url) == 2
    frames, seconds = await asyncio.to_thread(count_frames, url)
    assert frames == SOURCE_FRAMES
    assert seconds == pytest.approx(32 - 1 / 25, abs=0.05)


async def test_viewer_without_purchase_gets_403_on_the_key(served):
    server, services = served
    token = services.tokens.mint(STRANGER, SERIES)

    async with aiohttp.ClientSession() as http:
        async with http.get(master_url(server, token)) as response:
            assert response.status == 200        # playlists are not the paywall; keys are
        key_uri = await _first_key_uri(http, server, token)
        async with http.get(key_uri) as response:
            assert response.status == 403
            body = await response.json(content_type=None)
            assert body["code"] == "not_entitled"
    with pytest.raises(av.FFmpegError):
        await asyncio.to_thread(count_frames, master_url(server, token))


async def test_key_is_16_raw_bytes_not_cached(served):
    server, services = served
    token = services.tokens.mint(BUYER, SERIES)

    async with aiohttp.ClientSession() as http:
        key_uri = await _first_key_uri(http, server, token)
        async with http.get(key_uri) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Cache-Control"] == "no-store"
            assert len(await response.read()) == 16
        # the same key through the Authorization header instead of the query string
        bare = key_uri.split("?")[0]
        async with http.get(bare, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200


@pytest.mark.parametrize("case", ["missing", "tampered", "expired", "garbage"])
async def test_bad_tokens_get_401(served, case):
    server, services = served
    good = services.tokens.mint(BUYER, SERIES)

    async with aiohttp.ClientSession() as http:
        key_uri = (await _first_key_uri(http, server, good)).split("?")[0]
        token = {
            "missing": None,
            "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
            "expired": services.tokens.mint(BUYER, SERIES, ttl_s=1),
            "garbage": "not-a-token",
        }[case]
        if case == "expired":
            await asyncio.sleep(1.5)
        url = key_uri if token is None else f"{key_uri}?token={token}"
        async with http.get(url) as response:
            assert response.status == 401
            body = await response.json(content_type=None)
            assert body["code"] in ("token_invalid", "token_expired")
        async with http.get(master_url(server, token or "")) as response:
            assert response.status == 401


async def test_unknown_key_is_404_and_token_for_other_series_is_403(served):
    server, services = served

    async with aiohttp.ClientSession() as http:
        token = services.tokens.mint(BUYER, SERIES)
        async with http.get(str(server.make_url(f"/v1/keys/k_doesnotexist?token={token}"))) as response:
            assert response.status == 404
            assert (await response.json(content_type=None))["code"] == "unknown_key"
        key_uri = (await _first_key_uri(http, server, token)).split("?")[0]
        services.entitlements.grant(BUYER, "other-series")
        other = services.tokens.mint(BUYER, "other-series")
        async with http.get(f"{key_uri}?token={other}") as response:
            assert response.status == 403


async def test_entitlements_survive_a_restart(published, aiohttp_server):
    settings, _ = published
    first = Services.open(settings)
    first.entitlements.grant("carol", SERIES)
    token = first.tokens.mint("carol", SERIES)
    first.close()

    again = Services.open(settings)      # a new process would do exactly this
    server = await aiohttp_server(create_app(settings, again))
    try:

        async with aiohttp.ClientSession() as http:
            async with http.get(await _first_key_uri(http, server, token)) as response:
                assert response.status == 200
    finally:
        await server.close()
        again.close()


def test_segments_in_the_bucket_are_encrypted(published):
    settings, episode = published
    services = Services.open(settings)
    try:
        keys = [k for k in services.store.list_keys(episode.location.prefix) if k.endswith(".ts")]
        assert len(keys) == 2 * episode.segment_count
        for key in keys:
            data = services.store.get_bytes(key)
            assert not looks_like_plain_ts(data), key
            assert len(data) % 16 == 0
        pointer = read_pointer(services.store, EpisodeLocation(series_id=SERIES, episode_id=EPISODE))
        assert pointer["version"] == episode.version
    finally:
        services.close()


def test_keys_rotate_and_are_shared_across_renditions(published):
    settings, episode = published
    services = Services.open(settings)
    try:
        prefix = episode.location.version_prefix(episode.version)
        playlists = {r: services.store.get_bytes(f"{prefix}/{r}/index.m3u8").decode() for r in episode.renditions}
    finally:
        services.close()
    key_lines = {r: [line.split('URI="')[1].split('"')[0] for line in text.splitlines()
                     if line.startswith("#EXT-X-KEY")] for r, text in playlists.items()}
    first, second = key_lines.values()
    assert first == second                          # same key per period in every rendition
    ivs = [line for text in playlists.values() for line in text.splitlines() if "IV=0x" in line]
    assert len({line.split("IV=")[1] for line in ivs}) == len(ivs)   # a fresh IV per segment


async def _first_key_uri(http, server, token: str) -> str:
    async with http.get(master_url(server, token)) as response:
        master = await response.text()
    variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
    media_url = server.make_url(f"/v1/series/{SERIES}/episodes/{EPISODE}/{variant}")
    async with http.get(str(media_url)) as response:
        media = await response.text()
    key_path = next(line for line in media.splitlines() if line.startswith("#EXT-X-KEY")).split('URI="')[1].split('"')[0]
    return str(server.make_url(key_path))


async def test_master_is_gzipped_personal_and_declares_high_profile(served):
    server, services = served
    token = services.tokens.mint(BUYER, SERIES)
    import m3u8

    async with aiohttp.ClientSession(auto_decompress=True) as http:
        async with http.get(master_url(server, token), headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
            assert "no-store" in response.headers["Cache-Control"]
            master = m3u8.loads(await response.text())
    assert len(master.playlists) == 2
    for variant in master.playlists:
        assert variant.stream_info.codecs.startswith("avc1.64")       # High, read from the SPS
        assert variant.stream_info.codecs.endswith(",mp4a.40.2")
        assert variant.stream_info.average_bandwidth <= variant.stream_info.bandwidth
        assert f"token={token}" in variant.uri                         # players don't pass it on


async def test_unpublished_episode_and_traversal_are_404(served):
    server, services = served
    token = services.tokens.mint(BUYER, SERIES)

    async with aiohttp.ClientSession() as http:
        url = server.make_url(f"/v1/series/{SERIES}/episodes/99/master.m3u8?token={token}")
        async with http.get(str(url)) as response:
            assert response.status == 404
            assert (await response.json(content_type=None))["code"] == "not_published"
        sneaky = f"/v1/series/{SERIES}/episodes/..%2F..%2Fother/v1/360p/seg_00000.ts"
        base = str(server.make_url("/")).rstrip("/")
        async with http.get(base + sneaky) as response:
            assert response.status == 404


EDGE_HEADERS = ("Server", "X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy", "X-Frame-Options",
                "Access-Control-Allow-Origin", "Access-Control-Expose-Headers")


async def test_every_answer_carries_the_edge_headers_once_streamed_segments_included(served):
    """Segments are streamed (their headers leave before the edge middleware sees them again) and key
    grants bring prebuilt headers: both must still carry the security and CORS headers, once each."""
    server, services = served
    token = services.tokens.mint(BUYER, SERIES)
    origin = {"Origin": "https://player.example"}

    def check(response) -> None:
        for name in EDGE_HEADERS:
            assert len(response.headers.getall(name, [])) == 1, (name, response.url)
        assert response.headers["Access-Control-Allow-Origin"] == "*"

    async with aiohttp.ClientSession(headers=origin) as http:
        async with http.get(master_url(server, token)) as response:
            check(response)
            media = next(line for line in (await response.text()).splitlines() if line and line[0] != "#")
        media_url = server.make_url(f"/v1/series/{SERIES}/episodes/{EPISODE}/").join(
            yarl.URL(media))
        async with http.get(media_url) as response:
            check(response)
            lines = (await response.text()).splitlines()
        segment_url = media_url.join(yarl.URL(next(line for line in lines if line and line[0] != "#")))
        key_uri = next(line for line in lines if line.startswith("#EXT-X-KEY")).split('URI="')[1].split('"')[0]
        for method, extra in (("GET", {}), ("GET", {"Range": "bytes=0-187"}), ("HEAD", {})):
            async with http.request(method, segment_url, headers=extra) as response:
                assert response.status == (206 if extra else 200)
                check(response)
        async with http.get(media_url.join(yarl.URL(key_uri))) as response:
            assert response.status == 200
            check(response)

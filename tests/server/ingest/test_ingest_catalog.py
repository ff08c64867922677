"""Ingest and the catalog, with real media and the real S3 server: unknown series and an 81st episode
publish nothing; a published episode is registered; a re-ingest is a new version, not a new episode;
a free-preview episode plays through FFmpeg for a viewer who bought nothing."""

from __future__ import annotations

import asyncio

import av
import pytest

from drm.catalog.catalog import MAX_EPISODES
from drm.errors import EpisodeLimitReached, UnknownSeries
from server.app import create_app
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_for
from tests.support.catalog import add_series
from tests.support.media import clip, count_frames

SERIES = "long-series"
TRAILER = "trailer"


@pytest.fixture(scope="module")
def small_clip(media_dir):
    """31 s at 320x180, 10 fps: one rung, the cheapest episode the rules accept."""
    return clip(media_dir, "small-31s.mp4", duration_s=31, width=320, height=180, fps=10)


@pytest.fixture
def services(tmp_path, s3_store):
    services = Services.open(settings_for(tmp_path, s3_store))
    services.store.ensure_bucket()
    yield services
    services.close()


def ingest(services: Services, source, episode_id: str, series_id: str = SERIES, **kwargs):
    return ingest_episode(source, series_id=series_id, episode_id=episode_id, settings=services.settings,
                          store=services.store, keystore=services.keystore, catalog=services.catalog, **kwargs)


def key_count(services: Services) -> int:
    return services.db.query("SELECT COUNT(*) AS n FROM content_keys")[0]["n"]


def test_unknown_series_publishes_nothing(services, small_clip):
    with pytest.raises(UnknownSeries):
        ingest(services, small_clip, "1", series_id="nobody-made-this")
    assert services.store.list_keys("series/") == []
    assert key_count(services) == 0


async def test_episode_limit_preview_playback_and_reingest(services, small_clip, aiohttp_server):
    add_series(services, SERIES)
    for number in range(1, MAX_EPISODES):        # 79 episodes already live
        services.catalog.reserve_episode(SERIES, f"old-{number}", duration_s=60.0)
        services.catalog.mark_published(SERIES, f"old-{number}", version=1, duration_s=60.0)

    first = await asyncio.to_thread(ingest, services, small_clip, TRAILER, is_free_preview=True)   # the 80th
    episode = services.catalog.get_episode(SERIES, TRAILER)
    assert (episode.published_version, episode.is_free_preview) == (1, True)
    assert episode.duration_s == pytest.approx(31, abs=0.2)

    keys_before = key_count(services)
    with pytest.raises(EpisodeLimitReached):
        await asyncio.to_thread(ingest, services, small_clip, "81")
    assert services.store.list_keys(f"series/{SERIES}/episodes/81/") == []
    assert key_count(services) == keys_before

    server = await aiohttp_server(create_app(services.settings, services))
    token = services.tokens.mint("never-paid", SERIES)
    url = str(server.make_url(f"/v1/series/{SERIES}/episodes/{TRAILER}/master.m3u8?token={token}"))
    frames, _ = await asyncio.to_thread(count_frames, url)
    assert frames == 31 * 10

    second = await asyncio.to_thread(ingest, services, small_clip, TRAILER)   # a new version, not an 81st episode
    assert second.version == first.version + 1
    assert services.catalog.get_episode(SERIES, TRAILER).published_version == second.version
    assert services.catalog.is_free_preview(SERIES, TRAILER)               # the flag is kept
    assert len(services.catalog.list_episodes(SERIES)) == MAX_EPISODES
    await server.close()


async def test_paid_episode_does_not_play_without_purchase(services, small_clip, aiohttp_server):
    add_series(services, SERIES)
    await asyncio.to_thread(ingest, services, small_clip, "1")
    server = await aiohttp_server(create_app(services.settings, services))
    token = services.tokens.mint("never-paid", SERIES)
    url = str(server.make_url(f"/v1/series/{SERIES}/episodes/1/master.m3u8?token={token}"))
    with pytest.raises(av.FFmpegError):
        await asyncio.to_thread(count_frames, url)
    services.entitlements.grant("never-paid", SERIES, source="gift")
    frames, _ = await asyncio.to_thread(count_frames, url)
    assert frames == 31 * 10
    await server.close()

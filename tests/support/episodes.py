"""Episodes ingested for real into a series, and the app serving them: shared by the e2e tests that
check and play published output (TS and fMP4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import m3u8
import pytest

from packager.encrypt import decrypt_prefix
from server.app import create_app
from server.config import Settings
from server.keys.endpoint import answer_keys_first
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.support.catalog import add_series


def publish_episodes(request: pytest.FixtureRequest, settings: Settings, series_id: str, buyer: str,
                     clip_fixtures: dict[str, str]) -> dict:
    """Create `series_id`, ingest each {episode id: clip fixture name}, grant `buyer`: {episode id: PublishedEpisode}."""
    services = Services.open(settings)
    try:
        services.store.ensure_bucket()
        add_series(services, series_id)
        episodes = {
            name: ingest_episode(request.getfixturevalue(fixture), series_id=series_id, episode_id=name,
                                 settings=settings, store=services.store, keystore=services.keystore,
                                 catalog=services.catalog)
            for name, fixture in clip_fixtures.items()
        }
        services.entitlements.grant(buyer, series_id)
    finally:
        services.close()
    return episodes


@asynccontextmanager
async def serving(settings: Settings, aiohttp_server) -> AsyncIterator[tuple]:
    """The real app over real HTTP, with its own Services: (server, services)."""
    services = Services.open(settings)
    server = await aiohttp_server(create_app(settings, services))
    answer_keys_first(server.runner)       # as the service runs: key GETs ahead of the router
    try:
        yield server, services
    finally:
        await server.close()
        services.close()


async def fetch_text(http: aiohttp.ClientSession, url) -> str:
    """A playlist over HTTP: asserts 200 and the HLS Content-Type."""
    async with http.get(str(url)) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
        return await response.text()


def named_playlists(master: m3u8.M3U8) -> list[str]:
    """Every playlist URI a master names: variants, I-frame playlists, subtitle renditions, image playlists."""
    return ([p.uri for p in master.playlists] + [p.uri for p in master.iframe_playlists]
            + [m.uri for m in master.media if m.type == "SUBTITLES" and m.uri] + [p.uri for p in master.image_playlists])


def video_playlists(master: str, playlists: dict[str, str]) -> dict[str, str]:
    """Of `playlists` (URI -> text), the variants' media playlists and the I-frame playlists."""
    parsed = m3u8.loads(master)
    uris = {p.uri for p in parsed.playlists} | {p.uri for p in parsed.iframe_playlists}
    return {uri: text for uri, text in playlists.items() if uri in uris}


async def served_playlists(http: aiohttp.ClientSession, server, base: str, token: str) -> tuple[str, dict[str, str]]:
    """The master at `base` as a viewer with `token` fetches it, and every playlist it names (media,
    I-frame, subtitle, storyboard image), by URI: (master text, {uri: playlist text})."""
    master = await fetch_text(http, server.make_url(f"{base}master.m3u8?token={token}"))
    uris = named_playlists(m3u8.loads(master))
    return master, {uri: await fetch_text(http, server.make_url(base + uri)) for uri in uris}


async def fetch_i_frame(http: aiohttp.ClientSession, server, base: str, directory: str, segment) -> bytes:
    """An I-frame playlist entry as a player fetches it: its byte range (asserting a 206 for exactly that
    range) and its key, decrypted. `segment`: an m3u8 segment of the I-frame playlist."""
    length, offset = map(int, segment.byterange.split("@"))
    async with http.get(str(server.make_url(f"{base}{directory}/{segment.uri}")),
                        headers={"Range": f"bytes={offset}-{offset + length - 1}"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"].startswith(f"bytes {offset}-{offset + length - 1}/")
        ciphertext = await response.read()
    async with http.get(str(server.make_url(segment.key.uri))) as response:
        assert response.status == 200
        key = await response.read()
    return decrypt_prefix(ciphertext, key, bytes.fromhex(segment.key.iv[2:]))

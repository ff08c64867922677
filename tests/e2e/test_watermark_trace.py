"""A leaked copy names its buyer: a series created watermarked by the CLI, one episode of generated media,
two buyers who each play it through real HTTP (their own media playlists, keys from the key server); one
session's segments are fetched, decrypted, joined and re-encoded by the ffmpeg CLI at 480p CRF 28, and
`series trace` (the real command) names that buyer, with the payment, and not the other; again on an
excerpt. A leak that is no video is a one-line error (exit 2); an episode nobody played, "undecided" (exit 1).

The episode lasts 64 s (32 segments of 2 s): at the default false-accusation bound of 1e-6 among two
recorded sessions, a trace needs about 21 clean segments at the very least (2 x 2^-21 < 1e-6), so the
30-40 s the brief suggested could never be identified; the excerpt keeps 52 s.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import m3u8
import pytest

from drm.catalog.eligibility import CreatorProfile
from packager.encrypt import decrypt_segment
from packager.publishing.version_manifest import read_manifest
from packager.publishing.versions import EpisodeLocation
from packager.publishing.watermark_variants import variant_uri
from pipeline.watermark import session_bits
from server.config import Settings
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_env
from tests.support.catalog import eligible_facts
from tests.support.episodes import serving
from tests.support.media import clip

FFMPEG = shutil.which("ffmpeg")
SERIES, EPISODE, UNPLAYED = "leaky", "1", "2"
LEAKER, INNOCENT = "leaker", "innocent"
SECRET = base64.b64encode(hashlib.sha256(b"tests: e2e watermark secret").digest()).decode()

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg CLI re-encodes the leak: apt-get install ffmpeg")


def series(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def env(tmp_path_factory, s3_store, media_dir) -> dict[str, str]:
    """A watermarked series made by the CLI, its episode 1 (64 s) and 2 (12 s) ingested, both buyers' purchases."""
    env = settings_env(tmp_path_factory.mktemp("leaky"), s3_store, SERIES_MIN_DURATION_S="10",
                       SERIES_WATERMARK_SECRET=SECRET)
    settings = Settings.from_env(env)
    with Services.open(settings) as services:
        services.store.ensure_bucket()
        services.creators.record(CreatorProfile.from_json("studio-1", eligible_facts()))
    created = series(env, "series", "create", SERIES, "--creator", "studio-1", "--title", "Leaky",
                     "--price-cents", "999", "--watermark")
    assert created.returncode == 0 and "watermarked" in created.stdout, created.stderr
    with Services.open(settings) as services:
        for episode_id, seconds in ((EPISODE, 64), (UNPLAYED, 12)):
            source = clip(media_dir, f"leaky-{seconds}s.mp4", duration_s=seconds, width=640, height=360, fps=12)
            ingest_episode(source, series_id=SERIES, episode_id=episode_id, settings=settings,
                           store=services.store, keystore=services.keystore, catalog=services.catalog)
        for viewer in (LEAKER, INNOCENT):
            services.entitlements.grant(viewer, SERIES, source="purchase", reference=f"pay_{viewer}")
    return env


async def play(env: dict[str, str], aiohttp_server, viewer: str, saved: Path | None) -> str:
    """Play episode 1 as `viewer` through real HTTP, the top rendition's every segment with its key; with
    `saved`, write the decrypted segments joined (what a recorder keeps). The session id."""
    settings = Settings.from_env(env)
    async with serving(settings, aiohttp_server) as (server, services), aiohttp.ClientSession() as http:
        token = services.tokens.mint(viewer, SERIES)
        session_id = services.tokens.verify(token).session_id
        base = f"/v1/series/{SERIES}/episodes/{EPISODE}/"
        async with http.get(str(server.make_url(f"{base}master.m3u8?token={token}"))) as response:
            master = m3u8.loads(await response.text())
        variant = max(master.playlists, key=lambda p: p.stream_info.bandwidth)
        async with http.get(str(server.make_url(base + variant.uri))) as response:
            assert response.status == 200
            playlist = m3u8.loads(await response.text())
        directory = variant.uri.split("?")[0].rsplit("/", 1)[0]
        keys: dict[str, bytes] = {}
        plaintext = []
        for segment in playlist.segments:
            if segment.key.uri not in keys:
                async with http.get(str(server.make_url(segment.key.uri))) as response:
                    assert response.status == 200, await response.text()
                    keys[segment.key.uri] = await response.read()
            async with http.get(str(server.make_url(f"{base}{directory}/{segment.uri}"))) as response:
                assert response.status == 200
                ciphertext = await response.read()
            plaintext.append(decrypt_segment(ciphertext, keys[segment.key.uri], bytes.fromhex(segment.key.iv[2:])))
        # the session's own variants, by their keyed names (some B: the leak carries its sequence)
        variant_key = read_manifest(services.store, EpisodeLocation(series_id=SERIES, episode_id=EPISODE),
                                    1).watermark.variant_key
        bits = session_bits(base64.b64decode(SECRET), session_id, len(playlist.segments))
        assert 0 < sum(bits) and [segment.uri for segment in playlist.segments] == [
            variant_uri(f"seg_{i:05d}.ts", variant_key, "b" if bit else "a") for i, bit in enumerate(bits)]
        if saved is not None:
            saved.write_bytes(b"".join(plaintext))
    return session_id


def reencode(source: Path, path: Path, *args: str) -> Path:
    """What a leaker does: re-encode to 480 lines at CRF 28 with the ffmpeg CLI (`args`: an excerpt)."""
    subprocess.run([FFMPEG, "-v", "error", "-y", *args, "-i", str(source), "-vf", "scale=-2:480", "-c:v", "libx264",
                    "-crf", "28", "-preset", "veryfast", "-an", str(path)], check=True, timeout=300)
    return path


@pytest.fixture(scope="module")
def leak(env, tmp_path_factory) -> dict:
    """Both buyers play; the leaker's session is saved and re-encoded."""
    work = tmp_path_factory.mktemp("leak")
    played = work / "played.ts"

    async def both():
        from aiohttp.test_utils import TestServer

        servers = []

        async def aiohttp_server(app):
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            return server

        try:
            leaker = await play(env, aiohttp_server, LEAKER, played)
            innocent = await play(env, aiohttp_server, INNOCENT, None)
        finally:
            for server in servers:
                await server.close()
        return leaker, innocent

    leaker, innocent = asyncio.run(both())
    return {"leaker": leaker, "innocent": innocent, "full": reencode(played, work / "leak.mp4"),
            "excerpt": reencode(played, work / "excerpt.mp4", "-ss", "6", "-t", "52")}


@pytest.mark.parametrize("which", ["full", "excerpt"])
def test_trace_names_the_leaking_buyer_and_not_the_other(env, leak, which):
    result = series(env, "trace", str(leak[which]), "--series", SERIES, "--episode", EPISODE, "--json")
    assert result.returncode == 0, (result.stdout, result.stderr)
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "identified"
    accused = [c for c in verdict["candidates"] if c["accused"]]
    assert [(c["viewer_id"], c["session_id"], c["payment_id"]) for c in accused] == [
        (LEAKER, leak["leaker"], f"pay_{LEAKER}")]
    assert {c["session_id"] for c in verdict["candidates"]} == {leak["leaker"], leak["innocent"]}
    innocent = next(c for c in verdict["candidates"] if c["viewer_id"] == INNOCENT)
    assert innocent["p_value"] > 1e-3 and accused[0]["confidence"] > 0.999999


def test_trace_finds_the_episode_itself_and_speaks_to_a_person(env, leak):
    result = series(env, "trace", str(leak["full"]))
    assert result.returncode == 0, (result.stdout, result.stderr)
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"identified: viewer {LEAKER}, session {leak['leaker']}, payment pay_{LEAKER}")
    assert f"episode {EPISODE}" in result.stdout and INNOCENT not in first


def test_a_file_that_is_no_video_is_one_line_and_exit_2(env, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    for path in (notes, tmp_path / "missing.mp4"):
        result = series(env, "trace", str(path), "--series", SERIES, "--episode", EPISODE)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_episode_nobody_played_is_undecided(env, leak):
    result = series(env, "trace", str(leak["full"]), "--series", SERIES, "--episode", UNPLAYED, "--json")
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "undecided" and verdict["candidates"] == []
    assert "no playback session" in verdict["reason"]

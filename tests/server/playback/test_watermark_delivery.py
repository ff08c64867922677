"""A/B delivery of a watermarked episode through the real service: both variants stored (same key and IV,
A in the stored playlists), each session's media playlists listing its own sequence in every rendition,
the I-frame playlists on A, the session recorded once with the payment behind it, the reference never
served; an unmarked series served exactly as before; and a service without the secret refusing clearly."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import m3u8
import pytest

from drm.access.watermark_sessions import WatermarkSessions
from packager.encrypt import decrypt_segment
from packager.publishing.publish import EpisodeLocation
from packager.publishing.version_manifest import read_manifest
from packager.publishing.watermark_variants import REFERENCE_NAME, b_variant
from pipeline.encode.playback import decode_segment
from pipeline.watermark import WatermarkReference, session_bits
from server.config import Settings
from server.config.watermark import WatermarkUnavailable
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_env
from tests.support.catalog import add_series
from tests.support.media import clip

SECRET = hashlib.sha256(b"tests: watermark secret").digest()
MARKED, PLAIN, EPISODE = "marked", "plain", "1"
BUYER, OTHER = "wm-buyer", "wm-other"


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_store, media_dir):
    """One watermarked and one plain series, an episode each from the same 36 s clip; the buyer's purchase."""
    env = settings_env(tmp_path_factory.mktemp("watermark"), s3_store, SERIES_MIN_DURATION_S="10",
                       SERIES_WATERMARK_SECRET=base64.b64encode(SECRET).decode(), SERIES_SEGMENTS_PER_KEY="2")
    settings = Settings.from_env(env)
    source = clip(media_dir, "watermark-36s.mp4", duration_s=36, width=640, height=360, fps=12)
    with Services.open(settings) as services:
        services.store.ensure_bucket()
        for series_id in (MARKED, PLAIN):
            add_series(services, series_id, watermark=series_id == MARKED)
            ingest_episode(source, series_id=series_id, episode_id=EPISODE, settings=settings, store=services.store,
                           keystore=services.keystore, catalog=services.catalog)
        services.entitlements.grant(BUYER, MARKED, source="purchase", reference="pay_buyer_1")
        services.entitlements.grant(OTHER, MARKED, source="comp")
        services.entitlements.grant(BUYER, PLAIN)
    return env


def media_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def playlists(client, services, series_id: str, viewer: str, session_id: str) -> dict[str, str]:
    """{uri: text} of every media and I-frame playlist the master names, fetched as one session."""
    token = services.tokens.mint(viewer, series_id, session_id=session_id)
    base = f"/v1/series/{series_id}/episodes/{EPISODE}/"
    response = await client.get(f"{base}master.m3u8?token={token}")
    assert response.status == 200, await response.text()
    master = m3u8.loads(await response.text())
    found = {}
    for uri in [p.uri for p in master.playlists] + [p.uri for p in master.iframe_playlists]:
        answer = await client.get(base + uri)
        assert answer.status == 200, await answer.text()
        assert answer.headers["Cache-Control"] == "private, no-store"
        found[uri.split("?")[0]] = await answer.text()
    return found


async def test_both_variants_are_stored_with_one_key_and_iv_and_the_reference_privately(world, served):
    client, services = await served(world)
    location = EpisodeLocation(series_id=MARKED, episode_id=EPISODE)
    manifest = read_manifest(services.store, location, 1)
    assert manifest.watermark is not None and manifest.watermark.reference == REFERENCE_NAME
    stored = services.store.get_bytes(f"{location.version_prefix(1)}/{REFERENCE_NAME}")
    reference = WatermarkReference.from_bytes(stored)
    assert reference.segment_count == manifest.watermark.segment_count
    for rendition in manifest.renditions:
        assert rendition in manifest.watermark.renditions       # every rung: the lowest is no escape hatch
        stored = m3u8.loads(services.store.get_bytes(f"{location.version_prefix(1)}/{rendition}/index.m3u8").decode())
        assert len(stored.segments) == reference.segment_count
        assert all(".b." not in segment.uri for segment in stored.segments)      # the stored playlist is A
        assert max(segment.duration for segment in stored.segments) <= 2.1      # 2 s segments when marked
        for segment in stored.segments[:3]:
            key = services.keystore.episode_key(segment.key.uri.split("/")[-1], MARKED, EPISODE)
            iv = bytes.fromhex(segment.key.iv[2:])
            prefix = f"{location.version_prefix(1)}/{rendition}/"
            a = decrypt_segment(services.store.get_bytes(prefix + segment.uri), key, iv)
            b = decrypt_segment(services.store.get_bytes(prefix + b_variant(segment.uri)), key, iv)
            assert a != b and abs(len(a) - len(b)) < len(a) // 2
    plain = EpisodeLocation(series_id=PLAIN, episode_id=EPISODE)
    assert read_manifest(services.store, plain, 1).watermark is None
    assert not [key for key in services.store.list_keys(plain.version_prefix(1) + "/") if ".b." in key
                or "watermark" in key]


async def test_each_session_gets_its_own_sequence_in_every_rendition_and_is_recorded_once(world, served):
    client, services = await served(world)
    first = await playlists(client, services, MARKED, BUYER, "sid-first")
    again = await playlists(client, services, MARKED, BUYER, "sid-first")
    second = await playlists(client, services, MARKED, OTHER, "sid-second")
    media = [uri for uri in first if uri.endswith("index.m3u8")]
    assert len(media) == 2
    count = len(media_lines(first[media[0]]))
    for session_id, fetched in (("sid-first", first), ("sid-second", second)):
        bits = session_bits(SECRET, session_id, count)
        assert 0 < sum(bits) < count
        for uri in media:
            names = media_lines(fetched[uri])
            assert [".b." in name for name in names] == [bool(bit) for bit in bits]
        for uri in (uri for uri in fetched if uri.endswith("iframes.m3u8")):
            assert all(".b." not in line for line in fetched[uri].splitlines())   # I-frames: variant A
    # the same session again (a new token: a refresh keeps the session id): the same sequence
    assert {uri: media_lines(text) for uri, text in again.items()} == {
        uri: media_lines(text) for uri, text in first.items()}
    assert media_lines(first[media[0]]) != media_lines(second[media[0]])
    rows = {row.session_id: row for row in services.watermark_sessions.sessions_of(MARKED, EPISODE)}
    assert set(rows) >= {"sid-first", "sid-second"}
    assert (rows["sid-first"].viewer_id, rows["sid-first"].payment_id, rows["sid-first"].source) == (
        BUYER, "pay_buyer_1", "purchase")
    assert (rows["sid-second"].viewer_id, rows["sid-second"].payment_id, rows["sid-second"].source) == (
        OTHER, "", "comp")
    assert rows["sid-first"].version == 1
    # both variants are public ciphertext, cacheable by anyone, fetched without a token
    b_name = next(name for name in media_lines(first[media[0]]) if ".b." in name)
    answer = await client.get(f"/v1/series/{MARKED}/episodes/{EPISODE}/{media[0].rsplit('/', 1)[0]}/{b_name}")
    assert answer.status == 200 and answer.headers["Cache-Control"].startswith("public")


async def test_one_write_per_session_and_version_whatever_is_fetched(world, served, monkeypatch):
    client, services = await served(world)
    writes = []
    original = WatermarkSessions.record
    monkeypatch.setattr(WatermarkSessions, "record", lambda self, **row: writes.append(row) or original(self, **row))
    await playlists(client, services, MARKED, BUYER, "sid-counted")
    await playlists(client, services, MARKED, BUYER, "sid-counted")
    assert [row["session_id"] for row in writes] == ["sid-counted"]
    plain = await playlists(client, services, PLAIN, BUYER, "sid-plain")
    assert len(writes) == 1 and not services.watermark_sessions.sessions_of(PLAIN, EPISODE)
    assert all(".b." not in line for text in plain.values() for line in text.splitlines())


@pytest.mark.parametrize("path", [
    f"v1/{REFERENCE_NAME}", "v1/watermark/", "v1/360p/../watermark/reference.bin", "v1/version.json",
    "v1/234p/reference.bin", "watermark/reference.bin", "v1/360p/seg_00000.c.ts",
])
async def test_the_reference_is_never_served(world, served, path):
    client, services = await served(world)
    token = services.tokens.mint(BUYER, MARKED)
    answer = await client.get(f"/v1/series/{MARKED}/episodes/{EPISODE}/{path}?token={token}")
    assert answer.status in (404, 405), (path, answer.status)
    reference = services.store.get_bytes(f"series/{MARKED}/episodes/{EPISODE}/v1/{REFERENCE_NAME}")
    assert reference[:64] not in await answer.read()


async def test_without_the_secret_a_watermarked_playlist_is_refused_and_no_episode_is_ingested(world, served,
                                                                                              media_dir):
    settings = Settings.from_env({k: v for k, v in world.items() if k != "SERIES_WATERMARK_SECRET"})
    client, services = await served({k: v for k, v in world.items() if k != "SERIES_WATERMARK_SECRET"})
    token = services.tokens.mint(BUYER, MARKED)
    master = m3u8.loads(await (await client.get(
        f"/v1/series/{MARKED}/episodes/{EPISODE}/master.m3u8?token={token}")).text())
    answer = await client.get(f"/v1/series/{MARKED}/episodes/{EPISODE}/{master.playlists[0].uri}")
    assert answer.status == 503
    assert json.loads(await answer.text())["code"] == "watermark_not_configured"
    source = clip(media_dir, "watermark-36s.mp4", duration_s=36, width=640, height=360, fps=12)
    with pytest.raises(WatermarkUnavailable, match="SERIES_WATERMARK_SECRET"):
        ingest_episode(source, series_id=MARKED, episode_id="2", settings=replace(settings), store=services.store,
                       keystore=services.keystore, catalog=services.catalog)
    assert [e.episode_id for e in services.catalog.list_episodes(MARKED, published_only=False)] == [EPISODE]


async def test_fmp4_variants_share_the_init_segment_and_play(world, served, media_dir):
    """With fMP4 segments one EXT-X-MAP serves both variants: B decrypts with A's key and IV and decodes
    behind A's init segment, as a player switching variants does."""
    env = {**world, "SERIES_HLS_SEGMENT_FORMAT": "fmp4", "SERIES_LADDER_MAX_RENDITIONS": "1"}
    settings = Settings.from_env(env)
    source = clip(media_dir, "watermark-16s.mp4", duration_s=16, width=640, height=360, fps=12)
    with Services.open(settings) as services:
        add_series(services, "marked-fmp4", watermark=True)
        ingest_episode(source, series_id="marked-fmp4", episode_id=EPISODE, settings=settings, store=services.store,
                       keystore=services.keystore, catalog=services.catalog)
        services.entitlements.grant(BUYER, "marked-fmp4")
    client, services = await served(env)
    fetched = await playlists(client, services, "marked-fmp4", BUYER, "sid-fmp4")
    media = next(text for uri, text in fetched.items() if uri.endswith("index.m3u8"))
    playlist = m3u8.loads(media)
    base = f"/v1/series/marked-fmp4/episodes/{EPISODE}/v1/360p/"
    init = await (await client.get(base + playlist.segment_map[0].uri)).read()
    segment = next(s for s in playlist.segments if ".b." in s.uri)
    key = await (await client.get(segment.key.uri)).read()
    plaintext = decrypt_segment(await (await client.get(base + segment.uri)).read(), key,
                                bytes.fromhex(segment.key.iv[2:]))
    decoded = decode_segment(init + plaintext)
    assert decoded.starts_with_key_frame and decoded.video_frames == 24      # 2 s at 12 fps

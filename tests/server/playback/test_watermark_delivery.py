"""A/B delivery of a watermarked episode through the real service: both variants stored under keyed names (same
key and IV, A in the stored playlists), each session's media and I-frame playlists listing its own sequence in
every rendition and no other name, the same names on every refresh and instance, the session recorded once with
the payment behind it, the reference and the variant key never served; an unmarked series served exactly as
before; and a service without the secret refusing clearly."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import replace

import m3u8
import pytest
from aiohttp.test_utils import make_mocked_request

from drm.access.watermark_sessions import WatermarkSessions
from packager.encrypt import decrypt_prefix, decrypt_segment
from packager.publishing.publish import EpisodeLocation
from packager.publishing.version_manifest import read_manifest
from packager.publishing.watermark_variants import REFERENCE_NAME, variant_uri, verify_b_variants
from pipeline.encode.playback import decode_segment
from pipeline.watermark import WatermarkReference, session_bits
from server.config import Settings
from server.config.watermark import WatermarkUnavailable, secret_id
from server.publishing.edits import EpisodeEditor
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_env
from tests.support.catalog import add_series
from tests.support.jobs import AUTH, INGEST_TOKEN
from tests.support.media import clip
from tests.support.uploads import creation_headers

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


PLAIN_NAME = re.compile(r"^seg_\d{5}\.ts$")


def media_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def expected_names(variant_key: bytes, bits) -> list[str]:
    """Segment i's name in a playlist of a session with `bits`: its variant's keyed name."""
    return [variant_uri(f"seg_{i:05d}.ts", variant_key, "b" if bit else "a") for i, bit in enumerate(bits)]


def marked_manifest(services):
    return read_manifest(services.store, EpisodeLocation(series_id=MARKED, episode_id=EPISODE), 1)


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
        variant_key = manifest.watermark.variant_key
        # the stored playlist lists A, under keyed names: not the plain ones a viewer could guess
        assert [segment.uri for segment in stored.segments] == expected_names(variant_key, [0] * len(stored.segments))
        assert not any(PLAIN_NAME.match(segment.uri) for segment in stored.segments)
        listed = services.store.list_keys(f"{location.version_prefix(1)}/{rendition}/")
        names = {key.rsplit("/", 1)[-1] for key in listed}
        assert names == {*expected_names(variant_key, [0] * len(stored.segments)),
                         *expected_names(variant_key, [1] * len(stored.segments)), "index.m3u8", "iframes.m3u8"}
        assert max(segment.duration for segment in stored.segments) <= 2.1      # 2 s segments when marked
        for segment in stored.segments[:3]:
            key = services.keystore.episode_key(segment.key.uri.split("/")[-1], MARKED, EPISODE)
            iv = bytes.fromhex(segment.key.iv[2:])
            prefix = f"{location.version_prefix(1)}/{rendition}/"
            a = decrypt_segment(services.store.get_bytes(prefix + segment.uri), key, iv)
            b = decrypt_segment(services.store.get_bytes(prefix + variant_uri(segment.uri, variant_key, "b")), key, iv)
            assert a != b and abs(len(a) - len(b)) < len(a) // 2
    plain = EpisodeLocation(series_id=PLAIN, episode_id=EPISODE)
    assert read_manifest(services.store, plain, 1).watermark is None
    assert b"variant_key" not in services.store.get_bytes(f"{plain.version_prefix(1)}/version.json")
    plain_names = [key.rsplit("/", 1)[-1] for key in services.store.list_keys(plain.version_prefix(1) + "/")
                   if key.endswith(".ts")]
    assert plain_names and all(PLAIN_NAME.match(name) for name in plain_names)     # unmarked: unchanged
    assert not [key for key in services.store.list_keys(plain.version_prefix(1) + "/") if "watermark" in key]


async def test_each_session_gets_its_own_sequence_in_every_rendition_and_is_recorded_once(world, served):
    client, services = await served(world)
    first = await playlists(client, services, MARKED, BUYER, "sid-first")
    again = await playlists(client, services, MARKED, BUYER, "sid-first")
    second = await playlists(client, services, MARKED, OTHER, "sid-second")
    media = [uri for uri in first if uri.endswith("index.m3u8")]
    assert len(media) == 2
    count = len(media_lines(first[media[0]]))
    variant_key = marked_manifest(services).watermark.variant_key
    for session_id, fetched in (("sid-first", first), ("sid-second", second)):
        bits = session_bits(SECRET, session_id, count)
        assert 0 < sum(bits) < count
        for uri in fetched:                  # media and I-frame playlists alike: the session's own variants
            assert media_lines(fetched[uri]) == expected_names(variant_key, bits), uri
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
    b_name = next(name for name, bit in zip(media_lines(first[media[0]]), session_bits(SECRET, "sid-first", count))
                  if bit)
    answer = await client.get(f"/v1/series/{MARKED}/episodes/{EPISODE}/{media[0].rsplit('/', 1)[0]}/{b_name}")
    assert answer.status == 200 and answer.headers["Cache-Control"].startswith("public")


async def test_a_rotated_secret_keeps_a_playing_session_on_its_sequence_and_keys_new_ones_anew(world, served):
    client, services = await served(world)
    before = await playlists(client, services, MARKED, BUYER, "sid-rotated")
    # the operator rotates: a new secret, the old one kept as retired (another instance, the same database)
    new_secret = hashlib.sha256(b"tests: the next watermark secret").digest()
    rotated_env = world | {"SERIES_WATERMARK_SECRET": base64.b64encode(new_secret).decode(),
                           "SERIES_WATERMARK_RETIRED_SECRETS": world["SERIES_WATERMARK_SECRET"]}
    rotated, rotated_services = await served(rotated_env)
    after = await playlists(rotated, rotated_services, MARKED, BUYER, "sid-rotated")
    assert {uri: media_lines(text) for uri, text in after.items()} == {
        uri: media_lines(text) for uri, text in before.items()}
    fresh = await playlists(rotated, rotated_services, MARKED, OTHER, "sid-after-rotation")
    media = next(uri for uri in fresh if uri.endswith("index.m3u8"))
    bits = session_bits(new_secret, "sid-after-rotation", len(media_lines(fresh[media])))
    assert media_lines(fresh[media]) == expected_names(marked_manifest(services).watermark.variant_key, bits)
    rows = {row.session_id: row.secret_id for row in services.watermark_sessions.sessions_of(MARKED, EPISODE)}
    assert (rows["sid-rotated"], rows["sid-after-rotation"]) == (secret_id(SECRET), secret_id(new_secret))
    # the old secret dropped altogether: its session is refused with why, never served another sequence
    only_new = world | {"SERIES_WATERMARK_SECRET": rotated_env["SERIES_WATERMARK_SECRET"]}
    dropped, dropped_services = await served(only_new)
    token = dropped_services.tokens.mint(BUYER, MARKED, session_id="sid-rotated")
    base = f"/v1/series/{MARKED}/episodes/{EPISODE}/"
    master = m3u8.loads(await (await dropped.get(f"{base}master.m3u8?token={token}")).text())
    answer = await dropped.get(base + master.playlists[0].uri)
    assert answer.status == 503
    problem = json.loads(await answer.text())
    assert problem["code"] == "watermark_secret_retired" and "SERIES_WATERMARK_RETIRED_SECRETS" in problem["detail"]


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
    assert all(PLAIN_NAME.match(name) for text in plain.values() for name in media_lines(text))


@pytest.mark.parametrize("path", [
    f"v1/{REFERENCE_NAME}", "v1/watermark/", "v1/360p/../watermark/reference.bin", "v1/version.json",
    "v1/234p/reference.bin", "watermark/reference.bin", "v1/360p/seg_00000.c.ts", "v1/360p/version.json",
    "v1/360p/../version.json", "v1/360p/..%2Fversion.json", "v1/360p/%2E%2E/version.json", "version.json",
    "v1/captions/version.json", "v1/storyboard/version.json", "v1/360p/init.mp4/../../version.json",
    "/assets/version.json", "/docs/assets/v1/version.json", f"/thumbnails/{MARKED}/version.json",
])
async def test_the_reference_and_the_variant_key_are_never_served(world, served, path):
    client, services = await served(world)
    token = services.tokens.mint(BUYER, MARKED)
    url = path if path.startswith("/") else f"/v1/series/{MARKED}/episodes/{EPISODE}/{path}"
    answer = await client.get(f"{url}?token={token}")
    assert answer.status in (404, 405), (path, answer.status)
    reference = services.store.get_bytes(f"series/{MARKED}/episodes/{EPISODE}/v1/{REFERENCE_NAME}")
    body = await answer.read()
    assert reference[:64] not in body and marked_manifest(services).watermark.variant_key.hex().encode() not in body


async def test_no_route_serves_a_versions_manifest(world, served):
    """Whatever a route's pattern, none matches version.json where it lives in a version, nor in any directory
    below it (the routes that read the store build its keys from the episode's path)."""
    client, _ = await served(world)
    episode = f"/v1/series/{MARKED}/episodes/{EPISODE}"
    paths = [f"{episode}/v1/version.json", f"{episode}/v1/360p/version.json", f"{episode}/version.json",
             f"{episode}/v1/captions/fr/version.json", f"{episode}/v1/storyboard/version.json"]
    for path in paths:
        for resource in client.app.router.resources():
            match_info, _ = await resource.resolve(make_mocked_request("GET", path, app=client.app))
            assert match_info is None, (path, resource.canonical)


async def test_a_viewer_cannot_reach_a_variant_by_guessing_its_name(world, served):
    """Only the names in a session's playlists lead anywhere: the plain name, the old `.b` suffix, another tag,
    or a tag keyed with another key all 404, and the route refuses anything not shaped like a segment."""
    client, services = await served(world)
    fetched = await playlists(client, services, MARKED, BUYER, "sid-guess")
    uri = next(uri for uri in fetched if uri.endswith("index.m3u8"))
    directory = f"/v1/series/{MARKED}/episodes/{EPISODE}/{uri.rsplit('/', 1)[0]}/"
    seen = media_lines(fetched[uri])[0]
    assert (await client.get(directory + seen)).status == 200
    index_tag = seen.split(".")[1]
    guesses = ["seg_00000.ts", "seg_00000.b.ts", f"seg_00000.{index_tag[:-1]}{'0' if index_tag[-1] != '0' else '1'}.ts",
               variant_uri("seg_00000.ts", bytes(16), "a"), variant_uri("seg_00000.ts", bytes(16), "b"),
               f"seg_00001.{index_tag}.ts"]
    for guess in guesses:
        answer = await client.get(directory + guess)
        assert answer.status == 404, (guess, answer.status)
    for refused in ("seg_00000.b.ts", "seg_00000.b.ts.x", f"seg_00000.{index_tag.upper()}.ts",
                    f"seg_00000.{index_tag}0.ts", "version.json"):
        assert (await client.get(directory + refused)).status == 404
        match_info = await client.app.router.resolve(make_mocked_request("GET", directory + refused, app=client.app))
        assert match_info.http_exception is not None, refused         # not even routed to the store


async def test_sessions_see_only_their_own_names_and_differ_where_their_bits_do(world, served):
    client, services = await served(world)
    variant_key = marked_manifest(services).watermark.variant_key
    first = await playlists(client, services, MARKED, BUYER, "sid-own-1")
    second = await playlists(client, services, MARKED, OTHER, "sid-own-2")
    uri = next(uri for uri in first if uri.endswith("index.m3u8"))
    count = len(media_lines(first[uri]))
    bits_1, bits_2 = session_bits(SECRET, "sid-own-1", count), session_bits(SECRET, "sid-own-2", count)
    assert bits_1 != bits_2
    for i, (one, two) in enumerate(zip(media_lines(first[uri]), media_lines(second[uri]), strict=True)):
        assert (one != two) == (bits_1[i] != bits_2[i])
    # nothing the first session is served names a variant it does not play
    others = expected_names(variant_key, [1 - bit for bit in bits_1])
    served_text = "".join(first.values())
    assert not [name for name in others if name in served_text]


async def test_the_names_are_the_same_on_every_refresh_and_instance(world, served):
    """Derived from the manifest and the session, not remembered: another instance, with its own memory,
    serves the same session the same names (a player failing over mid-episode keeps its URIs)."""
    client, services = await served(world)
    other_client, other_services = await served(world)
    here = await playlists(client, services, MARKED, BUYER, "sid-stable")
    refreshed = await playlists(client, services, MARKED, BUYER, "sid-stable")
    there = await playlists(other_client, other_services, MARKED, BUYER, "sid-stable")
    assert {uri: media_lines(text) for uri, text in here.items()} == {
        uri: media_lines(text) for uri, text in refreshed.items()} == {
        uri: media_lines(text) for uri, text in there.items()}


async def test_a_sessions_i_frame_ranges_fit_its_own_variants(world, served):
    """A B variant in a viewer's I-frame playlist carries B's range: fetched by Range, as a player does, it
    decrypts from the segment's IV and decodes to exactly one picture."""
    client, services = await served(world)
    fetched = await playlists(client, services, MARKED, BUYER, "sid-trick")
    uri = next(uri for uri in fetched if uri.endswith("iframes.m3u8"))
    playlist = m3u8.loads(fetched[uri])
    bits = session_bits(SECRET, "sid-trick", len(playlist.segments))
    directory = f"/v1/series/{MARKED}/episodes/{EPISODE}/{uri.rsplit('/', 1)[0]}/"
    checked = 0
    for segment, bit in zip(playlist.segments, bits):
        if not bit or checked == 2:
            continue
        length = int(segment.byterange.split("@")[0])
        answer = await client.get(directory + segment.uri, headers={"Range": f"bytes=0-{length - 1}"})
        assert answer.status == 206
        key = await (await client.get(segment.key.uri)).read()
        decoded = decode_segment(decrypt_prefix(await answer.read(), key, bytes.fromhex(segment.key.iv[2:])))
        assert decoded.starts_with_key_frame and decoded.video_frames == 1
        checked += 1
    assert checked == 2


async def test_without_the_secret_a_watermarked_playlist_or_upload_is_refused_and_nothing_is_ingested(
        world, served, media_dir):
    without = {k: v for k, v in world.items() if k != "SERIES_WATERMARK_SECRET"}
    settings = Settings.from_env(without)
    client, services = await served(without)
    token = services.tokens.mint(BUYER, MARKED)
    master = m3u8.loads(await (await client.get(
        f"/v1/series/{MARKED}/episodes/{EPISODE}/master.m3u8?token={token}")).text())
    answer = await client.get(f"/v1/series/{MARKED}/episodes/{EPISODE}/{master.playlists[0].uri}")
    assert answer.status == 503
    assert json.loads(await answer.text())["code"] == "watermark_not_configured"
    source = clip(media_dir, "watermark-36s.mp4", duration_s=36, width=640, height=360, fps=12)
    # an upload for the series is refused before a byte is taken, not left to fail in its job
    uploads, _ = await served(without | {"SERIES_INGEST_TOKEN": INGEST_TOKEN})
    handed = await uploads.post(f"/v1/series/{MARKED}/episodes/2/ingest", data=io.BytesIO(source.read_bytes()),
                                headers={**AUTH, "Idempotency-Key": "marked-2"})
    resumable = await uploads.post("/v1/uploads", headers=creation_headers(AUTH, source.stat().st_size,
                                                                           series=MARKED, episode="2"))
    for answer in (handed, resumable):
        assert answer.status == 503, await answer.text()
        assert json.loads(await answer.text())["code"] == "watermark_not_configured"
    assert (await (await uploads.get("/v1/jobs", headers=AUTH)).json())["jobs"] == []
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
    bits = session_bits(SECRET, "sid-fmp4", len(playlist.segments))
    segment = next(s for s, bit in zip(playlist.segments, bits) if bit)
    assert segment.uri == variant_uri(f"seg_{playlist.segments.index(segment):05d}.m4s", read_manifest(
        services.store, EpisodeLocation(series_id="marked-fmp4", episode_id=EPISODE), 1).watermark.variant_key, "b")
    key = await (await client.get(segment.key.uri)).read()
    plaintext = decrypt_segment(await (await client.get(base + segment.uri)).read(), key,
                                bytes.fromhex(segment.key.iv[2:]))
    decoded = decode_segment(init + plaintext)
    assert decoded.starts_with_key_frame and decoded.video_frames == 24      # 2 s at 12 fps


async def test_a_version_built_without_transcoding_serves_the_media_versions_names(world, served, media_dir):
    """New captions make v2 from v1 without re-transcoding: v2's playlists point at v1's segments, and a
    session's names there are the ones v1's variant key gives (carried in v2's manifest), which v1 serves."""
    settings = Settings.from_env(world)
    source = clip(media_dir, "watermark-16s.mp4", duration_s=16, width=640, height=360, fps=12)
    with Services.open(settings) as services:
        add_series(services, "marked-edit", watermark=True)
        ingest_episode(source, series_id="marked-edit", episode_id=EPISODE, settings=settings, store=services.store,
                       keystore=services.keystore, catalog=services.catalog)
        services.entitlements.grant(BUYER, "marked-edit")
        EpisodeEditor(settings=services.settings, store=services.store, keystore=services.keystore,
                      catalog=services.catalog, versions=None).add_captions(
            "marked-edit", EPISODE, b"WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n", language="fr")
    client, services = await served(world)
    location = EpisodeLocation(series_id="marked-edit", episode_id=EPISODE)
    v1, v2 = read_manifest(services.store, location, 1), read_manifest(services.store, location, 2)
    assert v2.media_version == 1 and v2.watermark == v1.watermark
    fetched = await playlists(client, services, "marked-edit", BUYER, "sid-edit")
    uri = next(uri for uri in fetched if uri.endswith("index.m3u8"))
    assert uri.startswith("v2/")
    names = media_lines(fetched[uri])
    bits = session_bits(SECRET, "sid-edit", len(names))
    rendition = uri.split("/")[1]
    assert names == [f"../../v1/{rendition}/{name}" for name in expected_names(v1.watermark.variant_key, bits)]
    for name in (names[bits.index(1)], names[bits.index(0)]):
        answer = await client.get(f"/v1/series/marked-edit/episodes/{EPISODE}/{uri.rsplit('/', 1)[0]}/{name}")
        assert answer.status == 200, name


async def test_the_self_check_of_b_variants_needs_the_versions_key_and_ranges(world, served):
    """verify_b_variants on the published version: clean with its manifest; with another variant key the A
    names are not its and no B is found; with B's I-frame ranges missing or cut short, it says so."""
    _, services = await served(world)
    location = EpisodeLocation(series_id=MARKED, episode_id=EPISODE)
    prefix, marks = location.version_prefix(1), marked_manifest(services).watermark
    renditions = {name: f"{name}/index.m3u8" for name in marks.renditions}
    keys = {}
    for name in marks.renditions:
        for segment in m3u8.loads(services.store.get_bytes(f"{prefix}/{name}/index.m3u8").decode()).segments:
            keys[segment.key.uri] = services.keystore.episode_key(segment.key.uri.split("/")[-1], MARKED, EPISODE)

    def check(**changed):
        arguments = {"variant_key": marks.variant_key, "b_i_frame_bytes": marks.b_i_frame_bytes, **changed}
        return verify_b_variants(services.store, prefix, renditions, keys_by_uri=keys, decode_segment=decode_segment,
                                 **arguments)

    assert check() == []
    wrong_key = check(variant_key=bytes(16))
    assert any("is not variant A's keyed name" in problem for problem in wrong_key)
    assert any("B variant of" in problem and "is missing" in problem for problem in wrong_key)
    assert any("0 B I-frame ranges" in problem for problem in check(b_i_frame_bytes={}))
    cut = {name: (*lengths[:-1], 16) for name, lengths in marks.b_i_frame_bytes.items()}
    assert any("I-frame range" in problem for problem in check(b_i_frame_bytes=cut))

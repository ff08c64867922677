"""republish(): captions or a poster changed on a live episode as a new version that references the live
version's segments; the version being watched is untouched, a failure leaves it live, GC keeps what
the live version plays, and a version that went live meanwhile is never undone."""

from __future__ import annotations

import json
from contextlib import contextmanager

import m3u8
import pytest

from packager.errors import EpisodeNotPublished, LiveVersionChanged, VerificationFailed
from packager.publishing.publish import EpisodeLocation, publish, read_pointer
from packager.publishing.republish import rebase_media_playlist, republish
from packager.publishing.retention import plan_retention
from packager.publishing.seek import TimeOutsideEpisode, read_segment_at
from packager.publishing.version_manifest import read_manifest
from pipeline.captions.tracks import read_captions
from pipeline.encode.playback import decode_segment
from pipeline.pictures.thumbnail import poster_from_segment, thumbnail
from tests.support.keys import RandomKeys, key_uri

LOCATION = EpisodeLocation(series_id="s1", episode_id="1")
GRACE_S = 600


def caption(language: str, text: str, **options):
    report = read_captions(f"WEBVTT\n\n00:00:02.000 --> 00:00:08.000\n{text}\n".encode(), language=language,
                           duration_s=14.0, **options)
    assert report.is_acceptable
    return report.track


def snapshot(store, version: int) -> dict[str, bytes]:
    prefix = LOCATION.version_prefix(version) + "/"
    return {key: store.get_bytes(key) for key in store.list_keys(prefix)}


@pytest.fixture
def live(store, small_encoded):
    keys = RandomKeys()
    published = publish(small_encoded, store, keys, LOCATION, key_uri=key_uri, decode_segment=decode_segment,
                        captions=[caption("en", "Hello", is_default=True)])
    return published, keys


def test_adding_captions_publishes_a_version_that_plays_the_live_segments(store, live):
    published, keys = live
    before = snapshot(store, published.version)
    new = republish(store, LOCATION, version=published.version + 1, key_for_uri=keys.by_uri().get,
                    add_captions=[caption("fr", "Bonjour")], decode_segment=decode_segment)
    assert snapshot(store, published.version) == before          # the version being watched is untouched
    pointer = read_pointer(store, LOCATION)
    assert (pointer["version"], pointer["media_version"], pointer["previous_version"],
            pointer["previous_media_version"]) == (new.version, published.version, published.version,
                                                   published.version)
    written = snapshot(store, new.version)
    assert not [key for key in written if key.endswith((".ts", ".m4s"))]        # referenced, not copied
    prefix = LOCATION.version_prefix(new.version)
    master = m3u8.loads(written[f"{prefix}/master.m3u8"].decode())
    assert [(m.language, m.default) for m in master.media] == [("en", "YES"), ("fr", "NO")]
    media = m3u8.loads(written[f"{prefix}/{master.playlists[0].uri}"].decode())
    assert media.segments[0].uri == f"../../v{published.version}/{master.playlists[0].uri.split('/')[0]}/seg_00000.ts"
    assert written[f"{prefix}/captions/en/seg_00000.vtt"] == before[
        f"{LOCATION.version_prefix(published.version)}/captions/en/seg_00000.vtt"]
    assert read_manifest(store, LOCATION, new.version).based_on == published.version


def test_replacing_removing_and_a_new_default(store, live):
    published, keys = live
    second = republish(store, LOCATION, version=2, key_for_uri=keys.by_uri().get,
                       add_captions=[caption("en", "Hello again"), caption("de", "Hallo", is_default=True)])
    third = republish(store, LOCATION, version=3, key_for_uri=keys.by_uri().get, remove_captions=["de"])
    master = m3u8.loads(store.get_bytes(f"{LOCATION.version_prefix(second.version)}/master.m3u8").decode())
    assert [(m.language, m.default) for m in master.media] == [("en", "NO"), ("de", "YES")]
    vtt = store.get_bytes(f"{LOCATION.version_prefix(second.version)}/captions/en/seg_00000.vtt").decode()
    assert "Hello again" in vtt
    master = m3u8.loads(store.get_bytes(f"{LOCATION.version_prefix(third.version)}/master.m3u8").decode())
    assert [m.language for m in master.media] == ["en"]
    # v3 was built from v2, whose playlists already point at v1: still v1, one hop, never v2
    assert read_pointer(store, LOCATION)["media_version"] == published.version


def test_retention_keeps_the_media_version_while_a_kept_version_plays_it(store, live, small_encoded):
    published, keys = live
    republish(store, LOCATION, version=2, key_for_uri=keys.by_uri().get, add_captions=[caption("fr", "Salut")])
    republish(store, LOCATION, version=3, key_for_uri=keys.by_uri().get, add_captions=[caption("de", "Hallo")])
    later = read_pointer(store, LOCATION)["published_at"] + GRACE_S + 1
    plan = plan_retention(store, LOCATION, grace_s=GRACE_S, now=later)
    assert (plan.keep, plan.delete) == ((1, 3), (2,))
    publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, version=4)      # a re-ingest
    # as if v4 went live long after v2 and v3 were written: v3 is the previous version, in its grace period
    pointer = {**read_pointer(store, LOCATION), "published_at": later + GRACE_S}
    store.put_bytes(LOCATION.pointer_key, json.dumps(pointer).encode())
    plan = plan_retention(store, LOCATION, grace_s=GRACE_S, now=later + GRACE_S + 1)
    assert (plan.keep, plan.delete) == ((1, 3, 4), (2,))     # v3 plays v1's segments: v1 stays with it
    plan = plan_retention(store, LOCATION, grace_s=GRACE_S, now=later + 3 * GRACE_S)
    assert (plan.keep, plan.delete) == ((4,), (1, 2, 3))


def test_a_version_that_fails_its_self_check_is_removed_and_the_live_one_stays(store, live):
    published, keys = live
    wrong = {uri: bytes(16) for uri in keys.by_uri()}
    with pytest.raises(VerificationFailed):
        republish(store, LOCATION, version=2, key_for_uri=wrong.get, add_captions=[caption("fr", "Salut")],
                  decode_segment=decode_segment)
    assert read_pointer(store, LOCATION)["version"] == published.version
    assert store.list_keys(LOCATION.version_prefix(2) + "/") == []


def test_a_version_that_went_live_meanwhile_is_not_undone(store, live, small_encoded):
    published, keys = live

    @contextmanager
    def ingest_wins_the_race():
        pointer = read_pointer(store, LOCATION)
        store.put_bytes(LOCATION.pointer_key, json.dumps({**pointer, "version": 9, "media_version": 9}).encode())
        yield

    with pytest.raises(LiveVersionChanged) as changed:
        republish(store, LOCATION, version=2, key_for_uri=keys.by_uri().get, add_captions=[caption("fr", "Salut")],
                  switch_guard=ingest_wins_the_race)
    assert changed.value.code == "live_version_changed"
    assert read_pointer(store, LOCATION)["version"] == 9 and store.list_keys(LOCATION.version_prefix(2) + "/") == []


def test_nothing_to_republish_before_a_first_publish(store):
    with pytest.raises(EpisodeNotPublished):
        republish(store, LOCATION, version=1, key_for_uri=lambda uri: None, add_captions=[caption("fr", "x")])


def test_a_poster_chosen_later_comes_from_a_published_segment(store, live):
    published, keys = live
    republish(store, LOCATION, version=2, key_for_uri=keys.by_uri().get, add_captions=[caption("fr", "Salut")])
    prefix = LOCATION.version_prefix(2)
    master = m3u8.loads(store.get_bytes(f"{prefix}/master.m3u8").decode())
    fetched = read_segment_at(store, prefix, master.playlists[0].uri, 7.3, key_for_uri=keys.by_uri().get)
    assert fetched.start_s == 6
    shot = thumbnail(fetched.plaintext, at_s=7.3, segment_start_s=fetched.start_s, width=160, init=fetched.init)
    assert abs(shot.time_s - 7.3) <= 0.04 and shot.width == 160
    poster = poster_from_segment(fetched.plaintext, at_s=7.3, segment_start_s=fetched.start_s, init=fetched.init)
    republish(store, LOCATION, version=3, key_for_uri=keys.by_uri().get, poster=poster)
    manifest = read_manifest(store, LOCATION, 3)
    assert manifest.poster.is_chosen and manifest.poster.time_s == pytest.approx(7.28)
    assert store.get_bytes(f"{LOCATION.version_prefix(3)}/posters/poster_320.jpg")[:3] == b"\xff\xd8\xff"
    assert [c.track_id for c in manifest.captions] == ["en", "fr"]
    with pytest.raises(TimeOutsideEpisode):
        read_segment_at(store, prefix, master.playlists[0].uri, 99.0, key_for_uri=keys.by_uri().get)


def test_rebasing_points_segment_and_init_uris_at_the_media_version():
    text = ('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXT-X-KEY:METHOD=AES-128,URI="/v1/keys/k",IV=0x00\n'
            "#EXTINF:6,\nseg_00000.m4s\n")
    rebased = rebase_media_playlist(text, "720p", 3)
    assert '#EXT-X-MAP:URI="../../v3/720p/init.mp4"' in rebased and "\n../../v3/720p/seg_00000.m4s\n" in rebased
    assert 'URI="/v1/keys/k"' in rebased and rebase_media_playlist(rebased, "720p", 5) == rebased

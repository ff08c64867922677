"""publish() into a real S3 store: I-frame ranges that decrypt, a session key, and a self-check that
refuses to switch the pointer to a version players could not decrypt."""

from __future__ import annotations

import posixpath
from contextlib import contextmanager

import m3u8
import pytest

from packager.encrypt import decrypt_prefix
from packager.errors import PointerSwitchUncertain, VerificationFailed
from packager.publishing.publish import EpisodeLocation, publish, read_pointer
from packager.publishing.verify import verify_version
from packager.store import ObjectStore
from pipeline.encode.playback import decode_segment
from tests.support.keys import RandomKeys, key_uri

LOCATION = EpisodeLocation(series_id="s1", episode_id="1")


def test_i_frame_ranges_decrypt_alone_and_hold_one_key_picture(store, small_encoded):
    keys = RandomKeys()
    published = publish(small_encoded, store, keys, LOCATION, key_uri=key_uri, segments_per_key=2,
                        session_key=True, decode_segment=decode_segment)
    prefix = LOCATION.version_prefix(published.version)
    master = m3u8.loads(store.get_bytes(f"{prefix}/master.m3u8").decode())
    (i_frame_variant,) = master.iframe_playlists
    assert i_frame_variant.iframe_stream_info.codecs == small_encoded.renditions[0].codecs.split(",")[0]
    assert [k.uri for k in master.session_keys] == [key_uri(keys.keys[0].key_id)]
    i_frames = m3u8.loads(store.get_bytes(f"{prefix}/{i_frame_variant.uri}").decode())
    assert i_frames.is_i_frames_only and len(i_frames.segments) == published.segment_count
    by_uri = keys.by_uri()
    assert len(by_uri) == 2                          # three segments, two per key
    for segment in i_frames.segments:
        length, offset = map(int, segment.byterange.split("@"))
        assert offset == 0 and length % 16 == 0
        ciphertext = store.get_bytes(f"{prefix}/{posixpath.dirname(i_frame_variant.uri)}/{segment.uri}")
        assert length < len(ciphertext)
        plaintext = decrypt_prefix(ciphertext[:length], by_uri[segment.key.uri], bytes.fromhex(segment.key.iv[2:]))
        decoded = decode_segment(plaintext)
        assert decoded.video_frames == 1 and decoded.starts_with_key_frame


def test_pointer_remembers_the_previous_version(store, small_encoded):
    first = publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri)
    second = publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri)
    pointer = read_pointer(store, LOCATION)
    assert (pointer["version"], pointer["previous_version"]) == (second.version, first.version)


def test_a_version_players_cannot_decrypt_never_goes_live(store, small_encoded):
    live = publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, decode_segment=decode_segment)
    # a key URI that forgets the key id: every period's EXT-X-KEY names the same URI, so players
    # would decrypt the early segments with the wrong key
    with pytest.raises(VerificationFailed) as failure:
        publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=lambda key_id: "/v1/keys/current",
                segments_per_key=1, decode_segment=decode_segment)
    assert failure.value.code == "verification_failed"
    assert "iframes.m3u8" in str(failure.value)
    assert read_pointer(store, LOCATION)["version"] == live.version
    assert store.list_keys(LOCATION.version_prefix(live.version + 1) + "/") == []


def test_a_switch_that_fails_after_the_pointer_write_keeps_the_version_it_may_have_made_live(store, small_encoded):
    """S3 can apply a PUT whose answer is lost; the publisher must not then delete what players are sent to."""
    @contextmanager
    def lost_answer():
        yield                       # the pointer is written inside the guard...
        raise OSError("connection reset")   # ...and the publisher hears only an error

    with pytest.raises(PointerSwitchUncertain):
        publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, switch_guard=lost_answer)
    version = read_pointer(store, LOCATION)["version"]
    assert f"{LOCATION.version_prefix(version)}/master.m3u8" in store.list_keys(LOCATION.version_prefix(version) + "/")


class ReadRecordingStore(ObjectStore):
    """The real store, noting how many bytes each get_bytes() brought back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bytes_read: dict[str, list[int]] = {}

    def get_bytes(self, key: str, **byte_range) -> bytes:
        data = super().get_bytes(key, **byte_range)
        self.bytes_read.setdefault(key, []).append(len(data))
        return data


def test_the_self_check_fetches_only_the_i_frame_range(s3_store, store, small_encoded):
    keys = RandomKeys()
    published = publish(small_encoded, store, keys, LOCATION, key_uri=key_uri)
    prefix = LOCATION.version_prefix(published.version)
    with ReadRecordingStore(s3_store.store_settings(store.bucket)) as recording:
        verify_version(recording, prefix, master_name="master.m3u8", keys_by_uri=keys.by_uri(),
                       duration_s=published.duration_s, decode_segment=decode_segment)
    master = m3u8.loads(store.get_bytes(f"{prefix}/master.m3u8").decode())
    (i_frame_variant,) = master.iframe_playlists
    first = m3u8.loads(store.get_bytes(f"{prefix}/{i_frame_variant.uri}").decode()).segments[0]
    segment_key = f"{prefix}/{posixpath.dirname(i_frame_variant.uri)}/{first.uri}"
    length = int(first.byterange.split("@")[0])
    assert recording.bytes_read[segment_key] == [length] and length < store.stat(segment_key).size_bytes
    # each playlist is fetched once, whole
    assert all(reads == [len(store.get_bytes(key))] for key, reads in recording.bytes_read.items()
               if key.endswith(".m3u8"))

"""publish() of fMP4 renditions into a real S3 store: a clear init beside encrypted .m4s segments, I-frame
ranges read from the moof that decrypt alone, and a self-check that notices an init segment players
could not read."""

from __future__ import annotations

import math
import os
import posixpath

import m3u8
import pytest

from packager.containers.fragmented_mp4 import first_video_sample_end, is_init_segment, video_track_id
from packager.encrypt import decrypt_prefix, decrypt_segment, encrypt_segment
from packager.errors import MalformedSegment, VerificationFailed
from packager.publishing.publish import publish
from packager.publishing.verify import verify_version
from pipeline.encode.playback import decode_segment
from tests.packager.test_publish import LOCATION
from tests.support.keys import RandomKeys, key_uri


def test_first_video_sample_end_lies_inside_the_first_fragment(small_encoded_fmp4):
    (rendition,) = small_encoded_fmp4.renditions
    init = rendition.init_path.read_bytes()
    assert video_track_id(init) == 1
    assert is_init_segment(init) and not is_init_segment(rendition.segments[0].path.read_bytes())
    for segment in rendition.segments:
        data = segment.path.read_bytes()
        end = first_video_sample_end(data, 1)
        moof_size = int.from_bytes(data[:4], "big")
        assert moof_size + 8 < end < len(data)
        decoded = decode_segment(init + data[:end])
        assert decoded.video_frames == 1 and decoded.starts_with_key_frame
    with pytest.raises(MalformedSegment):
        first_video_sample_end(rendition.segments[0].path.read_bytes(), track_id=7)
    with pytest.raises(MalformedSegment):
        first_video_sample_end(os.urandom(4096), 1)


def test_fmp4_publishes_a_clear_init_and_encrypted_segments_with_their_content_types(store, small_encoded_fmp4):
    keys = RandomKeys()
    published = publish(small_encoded_fmp4, store, keys, LOCATION, key_uri=key_uri, segments_per_key=2,
                        decode_segment=decode_segment)
    prefix = LOCATION.version_prefix(published.version)
    (rendition,) = published.renditions
    init_key = f"{prefix}/{rendition}/init.mp4"
    assert store.get_bytes(init_key) == small_encoded_fmp4.renditions[0].init_path.read_bytes()
    assert store.stat(init_key).content_type == "video/mp4"
    master = m3u8.loads(store.get_bytes(f"{prefix}/master.m3u8").decode())
    media = m3u8.loads(store.get_bytes(f"{prefix}/{master.playlists[0].uri}").decode())
    assert media.version == 6 and media.segment_map[0].uri == "init.mp4"
    by_uri = keys.by_uri()
    for segment, encoded in zip(media.segments, small_encoded_fmp4.renditions[0].segments):
        stored_key = f"{prefix}/{rendition}/{segment.uri}"
        assert store.stat(stored_key).content_type == "video/iso.segment"
        plaintext = decrypt_segment(store.get_bytes(stored_key), by_uri[segment.key.uri],
                                    bytes.fromhex(segment.key.iv[2:]))
        assert plaintext == encoded.path.read_bytes()
    i_frames = m3u8.loads(store.get_bytes(f"{prefix}/{master.iframe_playlists[0].uri}").decode())
    assert i_frames.version == 5 and i_frames.segment_map[0].uri == "init.mp4"
    init = store.get_bytes(init_key)
    for segment in i_frames.segments:
        length = int(segment.byterange.split("@")[0])
        ciphertext = store.get_bytes(f"{prefix}/{posixpath.dirname(master.iframe_playlists[0].uri)}/{segment.uri}")
        plaintext = decrypt_prefix(ciphertext[:length], by_uri[segment.key.uri], bytes.fromhex(segment.key.iv[2:]))
        # the range ends on the first AES block boundary after the first picture, not later
        assert length == math.ceil(first_video_sample_end(plaintext, 1) / 16) * 16
        assert decode_segment(init + plaintext).video_frames == 1


def test_the_self_check_refuses_an_encrypted_or_missing_init_segment(store, small_encoded_fmp4):
    keys = RandomKeys()
    published = publish(small_encoded_fmp4, store, keys, LOCATION, key_uri=key_uri, decode_segment=decode_segment)
    prefix = LOCATION.version_prefix(published.version)
    init_key = f"{prefix}/{published.renditions[0]}/init.mp4"
    init = store.get_bytes(init_key)

    def verify() -> None:
        verify_version(store, prefix, master_name="master.m3u8", keys_by_uri=keys.by_uri(),
                       duration_s=published.duration_s, decode_segment=decode_segment)

    verify()                                                    # as published: it passes
    store.put_bytes(init_key, encrypt_segment(init, os.urandom(16), os.urandom(16)), content_type="video/mp4")
    with pytest.raises(VerificationFailed, match="not a clear init segment"):
        verify()
    store.delete_prefix(init_key)
    with pytest.raises(VerificationFailed, match="ObjectMissing"):
        verify()

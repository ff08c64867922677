"""Playlists parsed back with an independent parser (m3u8) and checked against RFC 8216 rules."""

from fractions import Fraction

import m3u8
import pytest

from packager.hls.playlist import (
    PlaylistSegment,
    Variant,
    average_bandwidth,
    peak_bandwidth,
    render_master_playlist,
    render_media_playlist,
    target_duration,
)

FRAME = Fraction(1001, 30000)


def segments(count=5):
    durations = [180 * FRAME] * (count - 1) + [37 * FRAME]
    return [PlaylistSegment(uri=f"seg_{i:05d}.ts", duration_s=d, size_bytes=100_000 + i, key_uri=f"/v1/keys/k{i // 2}",
                            iv=bytes([i]) * 16) for i, d in enumerate(durations)]


def test_media_playlist_is_vod_with_explicit_ivs_and_exact_durations():
    segs = segments()
    text = render_media_playlist(segs)
    parsed = m3u8.loads(text)
    assert parsed.version == 3 and parsed.playlist_type == "vod" and parsed.is_endlist
    assert parsed.is_independent_segments
    assert parsed.target_duration == 6
    for segment, source in zip(parsed.segments, segs):
        assert segment.key.method == "AES-128"
        assert segment.key.iv == "0x" + source.iv.hex()
        assert segment.key.uri == source.key_uri
        assert round(segment.duration) <= parsed.target_duration
    total = sum(Fraction(s.duration).limit_denominator(10**6) for s in parsed.segments)
    assert abs(total - sum(s.duration_s for s in segs)) < FRAME   # Apple 8.1


def test_target_duration_covers_rounded_extinf():
    assert target_duration([Fraction(6), Fraction(13, 2)]) == 7
    assert target_duration([Fraction(6006, 1000)]) == 6


def test_master_lists_measured_bandwidth_codecs_resolution_and_frame_rate():
    variants = [
        Variant(uri="720p/index.m3u8", bandwidth_bps=3_500_000, average_bandwidth_bps=3_000_000,
                codecs="avc1.64001f,mp4a.40.2", width=1280, height=720, frame_rate=Fraction(30000, 1001)),
        Variant(uri="540p/index.m3u8", bandwidth_bps=2_300_000, average_bandwidth_bps=2_000_000,
                codecs="avc1.64001f,mp4a.40.2", width=960, height=540, frame_rate=Fraction(30000, 1001)),
        Variant(uri="234p/index.m3u8", bandwidth_bps=180_000, average_bandwidth_bps=150_000,
                codecs="avc1.64000d,mp4a.40.2", width=416, height=234, frame_rate=Fraction(30000, 1001)),
    ]
    parsed = m3u8.loads(render_master_playlist(variants))
    assert [p.uri for p in parsed.playlists] == ["540p/index.m3u8", "720p/index.m3u8", "234p/index.m3u8"]
    first = parsed.playlists[0].stream_info
    assert first.bandwidth == 2_300_000 and first.average_bandwidth == 2_000_000
    assert first.codecs == "avc1.64001f,mp4a.40.2" and first.resolution == (960, 540)
    assert first.frame_rate == pytest.approx(29.97)


def test_peak_bandwidth_uses_windows_of_half_to_one_and_a_half_targets():
    durations = [Fraction(6)] * 4
    sizes = [600_000, 600_000, 1_200_000, 600_000]
    assert peak_bandwidth(durations, sizes, 6) == 1_200_000 * 8 // 6
    short = [Fraction(2)] * 3                       # 2 s segments: runs of 2 and 3 qualify, singles do not
    assert peak_bandwidth(short, [100, 100, 400], 6) == (100 + 400) * 8 // 4
    assert average_bandwidth(durations, sizes) == 3_000_000 * 8 // 24

"""The MPEG-TS scan that bounds each I-frame range, checked against FFmpeg's own demuxer and decoder."""

from __future__ import annotations

import pytest

from packager.containers.transport_stream import PACKET_BYTES, first_video_access_unit_end
from packager.errors import MalformedSegment
from pipeline.encode.playback import decode_segment


def test_first_access_unit_is_exactly_one_key_picture(small_encoded):
    for segment in small_encoded.renditions[0].segments:
        data = segment.path.read_bytes()
        end = first_video_access_unit_end(data)
        assert end % PACKET_BYTES == 0 and 0 < end < len(data)
        decoded = decode_segment(data[:end])
        assert decoded.video_frames == 1 and decoded.starts_with_key_frame
        assert decode_segment(data).video_frames > 1       # the range is the first picture, not the segment


def test_a_range_rounded_up_to_a_block_still_decodes_to_one_picture(small_encoded):
    data = small_encoded.renditions[0].segments[0].path.read_bytes()
    end = first_video_access_unit_end(data)
    rounded = -(-end // 16) * 16
    assert decode_segment(data[:rounded]).video_frames == 1


def test_not_a_transport_stream_is_refused(small_encoded):
    data = small_encoded.renditions[0].segments[0].path.read_bytes()
    with pytest.raises(MalformedSegment, match="sync byte"):
        first_video_access_unit_end(b"\x00" * PACKET_BYTES + data)
    with pytest.raises(MalformedSegment, match="no video stream"):
        first_video_access_unit_end(data[:PACKET_BYTES])      # the PAT alone

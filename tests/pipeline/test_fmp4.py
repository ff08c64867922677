"""fMP4 transcode output: a clear init segment, one moof + mdat per segment starting with an IDR, a
continuous tfdt, and the same cut points as the MPEG-TS output (so renditions and formats stay aligned)."""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import pytest

from packager.containers.fragmented_mp4 import boxes
from pipeline.encode.fmp4 import split
from pipeline.encode.playback import decode_segment
from pipeline.errors import TranscodeError

FPS = 25


def box_kinds(data: bytes) -> list[bytes]:
    return [kind for kind, _, _ in boxes(data)]


def avcc_codec(init: bytes) -> str:
    """RFC 6381 avc1.PPCCLL as a player reads it: from the init segment's avcC box, not from our SPS."""
    position = init.index(b"avcC") + 4
    version, profile, constraints, level = init[position:position + 4]
    assert version == 1                                        # AVCDecoderConfigurationRecord v1
    return f"avc1.{profile:02x}{constraints:02x}{level:02x}"


def video_tfdt(segment: bytes, track_id: int = 1) -> int:
    """baseMediaDecodeTime of the video traf in the segment's moof."""
    (moof,) = [(o, s) for k, o, s in boxes(segment) if k == b"moof"]
    for kind, offset, size in boxes(segment, moof[0] + 8, moof[0] + moof[1]):
        if kind != b"traf":
            continue
        children = {k: o for k, o, _ in boxes(segment, offset + 8, offset + size)}
        if struct.unpack_from(">I", segment, children[b"tfhd"] + 12)[0] == track_id:
            tfdt = children[b"tfdt"]
            return struct.unpack_from(">Q" if segment[tfdt + 8] == 1 else ">I", segment, tfdt + 12)[0]
    raise AssertionError("no video traf")


def test_the_init_segment_is_clear_and_holds_no_samples(small_encoded_fmp4):
    (rendition,) = small_encoded_fmp4.renditions
    init = rendition.init_path.read_bytes()
    assert box_kinds(init) == [b"ftyp", b"moov"]
    assert b"mvex" in init                                    # fragmented: samples come in moofs
    assert rendition.codecs == f"{avcc_codec(init)},mp4a.40.2"   # the SPS string matches the avcC
    assert rendition.codecs.startswith("avc1.64")              # High profile, read from avcC, not hard-coded


def test_each_segment_is_one_fragment_cut_where_the_ts_output_cuts(small_encoded_fmp4, small_encoded):
    (fmp4,), (ts,) = small_encoded_fmp4.renditions, small_encoded.renditions
    assert [(s.start_s, s.duration_s) for s in fmp4.segments] == [(s.start_s, s.duration_s) for s in ts.segments]
    assert len(fmp4.segments) == 3
    tfdts = []
    for segment in fmp4.segments:
        data = segment.path.read_bytes()
        assert segment.path.suffix == ".m4s"
        assert box_kinds(data) == [b"moof", b"mdat"]
        tfdts.append(video_tfdt(data))
    # tfdt continues across segments, in step with the frame grid: 0, 6 s, 12 s in the track's timescale
    assert tfdts[0] == 0
    assert [Fraction(t, tfdts[1]) for t in tfdts] == [s.start_s / fmp4.segments[1].start_s for s in fmp4.segments]


def test_each_segment_decodes_behind_the_init_alone_from_an_idr(small_encoded_fmp4):
    (rendition,) = small_encoded_fmp4.renditions
    init = rendition.init_path.read_bytes()
    first_pts = []
    for segment in rendition.segments:
        data = init + segment.path.read_bytes()
        decoded = decode_segment(data)
        assert decoded.starts_with_key_frame
        assert decoded.video_frames == segment.duration_s * FPS
        assert decoded.audio_frames > 0
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0))
            first_pts.append(Fraction(frame.pts) * frame.time_base)
    # one timeline: each segment's first picture sits at its start on the grid, by the same decoder delay
    assert {pts - segment.start_s for pts, segment in zip(first_pts, rendition.segments)} == {first_pts[0]}


def test_split_refuses_a_file_without_fragments(tmp_path):
    (tmp_path / "fragmented.mp4").write_bytes(struct.pack(">I4s", 16, b"ftyp") + b"iso6\0\0\0\0")
    with pytest.raises(TranscodeError, match="no moov or no fragment"):
        split(tmp_path)

"""The transcoder's promises, checked by decoding its output with PyAV."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from pipeline.ladder import LadderSettings, plan_ladder
from pipeline.transcode import output_frame_rate, transcode
from tests.support.media import clip

FAST = LadderSettings(preset="superfast")


def first_video_packet(path):
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                return packet


@pytest.fixture(scope="module")
def portrait_no_audio(media_dir):
    return clip(media_dir, "portrait-silent.mp4", duration_s=13, width=270, height=480, fps=Fraction(30000, 1001),
                has_audio=False)


@pytest.fixture(scope="module")
def landscape_30fps(media_dir):
    return clip(media_dir, "landscape-30.mp4", duration_s=19, width=640, height=360, fps=30)


@pytest.mark.parametrize("source, frames, segments", [
    ("landscape_clip", 32 * 25, 6),      # 25 fps: cuts at 6, 12, 18, 24, 30 s
    ("landscape_30fps", 19 * 30, 4),     # 30 fps with B-frames: FFmpeg's time-based cut missed 6 s here
])
def test_renditions_share_idr_cuts_and_exact_durations(request, tmp_path, source, frames, segments):
    result = transcode(request.getfixturevalue(source), plan_ladder(640, 360), tmp_path, FAST)
    assert result.frame_count == frames
    assert all(len(r.segments) == segments for r in result.renditions)
    starts = []
    for rendition in result.renditions:
        durations = [s.duration_s for s in rendition.segments]
        assert sum(durations) == result.duration_s          # exact, not rounded
        assert max(durations) <= 6.5                         # Apple 7.7
        segment_starts = []
        for segment in rendition.segments:
            packet = first_video_packet(segment.path)
            assert packet.is_keyframe, f"{segment.path} does not start with an IDR"
            segment_starts.append(float(packet.pts * packet.time_base))
        starts.append(segment_starts)
    assert all(s == starts[0] for s in starts)                # same cut timestamps in every rendition


def test_portrait_source_without_audio_gets_portrait_renditions_and_silent_aac(tmp_path, portrait_no_audio):
    renditions = plan_ladder(270, 480)
    result = transcode(portrait_no_audio, renditions, tmp_path, FAST)
    assert not result.has_source_audio
    for encoded in result.renditions:
        assert encoded.codecs.startswith("avc1.64") and encoded.codecs.endswith(",mp4a.40.2")
        assert encoded.rendition.height > encoded.rendition.width
        with av.open(str(encoded.segments[0].path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert (video.codec_context.width, video.codec_context.height) == (encoded.rendition.width,
                                                                                encoded.rendition.height)
            assert audio.codec_context.name == "aac" and audio.codec_context.sample_rate == 48000
            samples = sum(frame.samples for frame in container.decode(audio))
            assert samples > 48000 * 5
    # 29.97 fps: EXTINF comes from real frame times, 6.006 s, not 6.000 s
    first = result.renditions[0].segments[0]
    assert first.duration_s == Fraction(180 * 1001, 30000)


@pytest.mark.parametrize("source, expected", [
    (Fraction(30000, 1001), Fraction(30000, 1001)),
    (Fraction(2997, 100), Fraction(30000, 1001)),
    (Fraction(120), Fraction(60)),
    (Fraction(25), Fraction(25)),
    (None, Fraction(30)),
])
def test_output_frame_rate_is_natural_and_at_most_60(source, expected):
    assert output_frame_rate(source, 60) == expected

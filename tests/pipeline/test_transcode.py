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


def rotated_clip(path, rotation: int):
    """Stored 96x64 with a white marker in the stored top-left corner, and a display matrix."""
    import numpy as np

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.set_display_rotation(rotation)
        for index in range(20):
            rgb = np.full((64, 96, 3), 60, np.uint8)
            rgb[:16, :16] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


# where the marker must end up: what the ffmpeg CLI's autorotate shows for the same file
@pytest.mark.parametrize("rotation, size, corner", [(90, (64, 96), "bottom-left"), (-90, (64, 96), "top-right"),
                                                    (180, (96, 64), "bottom-right")])
def test_rotation_is_baked_into_the_pixels(tmp_path, rotation, size, corner):
    from pipeline.ladder import Rendition
    from pipeline.probe import probe

    source = rotated_clip(tmp_path / "phone.mp4", rotation)
    video = probe(source).video
    assert (video.display_width, video.display_height) == size
    rendition = Rendition(name="x", width=size[0], height=size[1], video_bitrate_bps=300_000, audio_bitrate_bps=64_000)
    result = transcode(source, [rendition], tmp_path / "out", FAST)
    with av.open(str(result.renditions[0].segments[0].path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 0                       # the display matrix is gone: players ignore it
        gray = frame.to_ndarray(format="gray")
    assert gray.shape == (size[1], size[0])
    corners = {"top-left": gray[:8, :8], "top-right": gray[:8, -8:],
               "bottom-left": gray[-8:, :8], "bottom-right": gray[-8:, -8:]}
    assert max(corners, key=lambda name: corners[name].mean()) == corner

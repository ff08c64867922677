"""probe(): what the container header and the first frame say, and UnreadableMedia for what is not media."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pipeline.errors import EmptyMedia, UnreadableMedia
from pipeline.inspect.probe import StreamInfo, bit_depth, probe
from tests.support.corpus import corpus  # noqa: F401  (a fixture)


def test_landscape_clip(corpus):  # noqa: F811
    info = probe(corpus["landscape.mp4"])
    assert info.container.startswith("mov,mp4") and info.size_bytes == corpus["landscape.mp4"].stat().st_size
    assert info.header_duration_s == pytest.approx(32.0, abs=0.1)
    assert info.streams == (StreamInfo(0, "video", "h264"), StreamInfo(1, "audio", "aac"))
    video = info.video
    assert (video.codec, video.width, video.height, video.rotation) == ("h264", 256, 144, 0)
    assert (video.pix_fmt, video.bit_depth, video.frame_rate) == ("yuv420p", 8, Fraction(10))
    assert video.frame_count == 320 and video.header_duration_s == pytest.approx(32.0) and not video.is_portrait
    assert (info.audio.codec, info.audio.channels, info.audio.sample_rate) == ("aac", 2, 48000)


def test_rotation_comes_from_the_display_matrix(corpus):  # noqa: F811
    video = probe(corpus["rotated_phone.mp4"]).video
    assert video.rotation == 90
    assert (video.display_width, video.display_height) == (144, 256) and video.is_portrait


def test_portrait_without_rotation(corpus):  # noqa: F811
    video = probe(corpus["portrait.mp4"]).video
    assert video.rotation == 0 and video.is_portrait


def test_hevc_10_bit(corpus):  # noqa: F811
    video = probe(corpus["hevc_10bit.mp4"]).video
    assert (video.codec, video.pix_fmt, video.bit_depth) == ("hevc", "yuv420p10le", 10)


def test_audio_only_has_no_video(corpus):  # noqa: F811
    info = probe(corpus["audio_only.m4a"])
    assert info.video is None and info.audio.channels == 2


def test_square_mpeg4_in_avi(corpus):  # noqa: F811
    info = probe(corpus["square_mpeg4.avi"])
    assert info.container == "avi" and info.video.codec == "mpeg4"
    assert (info.video.display_width, info.video.display_height) == (160, 160)


def test_text_is_not_media(corpus):  # noqa: F811
    with pytest.raises(UnreadableMedia) as caught:
        probe(corpus["text.mp4"])
    assert caught.value.code == "not_media" and "text.mp4" in str(caught.value)


def test_empty_file_is_its_own_code_and_still_unreadable(corpus):  # noqa: F811
    with pytest.raises(EmptyMedia) as caught:
        probe(corpus["empty.mp4"])
    assert isinstance(caught.value, UnreadableMedia) and caught.value.code == "empty_file"


@pytest.mark.parametrize("pix_fmt, bits", [
    ("yuv420p", 8), ("yuv420p10le", 10), ("yuv422p12le", 12), ("rgb24", 8), (None, None), ("no_such_format", None),
])
def test_bit_depth(pix_fmt, bits):
    assert bit_depth(pix_fmt) == bits

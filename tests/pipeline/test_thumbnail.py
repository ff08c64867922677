"""thumbnail(): the frame at time t from the one segment covering it, within one frame interval of t,
checked by matching the picture against the source's frames (the synthetic clip changes every frame)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
from pipeline.errors import PictureTimeOutOfRange, PictureWidthOutOfRange
from pipeline.pictures.still_image import decode_image
from pipeline.pictures.thumbnail import thumbnail
from tests.support.media import clip

FPS = 25
MATCH_SIZE = (64, 36)


@pytest.fixture(scope="module")
def source(media_dir):
    return clip(media_dir, "thumbs.mp4", duration_s=14, width=320, height=180, fps=FPS)


@pytest.fixture(scope="module")
def source_frames(source):
    """Every source frame, shrunk, as float arrays: what a thumbnail is matched against."""
    frames = []
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.reformat(*MATCH_SIZE, "rgb24").to_ndarray().astype(np.float32))
    return frames


@pytest.fixture(scope="module", params=[SegmentFormat.TS, SegmentFormat.FMP4], ids=str)
def encoded(request, source, tmp_path_factory):
    ladder = LadderSettings(max_renditions=1, preset="superfast")
    return transcode(source, plan_ladder(320, 180, ladder), tmp_path_factory.mktemp("thumbs"), ladder,
                     segment_format=request.param).renditions[0]


def covering(rendition, at_s: float):
    segment = next(s for s in rendition.segments if s.start_s <= at_s < s.start_s + s.duration_s)
    init = rendition.init_path.read_bytes() if rendition.init_path else None
    return segment.path.read_bytes(), segment.start_s, init


def shown_index(data: bytes, source_frames) -> int:
    """The source frame the image shows: the nearest by mean absolute difference."""
    picture = av.VideoFrame.from_ndarray(decode_image(data), format="rgb24").reformat(*MATCH_SIZE, "rgb24")
    shrunk = picture.to_ndarray().astype(np.float32)
    return int(np.argmin([np.abs(shrunk - frame).mean() for frame in source_frames]))


@pytest.mark.parametrize("at_s", [0.0, 2.0, 3.03, 5.99, 6.0, 9.47, 11.98, 13.96])
def test_the_thumbnail_shows_the_frame_within_one_frame_interval_of_t(encoded, source_frames, at_s):
    segment, start, init = covering(encoded, at_s)
    shot = thumbnail(segment, at_s=at_s, segment_start_s=start, width=160, init=init)
    assert abs(shot.time_s - Fraction(str(at_s))) <= Fraction(1, FPS)
    assert (shot.width, shot.height) == (160, 90)
    assert abs(shown_index(shot.data, source_frames) / FPS - at_s) <= 1 / FPS


def test_never_upscaled_and_bounded(encoded):
    segment, start, init = covering(encoded, 1.0)
    assert thumbnail(segment, at_s=1.0, segment_start_s=start, width=1280, init=init).width == 320
    webp = thumbnail(segment, at_s=1.0, segment_start_s=start, width=200, image_format="webp", init=init)
    assert webp.data[:4] == b"RIFF" and decode_image(webp.data).shape == (112, 200, 3)
    with pytest.raises(PictureWidthOutOfRange) as refused:
        thumbnail(segment, at_s=1.0, segment_start_s=start, width=4000, init=init)
    assert refused.value.code == "picture_width_out_of_range"


def test_a_time_the_segment_does_not_cover_is_refused(encoded):
    segment, start, init = covering(encoded, 1.0)
    with pytest.raises(PictureTimeOutOfRange):
        thumbnail(segment, at_s=7.0, segment_start_s=start, width=160, init=init)

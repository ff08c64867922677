"""Posters and storyboards sampled from the transcode's own decode: not black, never upscaled, the whole
episode covered by storyboard cues whose tiles lie inside their sprite sheets."""

from __future__ import annotations

import re
from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
from pipeline.errors import PictureError, PictureTimeOutOfRange
from pipeline.pictures.frame_score import score_frame
from pipeline.pictures.sampler import PictureSampler
from pipeline.pictures.still_image import decode_image, encode_jpeg, encode_webp
from pipeline.pictures.storyboard import (
    SHEET_COLUMNS,
    SHEET_ROWS,
    Size,
    StoryboardBuilder,
    render_storyboard_vtt,
    storyboard_interval_s,
)
from tests.support.media import clip

LADDER = LadderSettings(max_renditions=1, preset="superfast")


def sample(source, tmp_path, **sampler_options):
    with av.open(str(source)) as container:
        width, height = container.streams.video[0].width, container.streams.video[0].height
        duration = container.duration / av.time_base
    sampler = PictureSampler(expected_duration_s=duration, **sampler_options)
    result = transcode(source, plan_ladder(width, height, LADDER), tmp_path, LADDER, frame_observer=sampler)
    return result, sampler.finish(result.duration_s)


@pytest.fixture(scope="module")
def black_start_clip(media_dir):
    """12 s, 640x360, 25 fps; the first second is black."""
    return clip(media_dir, "black-start.mp4", duration_s=12, width=640, height=360, fps=25, black_until_s=1.0)


@pytest.fixture(scope="module")
def sampled(black_start_clip, tmp_path_factory):
    return sample(black_start_clip, tmp_path_factory.mktemp("sampled"))


def luma_of(rgb: np.ndarray) -> float:
    return float((rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean())


def test_the_picked_poster_is_not_black_on_an_input_whose_first_second_is(sampled):
    result, pictures = sampled
    poster = pictures.poster
    assert not poster.is_chosen and 1 <= poster.time_s < result.duration_s
    assert not poster.score.is_blank and not poster.score.is_fade
    for image in poster.images:
        decoded = decode_image(image.data)
        assert decoded.shape == (image.height, image.width, 3)
        assert luma_of(decoded) > 60 and decoded.std() > 20        # black is ~0 mean, ~0 spread
    assert {(i.width, i.format) for i in poster.images} == {(320, "jpeg"), (320, "webp"), (640, "jpeg"),
                                                            (640, "webp")}   # 1280 would be an upscale


def test_a_named_poster_time_is_honoured_even_when_black(black_start_clip, tmp_path):
    _, pictures = sample(black_start_clip, tmp_path, poster_time_s=0.5)
    assert pictures.poster.is_chosen and abs(pictures.poster.time_s - Fraction(1, 2)) <= Fraction(1, 50)
    assert luma_of(decode_image(pictures.poster.images[0].data)) < 20


def test_a_poster_time_past_the_end_is_refused(black_start_clip, tmp_path):
    with pytest.raises(PictureTimeOutOfRange) as refused:
        PictureSampler(expected_duration_s=12.0, poster_time_s=30.0)
    assert refused.value.code == "picture_time_out_of_range"
    # the header may promise more than decodes: the decoded duration is what counts
    sampler = PictureSampler(expected_duration_s=None, poster_time_s=20.0)
    result = transcode(black_start_clip, plan_ladder(640, 360, LADDER), tmp_path, LADDER, frame_observer=sampler)
    with pytest.raises(PictureTimeOutOfRange):
        sampler.finish(result.duration_s)


def test_portrait_posters_and_tiles_stay_portrait(portrait_clip, tmp_path):
    _, pictures = sample(portrait_clip, tmp_path)
    sizes = {(image.width, image.height) for image in pictures.poster.images}
    assert sizes == {(320, 568), (360, 640)}          # 640 and 1280 wide would be upscales of a 360 px width
    assert pictures.storyboard.tile_size == Size(90, 160)


def test_storyboard_cues_cover_the_episode_and_every_tile_lies_inside_its_sprite(sampled):
    result, pictures = sampled
    storyboard = pictures.storyboard
    assert storyboard.interval_s == 2 and storyboard.tile_count == 6
    vtt = render_storyboard_vtt(storyboard, lambda index: f"sheet_{index:03d}.jpg")
    check_storyboard_vtt(vtt, {f"sheet_{i:03d}.jpg": decode_image(sheet).shape[:2]
                               for i, sheet in enumerate(storyboard.sheets)}, float(result.duration_s))


def check_storyboard_vtt(vtt: str, sheet_shapes: dict[str, tuple[int, int]], duration_s: float) -> None:
    """Cues contiguous from 0 to the end; each #xywh inside the sheet it names (shape: height, width)."""
    cues = re.findall(r"(\d+):(\d+):(\d+)\.(\d+) --> (\d+):(\d+):(\d+)\.(\d+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    assert vtt.startswith("WEBVTT") and cues
    previous_end = 0.0
    for *clock, sheet, x, y, w, h in cues:
        start = int(clock[0]) * 3600 + int(clock[1]) * 60 + int(clock[2]) + int(clock[3]) / 1000
        end = int(clock[4]) * 3600 + int(clock[5]) * 60 + int(clock[6]) + int(clock[7]) / 1000
        assert start == pytest.approx(previous_end, abs=0.0005) and end > start
        previous_end = end
        height, width = sheet_shapes[sheet]
        assert 0 <= int(x) and int(x) + int(w) <= width and 0 <= int(y) and int(y) + int(h) <= height
    assert previous_end == pytest.approx(duration_s, abs=0.0005)


def test_long_episodes_split_into_full_sheets_and_space_tiles_further():
    assert [storyboard_interval_s(s) for s in (30, 480, 481, 900, 1200, 4000)] == [2, 2, 3, 4, 5, 5]
    builder = StoryboardBuilder(Size(16, 10), interval_s=5)
    tile = np.full((10, 16, 3), 128, dtype=np.uint8)
    for _ in range(SHEET_COLUMNS * SHEET_ROWS + 7):
        builder.add(tile)
    assert len(builder.sheets) == 1 and len(builder.pending) == 7        # a full sheet is encoded at once
    storyboard = builder.finish(Fraction(535))
    assert len(storyboard.sheets) == 2 and storyboard.sheet_size == Size(160, 100)
    assert all(decode_image(sheet).shape[:2] == (100, 160) for sheet in storyboard.sheets)
    cues = storyboard.cues()
    assert cues[-1].sheet == 1 and cues[-1].end_s == 535 and cues[100].start_s == 500
    assert storyboard.sheet_durations_s() == [500, 35]


def test_the_score_refuses_black_flat_and_fading_pictures_and_prefers_sharp_ones():
    rng = np.random.default_rng(7)
    detail = rng.integers(0, 256, (90, 160), dtype=np.uint8)
    assert score_frame(np.full((90, 160), 16, np.uint8)).is_blank
    assert score_frame(np.full((90, 160), 128, np.uint8)).is_blank
    fading = (detail.astype(np.float32) * 0.7).astype(np.uint8)
    assert score_frame(detail, fading).is_fade
    moved = np.roll(detail, 5, axis=1)
    assert not score_frame(detail, moved).is_fade
    blurred = ((detail[:-2, :-2].astype(np.uint16) + detail[2:, 2:] + detail[1:-1, 1:-1] * 2) // 4).astype(np.uint8)
    assert score_frame(detail).value > score_frame(blurred).value > 0


def test_a_failing_sampler_does_not_stop_the_transcode_and_says_so_at_the_end(black_start_clip, tmp_path):
    sampler = PictureSampler(expected_duration_s=12.0)
    sampler._observe = lambda frame, index: (_ for _ in ()).throw(RuntimeError("boom"))
    result = transcode(black_start_clip, plan_ladder(640, 360, LADDER), tmp_path, LADDER, frame_observer=sampler)
    assert result.frame_count == 300
    with pytest.raises(PictureError, match="boom"):
        sampler.finish(result.duration_s)


@pytest.mark.parametrize("encode", [encode_jpeg, encode_webp], ids=["jpeg", "webp"])
def test_images_keep_their_colours(encode):
    rgb = np.zeros((64, 192, 3), np.uint8)
    rgb[:, :64], rgb[:, 64:128], rgb[:, 128:] = (200, 30, 30), (20, 20, 20), (240, 240, 240)
    decoded = decode_image(encode(rgb)).astype(int)
    for x in (32, 96, 160):           # away from the edges, where chroma subsampling blends colours
        assert np.abs(decoded[32, x] - rgb[32, x]).max() <= 6, (x, decoded[32, x])

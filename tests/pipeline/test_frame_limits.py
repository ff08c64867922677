"""Every decoded picture held to the limits: an in-band SPS change to 8192x8192 is refused with the time it
appears (validation decode and the transcoder's decode), the work budget is judged before transcoding, and
a cut-off MP4 is `truncated`, not `not_media`."""

from __future__ import annotations

import pytest

from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
from pipeline.errors import MediaOverLimit
from pipeline.inspect.frame_limits import FrameLimits
from pipeline.inspect.measure import decode_video
from pipeline.inspect.validate import ValidationRules, check_work, validate
from tests.support.media import clip, size_change_clip, truncated_mp4


@pytest.fixture(scope="session")
def sps_attack(media_dir):
    """The issue's file: 35 s at 320x240, then one 8192x8192 picture through an in-band SPS change."""
    return size_change_clip(media_dir, "sps-8192.mp4")


@pytest.fixture(scope="session")
def small_size_change(media_dir):
    """The same trick, cheap to transcode: 3 s at 320x240, then 1280x1280 pictures."""
    return size_change_clip(media_dir, "sps-1280.mp4", first_s=3, then=(1280, 1280), then_frames=5)


def test_validate_refuses_a_picture_that_grows_past_the_limit_mid_stream(sps_attack):
    report = validate(sps_attack, ValidationRules())
    assert report.info.video.width == 320                    # what the header (and the first SPS) claim
    assert [issue.code for issue in report.issues] == ["resolution_too_high"]
    assert report.issues[0].message == "At 35.0 s the picture becomes 8192x8192; the limit is 4096 px a side"
    assert report.decoded.stopped_early and report.decoded.frames == 875    # stopped at the first big picture


def test_the_transcoders_decode_refuses_it_too_before_any_encoder_sees_it(small_size_change, tmp_path):
    ladder = LadderSettings(max_renditions=1, preset="ultrafast")
    limits = FrameLimits(max_side_px=1024, min_short_side_px=128)
    with pytest.raises(MediaOverLimit) as refused:
        transcode(small_size_change, plan_ladder(320, 240, ladder), tmp_path, ladder, frame_limits=limits)
    assert refused.value.code == "resolution_too_high"
    assert refused.value.time_s == pytest.approx(3.0)
    assert "At 3.0 s the picture becomes 1280x1280" in str(refused.value)


def test_a_picture_that_shrinks_below_the_minimum_is_refused(media_dir):
    shrinking = size_change_clip(media_dir, "sps-64.mp4", first_s=2, then=(96, 64), then_frames=3)
    stats = decode_video(shrinking, 1200, FrameLimits(max_side_px=4096, min_short_side_px=128))
    assert stats.over_limit.code == "resolution_too_low" and stats.over_limit.time_s == pytest.approx(2.0)


def test_the_work_budget_is_judged_on_the_header_and_on_the_decoded_pictures(media_dir):
    small = clip(media_dir, "budget.mp4", duration_s=3, width=320, height=180, fps=25)
    # 320x180 x 25 fps x 3 s = 4.3 million pixels: over a 1-million budget by the header alone
    report = validate(small, ValidationRules(min_duration_s=1, max_decoded_pixels=1_000_000), decode=False)
    assert [issue.code for issue in report.issues] == ["over_work_budget"]
    assert "is 4.32 million pixels to decode; the limit is 1 million" in report.issues[0].message
    # a header that understates the work does not help: the decode counts what it really decodes
    stats = decode_video(small, 1200, FrameLimits(max_decoded_pixels=1_000_000))
    assert stats.over_limit.code == "over_work_budget" and stats.frames < 75


def test_the_default_budget_admits_the_products_uploads_and_refuses_the_hostile_one():
    rules = ValidationRules()
    assert check_work(1920, 1080, 60, 20 * 60, rules) == []
    assert check_work(3840, 2160, 30, 20 * 60, rules) == []
    assert check_work(4096, 2160, 30, 20 * 60, rules) == []
    refused = check_work(4096, 4096, 120, 20 * 60, rules)       # within every per-item limit
    assert [issue.code for issue in refused] == ["over_work_budget"]


def test_a_cut_off_phone_upload_is_truncated_not_not_media(media_dir, landscape_clip):
    cut = truncated_mp4(media_dir, "cut-off.mp4", landscape_clip)
    report = validate(cut, ValidationRules())
    assert [issue.code for issue in report.issues] == ["truncated"]
    assert "the upload was cut off; upload it again" in report.issues[0].message
    assert report.issues[0].how_to_fix == "upload the episode file again"


def test_text_that_merely_says_ftyp_is_still_not_media(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("these notes mention ftyp and moov but are no video\n" * 20)
    assert [issue.code for issue in validate(text).issues] == ["not_media"]

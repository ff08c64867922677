"""validate(): every corpus file gets the right verdict and reason codes; bounds are inclusive to the frame."""

from __future__ import annotations

import json
import random
import resource
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.inspect.validate import ValidationReport, ValidationRules, check_duration, format_duration, validate
from pipeline.synthetic import generate_clip
from tests.support.corpus import CASES, corpus  # noqa: F401  (corpus is a fixture)

DEFAULT = ValidationRules()


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_verdict_and_reason_codes(corpus, name):  # noqa: F811
    report = validate(corpus[name])
    assert [issue.code for issue in report.issues] == list(CASES[name]), report.issues
    assert report.is_acceptable is (not CASES[name])
    for issue in report.issues:
        assert issue.message and issue.how_to_fix


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_report_is_json(corpus, name):  # noqa: F811
    report = validate(corpus[name])
    data = json.loads(json.dumps(report.as_dict()))
    assert data["verdict"] == ("accepted" if report.is_acceptable else "rejected")
    assert [reason["code"] for reason in data["reasons"]] == list(CASES[name])


def test_report_fields_for_a_plain_landscape_clip(corpus):  # noqa: F811
    data = validate(corpus["landscape.mp4"]).as_dict()
    assert data["container"].startswith("mov,mp4")
    assert [(s["type"], s["codec"]) for s in data["streams"]] == [("video", "h264"), ("audio", "aac")]
    assert data["duration_s"] == pytest.approx(32.0) and data["decoded_duration_s"] == pytest.approx(32.0)
    assert data["header_duration_s"] == pytest.approx(32.0, abs=0.1)
    assert data["bit_rate_bps"] == round(data["size_bytes"] * 8 / data["duration_s"])
    assert data["video"] == {
        "codec": "h264", "width": 256, "height": 144, "display_width": 256, "display_height": 144,
        "rotation": 0, "pix_fmt": "yuv420p", "bit_depth": 8, "frame_rate": 10.0,
        "frame_rate_mode": "constant", "min_frame_rate": 10.0, "max_frame_rate": 10.0,
    }
    assert data["audio"] == {"present": True, "codec": "aac", "channels": 2, "sample_rate": 48000}
    assert data["decode"] == {"performed": True, "frames": 320, "errors": 0, "first_error_s": None,
                              "stopped_early": False}


def test_rotated_phone_clip_is_displayed_portrait(corpus):  # noqa: F811
    video = validate(corpus["rotated_phone.mp4"]).as_dict()["video"]
    assert (video["width"], video["height"], video["rotation"]) == (256, 144, 90)
    assert (video["display_width"], video["display_height"]) == (144, 256)


def test_variable_frame_rate_is_measured_from_pts(corpus):  # noqa: F811
    video = validate(corpus["vfr.mp4"]).as_dict()["video"]
    assert video["frame_rate_mode"] == "variable"
    assert (video["min_frame_rate"], video["max_frame_rate"]) == (pytest.approx(5.0), pytest.approx(20.0))


def test_59_94_fps_is_constant(corpus):  # noqa: F811
    video = validate(corpus["ntsc_59_94.mp4"]).as_dict()["video"]
    assert video["frame_rate_mode"] == "constant"
    assert video["max_frame_rate"] == pytest.approx(60000 / 1001)


def test_hevc_10_bit_depth_comes_from_the_pixel_format(corpus):  # noqa: F811
    video = validate(corpus["hevc_10bit.mp4"]).as_dict()["video"]
    assert (video["codec"], video["pix_fmt"], video["bit_depth"]) == ("hevc", "yuv420p10le", 10)


def test_webm_streams_and_audio(corpus):  # noqa: F811
    data = validate(corpus["vp9_opus.webm"]).as_dict()
    assert [s["codec"] for s in data["streams"]] == ["vp9", "opus"]
    assert data["audio"]["present"] and data["audio"]["sample_rate"] == 48000


def test_no_audio_is_accepted_and_says_so(corpus):  # noqa: F811
    data = validate(corpus["no_audio.mp4"]).as_dict()
    assert data["verdict"] == "accepted"
    assert data["audio"] == {"present": False, "codec": None, "channels": None, "sample_rate": None}


def test_audio_only_message_says_audio_only(corpus):  # noqa: F811
    (issue,) = validate(corpus["audio_only.m4a"]).issues
    assert "audio only" in issue.message


def test_truncated_file_names_both_durations(corpus):  # noqa: F811
    report = validate(corpus["truncated_faststart.mp4"])
    assert report.info.header_duration_s == pytest.approx(50.0, abs=0.1)
    assert 30 < report.duration_s < 40
    assert "50 s" in report.issues[0].message


def test_audio_running_past_the_last_picture_is_not_truncation(corpus):  # noqa: F811
    report = validate(corpus["audio_tail.mp4"])
    assert report.info.header_duration_s > report.duration_s + 2  # the container counts the audio
    assert report.is_acceptable


def test_without_decoding_the_header_is_trusted(corpus):  # noqa: F811
    """decode=False is for ingest, whose transcoder measures the decoded duration itself."""
    report = validate(corpus["truncated_faststart.mp4"], decode=False)
    assert report.is_acceptable and report.decoded is None
    assert report.duration_s == pytest.approx(50.0, abs=0.1)
    assert report.as_dict()["decode"]["performed"] is False


def test_decode_errors_carry_the_time_of_the_first_one(corpus):  # noqa: F811
    report = validate(corpus["garbage_middle.ts"])
    assert report.decoded.error_count >= 1
    assert 5 < report.decoded.first_error_s < 27  # garbage was written in the middle of 32 s
    assert "damaged" in report.issues[0].message


def test_video_whose_pictures_are_all_zeroes_has_no_decodable_video(corpus, tmp_path):  # noqa: F811
    data = bytearray(corpus["no_audio.mp4"].read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)  # keep the index, wipe every coded picture
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(bytes(data))
    report = validate(path)
    assert [issue.code for issue in report.issues] == ["no_decodable_video", "decode_errors"]
    assert report.decoded.frames == 0 and report.duration_s is None and report.bit_rate_bps is None


def test_twenty_minutes_is_judged_to_the_frame(corpus):  # noqa: F811
    under, over = validate(corpus["just_under_20min.mp4"]), validate(corpus["just_over_20min.mp4"])
    assert under.is_acceptable and under.duration_s == pytest.approx(1199.5)
    assert [issue.code for issue in over.issues] == ["too_long"]
    assert over.issues[0].message == "Episode is 20 min 0.5 s; the limit is 20 min"


def test_too_long_with_a_lowered_limit_names_duration_and_limit(corpus):  # noqa: F811
    report = validate(corpus["landscape.mp4"], ValidationRules(min_duration_s=1, max_duration_s=20))
    assert [issue.code for issue in report.issues] == ["too_long"]
    assert report.issues[0].message == "Episode is 32 s; the limit is 20 s"
    assert report.decoded.stopped_early  # no need to decode past 21 s to know


def test_decode_pass_is_capped_in_frames(corpus):  # noqa: F811
    rules = ValidationRules(min_duration_s=0, max_duration_s=0.05)  # cap: 0.05 s x 240 fps = 12 frames
    report = validate(corpus["landscape.mp4"], rules)
    assert report.decoded.frames <= 12 and report.decoded.stopped_early
    assert [issue.code for issue in report.issues] == ["too_long"]


def test_every_failing_rule_is_reported(corpus):  # noqa: F811
    rules = ValidationRules(max_side_px=200, max_frame_rate=5)
    report = validate(corpus["short_29s.mp4"], rules)
    assert [issue.code for issue in report.issues] == ["resolution_too_high", "frame_rate_too_high", "too_short"]


def test_resolution_too_low(corpus):  # noqa: F811
    report = validate(corpus["landscape.mp4"], ValidationRules(min_short_side_px=160))
    assert [issue.code for issue in report.issues] == ["resolution_too_low"]
    assert "256x144" in report.issues[0].message


def test_frame_rate_too_high(corpus):  # noqa: F811
    report = validate(corpus["ntsc_59_94.mp4"], ValidationRules(max_frame_rate=30))
    assert [issue.code for issue in report.issues] == ["frame_rate_too_high"]
    assert "59.94 fps" in report.issues[0].message


def test_file_too_large_is_judged_before_opening(corpus):  # noqa: F811
    report = validate(corpus["text.mp4"], ValidationRules(max_size_bytes=1000))
    assert [issue.code for issue in report.issues] == ["file_too_large"]
    assert report.info is None
    assert (report.as_dict()["size_bytes"], report.as_dict()["file"]) == (1600, "text.mp4")
    assert report.issues[0].message == "text.mp4 is 1.6 KiB; the limit is 1000 bytes"


@pytest.mark.parametrize("duration_s, codes", [
    (30.0, []),
    (30.0 - 1 / 120, ["too_short"]),      # one frame short at 120 fps
    (20 * 60.0, []),
    (20 * 60.0 + 1 / 120, ["too_long"]),  # one frame over
    (float(900 * Fraction(1001, 30_000)), []),             # 900 frames at 29.97 fps: 30.03 s
    (float(899 * Fraction(1001, 30_000)), ["too_short"]),  # 899 frames: 29.997 s, one frame short
])
def test_duration_bounds_are_inclusive_to_the_frame(duration_s, codes):
    assert [issue.code for issue in check_duration(duration_s, DEFAULT)] == codes


def test_too_long_message_reads_like_a_person():
    (issue,) = check_duration(21 * 60 + 4, DEFAULT)
    assert issue.message == "Episode is 21 min 4 s; the limit is 20 min"


def test_unknown_duration_without_decoding():
    assert [issue.code for issue in check_duration(None, DEFAULT)] == ["unknown_duration"]


@pytest.mark.parametrize("seconds, text", [
    (1264, "21 min 4 s"), (1200, "20 min"), (40, "40 s"), (29.5, "29.5 s"), (0, "0 s"), (90.5, "1 min 30 s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_report_of_an_unopened_file_is_still_a_report(tmp_path):
    path = tmp_path / "empty.mov"
    path.write_bytes(b"")
    report = validate(path)
    assert isinstance(report, ValidationReport) and not report.is_acceptable
    assert report.as_dict()["video"] is None and report.as_dict()["audio"]["present"] is False


# -- mutated media: always a verdict, never a crash, a hang or a memory blow-up -----------------------

MUTATIONS = 60
HANG_GUARD_S = 60.0            # per file; a generous guard against hangs, not a timing assertion
RSS_GROWTH_LIMIT_BYTES = 500 * 1024**2
KNOWN_CODES = {
    "file_too_large", "empty_file", "not_media", "no_video_stream", "still_image", "no_decodable_video",
    "too_short", "too_long", "unknown_duration", "truncated", "decode_errors", "resolution_too_high",
    "resolution_too_low", "frame_rate_too_high",
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded mutation: flipped bytes, a truncation, a duplicated block or a zeroed range."""
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "duplicate", "zero"])
    if kind == "flip":
        for _ in range(rng.randint(1, 64)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "duplicate":
        start = rng.randrange(len(data))
        block = data[start : start + rng.randint(1, 8192)]
        at = rng.randrange(len(data))
        data[at:at] = block
    else:
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 8192))
        data[start:end] = bytes(end - start)
    return bytes(data)


def validate_with_hang_guard(path: Path) -> ValidationReport:
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = validate(path)
        except BaseException as exc:  # reported below with the file that caused it
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), f"validate() still running after {HANG_GUARD_S} s on {path.name}"
    if "error" in outcome:
        raise AssertionError(f"validate() raised on {path.name}") from outcome["error"]
    return outcome["report"]


@pytest.mark.parametrize("source", ["mp4", "ts", "mkv"])
def test_mutated_media_always_gets_a_verdict(tmp_path, source):
    clean = generate_clip(tmp_path / f"clean.{source}", duration_s=3, width=192, height=128, fps=10)
    data = clean.read_bytes()
    rng = random.Random(f"validate-fuzz-{source}")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    for index in range(MUTATIONS):
        path = tmp_path / f"mutant-{index:03}.{source}"
        path.write_bytes(mutate(data, rng))
        report = validate_with_hang_guard(path)
        assert report.is_acceptable or report.issues
        assert {issue.code for issue in report.issues} <= KNOWN_CODES, (path.name, report.issues)
        json.dumps(report.as_dict())
        path.unlink()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    assert rss_growth < RSS_GROWTH_LIMIT_BYTES

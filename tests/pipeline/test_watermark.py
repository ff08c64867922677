"""Forensic A/B watermarking end to end inside the pipeline: marked transcode, leaks attacked by the
ffmpeg CLI, read back and decided. One marked transcode of a 44 s clip is shared by the module.

Its segments (and GOPs) are 1 s, not the 2 s of production, so that 44 s of media carries 44 bits: a
verdict at the default 1e-6 among 50 candidates needs about 32 clean segments (pipeline/watermark/
verdict.py), and the suite's time is better spent on attacks than on encoding 90 s.
bench/watermark.py measures 2 s segments and 2-minute excerpts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
from pipeline.watermark import (
    LeakDoesNotMatch,
    LeakNotVideo,
    LeakTooShort,
    ReferenceInvalid,
    WatermarkReference,
    WatermarkSpec,
    decide,
    leak_signatures,
    read_leak,
    reference_grid,
    session_bits,
)
from pipeline.watermark.pattern import segment_pattern
from tests.pipeline.leaks import FFMPEG, Attack, attack, played_copy
from tests.support.media import clip

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg CLI simulates the leaker")

FAST = LadderSettings(preset="superfast", gop_s=1.0)
SECRET = b"series-watermark-secret-32-bytes"
SPEC = WatermarkSpec(seed=bytes(range(16)), segment_s=1.0)
SEGMENTS = 44


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """(source, TranscodeResult) of a 44 s 320x180 25 fps clip, marked: one rung, 44 segments of 1 s."""
    directory = tmp_path_factory.mktemp("watermark")
    source = clip(directory, "episode.mp4", duration_s=SEGMENTS, width=320, height=180, fps=25, picture="scene")
    return source, transcode(source, plan_ladder(320, 180), directory / "out", FAST, watermark=SPEC)


@pytest.fixture(scope="module")
def sessions(marked):
    """The leaker's and 49 other sessions' A/B sequences, and 200 innocent sessions' (the leaker not among them)."""
    count = marked[1].watermark.segment_count
    others = {f"viewer-{k}": session_bits(SECRET, f"viewer-{k}", count) for k in range(49)}
    innocents = {f"innocent-{k}": session_bits(SECRET, f"innocent-{k}", count) for k in range(200)}
    return session_bits(SECRET, "leaker", count), others, innocents


@pytest.fixture(scope="module")
def leaked_copy(marked, sessions, tmp_path_factory):
    """What the leaker's player saved: the leaker's A/B segments of the rung, joined."""
    return played_copy(marked[1].renditions[0], sessions[0], tmp_path_factory.mktemp("leak") / "copy.ts")


def packets(path: Path) -> list[tuple[bool, int]]:
    """(is keyframe, pts) of each video packet in a segment."""
    with av.open(str(path)) as container:
        return [(p.is_keyframe, p.pts) for p in container.demux(container.streams.video[0]) if p.size]


def test_a_and_b_are_idr_aligned_with_identical_durations_and_differ_only_by_the_mark(marked):
    _, result = marked
    rendition = result.renditions[0]
    assert len(rendition.segments) == len(rendition.b_segments) == result.watermark.segment_count == SEGMENTS
    for a, b in zip(rendition.segments, rendition.b_segments, strict=True):
        assert (a.index, a.start_s, a.duration_s) == (b.index, b.start_s, b.duration_s)
        assert a.path != b.path and a.path.read_bytes() != b.path.read_bytes()
        a_packets, b_packets = packets(a.path), packets(b.path)
        # the same pictures at the same times; the order they are coded in may differ (B-frame choices)
        assert sorted(pts for _, pts in a_packets) == sorted(pts for _, pts in b_packets)
        assert a_packets[0][0] and b_packets[0][0]                  # each variant's segment opens on its IDR
        assert sum(is_key for is_key, _ in a_packets) == sum(is_key for is_key, _ in b_packets) == 1
    assert sum(s.duration_s for s in rendition.b_segments) == result.duration_s
    assert result.watermark.segment_starts_s == tuple(s.start_s for s in rendition.segments)
    assert result.watermark.segment_durations_s == tuple(s.duration_s for s in rendition.segments)
    # a frame in the middle of a segment: A and B differ by a low-amplitude mark, nothing more
    frames = []
    for segment in (rendition.segments[5], rendition.b_segments[5]):
        with av.open(str(segment.path)) as container:
            decoded = [f.to_ndarray(format="yuv420p") for _, f in zip(range(13), container.decode(video=0))]
        frames.append(decoded[-1].astype(float))
    difference = frames[0] - frames[1]
    assert np.abs(difference[:180]).mean() < 4 * SPEC.strength_at(320, 180)
    # A - B is twice the segment's pattern in luma, under the encoders' own differences; chroma is not marked
    correlation = np.corrcoef(difference[:180].ravel(), segment_pattern(SPEC.seed, 5, 320, 180).ravel())[0, 1]
    chroma_u = difference[180:225].reshape(90, 160)
    chroma_correlation = np.corrcoef(chroma_u.ravel(), segment_pattern(SPEC.seed, 5, 160, 90).ravel())[0, 1]
    assert correlation > 0.3 and abs(chroma_correlation) < 0.15, (correlation, chroma_correlation)


def test_reference_round_trips_and_refuses_other_bytes(marked):
    reference = marked[1].watermark
    again = WatermarkReference.from_bytes(reference.to_bytes())
    assert (again.seed, again.strength, again.fps, again.segment_bounds) == \
           (SPEC.seed, SPEC.strength, reference.fps, reference.segment_bounds)
    assert np.abs(again.grid - reference.grid).max() <= 1 / 32 + 1e-6      # stored to 1/16 luma level
    size = len(reference.to_bytes())
    # per 2 s segment about 4.6 kB of grid, per frame 16 B of signature: ~3 MB for 20 minutes at 30 fps
    assert size < 4_700 * reference.segment_count + 16 * reference.frame_count, size
    assert "seed" not in repr(reference) or repr(SPEC.seed) not in repr(reference)
    for junk in (b"", b"not a reference", reference.to_bytes()[:100]):
        with pytest.raises(ReferenceInvalid) as caught:
            WatermarkReference.from_bytes(junk)
        assert caught.value.code == "watermark_reference_invalid"


def test_a_leak_reencoded_at_480p_crf_28_names_its_session_and_no_innocent(marked, sessions, leaked_copy, tmp_path):
    leaker, others, innocents = sessions
    leak = attack(leaked_copy, tmp_path / "leak.mp4", Attack(height=480, crf=28))
    reading = read_leak(leak, marked[1].watermark)
    assert reading.offset_s == pytest.approx(0, abs=0.05) and reading.match > 0.9
    assert reading.segments_read >= SEGMENTS - 2
    verdict = decide(reading, {"leaker": leaker, **others})
    assert verdict.identified
    assert [c.session_id for c in verdict.accused] == ["leaker"]
    assert verdict.candidates[0].p_value < 1e-6
    assert not decide(reading, innocents).identified
    # the leak's first decode, taken once, reads the same against this episode (and any of its shape)
    first_pass = leak_signatures(leak, reference_grid(marked[1].watermark))
    assert read_leak(leak, marked[1].watermark, first_pass) == reading
    # a trace that compares more sessions (other versions the leak matched) corrects for all of them
    wider = decide(reading, {"leaker": leaker, **others}, compared=50_000)
    assert wider.candidates[0].p_value == pytest.approx(1000 * verdict.candidates[0].p_value)
    with pytest.raises(ValueError, match="fewer than the 50 candidates"):
        decide(reading, {"leaker": leaker, **others}, compared=3)


def test_a_cropped_excerpt_at_another_frame_rate_still_names_its_session(marked, sessions, leaked_copy, tmp_path):
    leaker, others, _ = sessions
    excerpt = Attack(height=360, crf=30, crop=0.03, fps=24, noise=8, start_s=7.3, duration_s=30)
    reading = read_leak(attack(leaked_copy, tmp_path / "excerpt.mp4", excerpt), marked[1].watermark)
    assert reading.offset_s == pytest.approx(7.3, abs=0.1)
    left, top, right, bottom = reading.visible_area
    # ffmpeg kept 300 x 168 of 320 x 180, centred (this soft picture registers to within ~1 %)
    assert left == pytest.approx(10 / 320, abs=0.015) and right == pytest.approx(310 / 320, abs=0.015)
    assert top == pytest.approx(6 / 180, abs=0.015) and bottom == pytest.approx(174 / 180, abs=0.015)
    assert all(value is None for value in reading.values[:7] + reading.values[38:])
    verdict = decide(reading, {"leaker": leaker, **others})
    assert [c.session_id for c in verdict.accused] == ["leaker"]


def test_a_short_excerpt_is_undecided_not_a_guess(marked, sessions, leaked_copy, tmp_path):
    leaker, others, _ = sessions
    reading = read_leak(attack(leaked_copy, tmp_path / "short.mp4", Attack(start_s=20, duration_s=12)),
                        marked[1].watermark)
    verdict = decide(reading, {"leaker": leaker, **others})
    assert not verdict.identified and verdict.candidates[0].session_id == "leaker"


def test_what_is_not_this_episode_gets_a_clear_error(marked, leaked_copy, tmp_path):
    reference = marked[1].watermark
    other = clip(tmp_path, "other.mp4", duration_s=20, width=320, height=180, fps=25)   # another programme
    with pytest.raises(LeakDoesNotMatch, match="does not match this episode") as caught:
        read_leak(other, reference)
    assert caught.value.code == "leak_does_not_match"
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 100)
    with pytest.raises(LeakNotVideo, match="notes.mp4 is not a video") as caught:
        read_leak(notes, reference)
    assert caught.value.code == "leak_not_video"
    with pytest.raises(LeakTooShort, match="at least 10 s") as caught:
        read_leak(attack(leaked_copy, tmp_path / "tiny.mp4", Attack(start_s=30, duration_s=4)), reference)
    assert caught.value.code == "leak_too_short"


def test_without_a_spec_the_transcode_is_unchanged(short_clip, tmp_path, monkeypatch):
    # one core: an encoder with frame threads of its own is not repeatable byte for byte, with or without a mark
    monkeypatch.setattr("pipeline.encode.transcode.os.cpu_count", lambda: 1)
    ladder = plan_ladder(320, 180)
    default = transcode(short_clip, ladder, tmp_path / "default", FAST)
    explicit = transcode(short_clip, ladder, tmp_path / "explicit", FAST, watermark=None)
    assert default.watermark is None and explicit.watermark is None
    for one, two in zip(default.renditions, explicit.renditions, strict=True):
        assert one.b_segments == two.b_segments == ()
        assert [hashlib.sha256(s.path.read_bytes()).digest() for s in one.segments] == \
               [hashlib.sha256(s.path.read_bytes()).digest() for s in two.segments]
        assert not (tmp_path / "default" / one.rendition.name / "b").exists()


def test_fmp4_variants_are_cut_alike_and_share_one_init(short_clip, tmp_path):
    result = transcode(short_clip, plan_ladder(320, 180), tmp_path, FAST, segment_format=SegmentFormat.FMP4,
                       watermark=SPEC)
    (rendition,) = result.renditions
    assert rendition.b_init_path == tmp_path / rendition.rendition.name / "b" / "init.mp4"
    # one EXT-X-MAP can serve both variants
    assert rendition.b_init_path.read_bytes() == rendition.init_path.read_bytes()
    assert [(s.start_s, s.duration_s) for s in rendition.b_segments] == \
           [(s.start_s, s.duration_s) for s in rendition.segments]
    assert len(rendition.segments) == result.watermark.segment_count == 5

"""extract_subtitles(): text subtitle streams embedded in uploads (mov_text in MP4, subrip and webvtt in
Matroska) become caption tracks in episode time; tracks that break the caption rules are skipped with why."""

from __future__ import annotations

import pytest

from pipeline.captions.subtitles import extract_subtitles
from tests.support.media import clip


@pytest.mark.parametrize("name, codec, second, expected", [
    ("subs.mp4", "mov_text", "Two <lines>", "Two &lt;lines&gt;"),       # 3GPP timed text is plain text
    ("subs-srt.mkv", "subrip", "<i>Second</i> line", "<i>Second</i> line"),
    ("subs-vtt.mkv", "webvtt", "<i>Second</i> line", "<i>Second</i> line"),
])
def test_embedded_text_subtitles_are_extracted_as_cues(media_dir, name, codec, second, expected):
    source = clip(media_dir, name, duration_s=6, width=160, height=90, fps=25,
                  subtitles=[(0.5, 2.0, "Hello & welcome"), (3.0, 4.5, second)],
                  subtitle_codec=codec, subtitle_language="fre")
    found = extract_subtitles(source, duration_s=6.0)
    (track,) = found.tracks
    assert (track.language, track.name, track.source) == ("fr", "Français", "embedded")
    assert [(c.start_ms, c.end_ms) for c in track.cues] == [(500, 2000), (3000, 4500)]
    assert [c.text for c in track.cues] == ["Hello &amp; welcome", expected]
    assert found.skipped == ()


def test_a_track_breaking_the_rules_is_skipped_with_the_reason(media_dir):
    source = clip(media_dir, "subs-late.mp4", duration_s=6, width=160, height=90, fps=25,
                  subtitles=[(1.0, 2.0, "fine"), (5.5, 9.0, "on long after the end")])
    found = extract_subtitles(source, duration_s=6.0)
    assert found.tracks == ()
    (skipped,) = found.skipped
    assert skipped.codec == "mov_text" and "[caption_past_end]" in skipped.reason
    assert found.as_dict()["skipped"][0]["language"] == "en"


def test_an_upload_without_subtitles_has_none(short_clip):
    assert extract_subtitles(short_clip, duration_s=5.0).tracks == ()

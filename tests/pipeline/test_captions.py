"""read_captions(): each refusal with its stable code and a how-to-fix; what is accepted comes out as
WebVTT cue payloads in episode milliseconds."""

from __future__ import annotations

import codecs

import pytest

from pipeline.captions.tracks import Cue, canonical_language, check_cues, read_captions

DURATION_S = 60.0
VTT = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.500 line:0\nHello <i>there</i>\n\n00:00:03.000 --> 00:00:04.000\nBye\n"
SRT = b"1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 --> 00:00:04,000\nBye\n"


def read(data: bytes, language: str = "en", **options):
    return read_captions(data, language=language, duration_s=DURATION_S, **options)


def test_webvtt_and_srt_are_read_into_the_same_cues():
    vtt, srt = read(VTT), read(SRT)
    assert vtt.is_acceptable and srt.is_acceptable and (vtt.format, srt.format) == ("webvtt", "srt")
    assert vtt.track.cues[0] == Cue(start_ms=1000, end_ms=2500, text="Hello <i>there</i>", settings="line:0")
    assert [(c.start_ms, c.end_ms) for c in srt.track.cues] == [(1000, 2500), (3000, 4000)]
    assert vtt.track.name == "English" and vtt.track.track_id == "en"


def test_srt_formatting_becomes_webvtt_and_text_is_escaped():
    report = read(b'1\n00:00:01,000 --> 00:00:02,000\n{\\an8}<font color="red">Tom & <b>Jerry</b></font> <3\n')
    assert report.track.cues[0].text == "Tom &amp; <b>Jerry</b> &lt;3"


def test_a_utf8_bom_is_dropped_and_utf16_converted():
    assert read(codecs.BOM_UTF8 + VTT).notes == ("UTF-8 byte-order mark removed",)
    utf16 = read(("\ufeff" + SRT.decode()).encode("utf-16-le"))
    assert utf16.is_acceptable and "converted from UTF-16" in utf16.notes[0]


def test_windows_1252_srt_is_converted_only_for_languages_written_in_it():
    latin = "1\n00:00:01,000 --> 00:00:02,000\nCafé, naïve — “quoted”\n".encode("cp1252")
    french = read(latin, language="fr")
    assert french.is_acceptable and french.track.cues[0].text == "Café, naïve — “quoted”"
    assert "Windows-1252" in french.notes[0]
    polish = read("1\n00:00:01,000 --> 00:00:02,000\nZażółć\n".encode("cp1250"), language="pl")
    assert [i.code for i in polish.issues] == ["caption_not_utf8"]
    webvtt = read("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nCafé\n".encode("cp1252"), language="fr")
    assert [i.code for i in webvtt.issues] == ["caption_not_utf8"] and "WebVTT" in webvtt.issues[0].message


REFUSALS = {
    "caption_empty": (b"  \n", {}),
    "caption_binary": (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40, {}),
    "caption_too_large": (VTT * 10, {"max_size_bytes": 100}),
    "caption_unknown_format": (b"Dear diary,\ntoday I wrote subtitles.\n", {}),
    "caption_malformed_cue": (b"WEBVTT\n\n00:00:01.000 --> soon\nHello\n", {}),
    "caption_no_cues": (b"WEBVTT\n\nNOTE nothing here\n", {}),
    "caption_end_before_start": (b"WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nBackwards\n", {}),
    "caption_out_of_order": (b"WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nB\n\n00:00:01.000 --> 00:00:02.000\nA\n", {}),
    "caption_past_end": (b"WEBVTT\n\n00:01:05.000 --> 00:01:06.000\nAfter the end\n", {}),
    "caption_cue_too_long": (b"WEBVTT\n\n00:00:00.000 --> 00:00:59.000\nForever\n", {"max_cue_s": 30}),
    "caption_too_many_on_screen": (b"WEBVTT\n\n" + b"".join(
        b"00:00:01.000 --> 00:00:05.000\nSame " + bytes([65 + i]) + b"\n\n" for i in range(5)), {}),
    "caption_line_too_long": (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + b"word " * 30 + b"\n", {}),
    "caption_too_many_lines": (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na\nb\nc\nd\ne\n", {}),
    "caption_too_many_cues": (VTT, {"max_cues": 1}),
}


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_each_refusal_has_its_code_and_a_fix(code):
    from pipeline.captions.tracks import CaptionRules

    data, rules = REFUSALS[code]
    report = read(data, rules=CaptionRules(**rules))
    assert not report.is_acceptable and report.track is None
    assert code in [issue.code for issue in report.issues], report.issues
    assert all(issue.message and issue.how_to_fix for issue in report.issues)
    assert report.as_dict()["verdict"] == "rejected"


def test_srt_cues_with_unreadable_timing_are_named_not_dropped():
    report = read(SRT + b"\n3\n00:00:05,000 --> 00:00:0x,000\nLost\n")
    assert [i.code for i in report.issues] == ["caption_malformed_cue"] and "line(s) 10" in report.issues[0].message


def test_a_cue_running_just_past_the_end_is_cut_there():
    report = read(b"WEBVTT\n\n00:00:59.000 --> 00:01:00.800\nLast words\n")
    assert report.is_acceptable and report.track.cues[0].end_ms == 60_000 and "cut at its end" in report.notes[0]


def test_language_tags_and_names():
    assert [canonical_language(t) for t in ("fr", "PT-br", "zh-hant", "es-419", "en-US-x-sdh")] == [
        "fr", "pt-BR", "zh-Hant", "es-419", "en-US-x-sdh"]
    assert [canonical_language(t) for t in ("en_US", "english", "", "f")] == [None] * 4
    assert [i.code for i in read(VTT, language="en_US").issues] == ["caption_language"]
    assert [i.code for i in read(VTT, name='The "best"').issues] == ["caption_name"]
    assert read(VTT, language="fr", is_forced=True).track.track_id == "fr_forced"


def test_check_cues_lists_every_place_once_per_code():
    cues = [Cue(start_ms=2000, end_ms=1000, text="x"), Cue(start_ms=3000, end_ms=2000, text="y")]
    _, issues = check_cues(cues, duration_s=10)
    assert [i.code for i in issues] == ["caption_end_before_start"] and "cue 2" in issues[0].message

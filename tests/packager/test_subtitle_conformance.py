"""The subtitle and image-playlist conformance rules: quiet on what we render, loud on each broken rule."""

from __future__ import annotations

from fractions import Fraction

import pytest

from packager.hls.conformance import check_parsed_episode, parse_playlist
from packager.hls.playlist import (
    IFrameVariant,
    ImageSheet,
    ImageVariant,
    SubtitleRendition,
    Variant,
    render_image_playlist,
    render_master_playlist,
    render_subtitle_playlist,
)
from packager.hls.subtitle_conformance import check_webvtt_segment
from packager.publishing.subtitles import render_webvtt_segment, segment_cues
from pipeline.captions.tracks import Cue
from tests.packager.test_conformance import DURATIONS, FPS, TOTAL_S, i_frame_text, media_text

SUBTITLES = [SubtitleRendition(uri="captions/en/index.m3u8", language="en", name="English", is_default=True),
             SubtitleRendition(uri="captions/fr/index.m3u8", language="fr", name="Français")]
IMAGES = ImageVariant(uri="storyboard/images.m3u8", bandwidth_bps=9000, tile_width=160, tile_height=90)


def master_with_subtitles() -> str:
    variant = Variant(uri="180p/index.m3u8", bandwidth_bps=400_000, average_bandwidth_bps=300_000,
                      codecs="avc1.64000c,mp4a.40.2", width=320, height=180, frame_rate=Fraction(FPS))
    i_frames = IFrameVariant(uri="180p/iframes.m3u8", bandwidth_bps=40_000, codecs="avc1.64000c", width=320,
                             height=180)
    return render_master_playlist([variant], [i_frames], session_key_uri="/v1/keys/k_a", subtitles=SUBTITLES,
                                  image_variants=[IMAGES])


def subtitle_text() -> str:
    return render_subtitle_playlist([(f"seg_{i:05d}.vtt", d) for i, d in enumerate(DURATIONS)])


def image_text() -> str:
    return render_image_playlist([ImageSheet(uri="sheet_000.jpg", duration_s=sum(DURATIONS))], tile_width=160,
                                 tile_height=90, columns=7, rows=1, tile_duration_s=2)


def episode(master: str | None = None, subtitles: str | None = None, images: str | None = None):
    playlists = {"180p/index.m3u8": media_text(), "180p/iframes.m3u8": i_frame_text(),
                 "captions/en/index.m3u8": subtitles or subtitle_text(), "captions/fr/index.m3u8": subtitle_text(),
                 "storyboard/images.m3u8": images or image_text()}
    return check_parsed_episode(parse_playlist(master or master_with_subtitles(), "master.m3u8"),
                                {uri: parse_playlist(text, uri) for uri, text in playlists.items()},
                                duration_s=TOTAL_S)


def test_what_we_render_with_subtitles_and_images_conforms():
    assert episode() == []


MASTER_BREAKAGES = {
    "media_autoselect": ('NAME="English",DEFAULT=YES,AUTOSELECT=YES', 'NAME="English",DEFAULT=YES,AUTOSELECT=NO'),
    "media_group": ('NAME="Français",DEFAULT=NO', 'NAME="English",DEFAULT=NO'),
    "media_language": ('LANGUAGE="fr"', 'LANGUAGE="french"'),
    "missing_attribute": (',URI="captions/fr/index.m3u8"', ""),
    "subtitles_group": (',SUBTITLES="subs"', ',SUBTITLES="captions"'),
    "missing_playlist": ('URI="captions/fr/index.m3u8"', 'URI="captions/de/index.m3u8"'),
}


@pytest.mark.parametrize("code", sorted(MASTER_BREAKAGES))
def test_each_broken_master_rule_is_reported(code):
    old, new = MASTER_BREAKAGES[code]
    good = master_with_subtitles()
    assert old in good
    assert code in {v.code for v in episode(master=good.replace(old, new, 1))}


def test_two_defaults_and_a_variant_without_subtitles_are_reported():
    good = master_with_subtitles()
    two_defaults = good.replace('NAME="Français",DEFAULT=NO', 'NAME="Français",DEFAULT=YES')
    assert "more than one member has DEFAULT=YES" in " ".join(v.message for v in episode(master=two_defaults))
    no_group = good.replace(',SUBTITLES="subs"', "")
    assert "subtitles_group" in {v.code for v in episode(master=no_group)}


SUBTITLE_BREAKAGES = {
    "subtitle_encrypted": ("#EXTINF:6.000000,\nseg_00001.vtt",
                           '#EXT-X-KEY:METHOD=AES-128,URI="/k",IV=0x01010101010101010101010101010101\n'
                           "#EXTINF:6.000000,\nseg_00001.vtt"),
    "subtitle_alignment": ("#EXTINF:6.000000,\nseg_00000.vtt\n#EXTINF:6.000000,", "#EXTINF:5.000000,\nseg_00000.vtt\n"
                                                                               "#EXTINF:7.000000,"),
    "subtitle_segment": ("seg_00002.vtt", "seg_00002.ts"),
    "playlist_type": ("#EXT-X-ENDLIST\n", ""),
    "duration": ("#EXTINF:1.480000,", "#EXTINF:2.480000,"),
}


@pytest.mark.parametrize("code", sorted(SUBTITLE_BREAKAGES))
def test_each_broken_subtitle_playlist_rule_is_reported(code):
    old, new = SUBTITLE_BREAKAGES[code]
    good = subtitle_text()
    assert old in good
    assert code in {v.code for v in episode(subtitles=good.replace(old, new, 1))}


def test_a_broken_image_playlist_is_reported():
    good = image_text()
    assert "image_tiles" in {v.code for v in episode(images=good.replace("LAYOUT=7x1,", ""))}
    assert "images_only" in {v.code for v in episode(images=good.replace("#EXT-X-IMAGES-ONLY\n", ""))}


def test_webvtt_segments_carry_the_video_timestamp_map():
    cues = [Cue(start_ms=1000, end_ms=7000, text="Across"), Cue(start_ms=8000, end_ms=9000, text="Later")]
    first, second = segment_cues(cues, [Fraction(0), Fraction(6)], Fraction(12))
    assert first == [cues[0]] and second == cues
    text = render_webvtt_segment(second, 133200)
    assert check_webvtt_segment(text, "seg", timestamp_map_mpegts=133200) == []
    assert {c for c, _ in check_webvtt_segment(text, "seg", timestamp_map_mpegts=126000)} == {"timestamp_map"}
    assert {c for c, _ in check_webvtt_segment(text.replace("X-TIMESTAMP-MAP", "X-OTHER"), "seg",
                                               timestamp_map_mpegts=None)} == {"timestamp_map"}
    assert {c for c, _ in check_webvtt_segment("NOT VTT", "seg", timestamp_map_mpegts=None)} == {"webvtt"}
    empty = render_webvtt_segment([], 0)
    assert empty == "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:0\n"

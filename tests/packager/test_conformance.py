"""The conformance checker: quiet on what we render, loud on each deliberately broken rule."""

from __future__ import annotations

from fractions import Fraction

import pytest

from packager.hls.conformance import check_parsed_episode, check_parsed_master, check_parsed_media, parse_playlist
from packager.hls.playlist import (
    IFrame,
    IFrameVariant,
    PlaylistSegment,
    Variant,
    render_i_frame_playlist,
    render_master_playlist,
    render_media_playlist,
)

FPS = 25
DURATIONS = [Fraction(150, FPS), Fraction(150, FPS), Fraction(37, FPS)]
TOTAL_S = float(sum(DURATIONS))


def media_text() -> str:
    return render_media_playlist([
        PlaylistSegment(uri=f"seg_{i:05d}.ts", duration_s=d, size_bytes=50_000, key_uri="/v1/keys/k_a",
                        iv=bytes([i + 1]) * 16) for i, d in enumerate(DURATIONS)])


def i_frame_text() -> str:
    return render_i_frame_playlist([
        IFrame(uri=f"seg_{i:05d}.ts", duration_s=d, length_bytes=4096, key_uri="/v1/keys/k_a", iv=bytes([i + 1]) * 16)
        for i, d in enumerate(DURATIONS)])


def master_text(session_key_uri: str | None = "/v1/keys/k_a") -> str:
    variant = Variant(uri="180p/index.m3u8", bandwidth_bps=400_000, average_bandwidth_bps=300_000,
                      codecs="avc1.64000c,mp4a.40.2", width=320, height=180, frame_rate=Fraction(FPS))
    i_frames = IFrameVariant(uri="180p/iframes.m3u8", bandwidth_bps=40_000, codecs="avc1.64000c",
                             width=320, height=180)
    return render_master_playlist([variant], [i_frames], session_key_uri=session_key_uri)


def episode(master: str | None = None, media: str | None = None, i_frames: str | None = None):
    playlists = {"180p/index.m3u8": media or media_text(), "180p/iframes.m3u8": i_frames or i_frame_text()}
    return check_parsed_episode(parse_playlist(master or master_text(), "master.m3u8"),
                                {uri: parse_playlist(text, uri) for uri, text in playlists.items()},
                                duration_s=TOTAL_S)


def codes(violations) -> set[str]:
    return {v.code for v in violations}


def test_what_we_render_conforms():
    assert episode() == []


MEDIA_BREAKAGES = {
    "version": ("#EXT-X-VERSION:3", "#EXT-X-VERSION:4"),
    "missing_iv": (",IV=0x02020202020202020202020202020202", ""),
    "not_encrypted": ('#EXT-X-KEY:METHOD=AES-128,URI="/v1/keys/k_a",IV=0x01010101010101010101010101010101\n', ""),
    "target_duration": ("#EXTINF:6.000000,", "#EXTINF:6.600000,"),
    "playlist_type": ("#EXT-X-PLAYLIST-TYPE:VOD\n", ""),
    "independent_segments": ("#EXT-X-INDEPENDENT-SEGMENTS\n", ""),
    "endlist": ("#EXT-X-ENDLIST\n", ""),
    "byte_range": ("seg_00001.ts", "#EXT-X-BYTERANGE:1000@0\nseg_00001.ts"),
    "duration": ("#EXTINF:1.480000,", "#EXTINF:1.600000,"),
}


@pytest.mark.parametrize("code", sorted(MEDIA_BREAKAGES))
def test_each_broken_media_rule_is_reported(code):
    old, new = MEDIA_BREAKAGES[code]
    good = media_text()
    assert old in good
    found = episode(media=good.replace(old, new, 1))
    assert code in codes(found), found


I_FRAME_BREAKAGES = {
    "i_frame_range": ("#EXT-X-BYTERANGE:4096@0", "#EXT-X-BYTERANGE:4090@0"),
    "version": ("#EXT-X-VERSION:4", "#EXT-X-VERSION:3"),
    "missing_iv": (",IV=0x03030303030303030303030303030303", ""),
}


@pytest.mark.parametrize("code", sorted(I_FRAME_BREAKAGES))
def test_each_broken_i_frame_rule_is_reported(code):
    old, new = I_FRAME_BREAKAGES[code]
    good = i_frame_text()
    assert old in good
    assert code in codes(episode(i_frames=good.replace(old, new, 1)))


def test_an_i_frame_range_not_at_offset_zero_is_reported():
    broken = i_frame_text().replace("#EXT-X-BYTERANGE:4096@0", "#EXT-X-BYTERANGE:4096@4096", 1)
    assert codes(check_parsed_media(parse_playlist(broken, "iframes.m3u8"))) == {"i_frame_range"}


MASTER_BREAKAGES = {
    "missing_attribute": (",FRAME-RATE=25.000", ""),
    "no_i_frames": ('#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=40000,CODECS="avc1.64000c",RESOLUTION=320x180,'
                    'URI="180p/iframes.m3u8"\n', ""),
    "bandwidth": ("AVERAGE-BANDWIDTH=300000", "AVERAGE-BANDWIDTH=500000"),
    "independent_segments": ("#EXT-X-INDEPENDENT-SEGMENTS\n", ""),
    "session_key": ('#EXT-X-SESSION-KEY:METHOD=AES-128,URI="/v1/keys/k_a"',
                    '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="/v1/keys/k_other"'),
}


@pytest.mark.parametrize("code", sorted(MASTER_BREAKAGES))
def test_each_broken_master_rule_is_reported(code):
    old, new = MASTER_BREAKAGES[code]
    good = master_text()
    assert old in good
    assert code in codes(episode(master=good.replace(old, new, 1)))


@pytest.mark.parametrize("attribute", ['CODECS="avc1.64000c,mp4a.40.2",', "RESOLUTION=320x180,"])
def test_missing_variant_attributes_are_named(attribute):
    found = check_parsed_master(parse_playlist(master_text().replace(attribute, "", 1), "master.m3u8"))
    assert any(v.code == "missing_attribute" and attribute.split("=")[0] in v.message for v in found), found


def test_garbage_is_reported_not_raised():
    assert codes(check_parsed_media(parse_playlist("<html>not found</html>", "index.m3u8"))) == {"not_a_playlist"}
    unparsable = parse_playlist("#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1\n", "master.m3u8")
    assert codes(check_parsed_master(unparsable)) == {"unparsable"}


def test_a_master_naming_a_missing_playlist_is_reported():
    found = check_parsed_episode(parse_playlist(master_text(), "master.m3u8"),
                                 {"180p/index.m3u8": parse_playlist(media_text(), "180p/index.m3u8")},
                                 duration_s=TOTAL_S)
    assert codes(found) == {"missing_playlist"}


def fmp4_media_text() -> str:
    return render_media_playlist([
        PlaylistSegment(uri=f"seg_{i:05d}.m4s", duration_s=d, size_bytes=50_000, key_uri="/v1/keys/k_a",
                        iv=bytes([i + 1]) * 16) for i, d in enumerate(DURATIONS)], map_uri="init.mp4")


def fmp4_i_frame_text() -> str:
    return render_i_frame_playlist([
        IFrame(uri=f"seg_{i:05d}.m4s", duration_s=d, length_bytes=4096, key_uri="/v1/keys/k_a",
               iv=bytes([i + 1]) * 16) for i, d in enumerate(DURATIONS)], map_uri="init.mp4")


def test_what_we_render_for_fmp4_conforms_with_the_map_before_the_first_key():
    media, i_frames = fmp4_media_text(), fmp4_i_frame_text()
    assert episode(media=media, i_frames=i_frames) == []
    for text, version in ((media, 6), (i_frames, 5)):      # RFC 8216 §7: EXT-X-MAP needs 6, or 5 in I-frames-only
        assert f"#EXT-X-VERSION:{version}\n" in text
        assert text.index('#EXT-X-MAP:URI="init.mp4"') < text.index("#EXT-X-KEY:")


def _map_after_first_key(text: str) -> str:
    lines = text.splitlines()
    map_line = next(line for line in lines if line.startswith("#EXT-X-MAP:"))
    lines.remove(map_line)
    first_key = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-KEY:"))
    lines.insert(first_key + 1, map_line)
    return "\n".join(lines) + "\n"


FMP4_BREAKAGES = {
    "map_after_key": _map_after_first_key,
    "version": lambda text: text.replace("#EXT-X-VERSION:6", "#EXT-X-VERSION:3", 1),
    "missing_map": lambda text: text.replace('#EXT-X-MAP:URI="init.mp4"\n', "", 1),
    "map": lambda text: text.replace('#EXT-X-MAP:URI="init.mp4"', '#EXT-X-MAP:URI="init.mp4",BYTERANGE="800@0"', 1),
}


@pytest.mark.parametrize("code", sorted(FMP4_BREAKAGES))
def test_each_broken_fmp4_media_rule_is_reported(code):
    good = fmp4_media_text()
    broken = FMP4_BREAKAGES[code](good)
    assert broken != good
    found = check_parsed_media(parse_playlist(broken, "index.m3u8"))
    assert code in codes(found), found
    if code != "missing_map":            # without a map the version is also wrong: 6 is for EXT-X-MAP
        assert codes(found) == {code}, found


def test_an_fmp4_i_frame_playlist_with_the_ts_version_is_reported():
    broken = fmp4_i_frame_text().replace("#EXT-X-VERSION:5", "#EXT-X-VERSION:4", 1)
    assert codes(check_parsed_media(parse_playlist(broken, "iframes.m3u8"))) == {"version"}
    map_after_key = parse_playlist(_map_after_first_key(fmp4_i_frame_text()), "iframes.m3u8")
    assert codes(check_parsed_media(map_after_key)) == {"map_after_key"}

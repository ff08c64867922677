"""The subtitle and image-playlist rules of packager/hls/conformance.py: RFC 8216 §3.5, §4.3.4.1, §4.3.4.1.1,
§4.3.4.2 (SUBTITLES), Apple's HLS authoring and WebVTT guidance, and the image media playlist format.

Each check returns (code, message) pairs; conformance.py wraps them as Violations. The WebVTT content
checks (check_webvtt_segment) are used by the self-check on a fetched segment (packager/publishing/verify.py).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import m3u8

from packager.hls.playlist import IMAGE_PLAYLIST_VERSION, SUBTITLE_PLAYLIST_VERSION
from pipeline.captions.tracks import canonical_language

_TIMESTAMP_MAP = re.compile(r"X-TIMESTAMP-MAP=(?=.*LOCAL:(?P<local>[\d:.]+))(?=.*MPEGTS:(?P<mpegts>\d+)).*")
_TILES = re.compile(r"#EXT-X-TILES:(?=.*RESOLUTION=\d+x\d+)(?=.*LAYOUT=\d+x\d+)(?=.*DURATION=[\d.]+)")
_CUE_TIMING = re.compile(r"^(\d{2,}:)?\d{2}:\d{2}\.\d{3} --> (\d{2,}:)?\d{2}:\d{2}\.\d{3}( .*)?$")
_ALIGN_TOLERANCE_S = 0.001

Problem = tuple[str, str]


def subtitle_uris(master: m3u8.M3U8) -> list[str]:
    return [media.uri for media in master.media if media.type == "SUBTITLES" and media.uri]


def check_subtitle_media(master: m3u8.M3U8, name: str) -> list[Problem]:
    """EXT-X-MEDIA rules for subtitles and the SUBTITLES attribute of every variant."""
    found: list[Problem] = []
    groups: dict[str, list] = {}
    for media in master.media:
        where = f"{name} EXT-X-MEDIA {media.name!r}"
        if media.type != "SUBTITLES":
            if media.forced is not None:
                found.append(("media_forced", f"{where}: FORCED on TYPE={media.type}; only SUBTITLES may carry it "
                                              "(RFC 8216 §4.3.4.1)"))
            continue
        groups.setdefault(media.group_id, []).append(media)
        for attribute, value in (("GROUP-ID", media.group_id), ("NAME", media.name), ("URI", media.uri),
                                 ("LANGUAGE", media.language)):
            if not value:
                found.append(("missing_attribute", f"{where}: {attribute} is missing (a subtitle rendition needs "
                                                    "it to be listed and fetched)"))
        if media.language and canonical_language(media.language) is None:
            found.append(("media_language", f"{where}: LANGUAGE {media.language!r} is not an RFC 5646 tag"))
        if media.default == "YES" and media.autoselect != "YES":
            found.append(("media_autoselect", f"{where}: DEFAULT=YES needs AUTOSELECT=YES (RFC 8216 §4.3.4.1)"))
    for group_id, members in groups.items():
        where = f"{name} SUBTITLES group {group_id!r}"
        names = Counter(media.name for media in members)
        if any(count > 1 for count in names.values()):
            found.append(("media_group", f"{where}: NAME must differ between members, {dict(names)}"))
        if sum(media.default == "YES" for media in members) > 1:
            found.append(("media_group", f"{where}: more than one member has DEFAULT=YES"))
        kinds = Counter((media.language, media.forced, media.characteristics)
                        for media in members if media.autoselect == "YES")
        if any(count > 1 for count in kinds.values()):
            found.append(("media_group", f"{where}: AUTOSELECT=YES members share LANGUAGE, FORCED and "
                                         "CHARACTERISTICS, so a player cannot choose between them"))
    for variant in master.playlists:
        subtitles = variant.stream_info.subtitles
        if subtitles and subtitles not in groups:
            found.append(("subtitles_group", f"{name} variant {variant.uri}: SUBTITLES={subtitles!r} names no "
                                             "EXT-X-MEDIA group of TYPE=SUBTITLES (RFC 8216 §4.3.4.2)"))
        elif groups and not subtitles:
            found.append(("subtitles_group", f"{name} variant {variant.uri}: no SUBTITLES attribute, so players "
                                             "switching to it lose the subtitle tracks"))
    return found


def check_subtitle_playlist(playlist: m3u8.M3U8, uri: str, *, video_durations: Sequence[float], duration_s: float,
                            frame_duration_s: float) -> list[Problem]:
    """A WebVTT media playlist: VOD, clear, its segments on the video's boundaries (RFC 8216 §3.5, §6.2.4)."""
    found: list[Problem] = []
    if playlist.version != SUBTITLE_PLAYLIST_VERSION:
        found.append(("version", f"{uri}: EXT-X-VERSION is {playlist.version}; expected {SUBTITLE_PLAYLIST_VERSION}"))
    if playlist.playlist_type != "vod" or not playlist.is_endlist:
        found.append(("playlist_type", f"{uri}: a subtitle playlist of a VOD episode needs PLAYLIST-TYPE:VOD and "
                                       "EXT-X-ENDLIST"))
    if not playlist.segments:
        return [*found, ("no_segments", f"{uri}: no segments")]
    target = playlist.target_duration
    for index, segment in enumerate(playlist.segments):
        where = f"{uri} segment {index} ({segment.uri})"
        if segment.key is not None and segment.key.method not in (None, "NONE"):
            found.append(("subtitle_encrypted", f"{where}: encrypted; players do not decrypt WebVTT segments"))
        if not (segment.uri or "").split("?")[0].endswith(".vtt"):
            found.append(("subtitle_segment", f"{where}: not a .vtt WebVTT segment"))
        if target is not None and segment.duration >= target + 0.5:
            found.append(("target_duration", f"{where}: EXTINF {segment.duration} rounds above the target {target}"))
    durations = [segment.duration for segment in playlist.segments]
    if abs(sum(durations) - duration_s) > frame_duration_s:
        found.append(("duration", f"{uri}: EXTINFs sum to {sum(durations):.6f} s but the episode lasts "
                                  f"{duration_s:.6f} s"))
    if video_durations and (len(durations) != len(video_durations) or any(
            abs(a - b) > _ALIGN_TOLERANCE_S for a, b in zip(_starts(durations), _starts(video_durations)))):
        found.append(("subtitle_alignment", f"{uri}: segment boundaries differ from the video's; players fetch "
                                            "subtitle segments by the video segment they play"))
    return found


def _starts(durations: Sequence[float]) -> list[float]:
    total, starts = 0.0, []
    for duration in durations:
        starts.append(total)
        total += duration
    return starts


def check_webvtt_segment(text: str, where: str, *, timestamp_map_mpegts: int | None) -> list[Problem]:
    """One WebVTT segment: the header, X-TIMESTAMP-MAP (matching the video when known), cue timing lines."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("WEBVTT"):
        return [("webvtt", f"{where}: does not start with WEBVTT")]
    header = lines[1:lines.index("")] if "" in lines else lines[1:]
    mapping = next((_TIMESTAMP_MAP.fullmatch(line) for line in header if line.startswith("X-TIMESTAMP-MAP=")), None)
    found: list[Problem] = []
    if mapping is None:
        found.append(("timestamp_map", f"{where}: no X-TIMESTAMP-MAP with LOCAL and MPEGTS in the header, so "
                                       "players time cues from MPEG-TS 0 (RFC 8216 §3.5)"))
    elif timestamp_map_mpegts is not None and (int(mapping["mpegts"]) != timestamp_map_mpegts
                                               or mapping["local"] != "00:00:00.000"):
        found.append(("timestamp_map", f"{where}: X-TIMESTAMP-MAP maps LOCAL {mapping['local']} to MPEGTS "
                                       f"{mapping['mpegts']}, but the video's first picture is at "
                                       f"{timestamp_map_mpegts}"))
    bad = [line for line in lines if "-->" in line and not _CUE_TIMING.match(line)]
    if bad:
        found.append(("webvtt", f"{where}: cue timing lines that do not parse: {bad[:3]}"))
    return found


def check_image_variants(master: m3u8.M3U8, name: str) -> list[Problem]:
    found: list[Problem] = []
    for image in master.image_playlists:
        info = image.image_stream_info
        for attribute, value in (("BANDWIDTH", info.bandwidth), ("RESOLUTION", info.resolution),
                                 ("CODECS", info.codecs), ("URI", image.uri)):
            if not value:
                found.append(("missing_attribute", f"{name} EXT-X-IMAGE-STREAM-INF {image.uri}: {attribute} "
                                                   "is missing"))
    return found


def check_image_playlist(playlist: m3u8.M3U8, text: str, uri: str, *, duration_s: float) -> list[Problem]:
    """An image media playlist: EXT-X-IMAGES-ONLY, VOD, one EXT-X-TILES per sheet, covering the episode."""
    found: list[Problem] = []
    if not playlist.is_images_only:
        found.append(("images_only", f"{uri}: EXT-X-IMAGES-ONLY is missing"))
    if playlist.version != IMAGE_PLAYLIST_VERSION or playlist.playlist_type != "vod" or not playlist.is_endlist:
        found.append(("playlist_type", f"{uri}: needs EXT-X-VERSION:{IMAGE_PLAYLIST_VERSION}, PLAYLIST-TYPE:VOD "
                                       "and EXT-X-ENDLIST"))
    tiles = [line for line in text.splitlines() if line.startswith("#EXT-X-TILES")]
    if not playlist.segments or len(tiles) != len(playlist.segments) or not all(_TILES.match(t) for t in tiles):
        found.append(("image_tiles", f"{uri}: every sheet needs an EXT-X-TILES with RESOLUTION, LAYOUT and DURATION"))
    total = sum(segment.duration for segment in playlist.segments)
    if not math.isclose(total, duration_s, abs_tol=0.01):
        found.append(("duration", f"{uri}: sheets cover {total:.3f} s of a {duration_s:.3f} s episode"))
    return found

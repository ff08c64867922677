"""Check playlists against the MUSTs of RFC 8216 and Apple's HLS Authoring Specification.

Parsed with the independent `m3u8` library, not with our renderer's assumptions, so a bug in
playlist.py cannot hide itself. Problems are data (a list of Violation); the caller decides to stop.
Each playlist is parsed once (parse_playlist) and the checks take the parsed form, which the
self-check (packager/publishing/verify.py) also plays from. Used before the pointer switches, and by the
conformance tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import m3u8

from packager.hls.playlist import (
    FMP4_I_FRAME_PLAYLIST_VERSION,
    FMP4_MEDIA_PLAYLIST_VERSION,
    I_FRAME_PLAYLIST_VERSION,
    MASTER_PLAYLIST_VERSION,
    MEDIA_PLAYLIST_VERSION,
)
from packager.hls.subtitle_conformance import (
    check_image_playlist,
    check_image_variants,
    check_subtitle_media,
    check_subtitle_playlist,
    subtitle_uris,
)

_IV = re.compile(r"0x[0-9a-fA-F]{32}")
_BLOCK_BYTES = 16
# Apple HLS authoring 7.7: no segment more than 0.5 s over the target duration
_TARGET_TOLERANCE_S = 0.5
# segment URIs that are fragmented MP4 and so cannot play without an init segment (EXT-X-MAP)
_FMP4_SUFFIXES = (".m4s", ".mp4", ".cmfv", ".cmfa")


@dataclass(frozen=True, slots=True)
class Violation:
    code: str          # stable: "target_duration", "missing_iv", ...
    message: str       # names the playlist and the offending value


@dataclass(frozen=True, slots=True)
class ParsedPlaylist:
    """A playlist parsed once by m3u8, for every check and for the self-check's playback."""

    name: str                          # for messages: the URI as the master names it
    text: str                          # kept: the EXT-X-MAP/EXT-X-KEY order is lost in parsing
    playlist: m3u8.M3U8 | None         # None when it cannot be parsed; `problems` says why
    problems: tuple[Violation, ...]


def parse_playlist(text: str, name: str) -> ParsedPlaylist:
    """Parse with m3u8; an unparsable text is a ParsedPlaylist with no playlist and its violation."""
    if not text.startswith("#EXTM3U"):
        return ParsedPlaylist(name, text, None, (Violation("not_a_playlist", f"{name}: does not start with #EXTM3U"),))
    try:
        return ParsedPlaylist(name, text, m3u8.loads(text), ())
    except Exception as exc:  # noqa: BLE001 - m3u8 raises KeyError/ValueError/... on malformed tags
        return ParsedPlaylist(name, text, None, (
            Violation("unparsable", f"{name}: m3u8 cannot parse it ({type(exc).__name__}: {exc})"),))


def check_parsed_media(parsed: ParsedPlaylist, *, duration_s: float | None = None,
                       frame_duration_s: float | None = None) -> list[Violation]:
    """Violations of one parsed media or I-frame playlist (its parse problems included).

    `duration_s` is the real stream duration: EXTINFs must sum to it within `frame_duration_s`
    (Apple 8.1).
    """
    playlist, name, found = parsed.playlist, parsed.name, list(parsed.problems)
    if playlist is None:
        return found
    is_i_frames = playlist.is_i_frames_only
    has_map = bool(playlist.segment_map)
    if has_map:
        required = FMP4_I_FRAME_PLAYLIST_VERSION if is_i_frames else FMP4_MEDIA_PLAYLIST_VERSION
    else:
        required = I_FRAME_PLAYLIST_VERSION if is_i_frames else MEDIA_PLAYLIST_VERSION
    found.extend(_check_map(parsed.text, playlist, name))
    if playlist.version != required:
        found.append(Violation("version", f"{name}: EXT-X-VERSION is {playlist.version}; this playlist needs "
                                          f"exactly {required} (less is wrong, more locks out older players)"))
    if not playlist.segments:
        return [*found, Violation("no_segments", f"{name}: no segments")]
    target = playlist.target_duration
    if target is None:
        found.append(Violation("target_duration", f"{name}: EXT-X-TARGETDURATION is missing"))
    if playlist.playlist_type != "vod":
        found.append(Violation("playlist_type", f"{name}: EXT-X-PLAYLIST-TYPE is {playlist.playlist_type!r}, not VOD"))
    if not playlist.is_independent_segments:
        found.append(Violation("independent_segments", f"{name}: EXT-X-INDEPENDENT-SEGMENTS is missing"))
    if not playlist.is_endlist:
        found.append(Violation("endlist", f"{name}: EXT-X-ENDLIST is missing"))
    for index, segment in enumerate(playlist.segments):
        where = f"{name} segment {index} ({segment.uri})"
        # rounded to the nearest integer (half up) it must not exceed the target (RFC 8216 §4.3.3.1)
        if target is not None and segment.duration >= target + _TARGET_TOLERANCE_S:
            found.append(Violation("target_duration", f"{where}: EXTINF {segment.duration} rounds above "
                                                      f"the target {target}"))
        key = segment.key
        if key is None or key.method != "AES-128" or not key.uri:
            found.append(Violation("not_encrypted", f"{where}: no EXT-X-KEY with METHOD=AES-128 and a URI"))
        elif not key.iv or not _IV.fullmatch(key.iv):
            found.append(Violation("missing_iv", f"{where}: EXT-X-KEY has no 128-bit IV attribute "
                                                 "(players disagree on the implicit one)"))
        found.extend(_check_byte_range(segment.byterange, where, is_i_frames))
    if duration_s is not None and frame_duration_s is not None:
        total = sum(segment.duration for segment in playlist.segments)
        if abs(total - duration_s) > frame_duration_s:
            found.append(Violation("duration", f"{name}: EXTINFs sum to {total:.6f} s but the stream lasts "
                                               f"{duration_s:.6f} s (more than one frame apart)"))
    return found


def _check_map(text: str, playlist: m3u8.M3U8, name: str) -> list[Violation]:
    """fMP4 rules: segments need an EXT-X-MAP (RFC 8216 §4.3.2.5, Apple 8.20); it comes before the first
    EXT-X-KEY, or that key would apply to the init segment (§4.3.2.4) and players expect it clear."""
    found = []
    tags = [line.split(":", 1)[0] for line in text.splitlines() if line.startswith("#EXT-X-")]
    if "#EXT-X-MAP" in tags and "#EXT-X-KEY" in tags and tags.index("#EXT-X-MAP") > tags.index("#EXT-X-KEY"):
        found.append(Violation("map_after_key", f"{name}: EXT-X-MAP comes after the first EXT-X-KEY, so the "
                                                "key applies to the init segment; put EXT-X-MAP first (clear init)"))
    if tags.count("#EXT-X-MAP") > 1:
        found.append(Violation("map", f"{name}: {tags.count('#EXT-X-MAP')} EXT-X-MAP tags; one init segment "
                                      "serves every segment of a rendition"))
    for section in playlist.segment_map:
        if not section.uri:
            found.append(Violation("map", f"{name}: EXT-X-MAP has no URI"))
        elif section.byterange:
            found.append(Violation("map", f"{name}: EXT-X-MAP has a BYTERANGE; the init segment is its own object"))
    if not playlist.segment_map and any(s.uri and s.uri.split("?")[0].endswith(_FMP4_SUFFIXES)
                                        for s in playlist.segments):
        found.append(Violation("missing_map", f"{name}: fMP4 segments without EXT-X-MAP: players have no init "
                                              "segment to decode them with"))
    return found


def _check_byte_range(byterange: str | None, where: str, is_i_frames: bool) -> list[Violation]:
    if not is_i_frames:
        if byterange:
            return [Violation("byte_range", f"{where}: EXT-X-BYTERANGE on a media segment; under AES-128 "
                                            "each segment must be its own object")]
        return []
    length, _, offset = (byterange or "").partition("@")
    if not (length.isascii() and length.isdigit()) or offset != "0":
        return [Violation("i_frame_range", f"{where}: I-frame range {byterange!r} must be LENGTH@0 so the "
                                           "segment's IV applies")]
    if int(length) % _BLOCK_BYTES:
        return [Violation("i_frame_range", f"{where}: I-frame range length {length} is not a multiple of "
                                           f"{_BLOCK_BYTES}, so AES-128-CBC cannot decrypt it")]
    return []


def check_parsed_master(parsed: ParsedPlaylist) -> list[Violation]:
    """Violations of a parsed master playlist on its own (check_parsed_episode adds the cross-playlist rules)."""
    master, name, found = parsed.playlist, parsed.name, list(parsed.problems)
    if master is None:
        return found
    if master.version != MASTER_PLAYLIST_VERSION:
        found.append(Violation("version", f"{name}: EXT-X-VERSION is {master.version}; "
                                          f"expected {MASTER_PLAYLIST_VERSION}"))
    if not master.is_independent_segments:
        found.append(Violation("independent_segments", f"{name}: EXT-X-INDEPENDENT-SEGMENTS is missing"))
    if not master.playlists:
        found.append(Violation("no_variants", f"{name}: no EXT-X-STREAM-INF variant"))
    for variant in master.playlists:
        info, where = variant.stream_info, f"{name} variant {variant.uri}"
        for attribute, value in (("BANDWIDTH", info.bandwidth), ("AVERAGE-BANDWIDTH", info.average_bandwidth),
                                 ("CODECS", info.codecs), ("RESOLUTION", info.resolution),
                                 ("FRAME-RATE", info.frame_rate)):
            if not value:
                found.append(Violation("missing_attribute", f"{where}: {attribute} is missing"))
        if info.bandwidth and info.average_bandwidth and info.average_bandwidth > info.bandwidth:
            found.append(Violation("bandwidth", f"{where}: AVERAGE-BANDWIDTH {info.average_bandwidth} exceeds "
                                                f"the peak BANDWIDTH {info.bandwidth}"))
    if not master.iframe_playlists:
        found.append(Violation("no_i_frames", f"{name}: no EXT-X-I-FRAME-STREAM-INF (Apple 6.1: MUST)"))
    for variant in master.iframe_playlists:
        info, where = variant.iframe_stream_info, f"{name} I-frame variant {variant.uri}"
        for attribute, value in (("BANDWIDTH", info.bandwidth), ("CODECS", info.codecs),
                                 ("RESOLUTION", info.resolution), ("URI", variant.uri)):
            if not value:
                found.append(Violation("missing_attribute", f"{where}: {attribute} is missing"))
    for key in master.session_keys:
        if key.method in (None, "NONE") or not key.uri:
            found.append(Violation("session_key", f"{name}: EXT-X-SESSION-KEY needs a METHOD other than NONE "
                                                  "and a URI"))
    found.extend(Violation(code, message) for code, message in check_subtitle_media(master, name))
    found.extend(Violation(code, message) for code, message in check_image_variants(master, name))
    return found


def check_parsed_episode(master: ParsedPlaylist, playlists: Mapping[str, ParsedPlaylist], *,
                         duration_s: float) -> list[Violation]:
    """Every rule, for a parsed master and all the playlists it names (`playlists`: URI as in the master ->
    parsed playlist).

    Adds the cross-playlist rules: every named playlist exists, media playlists share one target
    duration (RFC 8216 §6.2.4), and an EXT-X-SESSION-KEY matches a key the media playlists use.
    """
    found = check_parsed_master(master)
    if master.playlist is None:
        return found
    targets, key_uris = {}, set()
    entries = [(v.uri, 1 / v.stream_info.frame_rate if v.stream_info.frame_rate else None)
               for v in master.playlist.playlists]
    entries += [(v.uri, None) for v in master.playlist.iframe_playlists]
    frame_durations = [d for _, d in entries if d]
    for uri, frame_duration_s in entries:
        if uri not in playlists:
            found.append(Violation("missing_playlist", f"master names {uri}, which does not exist"))
            continue
        parsed = playlists[uri]
        found.extend(check_parsed_media(parsed, duration_s=duration_s,
                                        frame_duration_s=frame_duration_s or max(frame_durations, default=None)))
        media = parsed.playlist
        if media is None:
            continue
        if not media.is_i_frames_only:
            targets[uri] = media.target_duration
        key_uris.update(key.uri for key in media.keys if key)
    if len(set(targets.values())) > 1:
        found.append(Violation("target_duration", f"media playlists disagree on EXT-X-TARGETDURATION: {targets}"))
    video = next((playlists[uri].playlist for uri, _ in entries if uri in playlists and playlists[uri].playlist
                  and not playlists[uri].playlist.is_i_frames_only), None)
    video_durations = [segment.duration for segment in video.segments] if video else []
    for uri in subtitle_uris(master.playlist):
        if uri not in playlists:
            found.append(Violation("missing_playlist", f"master names {uri}, which does not exist"))
            continue
        found.extend(playlists[uri].problems)
        if playlists[uri].playlist is not None:
            found.extend(Violation(code, message) for code, message in check_subtitle_playlist(
                playlists[uri].playlist, uri, video_durations=video_durations, duration_s=duration_s,
                frame_duration_s=max(frame_durations, default=0.0)))
    for image in master.playlist.image_playlists:
        parsed = playlists.get(image.uri)
        if parsed is None:
            found.append(Violation("missing_playlist", f"master names {image.uri}, which does not exist"))
        elif parsed.playlist is None:
            found.extend(parsed.problems)
        else:
            found.extend(Violation(code, message) for code, message in check_image_playlist(
                parsed.playlist, parsed.text, image.uri, duration_s=duration_s))
    for key in master.playlist.session_keys:
        if key.uri not in key_uris:
            found.append(Violation("session_key", f"EXT-X-SESSION-KEY URI {key.uri} matches no EXT-X-KEY"))
    return found

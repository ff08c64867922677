"""Media and master playlists (RFC 8216), rendered from exact segment durations and measured sizes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

# TS segments + explicit IV + decimal EXTINF need version 3 (RFC 8216 §7); more would lock out old clients
MEDIA_PLAYLIST_VERSION = 3
# EXT-X-I-FRAMES-ONLY and EXT-X-BYTERANGE need version 4 (RFC 8216 §7)
I_FRAME_PLAYLIST_VERSION = 4
# fMP4: EXT-X-MAP needs version 6 in a media playlist, 5 in an I-frames-only one (RFC 8216 §7)
FMP4_MEDIA_PLAYLIST_VERSION = 6
FMP4_I_FRAME_PLAYLIST_VERSION = 5
MASTER_PLAYLIST_VERSION = 3
# WebVTT subtitle playlists: decimal EXTINF, nothing else versioned (RFC 8216 §7)
SUBTITLE_PLAYLIST_VERSION = 3
# image media playlists (EXT-X-IMAGES-ONLY, Roku's image media playlist spec v0.4): its examples and readers use 7
IMAGE_PLAYLIST_VERSION = 7
SUBTITLE_GROUP_ID = "subs"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaylistSegment:
    uri: str
    duration_s: Fraction         # exact; rounded only when written
    size_bytes: int              # as stored (encrypted), for bandwidth
    key_uri: str
    iv: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    uri: str
    bandwidth_bps: int           # peak segment bit rate (RFC 8216 §4.1)
    average_bandwidth_bps: int
    codecs: str
    width: int
    height: int
    frame_rate: Fraction


@dataclass(frozen=True, slots=True, kw_only=True)
class IFrame:
    """A segment's leading IDR picture, addressed as bytes [0, length_bytes) of the encrypted segment."""

    uri: str
    duration_s: Fraction         # until the next I-frame: the whole segment
    length_bytes: int            # a multiple of 16, so CBC decrypts it with the segment's IV
    key_uri: str
    iv: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class IFrameVariant:
    uri: str
    bandwidth_bps: int           # peak I-frame bit rate, measured on the byte ranges
    codecs: str                  # video codec only: an I-frame playlist carries no audio
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubtitleRendition:
    """One EXT-X-MEDIA:TYPE=SUBTITLES entry of the master (RFC 8216 §4.3.4.1)."""

    uri: str
    language: str                # BCP 47
    name: str                    # unique within the group
    is_default: bool = False
    is_forced: bool = False
    group_id: str = SUBTITLE_GROUP_ID


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageVariant:
    """An EXT-X-IMAGE-STREAM-INF entry: the storyboard as an image media playlist (Roku, Apple TV apps)."""

    uri: str
    bandwidth_bps: int
    tile_width: int
    tile_height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSheet:
    uri: str
    duration_s: Fraction         # the part of the episode its tiles cover


def video_codecs(codecs: str) -> str:
    """The video entries of an RFC 6381 CODECS list ("avc1.64001f,mp4a.40.2" -> "avc1.64001f")."""
    return ",".join(c for c in codecs.split(",") if c.split(".")[0] in ("avc1", "avc3", "hvc1", "hev1", "av01"))


def target_duration(durations: Sequence[Fraction]) -> int:
    """EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must be <= it (§4.3.3.1)."""
    return max(1, max(math.floor(d + Fraction(1, 2)) for d in durations))


def render_media_playlist(segments: Sequence[PlaylistSegment], *, map_uri: str | None = None) -> str:
    """A VOD media playlist; `map_uri` names the fMP4 init segment (EXT-X-MAP), None for TS."""
    lines = _vod_header(FMP4_MEDIA_PLAYLIST_VERSION if map_uri else MEDIA_PLAYLIST_VERSION,
                        [s.duration_s for s in segments], map_uri)
    for segment in segments:
        lines += _segment_lines(segment.key_uri, segment.iv, segment.duration_s, segment.uri)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_i_frame_playlist(frames: Sequence[IFrame], *, map_uri: str | None = None) -> str:
    """An EXT-X-I-FRAMES-ONLY playlist for trick play (Apple HLS authoring 6.1, 6.8).

    Every range starts at offset 0 of its segment, so each carries its own IV and CBC restarts there
    (RFC 8216 §6.2.3: encryption may not restart inside a block holding an I-frame). For fMP4 the
    range holds the moof and the first picture, and `map_uri` names the init segment.
    """
    lines = _vod_header(FMP4_I_FRAME_PLAYLIST_VERSION if map_uri else I_FRAME_PLAYLIST_VERSION,
                        [f.duration_s for f in frames], map_uri, "#EXT-X-I-FRAMES-ONLY")
    for frame in frames:
        lines += _segment_lines(frame.key_uri, frame.iv, frame.duration_s, frame.uri,
                                byte_range=f"{frame.length_bytes}@0")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _vod_header(version: int, durations: Sequence[Fraction], map_uri: str | None, *extra: str) -> list[str]:
    return [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{target_duration(durations)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        *extra,
        *_map_lines(map_uri),
    ]


def _segment_lines(key_uri: str, iv: bytes, duration_s: Fraction, uri: str, *,
                   byte_range: str | None = None) -> list[str]:
    return [
        # IV written on every EXT-X-KEY: players disagree on the implicit media-sequence IV (RFC 8216 §5.2)
        f'#EXT-X-KEY:METHOD=AES-128,URI="{key_uri}",IV=0x{iv.hex()}',
        f"#EXTINF:{float(duration_s):.6f},",
        *([f"#EXT-X-BYTERANGE:{byte_range}"] if byte_range else []),
        uri,
    ]


def _map_lines(map_uri: str | None) -> list[str]:
    # before the first EXT-X-KEY, so the init segment is read in the clear: an EXT-X-KEY applies to the
    # EXT-X-MAP after it (RFC 8216 §4.3.2.4), and players assume a clear init (ExoPlayer#5441, ffmpeg hls.c)
    return [f'#EXT-X-MAP:URI="{map_uri}"'] if map_uri else []


def render_master_playlist(
    variants: Sequence[Variant],
    i_frame_variants: Sequence[IFrameVariant] = (),
    *,
    session_key_uri: str | None = None,
    subtitles: Sequence[SubtitleRendition] = (),
    image_variants: Sequence[ImageVariant] = (),
) -> str:
    """The master playlist; `session_key_uri` adds EXT-X-SESSION-KEY so players can prefetch the first key.

    `subtitles` become EXT-X-MEDIA:TYPE=SUBTITLES entries and every variant names their group
    (SUBTITLES=, RFC 8216 §4.3.4.2); `image_variants` add EXT-X-IMAGE-STREAM-INF (ignored by players
    that do not know it, as RFC 8216 §6.3.1 requires of unknown tags).
    """
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{MASTER_PLAYLIST_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if session_key_uri:
        # no IV: each segment has its own, and RFC 8216 §4.3.4.5 wants the attributes of the matching EXT-X-KEY
        lines.append(f'#EXT-X-SESSION-KEY:METHOD=AES-128,URI="{session_key_uri}"')
    for subtitle in subtitles:
        # AUTOSELECT=YES on every track: the player may pick one by the viewer's language (and MUST be YES
        # where DEFAULT=YES, §4.3.4.1); a forced track is shown only with audio in its language (Apple 5.x)
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{subtitle.group_id}",LANGUAGE="{subtitle.language}",'
            f'NAME="{subtitle.name}",DEFAULT={_yes_no(subtitle.is_default)},AUTOSELECT=YES,'
            f'FORCED={_yes_no(subtitle.is_forced)},URI="{subtitle.uri}"'
        )
    groups = sorted({subtitle.group_id for subtitle in subtitles})
    if len(groups) > 1:
        raise ValueError(f"subtitle renditions in {len(groups)} groups {groups}; a variant names one group")
    for variant in order_variants(variants):
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={variant.bandwidth_bps},"
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth_bps},"
            f'CODECS="{variant.codecs}",RESOLUTION={variant.width}x{variant.height},'
            f"FRAME-RATE={float(variant.frame_rate):.3f}"
            # no CEA-608 captions in our video: say so, or players look for them instead of the WebVTT tracks
            + (f',SUBTITLES="{groups[0]}",CLOSED-CAPTIONS=NONE' if groups else "")
        )
        lines.append(variant.uri)
    for variant in sorted(i_frame_variants, key=lambda v: v.bandwidth_bps, reverse=True):
        lines.append(
            f"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={variant.bandwidth_bps},"
            f'CODECS="{variant.codecs}",RESOLUTION={variant.width}x{variant.height},URI="{variant.uri}"'
        )
    for image in image_variants:
        lines.append(f"#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={image.bandwidth_bps},"
                     f'RESOLUTION={image.tile_width}x{image.tile_height},CODECS="jpeg",URI="{image.uri}"')
    return "\n".join(lines) + "\n"


def _yes_no(value: bool) -> str:
    return "YES" if value else "NO"


def render_subtitle_playlist(segments: Sequence[tuple[str, Fraction]]) -> str:
    """A VOD WebVTT media playlist: (uri, duration) per segment, the same durations as the video's (§3.5).

    No EXT-X-KEY: players do not decrypt WebVTT, so captions are served clear and gated by the server.
    """
    lines = _vod_header(SUBTITLE_PLAYLIST_VERSION, [duration for _, duration in segments], None)
    for uri, duration_s in segments:
        lines += [f"#EXTINF:{float(duration_s):.6f},", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_image_playlist(sheets: Sequence[ImageSheet], *, tile_width: int, tile_height: int, columns: int,
                          rows: int, tile_duration_s: int) -> str:
    """An image media playlist (EXT-X-IMAGES-ONLY): one sprite sheet per entry, EXT-X-TILES saying its grid."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{IMAGE_PLAYLIST_VERSION}",
             f"#EXT-X-TARGETDURATION:{target_duration([sheet.duration_s for sheet in sheets])}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-IMAGES-ONLY"]
    for sheet in sheets:
        lines += [f"#EXTINF:{float(sheet.duration_s):.6f},",
                  f"#EXT-X-TILES:RESOLUTION={tile_width}x{tile_height},LAYOUT={columns}x{rows},"
                  f"DURATION={tile_duration_s:.3f}",
                  sheet.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def order_variants(variants: Sequence[Variant], first_near_bps: int = 2_000_000) -> list[Variant]:
    """The variant nearest 2 Mbit/s first (players start with it, Apple 1.32), the rest by bandwidth, high to low."""
    if not variants:
        return []
    first = min(variants, key=lambda v: abs(v.bandwidth_bps - first_near_bps))
    rest = sorted((v for v in variants if v is not first), key=lambda v: v.bandwidth_bps, reverse=True)
    return [first, *rest]


def peak_bandwidth(durations: Sequence[Fraction], sizes: Sequence[int], target_s: int) -> int:
    """Largest bit rate of any run of contiguous segments lasting 0.5x to 1.5x the target duration (§4.1).

    A playlist too short to hold such a run falls back to the largest single segment rate.
    """
    low, high = Fraction(target_s, 2), Fraction(target_s * 3, 2)
    best = Fraction(0)
    for start in range(len(durations)):
        total_s, total_bits = Fraction(0), 0
        for end in range(start, len(durations)):
            total_s += durations[end]
            total_bits += sizes[end] * 8
            if total_s > high:
                break
            if total_s >= low:
                best = max(best, total_bits / total_s)
    if best == 0:
        best = max(Fraction(size * 8) / duration for size, duration in zip(sizes, durations))
    return math.ceil(best)


def average_bandwidth(durations: Sequence[Fraction], sizes: Sequence[int]) -> int:
    return math.ceil(Fraction(sum(sizes) * 8) / sum(durations))

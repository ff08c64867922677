"""verify_version(): read a freshly uploaded version back as a player would, before it goes live.

Every playlist is fetched from the store and checked (packager/hls/conformance.py); then, per rendition,
one segment and one I-frame range are fetched, decrypted with the key their EXT-X-KEY names and
decoded by the function the caller passes in (decoding needs PyAV, which lives in pipeline/).
For fMP4 the EXT-X-MAP init segment is fetched too, must be clear (ftyp + moov, no samples), and is
put in front of the decrypted media, as a player does.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Mapping
from typing import Protocol

import m3u8

from packager.containers.fragmented_mp4 import first_video_presentation_90k, is_init_segment
from packager.containers.transport_stream import first_video_pts
from packager.encrypt import decrypt_prefix, decrypt_segment
from packager.errors import VerificationFailed
from packager.hls.conformance import check_parsed_episode, parse_playlist
from packager.hls.subtitle_conformance import check_webvtt_segment, subtitle_uris
from packager.store import ObjectStore

log = logging.getLogger(__name__)


class Decoded(Protocol):
    video_frames: int
    starts_with_key_frame: bool


DecodeSegment = Callable[[bytes], Decoded]
_SYNC_TOLERANCE_90K = 180     # 2 ms: below any frame interval (60 fps: 16.7 ms), above EXTINF rounding


def verify_version(
    store: ObjectStore,
    prefix: str,
    *,
    master_name: str,
    keys_by_uri: Mapping[str, bytes],
    duration_s: float,
    decode_segment: DecodeSegment | None,
    timestamp_map_mpegts: int | None = None,
) -> None:
    """Raise VerificationFailed listing every problem of the version stored under `prefix`.

    `keys_by_uri` maps each EXT-X-KEY URI as written to its 16 key bytes. Without `decode_segment`
    only the playlists and decryption are checked. Subtitle playlists get one WebVTT segment read back
    and, with `timestamp_map_mpegts`, its X-TIMESTAMP-MAP compared with it and each decrypted video
    segment's first picture with it plus the segment's start: captions and pictures stay in sync.
    Segment URIs may point into another version's prefix (../../v{m}/..., packager/publishing/republish.py).
    """
    master = parse_playlist(store.get_bytes(f"{prefix}/{master_name}").decode(), master_name)
    if master.playlist is None:
        raise VerificationFailed(prefix, tuple(v.message for v in master.problems))
    media_uris = [v.uri for v in master.playlist.playlists] + [v.uri for v in master.playlist.iframe_playlists]
    extra_uris = subtitle_uris(master.playlist) + [v.uri for v in master.playlist.image_playlists]
    playlists = {uri: parse_playlist(store.get_bytes(resolve(prefix, uri)).decode(), uri)
                 for uri in media_uris + extra_uris}
    problems = [v.message for v in check_parsed_episode(master, playlists, duration_s=duration_s)]
    for uri, parsed in playlists.items():
        if parsed.playlist is None:
            continue   # its parse failure is already among the problems
        try:
            if uri in extra_uris:
                problems += _read_one(store, prefix, uri, parsed.playlist, timestamp_map_mpegts)
            else:
                problems += _play_one(store, prefix, uri, parsed.playlist, keys_by_uri, decode_segment,
                                      timestamp_map_mpegts)
        except Exception as exc:  # noqa: BLE001 - any failure to play is a verification failure
            problems.append(f"{uri}: {type(exc).__name__}: {exc}")
    if problems:
        raise VerificationFailed(prefix, tuple(problems))
    log.info("verified %s: %d playlists conform, one segment per playlist decrypts and decodes",
             prefix, len(playlists) + 1)


def resolve(prefix: str, uri: str, relative_to: str = "") -> str:
    """The object key of `uri` as a player resolves it against `relative_to` (a playlist's URI) in `prefix`.

    Raises ValueError for a URI that leaves the episode's prefix.
    """
    episode = posixpath.dirname(prefix)
    key = posixpath.normpath(posixpath.join(prefix, posixpath.dirname(relative_to), uri))
    if not key.startswith(episode + "/"):
        raise ValueError(f"{uri} resolves outside the episode ({key})")
    return key


def _read_one(store: ObjectStore, prefix: str, uri: str, playlist: m3u8.M3U8,
              timestamp_map_mpegts: int | None) -> list[str]:
    """Fetch a subtitle segment (the first) or an image sheet (the first) and check what it holds."""
    if not playlist.segments:
        return []
    segment = playlist.segments[0]
    data = store.get_bytes(resolve(prefix, segment.uri, uri))
    if playlist.is_images_only:
        return [] if data[:3] == b"\xff\xd8\xff" else [f"{uri} -> {segment.uri}: not a JPEG image"]
    return [message for _, message in check_webvtt_segment(data.decode("utf-8"), f"{uri} -> {segment.uri}",
                                                           timestamp_map_mpegts=timestamp_map_mpegts)]


def _play_one(store: ObjectStore, prefix: str, uri: str, playlist: m3u8.M3U8, keys_by_uri: Mapping[str, bytes],
              decode_segment: DecodeSegment | None, timestamp_map_mpegts: int | None = None) -> list[str]:
    if not playlist.segments:
        return []      # already reported by the conformance check
    # the last segment for media playlists: it sits in the last key period, the most likely to be wrong
    segment = playlist.segments[0] if playlist.is_i_frames_only else playlist.segments[-1]
    where = f"{uri} -> {segment.uri}"
    key = keys_by_uri.get(segment.key.uri) if segment.key else None
    if key is None:
        return [f"{where}: its EXT-X-KEY URI names no key of this version"]
    iv = bytes.fromhex(segment.key.iv[2:])
    init = b""
    if playlist.segment_map:
        init_uri = playlist.segment_map[0].uri
        init = store.get_bytes(resolve(prefix, init_uri, uri))   # ObjectMissing if absent
        if not is_init_segment(init):
            return [f"{uri} -> {init_uri}: the EXT-X-MAP object is not a clear init segment (ftyp + moov, "
                    "no samples); encrypted or holding media"]
    segment_key = resolve(prefix, segment.uri, uri)
    if playlist.is_i_frames_only:
        # fetch the range alone, as a player's Range request does, not the whole segment
        length = int(segment.byterange.split("@")[0])          # LENGTH@0
        plaintext = decrypt_prefix(store.get_bytes(segment_key, length=length), key, iv)
    else:
        plaintext = decrypt_segment(store.get_bytes(segment_key), key, iv)
    problems = []
    if timestamp_map_mpegts is not None and not playlist.is_i_frames_only:
        starts_s = sum(s.duration for s in playlist.segments[:-1])
        shown = first_video_presentation_90k(init, plaintext) if init else first_video_pts(plaintext)
        # EXTINFs are frame times to the microsecond (playlist.py), so the sum is exact to far below a frame
        if abs(shown - (timestamp_map_mpegts + starts_s * 90000)) > _SYNC_TOLERANCE_90K:
            problems.append(f"{where}: its first picture is shown at {shown} (90 kHz), not at the caption timestamp "
                            f"map {timestamp_map_mpegts} + {starts_s:.6f} s: captions would be out of sync")
    if decode_segment is None:
        return problems
    decoded = decode_segment(init + plaintext)
    if not decoded.starts_with_key_frame:
        return [*problems, f"{where}: does not start with a key frame"]
    if playlist.is_i_frames_only and decoded.video_frames != 1:
        return [*problems, f"{where}: the I-frame range holds {decoded.video_frames} pictures, expected 1"]
    return problems

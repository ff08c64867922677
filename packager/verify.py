"""verify_version(): read a freshly uploaded version back as a player would, before it goes live.

Every playlist is fetched from the store and checked (packager/conformance.py); then, per rendition,
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

from packager.conformance import check_parsed_episode, parse_playlist
from packager.encrypt import decrypt_prefix, decrypt_segment
from packager.errors import VerificationFailed
from packager.fragmented_mp4 import is_init_segment
from packager.store import ObjectStore

log = logging.getLogger(__name__)


class Decoded(Protocol):
    video_frames: int
    starts_with_key_frame: bool


DecodeSegment = Callable[[bytes], Decoded]


def verify_version(
    store: ObjectStore,
    prefix: str,
    *,
    master_name: str,
    keys_by_uri: Mapping[str, bytes],
    duration_s: float,
    decode_segment: DecodeSegment | None,
) -> None:
    """Raise VerificationFailed listing every problem of the version stored under `prefix`.

    `keys_by_uri` maps each EXT-X-KEY URI as written to its 16 key bytes. Without `decode_segment`
    only the playlists and decryption are checked.
    """
    master = parse_playlist(store.get_bytes(f"{prefix}/{master_name}").decode(), master_name)
    if master.playlist is None:
        raise VerificationFailed(prefix, tuple(v.message for v in master.problems))
    uris = [v.uri for v in master.playlist.playlists] + [v.uri for v in master.playlist.iframe_playlists]
    playlists = {uri: parse_playlist(store.get_bytes(f"{prefix}/{uri}").decode(), uri) for uri in uris}
    problems = [v.message for v in check_parsed_episode(master, playlists, duration_s=duration_s)]
    for uri, parsed in playlists.items():
        if parsed.playlist is None:
            continue   # its parse failure is already among the problems
        try:
            problems += _play_one(store, prefix, uri, parsed.playlist, keys_by_uri, decode_segment)
        except Exception as exc:  # noqa: BLE001 - any failure to play is a verification failure
            problems.append(f"{uri}: {type(exc).__name__}: {exc}")
    if problems:
        raise VerificationFailed(prefix, tuple(problems))
    log.info("verified %s: %d playlists conform, one segment per playlist decrypts and decodes",
             prefix, len(playlists) + 1)


def _play_one(store: ObjectStore, prefix: str, uri: str, playlist: m3u8.M3U8, keys_by_uri: Mapping[str, bytes],
              decode_segment: DecodeSegment | None) -> list[str]:
    if not playlist.segments:
        return []      # already reported by the conformance check
    # the last segment for media playlists: it sits in the last key period, the most likely to be wrong
    segment = playlist.segments[0] if playlist.is_i_frames_only else playlist.segments[-1]
    where = f"{uri} -> {segment.uri}"
    key = keys_by_uri.get(segment.key.uri) if segment.key else None
    if key is None:
        return [f"{where}: its EXT-X-KEY URI names no key of this version"]
    iv = bytes.fromhex(segment.key.iv[2:])
    directory = posixpath.dirname(uri)
    init = b""
    if playlist.segment_map:
        init_uri = playlist.segment_map[0].uri
        init = store.get_bytes(f"{prefix}/{posixpath.join(directory, init_uri)}")   # ObjectMissing if absent
        if not is_init_segment(init):
            return [f"{uri} -> {init_uri}: the EXT-X-MAP object is not a clear init segment (ftyp + moov, "
                    "no samples); encrypted or holding media"]
    segment_key = f"{prefix}/{posixpath.join(directory, segment.uri)}"
    if playlist.is_i_frames_only:
        # fetch the range alone, as a player's Range request does, not the whole segment
        length = int(segment.byterange.split("@")[0])          # LENGTH@0
        plaintext = decrypt_prefix(store.get_bytes(segment_key, length=length), key, iv)
    else:
        plaintext = decrypt_segment(store.get_bytes(segment_key), key, iv)
    if decode_segment is None:
        return []
    decoded = decode_segment(init + plaintext)
    if not decoded.starts_with_key_frame:
        return [f"{where}: does not start with a key frame"]
    if playlist.is_i_frames_only and decoded.video_frames != 1:
        return [f"{where}: the I-frame range holds {decoded.video_frames} pictures, expected 1"]
    return []

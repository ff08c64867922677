"""Which segment of a published rendition covers time t, fetched and decrypted: input for thumbnails.

The server's thumbnail route (and a poster change after publishing) reads one segment, never the
rendition: segment_at() finds it in the stored media playlist from the exact EXTINF sums,
read_segment_at() fetches it (and the fMP4 init segment), decrypts it with the key its EXT-X-KEY
names, and returns the plaintext with the segment's start time for pipeline/pictures/thumbnail.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import m3u8

from packager.encrypt import decrypt_segment
from packager.errors import PackagerError
from packager.publishing.verify import resolve
from packager.store import ObjectStore


class TimeOutsideEpisode(PackagerError):
    """A time before 0 or at or after the end of the episode."""

    code = "picture_time_out_of_range"


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentAt:
    index: int
    uri: str                     # as the playlist names it (relative to the playlist)
    start_s: Fraction            # sum of the EXTINFs before it
    duration_s: Fraction
    key_uri: str | None
    iv: bytes | None = field(repr=False)
    map_uri: str | None          # fMP4 init segment


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedSegment:
    plaintext: bytes = field(repr=False)
    init: bytes | None = field(repr=False)
    start_s: Fraction
    duration_s: Fraction


def segment_at(playlist_text: str, at_s: float) -> SegmentAt:
    """The segment of a media playlist whose [start, start + EXTINF) holds `at_s`. Raises TimeOutsideEpisode."""
    playlist = m3u8.loads(playlist_text)
    start = Fraction(0)
    target = Fraction(str(at_s))
    for index, segment in enumerate(playlist.segments):
        duration = Fraction(str(segment.duration))
        if start <= target < start + duration:
            key = segment.key
            return SegmentAt(index=index, uri=segment.uri, start_s=start, duration_s=duration,
                             key_uri=key.uri if key and key.method != "NONE" else None,
                             iv=bytes.fromhex(key.iv[2:]) if key and key.iv else None,
                             map_uri=playlist.segment_map[0].uri if playlist.segment_map else None)
        start += duration
    raise TimeOutsideEpisode(f"time {at_s:g} s is outside the episode (0 to {float(start):.3f} s); "
                             "choose a time within the episode")


def read_segment_at(store: ObjectStore, version_prefix: str, playlist_uri: str, at_s: float, *,
                    key_for_uri: Callable[[str], bytes | None]) -> FetchedSegment:
    """Fetch and decrypt the segment of `playlist_uri` (e.g. "720p/index.m3u8") covering `at_s`.

    Follows the playlist's URIs into the media version when the version was built without
    re-transcoding. Raises TimeOutsideEpisode, ObjectMissing, StoreError, or PackagerError for a key
    `key_for_uri` does not know.
    """
    found = segment_at(store.get_bytes(f"{version_prefix}/{playlist_uri}").decode(), at_s)
    data = store.get_bytes(resolve(version_prefix, found.uri, playlist_uri))
    if found.key_uri is not None:
        key = key_for_uri(found.key_uri)
        if key is None:
            raise PackagerError(f"{playlist_uri} segment {found.index}: no key for {found.key_uri}")
        data = decrypt_segment(data, key, found.iv)
    init = store.get_bytes(resolve(version_prefix, found.map_uri, playlist_uri)) if found.map_uri else None
    return FetchedSegment(plaintext=data, init=init, start_s=found.start_s, duration_s=found.duration_s)

"""publish(): encrypt segments, write playlists, and switch the episode's live version atomically.

Order matters (PeerTube#6480: half-published episodes): everything goes into a fresh version prefix,
segments first, then media playlists, then the master, and only then the small pointer object that
players are routed by. A failure before the pointer leaves the previous version playing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

from packager.encrypt import KeySchedule, encrypt_segment, new_iv
from packager.errors import PackagerError, PublishError
from packager.playlist import (
    PlaylistSegment,
    Variant,
    average_bandwidth,
    peak_bandwidth,
    render_master_playlist,
    render_media_playlist,
    target_duration,
)
from packager.errors import ObjectMissing
from packager.store import ObjectStore
from pipeline.transcode import EncodedRendition, TranscodeResult

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
SEGMENT_CACHE = "public, max-age=31536000, immutable"   # a version's objects never change
POINTER_NAME = "published.json"
MASTER_NAME = "master.m3u8"
MEDIA_PLAYLIST_NAME = "index.m3u8"


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeLocation:
    series_id: str
    episode_id: str

    @property
    def prefix(self) -> str:
        return f"series/{self.series_id}/episodes/{self.episode_id}"

    @property
    def pointer_key(self) -> str:
        return f"{self.prefix}/{POINTER_NAME}"

    def version_prefix(self, version: int) -> str:
        return f"{self.prefix}/v{version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedEpisode:
    location: EpisodeLocation
    version: int
    renditions: tuple[str, ...]
    segment_count: int          # per rendition
    duration_s: float
    key_ids: tuple[str, ...]


def read_pointer(store: ObjectStore, location: EpisodeLocation) -> dict | None:
    """The live version's pointer, or None if the episode was never published."""
    try:
        return json.loads(store.get_bytes(location.pointer_key))
    except ObjectMissing:
        return None


def next_version(store: ObjectStore, location: EpisodeLocation) -> int:
    """One past every version that exists, live or abandoned, so no prefix is ever written twice."""
    versions = [0]
    for key in store.list_keys(location.prefix + "/v"):
        match = re.match(rf"{re.escape(location.prefix)}/v(\d+)/", key)
        if match:
            versions.append(int(match.group(1)))
    pointer = read_pointer(store, location)
    if pointer:
        versions.append(int(pointer["version"]))
    return max(versions) + 1


def publish(
    encoded: TranscodeResult,
    store: ObjectStore,
    keys: KeySchedule,
    location: EpisodeLocation,
    *,
    key_uri: Callable[[str], str],
    segments_per_key: int = 10,
    iv_source: Callable[[], bytes] = new_iv,
    upload_workers: int = 8,
) -> PublishedEpisode:
    """Encrypt and upload `encoded` as a new version of `location`, then make it the live one.

    `key_uri(key_id)` gives the EXT-X-KEY URI written into stored playlists (the server personalises it).
    Raises PublishError; on failure the new version's objects are removed and the old version stays live.
    """
    version = next_version(store, location)
    prefix = location.version_prefix(version)
    key_ids: set[str] = set()
    try:
        with ThreadPoolExecutor(max_workers=upload_workers, thread_name_prefix="upload") as pool:
            variants = []
            for rendition in encoded.renditions:
                segments = list(pool.map(
                    lambda segment: _upload_segment(store, prefix, rendition, segment, keys,
                                                    segments_per_key, iv_source, key_uri),
                    rendition.segments,
                ))
                key_ids.update(key_id for key_id, _ in segments)
                playlist_segments = [segment for _, segment in segments]
                media = render_media_playlist(playlist_segments)
                store.put_bytes(f"{prefix}/{rendition.rendition.name}/{MEDIA_PLAYLIST_NAME}", media.encode(),
                                content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
                variants.append(_variant(rendition, playlist_segments))
        store.put_bytes(f"{prefix}/{MASTER_NAME}", render_master_playlist(variants).encode(),
                        content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
        pointer = {
            "version": version,
            "master": f"v{version}/{MASTER_NAME}",
            "renditions": [r.rendition.name for r in encoded.renditions],
            "duration_s": float(encoded.duration_s),
            "published_at": time.time(),
        }
        # the switch: until this object is written, players are routed to the previous version
        store.put_bytes(location.pointer_key, json.dumps(pointer).encode(), content_type="application/json",
                        cache_control="no-store")
    except BaseException as exc:
        _discard(store, prefix)
        if isinstance(exc, PackagerError):
            raise
        if isinstance(exc, Exception):
            raise PublishError(f"publishing {location.prefix} v{version} failed: {exc}") from exc
        raise
    segment_count = len(encoded.renditions[0].segments) if encoded.renditions else 0
    log.info("published %s v%d: %d renditions, %d segments each", location.prefix, version,
             len(encoded.renditions), segment_count)
    return PublishedEpisode(
        location=location,
        version=version,
        renditions=tuple(r.rendition.name for r in encoded.renditions),
        segment_count=segment_count,
        duration_s=float(encoded.duration_s),
        key_ids=tuple(sorted(key_ids)),
    )


def _upload_segment(store, prefix, rendition: EncodedRendition, segment, keys: KeySchedule,
                    segments_per_key: int, iv_source, key_uri) -> tuple[str, PlaylistSegment]:
    # every rendition uses the same key for the same period, so a quality switch costs no key fetch
    key = keys.key_for(segment.index // segments_per_key)
    iv = iv_source()
    ciphertext = encrypt_segment(segment.path.read_bytes(), key.key, iv)
    name = segment.path.name
    store.put_bytes(f"{prefix}/{rendition.rendition.name}/{name}", ciphertext,
                    content_type=SEGMENT_TYPE, cache_control=SEGMENT_CACHE)
    return key.key_id, PlaylistSegment(uri=name, duration_s=segment.duration_s, size_bytes=len(ciphertext),
                                       key_uri=key_uri(key.key_id), iv=iv)


def _variant(rendition: EncodedRendition, segments: list[PlaylistSegment]) -> Variant:
    durations = [s.duration_s for s in segments]
    sizes = [s.size_bytes for s in segments]
    return Variant(
        uri=f"{rendition.rendition.name}/{MEDIA_PLAYLIST_NAME}",
        bandwidth_bps=peak_bandwidth(durations, sizes, target_duration(durations)),
        average_bandwidth_bps=average_bandwidth(durations, sizes),
        codecs=rendition.codecs,
        width=rendition.rendition.width,
        height=rendition.rendition.height,
        frame_rate=Fraction(rendition.frame_rate),
    )


def _discard(store: ObjectStore, prefix: str) -> None:
    try:
        store.delete_prefix(prefix + "/")
    except Exception:  # noqa: BLE001 - the store may be the thing that failed; GC finds it later
        log.warning("could not remove the unpublished version %s; it is unreachable and can be collected", prefix)

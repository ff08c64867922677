"""publish(): encrypt segments, write playlists, check them, and switch the episode's live version atomically.

Order matters (PeerTube#6480: half-published episodes): everything goes into a fresh version prefix,
segments first, then media and I-frame playlists, then the master; the version is read back and
verified; only then is the small pointer object that players are routed by written. A failure before
the pointer leaves the previous version playing and the new prefix is discarded.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from fractions import Fraction

from packager.containers.segment_container import INIT_SEGMENT_TYPE, SegmentContainer, segment_container
from packager.encrypt import KeySchedule, SegmentKey, encrypt_segment, new_iv
from packager.errors import LiveVersionChanged, PackagerError, PointerSwitchUncertain, PublishError
from packager.hls.playlist import (
    IFrame,
    IFrameVariant,
    PlaylistSegment,
    Variant,
    average_bandwidth,
    peak_bandwidth,
    render_i_frame_playlist,
    render_master_playlist,
    render_media_playlist,
    target_duration,
    video_codecs,
)
from packager.publishing.pictures import poster_entry, storyboard_entry, upload_poster, upload_storyboard
from packager.publishing.subtitles import check_tracks, upload_caption_track
from packager.publishing.verify import DecodeSegment, verify_version
from packager.publishing.version_manifest import CaptionEntry, VersionManifest, write_manifest
from packager.publishing.versions import POINTER_NAME, EpisodeLocation, next_version, read_pointer
from packager.store import ObjectStore
from pipeline.captions.tracks import CaptionTrack
from pipeline.encode.transcode import EncodedRendition, EncodedSegment, TranscodeResult
from pipeline.pictures.sampler import Poster
from pipeline.pictures.storyboard import Storyboard

__all__ = ["EpisodeLocation", "POINTER_NAME", "PublishedEpisode", "next_version", "publish", "read_pointer",
           "switch_pointer"]

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_CACHE = "public, max-age=31536000, immutable"   # a version's objects never change
MASTER_NAME = "master.m3u8"
MEDIA_PLAYLIST_NAME = "index.m3u8"
I_FRAME_PLAYLIST_NAME = "iframes.m3u8"
_AES_BLOCK_BYTES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedEpisode:
    location: EpisodeLocation
    version: int
    renditions: tuple[str, ...]
    segment_count: int          # per rendition
    duration_s: float
    key_ids: tuple[str, ...]
    # False when a newer version went live while this one was being written: it stays stored, complete
    # and unreferenced, and retention collects it after the grace period
    is_live: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class _UploadedSegment:
    key: SegmentKey
    segment: PlaylistSegment
    i_frame: IFrame


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
    version: int | None = None,
    session_key: bool = False,
    decode_segment: DecodeSegment | None = None,
    switch_guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    captions: Sequence[CaptionTrack] = (),
    poster: Poster | None = None,
    storyboard: Storyboard | None = None,
) -> PublishedEpisode:
    """Encrypt and upload `encoded` as a new version of `location`, verify it, then make it the live one.

    `key_uri(key_id)` gives the EXT-X-KEY URI written into stored playlists (the server personalises it).
    `version` is the prefix to write (default: next_version()); callers that tag keys with their version
    pick it first. `session_key` adds EXT-X-SESSION-KEY for the first key to the master. `decode_segment`
    lets the self-check decode what it decrypted (see verify_version). `switch_guard()` is held while the
    pointer is read and replaced: with concurrent publishers of one episode, pass a lock they all share
    (the service passes a lease in its database) and pass `version` from a shared allocator.
    The pointer never moves back: if a higher version went live meanwhile, this one is left unreferenced
    and the result has is_live=False.
    `captions` become HLS subtitle renditions (packager/publishing/subtitles.py), `poster` and `storyboard` objects
    beside the renditions (packager/publishing/pictures.py); version.json lists them (packager/publishing/version_manifest.py).
    Raises PublishError (VerificationFailed if the self-check fails, CaptionTracksConflict for tracks that
    cannot share a group); on failure the new version's objects are removed and the old version stays live.
    """
    version = next_version(store, location) if version is None else version
    prefix = location.version_prefix(version)
    keys_by_uri: dict[str, bytes] = {}
    key_ids: set[str] = set()
    switching = False
    check_tracks(captions)
    timestamp_map = common_start_pts(encoded.renditions)
    if captions and timestamp_map is None:
        raise PublishError(f"{location.prefix}: the renditions start at different timestamps, so captions cannot "
                           "be timed against all of them (RFC 8216 §6.2.4); transcode again")
    manifest = VersionManifest(
        version=version, media_version=version, duration_s=float(encoded.duration_s),
        timestamp_map_mpegts=timestamp_map, renditions=tuple(r.rendition.name for r in encoded.renditions),
        segment_format="fmp4" if encoded.renditions and encoded.renditions[0].init_path else "ts",
        captions=tuple(caption_entry(track) for track in captions),
        poster=poster_entry(poster) if poster else None,
        storyboard=storyboard_entry(storyboard) if storyboard else None)
    try:
        write_manifest(store, location, manifest)     # first: GC reads references from it (version_manifest.py)
        variants, i_frame_variants = [], []
        with ThreadPoolExecutor(max_workers=upload_workers, thread_name_prefix="upload") as pool:
            for rendition in encoded.renditions:
                container = segment_container(rendition)
                if container.init is not None:
                    # clear: EXT-X-MAP comes before the first EXT-X-KEY, and it holds no samples
                    store.put_bytes(f"{prefix}/{rendition.rendition.name}/{container.init_name}", container.init,
                                    content_type=INIT_SEGMENT_TYPE, cache_control=SEGMENT_CACHE)
                uploaded = list(pool.map(
                    lambda segment: _upload_segment(store, prefix, rendition, segment, keys,
                                                    segments_per_key, iv_source, key_uri, container),
                    rendition.segments,
                ))
                keys_by_uri.update((u.segment.key_uri, u.key.key) for u in uploaded)
                key_ids.update(u.key.key_id for u in uploaded)
                variant, i_frame_variant = _upload_playlists(store, prefix, rendition, uploaded,
                                                             map_uri=container.init_name)
                variants.append(variant)
                i_frame_variants.append(i_frame_variant)
        segment_durations = [segment.duration_s for segment in encoded.renditions[0].segments]
        subtitles = [upload_caption_track(store, prefix, track, segment_durations_s=segment_durations,
                                          timestamp_map_mpegts=timestamp_map) for track in captions]
        if poster:
            upload_poster(store, prefix, poster)
        image_variants = [upload_storyboard(store, prefix, storyboard)] if storyboard else []
        first_key_uri = next(iter(keys_by_uri), None) if session_key else None
        store.put_bytes(f"{prefix}/{MASTER_NAME}",
                        render_master_playlist(variants, i_frame_variants, session_key_uri=first_key_uri,
                                               subtitles=subtitles, image_variants=image_variants).encode(),
                        content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
        verify_version(store, prefix, master_name=MASTER_NAME, keys_by_uri=keys_by_uri,
                       duration_s=float(encoded.duration_s), decode_segment=decode_segment,
                       timestamp_map_mpegts=timestamp_map if captions else None)
        switching = True
        is_live = switch_pointer(store, location, version, media_version=version,
                                 renditions=[r.rendition.name for r in encoded.renditions],
                                 duration_s=float(encoded.duration_s), switch_guard=switch_guard)
    except BaseException as exc:
        if switching and _may_be_live(store, location, version):
            # the pointer write may have landed (S3 can apply a PUT whose answer is lost): deleting
            # this version could break the live episode; retention removes it later if it is not live
            raise PointerSwitchUncertain(
                f"publishing {location.prefix} v{version}: the pointer switch failed ({exc}); v{version} "
                "may be live, so it was kept") from exc
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
        is_live=is_live,
    )


def _may_be_live(store: ObjectStore, location: EpisodeLocation, version: int) -> bool:
    """Whether the pointer names `version`; True when that cannot be read (assume the worst)."""
    try:
        pointer = read_pointer(store, location)
    except Exception:  # noqa: BLE001 - unknown means it may be live
        return True
    return pointer is not None and int(pointer["version"]) == version


def switch_pointer(store: ObjectStore, location: EpisodeLocation, version: int, *, media_version: int,
                   renditions: Sequence[str], duration_s: float,
                   switch_guard: Callable[[], AbstractContextManager[object]],
                   expected_live: int | None = None) -> bool:
    """Make `version` live unless a higher one already is (publishes can finish out of order); whether it did.

    With `expected_live` (a version built from the live one), raise LiveVersionChanged instead when the
    live version is no longer that one: switching would drop what went live meanwhile.
    """
    with switch_guard():
        previous = read_pointer(store, location)
        live = int(previous["version"]) if previous else None
        if expected_live is not None and live != expected_live:
            raise LiveVersionChanged(f"{location.prefix}: v{version} was built from v{expected_live}, but v{live} "
                                     "is live now; build it again from the live version")
        if live is not None and live > version:
            log.warning("%s v%d is complete but v%s went live first; leaving the pointer on the newer version",
                        location.prefix, version, live)
            return False
        pointer = {
            "version": version,
            "master": f"v{version}/{MASTER_NAME}",
            "renditions": list(renditions),
            "duration_s": duration_s,
            "published_at": time.time(),
            # where this version's segments are: itself, or the version it was built from (version_manifest.py)
            "media_version": media_version,
            # players mid-playback keep fetching it; retention keeps it for a grace period
            "previous_version": live,
            "previous_media_version": int(previous.get("media_version", live)) if previous else None,
        }
        # the switch: until this object is written, players are routed to the previous version
        store.put_bytes(location.pointer_key, json.dumps(pointer).encode(), content_type="application/json",
                        cache_control="no-store")
    return True


def common_start_pts(renditions: Sequence[EncodedRendition]) -> int | None:
    """When every rendition's first picture is shown (90 kHz), the X-TIMESTAMP-MAP of captions; None if they differ."""
    starts = {segment_container(r).first_video_pts_90k(r.segments[0].path.read_bytes())
              for r in renditions if r.segments}
    return starts.pop() if len(starts) == 1 else None


def caption_entry(track: CaptionTrack) -> CaptionEntry:
    return CaptionEntry(track_id=track.track_id, language=track.language, name=track.name,
                        is_default=track.is_default, is_forced=track.is_forced, source=track.source,
                        cue_count=len(track.cues))


def _upload_segment(store: ObjectStore, prefix: str, rendition: EncodedRendition, segment: EncodedSegment,
                    keys: KeySchedule, segments_per_key: int, iv_source, key_uri,
                    container: SegmentContainer) -> _UploadedSegment:
    # every rendition uses the same key for the same period, so a quality switch costs no key fetch
    key = keys.key_for(segment.index // segments_per_key)
    iv = iv_source()
    plaintext = segment.path.read_bytes()
    ciphertext = encrypt_segment(plaintext, key.key, iv)
    # the I-frame range: from offset 0 (the segment's IV applies) to the end of the first picture,
    # rounded up to a whole AES block so CBC can decrypt it without the rest of the segment
    picture_end = container.first_picture_end(plaintext)
    i_frame_bytes = min(math.ceil(picture_end / _AES_BLOCK_BYTES) * _AES_BLOCK_BYTES, len(ciphertext))
    name = segment.path.name
    store.put_bytes(f"{prefix}/{rendition.rendition.name}/{name}", ciphertext,
                    content_type=container.content_type, cache_control=SEGMENT_CACHE)
    uri = key_uri(key.key_id)
    return _UploadedSegment(
        key=key,
        segment=PlaylistSegment(uri=name, duration_s=segment.duration_s, size_bytes=len(ciphertext),
                                key_uri=uri, iv=iv),
        i_frame=IFrame(uri=name, duration_s=segment.duration_s, length_bytes=i_frame_bytes, key_uri=uri, iv=iv),
    )


def _upload_playlists(store: ObjectStore, prefix: str, rendition: EncodedRendition,
                      uploaded: list[_UploadedSegment], *, map_uri: str | None) -> tuple[Variant, IFrameVariant]:
    name = rendition.rendition.name
    segments = [u.segment for u in uploaded]
    frames = [u.i_frame for u in uploaded]
    store.put_bytes(f"{prefix}/{name}/{MEDIA_PLAYLIST_NAME}", render_media_playlist(segments, map_uri=map_uri).encode(),
                    content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
    store.put_bytes(f"{prefix}/{name}/{I_FRAME_PLAYLIST_NAME}", render_i_frame_playlist(frames, map_uri=map_uri).encode(),
                    content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
    durations = [s.duration_s for s in segments]
    target_s = target_duration(durations)
    variant = Variant(
        uri=f"{name}/{MEDIA_PLAYLIST_NAME}",
        bandwidth_bps=peak_bandwidth(durations, [s.size_bytes for s in segments], target_s),
        average_bandwidth_bps=average_bandwidth(durations, [s.size_bytes for s in segments]),
        codecs=rendition.codecs,
        width=rendition.rendition.width,
        height=rendition.rendition.height,
        frame_rate=Fraction(rendition.frame_rate),
    )
    i_frame_variant = IFrameVariant(
        uri=f"{name}/{I_FRAME_PLAYLIST_NAME}",
        bandwidth_bps=peak_bandwidth(durations, [f.length_bytes for f in frames], target_s),
        codecs=video_codecs(rendition.codecs),
        width=rendition.rendition.width,
        height=rendition.rendition.height,
    )
    return variant, i_frame_variant


def _discard(store: ObjectStore, prefix: str) -> None:
    try:
        store.delete_prefix(prefix + "/")
    except Exception:  # noqa: BLE001 - the store may be the thing that failed; GC finds it later
        log.warning("could not remove the unpublished version %s; it is unreachable and can be collected", prefix)

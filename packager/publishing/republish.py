"""republish(): a new version of a published episode with other captions or another poster, without re-transcoding.

The new version is built from the live one and switched to atomically, like publish():
    v{new}/version.json             written first: media_version names where the segments are
    v{new}/{rendition}/*.m3u8        the live version's playlists, segment and init URIs pointing at the
                                     media version's objects (../../v{m}/{rendition}/seg_00000.ts)
    v{new}/captions/…                kept tracks copied server-side, new ones written
    v{new}/posters/…, storyboard/…   copied server-side, or the new poster
    v{new}/master.m3u8               re-rendered: same variants, the new subtitle group
then the self-check (every playlist, one segment per rendition decrypted and decoded, the captions'
timestamp map against the video), then the pointer, only if the live version is still the one it was
built from (LiveVersionChanged otherwise: a re-ingest that went live meanwhile is not undone).

Segments are referenced, not copied: a caption edit writes a few kilobytes whatever the episode's
length, keeps the same content keys (no key is re-issued, none rotates under a viewer mid-playback:
the version being watched keeps playing, its playlists and segments untouched), and players' and
CDNs' cached segments stay valid. What that asks of the rest (packager/publishing/version_manifest.py): GC keeps
a media version while any kept version references it, and the server serves its segments.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from fractions import Fraction

import m3u8

from packager.containers.fragmented_mp4 import first_video_presentation_90k
from packager.containers.transport_stream import first_video_pts
from packager.encrypt import decrypt_segment
from packager.errors import EpisodeNotPublished, PackagerError, PublishError
from packager.hls.playlist import IFrameVariant, ImageVariant, SubtitleRendition, Variant, render_master_playlist
from packager.publishing.pictures import POSTERS_DIR, STORYBOARD_DIR, poster_entry, upload_poster
from packager.publishing.publish import (
    MASTER_NAME,
    PLAYLIST_TYPE,
    SEGMENT_CACHE,
    PublishedEpisode,
    caption_entry,
    switch_pointer,
)
from packager.publishing.subtitles import SUBTITLE_PLAYLIST_NAME, check_tracks, track_prefix, upload_caption_track
from packager.publishing.verify import DecodeSegment, resolve, verify_version
from packager.publishing.version_manifest import CaptionEntry, VersionManifest, read_manifest, write_manifest
from packager.publishing.versions import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from pipeline.captions.tracks import CaptionTrack
from pipeline.pictures.sampler import Poster

log = logging.getLogger(__name__)

_MAP_URI = re.compile(r'(#EXT-X-MAP:.*URI=")([^"]*)(")')


class _KeysByUri(Mapping[str, bytes]):
    """The self-check's key lookup, asking the caller's function once per URI."""

    def __init__(self, key_for_uri: Callable[[str], bytes | None]) -> None:
        self._lookup, self._found = key_for_uri, {}

    def __getitem__(self, uri: str) -> bytes:
        if uri not in self._found:
            self._found[uri] = self._lookup(uri)
        if self._found[uri] is None:
            raise KeyError(uri)
        return self._found[uri]

    def __iter__(self):
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


def republish(
    store: ObjectStore,
    location: EpisodeLocation,
    *,
    version: int,
    key_for_uri: Callable[[str], bytes | None],
    add_captions: Sequence[CaptionTrack] = (),
    remove_captions: Sequence[str] = (),
    poster: Poster | None = None,
    decode_segment: DecodeSegment | None = None,
    switch_guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> PublishedEpisode:
    """Publish `version` of `location`: the live version's media with captions added, replaced (same
    language and kind) or removed (`remove_captions`: track ids such as "fr", "fr_forced") and, if
    given, a new poster.

    `key_for_uri` returns the 16 key bytes an EXT-X-KEY URI names (for the self-check). A new default
    track takes the default from the kept ones. Raises EpisodeNotPublished, CaptionTracksConflict,
    LiveVersionChanged, VerificationFailed or PublishError; on failure the new version's objects are
    removed and the live version is untouched.
    """
    pointer = read_pointer(store, location)
    if pointer is None:
        raise EpisodeNotPublished(f"{location.prefix} has no live version; publish the episode first")
    live = int(pointer["version"])
    if version <= live:
        raise PublishError(f"{location.prefix}: v{version} is not above the live v{live}")
    live_prefix, prefix = location.version_prefix(live), location.version_prefix(version)
    live_manifest = read_manifest(store, location, live)
    media_version = live_manifest.media_version if live_manifest else live
    duration_s = float(pointer["duration_s"])
    master = m3u8.loads(store.get_bytes(f"{live_prefix}/{MASTER_NAME}").decode())
    keys = _KeysByUri(key_for_uri)
    replaced = {track.track_id for track in add_captions} | set(remove_captions)
    has_new_default = any(track.is_default for track in add_captions)
    kept = [entry for entry in (live_manifest.captions if live_manifest else ()) if entry.track_id not in replaced]
    kept = [_without_default(entry) if has_new_default else entry for entry in kept]
    check_tracks([*(_as_track(entry) for entry in kept), *add_captions])
    try:
        timestamp_map = (live_manifest.timestamp_map_mpegts if live_manifest
                         else _measure_timestamp_map(store, live_prefix, master, keys))
        if add_captions and timestamp_map is None:
            raise PublishError(f"{location.prefix}: the renditions of v{live} start at different timestamps, so "
                               "captions cannot be timed against all of them; re-ingest the episode")
        manifest = VersionManifest(
            version=version, media_version=media_version, based_on=live, duration_s=duration_s,
            timestamp_map_mpegts=timestamp_map, renditions=tuple(pointer.get("renditions", ())),
            segment_format=live_manifest.segment_format if live_manifest else "ts",
            captions=(*kept, *(caption_entry(track) for track in add_captions)),
            poster=poster_entry(poster) if poster else (live_manifest.poster if live_manifest else None),
            storyboard=live_manifest.storyboard if live_manifest else None)
        write_manifest(store, location, manifest)     # first: it protects the media version from GC
        durations = _copy_media_playlists(store, live_prefix, prefix, master, live == media_version, media_version)
        subtitles = [_copy_track(store, live_prefix, prefix, entry) for entry in kept]
        subtitles += [upload_caption_track(store, prefix, track, segment_durations_s=durations,
                                           timestamp_map_mpegts=timestamp_map) for track in add_captions]
        if poster:
            upload_poster(store, prefix, poster)
        else:
            _copy_tree(store, f"{live_prefix}/{POSTERS_DIR}/", f"{prefix}/{POSTERS_DIR}/")
        _copy_tree(store, f"{live_prefix}/{STORYBOARD_DIR}/", f"{prefix}/{STORYBOARD_DIR}/")
        text = render_master_playlist(*_variants(master), session_key_uri=next(
            (key.uri for key in master.session_keys if key), None), subtitles=subtitles,
            image_variants=_image_variants(master))
        store.put_bytes(f"{prefix}/{MASTER_NAME}", text.encode(), content_type=PLAYLIST_TYPE,
                        cache_control=SEGMENT_CACHE)
        verify_version(store, prefix, master_name=MASTER_NAME, keys_by_uri=keys, duration_s=duration_s,
                       decode_segment=decode_segment, timestamp_map_mpegts=timestamp_map)
        is_live = switch_pointer(store, location, version, media_version=media_version,
                                 renditions=pointer.get("renditions", ()), duration_s=duration_s,
                                 switch_guard=switch_guard, expected_live=live)
    except BaseException as exc:
        # the pointer is written last and only after a successful check, so it cannot name this version yet
        try:
            store.delete_prefix(prefix + "/")
        except Exception:  # noqa: BLE001 - unreachable and collected by GC later
            log.warning("could not remove the unpublished version %s; GC collects it", prefix)
        if isinstance(exc, PackagerError) or not isinstance(exc, Exception):
            raise
        raise PublishError(f"republishing {location.prefix} v{version} from v{live} failed: {exc}") from exc
    log.info("republished %s v%d from v%d (media v%d): %d caption tracks", location.prefix, version, live,
             media_version, len(subtitles))
    return PublishedEpisode(location=location, version=version, renditions=tuple(pointer.get("renditions", ())),
                            segment_count=len(durations), duration_s=duration_s, key_ids=(), is_live=is_live)


def rebase_media_playlist(text: str, rendition_dir: str, media_version: int) -> str:
    """A media or I-frame playlist of the media version, with its segment and EXT-X-MAP URIs pointing at
    that version's objects from any other version's rendition directory (two levels down)."""
    def rebased(uri: str) -> str:
        return uri if "/" in uri else f"../../v{media_version}/{rendition_dir}/{uri}"

    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = rebased(line)
        elif line.startswith("#EXT-X-MAP:"):
            line = _MAP_URI.sub(lambda m: m.group(1) + rebased(m.group(2)) + m.group(3), line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _copy_media_playlists(store: ObjectStore, live_prefix: str, prefix: str, master: m3u8.M3U8,
                          is_media_version: bool, media_version: int) -> list[Fraction]:
    """Write the live version's media and I-frame playlists into `prefix`; the segment durations."""
    durations: list[Fraction] = []
    for uri in [v.uri for v in master.playlists] + [v.uri for v in master.iframe_playlists]:
        text = store.get_bytes(f"{live_prefix}/{uri}").decode()
        if is_media_version:          # else they already point at the media version
            text = rebase_media_playlist(text, posixpath.dirname(uri), media_version)
        store.put_bytes(f"{prefix}/{uri}", text.encode(), content_type=PLAYLIST_TYPE, cache_control=SEGMENT_CACHE)
        if not durations and uri in {v.uri for v in master.playlists}:
            # EXTINF as rendered (microseconds): subtitle playlists get exactly the same text
            durations = [Fraction(str(segment.duration)) for segment in m3u8.loads(text).segments]
    return durations


def _copy_track(store: ObjectStore, live_prefix: str, prefix: str, entry: CaptionEntry) -> SubtitleRendition:
    directory = track_prefix(entry.track_id)
    _copy_tree(store, f"{live_prefix}/{directory}/", f"{prefix}/{directory}/")
    return SubtitleRendition(uri=f"{directory}/{SUBTITLE_PLAYLIST_NAME}", language=entry.language, name=entry.name,
                             is_default=entry.is_default, is_forced=entry.is_forced)


def _copy_tree(store: ObjectStore, source: str, destination: str) -> None:
    for key in store.list_keys(source):
        store.copy(key, destination + key[len(source):])


def _without_default(entry: CaptionEntry) -> CaptionEntry:
    return CaptionEntry(track_id=entry.track_id, language=entry.language, name=entry.name, is_default=False,
                        is_forced=entry.is_forced, source=entry.source, cue_count=entry.cue_count)


def _as_track(entry: CaptionEntry) -> CaptionTrack:
    return CaptionTrack(language=entry.language, name=entry.name, cues=(), is_default=entry.is_default,
                        is_forced=entry.is_forced, source=entry.source)


def _variants(master: m3u8.M3U8) -> tuple[list[Variant], list[IFrameVariant]]:
    variants = [Variant(uri=p.uri, bandwidth_bps=p.stream_info.bandwidth,
                        average_bandwidth_bps=p.stream_info.average_bandwidth, codecs=p.stream_info.codecs,
                        width=p.stream_info.resolution[0], height=p.stream_info.resolution[1],
                        frame_rate=Fraction(str(p.stream_info.frame_rate))) for p in master.playlists]
    i_frames = [IFrameVariant(uri=p.uri, bandwidth_bps=p.iframe_stream_info.bandwidth,
                              codecs=p.iframe_stream_info.codecs, width=p.iframe_stream_info.resolution[0],
                              height=p.iframe_stream_info.resolution[1]) for p in master.iframe_playlists]
    return variants, i_frames


def _image_variants(master: m3u8.M3U8) -> list[ImageVariant]:
    return [ImageVariant(uri=p.uri, bandwidth_bps=p.image_stream_info.bandwidth,
                         tile_width=p.image_stream_info.resolution[0], tile_height=p.image_stream_info.resolution[1])
            for p in master.image_playlists]


def _measure_timestamp_map(store: ObjectStore, prefix: str, master: m3u8.M3U8,
                           keys: Mapping[str, bytes]) -> int | None:
    """For a version published before version.json: the first picture's time in every rendition, if they agree."""
    starts = set()
    for variant in master.playlists:
        playlist = m3u8.loads(store.get_bytes(f"{prefix}/{variant.uri}").decode())
        segment = playlist.segments[0]
        plaintext = decrypt_segment(store.get_bytes(resolve(prefix, segment.uri, variant.uri)),
                                    keys[segment.key.uri], bytes.fromhex(segment.key.iv[2:]))
        if playlist.segment_map:
            init = store.get_bytes(resolve(prefix, playlist.segment_map[0].uri, variant.uri))
            starts.add(first_video_presentation_90k(init, plaintext))
        else:
            starts.add(first_video_pts(plaintext))
    return starts.pop() if len(starts) == 1 else None

"""Changing a published episode without re-transcoding: caption tracks added, replaced or removed, the
poster taken at another time. Each change is a new version built from the live one by
packager/publishing/republish.py (its playlists name the same encrypted segments and keys, a few kilobytes
written), self-checked, and switched to atomically; a refusal or failure leaves the live version as it
was, and viewers mid-playback keep playing the version they loaded (its playlists and segments stay;
the server serves the live and previous versions and the media versions they play).

Synchronous and blocking like ingest_episode(): the CLI calls it directly, the catalog API off the event
loop. Who may change an episode (its creator, the operator) is the caller's check.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import m3u8

from drm.catalog.catalog import Catalog
from drm.ids import check_id
from drm.keystore import KeyStore
from packager.errors import EpisodeNotPublished
from packager.publishing.publish import MASTER_NAME, PublishedEpisode, next_version
from packager.publishing.republish import republish
from packager.publishing.seek import read_segment_at
from packager.publishing.version_manifest import VersionManifest, read_manifest
from packager.publishing.versions import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from pipeline.captions.tracks import CaptionReport, read_captions
from pipeline.encode.playback import decode_segment
from pipeline.errors import PictureTimeOutOfRange
from pipeline.pictures.thumbnail import poster_from_segment
from server.config import Settings
from server.publishing.episode import KEY_URI_PATH, collect_after_publish
from server.publishing.versions import EpisodeVersions

log = logging.getLogger(__name__)


class CaptionsRejected(Exception):
    """A caption file judged unfit: every reason, each with a stable code (the first is the error's code)."""

    http_status = 422

    def __init__(self, report: CaptionReport) -> None:
        first = report.issues[0]
        more = f" (and {len(report.issues) - 1} more reasons)" if len(report.issues) > 1 else ""
        super().__init__(f"{first.message}{more}; {first.how_to_fix}")
        self.code = first.code
        self.report = report
        # RFC 9457 extension members: every reason, so a creator's app can show them all
        self.problem_extensions = {"issues": [{"code": i.code, "message": i.message, "how_to_fix": i.how_to_fix}
                                              for i in report.issues]}

    def __reduce__(self):
        return type(self), (self.report,)


class UnknownCaptionTrack(Exception):
    code = "caption_track_not_found"
    http_status = 404

    def __init__(self, track_id: str, present: list[str]) -> None:
        listed = ", ".join(present) or "none"
        super().__init__(f"the episode has no caption track {track_id!r} (tracks: {listed}); "
                         "name a track as `series captions list` shows it, e.g. fr or fr_forced")
        self.track_id, self.present = track_id, present

    def __reduce__(self):
        return type(self), (self.track_id, self.present)


@dataclass(frozen=True, slots=True, kw_only=True)
class EditResult:
    published: PublishedEpisode
    manifest: VersionManifest             # what the new version holds
    notes: tuple[str, ...] = ()           # what was changed on the way in (encoding converted, cues cut)


class EpisodeEditor:
    """Caption and poster changes of published episodes, on the service's store, keys and catalog."""

    def __init__(self, *, settings: Settings, store: ObjectStore, keystore: KeyStore, catalog: Catalog,
                 versions: EpisodeVersions | None) -> None:
        self.settings, self.store, self.keystore, self.catalog, self.versions = (
            settings, store, keystore, catalog, versions)

    def live_manifest(self, series_id: str, episode_id: str) -> VersionManifest:
        """What the live version holds (captions, poster, storyboard). Raises UnknownEpisode,
        EpisodeNotPublished, StoreError."""
        location = self._location(series_id, episode_id)
        return self._live(location)[1]

    def add_captions(self, series_id: str, episode_id: str, data: bytes, *, language: str, name: str | None = None,
                     is_default: bool = False, is_forced: bool = False) -> EditResult:
        """Publish the episode with the track in `data` (WebVTT or SRT) added, or replacing the track of the
        same language and kind. Raises CaptionsRejected (every reason), CaptionTracksConflict (a name or
        default clash), EpisodeNotPublished, LiveVersionChanged, PublishError, StoreError."""
        location = self._location(series_id, episode_id)
        pointer, _ = self._live(location)
        report = read_captions(data, language=language, duration_s=float(pointer["duration_s"]), name=name,
                               is_default=is_default, is_forced=is_forced, rules=self.settings.pictures.caption_rules)
        if not report.is_acceptable:
            raise CaptionsRejected(report)
        return self._republish(location, notes=report.notes, add_captions=[report.track])

    def remove_captions(self, series_id: str, episode_id: str, track_id: str) -> EditResult:
        """Publish the episode without caption track `track_id` ("fr", "fr_forced"). Raises UnknownCaptionTrack,
        EpisodeNotPublished, LiveVersionChanged, PublishError, StoreError."""
        location = self._location(series_id, episode_id)
        _, manifest = self._live(location)
        present = [entry.track_id for entry in manifest.captions]
        if track_id not in present:
            raise UnknownCaptionTrack(track_id, present)
        return self._republish(location, remove_captions=[track_id])

    def set_poster(self, series_id: str, episode_id: str, at_s: float) -> EditResult:
        """Publish the episode with its poster taken at `at_s` seconds, from the largest rendition's
        segment there. Raises PictureTimeOutOfRange, EpisodeNotPublished, LiveVersionChanged, PublishError."""
        location = self._location(series_id, episode_id)
        pointer, _ = self._live(location)
        duration_s = float(pointer["duration_s"])
        if not 0 <= at_s < duration_s:
            raise PictureTimeOutOfRange(at_s, duration_s)
        prefix = location.version_prefix(int(pointer["version"]))
        master = m3u8.loads(self.store.get_bytes(f"{prefix}/{MASTER_NAME}").decode())
        largest = max(master.playlists, key=lambda variant: variant.stream_info.resolution or (0, 0))
        found = read_segment_at(self.store, prefix, largest.uri, at_s, key_for_uri=self._key_for(location))
        poster = poster_from_segment(found.plaintext, at_s=at_s, segment_start_s=found.start_s, init=found.init)
        return self._republish(location, poster=poster)

    def _location(self, series_id: str, episode_id: str) -> EpisodeLocation:
        check_id("series_id", series_id)
        check_id("episode_id", episode_id)
        self.catalog.get_episode(series_id, episode_id)        # UnknownEpisode, deleted ones included
        return EpisodeLocation(series_id=series_id, episode_id=episode_id)

    def _live(self, location: EpisodeLocation) -> tuple[dict, VersionManifest]:
        pointer = read_pointer(self.store, location)
        if pointer is None:
            raise EpisodeNotPublished(f"episode {location.episode_id} of series {location.series_id} has no live "
                                      "version yet; ingest it first")
        live = int(pointer["version"])
        manifest = read_manifest(self.store, location, live) or VersionManifest(
            version=live, media_version=live, duration_s=float(pointer["duration_s"]), timestamp_map_mpegts=None)
        return pointer, manifest

    def _key_for(self, location: EpisodeLocation):
        prefix = KEY_URI_PATH.split("{key_id}")[0]
        return lambda uri: self.keystore.episode_key(uri.split("?", 1)[0].removeprefix(prefix),
                                                     location.series_id, location.episode_id)

    def _republish(self, location: EpisodeLocation, *, notes: tuple[str, ...] = (), **change) -> EditResult:
        store, versions = self.store, self.versions
        version = versions.allocate(store, location) if versions else next_version(store, location)
        published = republish(store, location, version=version, key_for_uri=self._key_for(location),
                              decode_segment=decode_segment,
                              switch_guard=(lambda: versions.switch_lock(location)) if versions
                              else contextlib.nullcontext, **change)
        if published.is_live:
            self.catalog.mark_published(location.series_id, location.episode_id, version=published.version,
                                        duration_s=published.duration_s, renditions=published.renditions)
        collect_after_publish(store, self.keystore, location, self.settings)
        manifest = read_manifest(store, location, published.version)
        log.info("%s: v%d published from the live version (%s)", location.prefix, published.version,
                 ", ".join(sorted(change)))
        return EditResult(published=published, manifest=manifest, notes=tuple(notes))

"""version.json: what one published version holds, written first into its prefix.

    v{n}/version.json   {"version", "media_version", "based_on", "duration_s", "timestamp_map_mpegts",
                         "captions": [...], "poster": {...}, "storyboard": {...}}

`media_version` is the version whose prefix holds the encrypted segments (and fMP4 init segments) the
playlists of this version play: itself after a transcode; an older version when this one was built
from the live one without re-transcoding (new captions, a new poster: packager/publishing/republish.py). Such a
version's media playlists name those segments by relative URI (../../v{m}/{rendition}/seg_00000.ts),
so nothing is copied, and
- retention keeps a media version as long as any kept version names it (packager/publishing/retention.py);
- the server serves segments of a version that is the live or previous version's media version
  (the pointer carries both: "media_version", "previous_media_version").
Written before anything else, so even a version still being written protects what it references.
Versions published before this file existed have none: they are their own media version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from packager.errors import ObjectMissing
from packager.publishing.versions import EpisodeLocation
from packager.store import ObjectStore

MANIFEST_NAME = "version.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionEntry:
    track_id: str                 # directory under captions/: "fr", "fr_forced"
    language: str
    name: str
    is_default: bool
    is_forced: bool
    source: str                   # "upload" or "embedded"
    cue_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PosterEntry:
    time_s: float
    is_chosen: bool               # named by the creator, or picked by score
    images: tuple[dict, ...]      # {"width", "height", "format", "name"} (name under posters/)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryboardEntry:
    vtt_name: str                 # under storyboard/
    playlist_name: str            # the image media playlist, under storyboard/
    sheets: tuple[str, ...]
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    interval_s: int
    tile_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionManifest:
    version: int
    media_version: int
    duration_s: float
    timestamp_map_mpegts: int | None      # X-TIMESTAMP-MAP MPEGTS of this media; None if renditions disagree
    based_on: int | None = None           # the live version a republish started from
    captions: tuple[CaptionEntry, ...] = ()
    poster: PosterEntry | None = None
    storyboard: StoryboardEntry | None = None
    segment_format: str = "ts"
    renditions: tuple[str, ...] = field(default=())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> VersionManifest:
        raw = json.loads(data)
        raw["captions"] = tuple(CaptionEntry(**entry) for entry in raw.get("captions", ()))
        if raw.get("poster"):
            raw["poster"] = PosterEntry(**{**raw["poster"], "images": tuple(raw["poster"]["images"])})
        if raw.get("storyboard"):
            raw["storyboard"] = StoryboardEntry(**{**raw["storyboard"], "sheets": tuple(raw["storyboard"]["sheets"])})
        raw["renditions"] = tuple(raw.get("renditions", ()))
        return cls(**raw)


def write_manifest(store: ObjectStore, location: EpisodeLocation, manifest: VersionManifest) -> None:
    store.put_bytes(f"{location.version_prefix(manifest.version)}/{MANIFEST_NAME}", manifest.to_json(),
                    content_type="application/json", cache_control="no-store")


def read_manifest(store: ObjectStore, location: EpisodeLocation, version: int) -> VersionManifest | None:
    """The version's manifest, or None for a version published before manifests (its own media). Raises StoreError."""
    try:
        return VersionManifest.from_json(store.get_bytes(f"{location.version_prefix(version)}/{MANIFEST_NAME}"))
    except ObjectMissing:
        return None


def media_version_of(store: ObjectStore, location: EpisodeLocation, version: int) -> int:
    """The version whose prefix holds `version`'s segments. Raises StoreError."""
    manifest = read_manifest(store, location, version)
    return manifest.media_version if manifest else version

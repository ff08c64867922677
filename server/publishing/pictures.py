"""What an ingest publishes besides the video: the poster and storyboard the transcode's decode sampled,
the upload's embedded subtitle streams, and the creator's caption tracks carried over from the live
version; and what the job report says of them.

A creator's uploaded caption tracks outlive a re-ingest (a corrected cut of the episode keeps its
captions): each is read back from the live version's whole-track file (captions/{id}/captions.vtt) and
judged again against the new duration; a track that no longer fits (cues past the new end) is left out
and the report says why. An uploaded track wins over an embedded stream of the same language and kind
(the creator attached it on purpose). Pictures never cost an episode its publication: should sampling
fail, the episode goes live without a poster and storyboard and the report says why; only a poster
time the creator named and the episode does not reach fails the ingest.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from fractions import Fraction

from packager.publishing.pictures import poster_entry, storyboard_entry
from packager.publishing.subtitles import WHOLE_TRACK_NAME, track_prefix
from packager.publishing.version_manifest import PosterEntry, StoryboardEntry, VersionManifest, read_manifest
from packager.publishing.versions import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from pipeline.captions.subtitles import extract_subtitles
from pipeline.captions.tracks import CaptionRules, CaptionTrack, read_captions
from pipeline.errors import PictureError, PictureTimeOutOfRange, UnreadableMedia
from pipeline.pictures.sampler import PictureSampler, Poster
from pipeline.pictures.storyboard import Storyboard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeExtras:
    captions: tuple[CaptionTrack, ...] = ()
    poster: Poster | None = None
    storyboard: Storyboard | None = None
    report: dict = field(default_factory=dict)     # {"pictures": ..., "captions": ...} for the job report


def gather_extras(source: str | os.PathLike, duration_s: Fraction, sampler: PictureSampler, store: ObjectStore,
                  location: EpisodeLocation, rules: CaptionRules) -> EpisodeExtras:
    """The pictures `sampler` saw during the transcode, the upload's subtitle streams and the carried-over
    caption tracks, for an episode whose pictures last `duration_s`.

    Raises PictureTimeOutOfRange when the creator's poster time is past the decoded end; StoreError when
    the live version's tracks cannot be read (the job is retried: dropping them silently would lose them).
    """
    poster, storyboard, pictures_report = _pictures(sampler, duration_s)
    try:
        embedded = extract_subtitles(source, duration_s=float(duration_s), rules=rules)
        tracks, skipped = list(embedded.tracks), [_skipped_json(s) for s in embedded.as_dict()["skipped"]]
    except UnreadableMedia as exc:
        log.warning("%s: subtitle streams not read: %s", location.prefix, exc)
        tracks, skipped = [], [{"source": "embedded", "reason": f"the subtitle streams could not be read: {exc}"}]
    carried, not_carried = carried_captions(store, location, duration_s=float(duration_s), rules=rules)
    carried_ids = {track.track_id for track in carried}
    for track in tracks:
        if track.track_id in carried_ids:
            skipped.append({"source": "embedded", "language": track.language, "forced": track.is_forced,
                            "reason": "the creator's uploaded track of this language and kind is kept instead"})
    tracks = [track for track in tracks if track.track_id not in carried_ids]
    if any(track.is_default for track in carried):
        tracks = [replace(track, is_default=False) for track in tracks]
    captions = _unique_names([*carried, *tracks])
    report = {"pictures": pictures_report, "captions": {
        "tracks": [track_json(track) for track in captions], "skipped": [*skipped, *not_carried]}}
    return EpisodeExtras(captions=tuple(captions), poster=poster, storyboard=storyboard, report=report)


def track_json(track: CaptionTrack) -> dict:
    return {"track_id": track.track_id, "language": track.language, "name": track.name, "default": track.is_default,
            "forced": track.is_forced, "source": track.source, "cues": len(track.cues)}


def manifest_json(manifest: VersionManifest) -> dict:
    """What a published version holds besides its renditions, for the creator's API and `series captions list`."""
    return {
        "version": manifest.version, "media_version": manifest.media_version,
        "captions": [{"track_id": entry.track_id, "language": entry.language, "name": entry.name,
                      "default": entry.is_default, "forced": entry.is_forced, "source": entry.source,
                      "cues": entry.cue_count} for entry in manifest.captions],
        "poster": _poster_json(manifest.poster) if manifest.poster else None,
        "storyboard": _storyboard_json(manifest.storyboard) if manifest.storyboard else None,
    }


def _poster_json(entry: PosterEntry) -> dict:
    return {"time_s": round(entry.time_s, 3), "chosen_by": "creator" if entry.is_chosen else "score",
            "images": [{key: image[key] for key in ("width", "height", "format")} for image in entry.images]}


def _storyboard_json(entry: StoryboardEntry) -> dict:
    return {"sheets": len(entry.sheets), "tiles": entry.tile_count, "interval_s": entry.interval_s,
            "tile_width": entry.tile_width, "tile_height": entry.tile_height}


def _pictures(sampler: PictureSampler, duration_s: Fraction) -> tuple[Poster | None, Storyboard | None, dict]:
    try:
        pictures = sampler.finish(duration_s)
    except PictureTimeOutOfRange:
        raise
    except PictureError as exc:
        log.warning("no poster or storyboard: %s", exc)
        return None, None, {"poster": None, "storyboard": None, "error": {"code": exc.code, "message": str(exc)}}
    return pictures.poster, pictures.storyboard, {
        "poster": _poster_json(poster_entry(pictures.poster)),
        "storyboard": _storyboard_json(storyboard_entry(pictures.storyboard))}


def carried_captions(store: ObjectStore, location: EpisodeLocation, *, duration_s: float,
                     rules: CaptionRules) -> tuple[list[CaptionTrack], list[dict]]:
    """The creator's uploaded tracks of the live version that still fit an episode of `duration_s`, and
    what was left out and why. Raises StoreError."""
    pointer = read_pointer(store, location)
    if pointer is None:
        return [], []
    live = int(pointer["version"])
    manifest = read_manifest(store, location, live)
    kept, left = [], []
    for entry in (manifest.captions if manifest else ()):
        if entry.source != "upload":
            continue        # an embedded track belongs to the upload it came from
        key = f"{location.version_prefix(live)}/{track_prefix(entry.track_id)}/{WHOLE_TRACK_NAME}"
        report = read_captions(store.get_bytes(key), language=entry.language, duration_s=duration_s,
                               name=entry.name, is_default=entry.is_default, is_forced=entry.is_forced, rules=rules)
        if report.is_acceptable:
            kept.append(report.track)
        else:
            reasons = "; ".join(f"{issue.message} [{issue.code}]" for issue in report.issues)
            left.append({"source": "upload", "language": entry.language, "forced": entry.is_forced,
                         "reason": f"the track of v{live} does not fit the new upload: {reasons}; add it again "
                                   "corrected with `series captions add`"})
    return kept, left


def _unique_names(tracks: list[CaptionTrack]) -> list[CaptionTrack]:
    """Players list tracks by name, so two alike (an embedded "English" beside an uploaded one) get told apart."""
    seen: set[str] = set()
    named = []
    for track in tracks:
        name = track.name
        if name in seen:
            name = f"{track.name} ({track.track_id})"
        seen.add(name)
        named.append(track if name == track.name else replace(track, name=name))
    return named


def _skipped_json(skipped: dict) -> dict:
    return {"source": "embedded", **skipped}


"""ingest_episode(): validate → transcode → keys → encrypt and publish, for one uploaded episode.

Synchronous and blocking (minutes of CPU): the CLI calls it directly, the service from a worker.
A rejected or failed ingest publishes nothing and leaves no new keys behind. The series must exist
in the catalog and have room (80 episodes at most); the episode is registered there when it goes live.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from drm.catalog.catalog import Catalog
from drm.catalog.eligibility import CreatorRegistry
from drm.ids import check_id
from drm.keystore import ContentKey, KeyStore
from packager.encrypt import SegmentKey
from packager.errors import PointerSwitchUncertain
from packager.publishing.publish import EpisodeLocation, PublishedEpisode, next_version, publish
from packager.store import ObjectStore
from pipeline.encode.ladder import LadderMode
from pipeline.encode.playback import decode_segment
from pipeline.encode.transcode import DecodeDamage, TranscodeProgress, TranscodeResult, transcode
from pipeline.errors import MediaOverLimit, MediaRejected
from pipeline.inspect.validate import (
    Issue,
    ValidationReport,
    check_decode_errors,
    check_duration,
    format_duration,
    validate,
)
from pipeline.per_title.decision import LadderPlan, plan_ladder_for
from pipeline.pictures.sampler import PictureSampler
from server.config import Settings
from server.publishing.admission import check_admission
from server.publishing.garbage import collect_garbage
from server.publishing.pictures import EpisodeExtras, gather_extras
from server.publishing.versions import EpisodeVersions
from server.publishing.watermarking import WatermarkPlan, watermark_plan

log = logging.getLogger(__name__)

KEY_URI_PATH = "/v1/keys/{key_id}"

# a decoded duration this much shorter than the header's means the upload was cut off
TRUNCATION_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class EpisodeKeys:
    """drm's content keys as the packager's KeySchedule: one key per rotation period."""

    keys: tuple[ContentKey, ...]

    def key_for(self, period: int) -> SegmentKey:
        key = self.keys[period]
        return SegmentKey(key_id=key.key_id, key=key.key)


def transcode_report(plan: LadderPlan, encoded: TranscodeResult) -> dict:
    """The ladder and quality part of an ingest's report (`series ingest --json`, a published job's report):
    the ladder's decision (fixed, or per-title with each candidate rung kept or dropped and what each kept
    rung measured), each rung's sampled PSNR/SSIM, and quality warnings. Reads the encoded segments' sizes,
    so it is made while they exist."""
    return {"ladder": plan.as_dict(encoded),
            "quality": [r.quality.as_dict() for r in encoded.renditions if r.quality is not None],
            "quality_warnings": list(encoded.quality_warnings)}


def key_uri(key_id: str) -> str:
    return KEY_URI_PATH.format(key_id=key_id)


def ingest_episode(
    source: str | Path,
    *,
    series_id: str,
    episode_id: str,
    settings: Settings,
    store: ObjectStore,
    keystore: KeyStore,
    catalog: Catalog,
    is_free_preview: bool | None = None,
    progress: Callable[[str, float], None] | None = None,
    transcode_progress: Callable[[TranscodeProgress], None] | None = None,
    on_report: Callable[[dict], None] | None = None,
    versions: EpisodeVersions | None = None,
    creators: CreatorRegistry | None = None,
    on_version: Callable[[int], None] | None = None,
    before_switch: Callable[[], None] | None = None,
    poster_at_s: float | None = None,
) -> PublishedEpisode:
    """Publish `source` as the new live version of the episode and register it in the catalog.

    `is_free_preview` sets the episode's flag (None keeps it; a new episode is not a preview).
    `progress` gets (stage, fraction); `transcode_progress` the transcode's speed and ETA as well;
    `on_report` gets transcode_report() (the ladder chosen and why, and each rung's sampled quality) with
    what was made besides the video: "pictures" (poster, storyboard) and "captions" (tracks published,
    embedded streams skipped and why), see server/publishing/pictures.py.
    `poster_at_s` names the poster's time (seconds); None picks the frame by score.
    An episode of a watermarked series is encoded with A/B variants of 2 s segments and a fresh seed
    (server/publishing/watermarking.py); the flag is read here, once.
    `versions` allocates the version and guards the pointer switch, so concurrent ingests of one episode
    (other jobs, other service instances, the CLI) never share a prefix; None reads the store (one writer).

    `creators`, when given, must still list the series' creator as eligible (check_admission).

    A job's run passes its fences: `on_version(version)` hears the version allocated, before anything of it
    is written (the job records it, so a re-run can tell it went live); `before_switch()` runs while the
    pointer-switch lease is held, just before the switch, and raises to stop a run that was superseded or
    cancelled meanwhile (the version is then discarded, its keys deleted, nothing went live).

    Raises MediaRejected (with the full report) for unacceptable media; PictureTimeOutOfRange for a
    poster time outside the episode (before transcoding when the header shows it); UnknownSeries,
    EpisodeLimitReached, CreatorNotEligible, SeriesNotSellable, WatermarkUnavailable or InvalidField
    (duration) before any transcoding; TranscodeError,
    PublishError, StoreError or DrmError otherwise. Nothing is published unless everything succeeded.
    """
    check_id("series_id", series_id)
    check_id("episode_id", episode_id)
    # every series rule again (the API checked them before queueing; the series may have filled up since),
    # and before judging the media: an unknown series fails fast
    series = check_admission(catalog, creators, series_id, episode_id,
                             can_watermark=settings.watermark.is_configured)
    # read once: a series switched to (or from) watermarking meanwhile changes the next ingest, not this one
    watermark = watermark_plan(settings, series_id, is_watermarked=series.watermark)
    # no decode pass here: the transcode decodes every frame anyway, and check_decoded judges that
    report = validate(source, settings.rules, decode=False)
    if not report.is_acceptable:
        raise MediaRejected(report)
    # the creator's poster time is checked against the header's duration before minutes of transcoding
    sampler = PictureSampler(expected_duration_s=float(report.duration_s), poster_time_s=poster_at_s)
    # re-ingesting an existing episode takes no new slot; a new one holds its slot from here on
    is_new = catalog.reserve_episode(series_id, episode_id, duration_s=float(report.duration_s),
                                     is_free_preview=is_free_preview)
    try:
        published = _transcode_and_publish(source, report, series_id, episode_id, settings, store, keystore,
                                           progress, transcode_progress, on_report, versions, sampler,
                                           on_version, before_switch, watermark)
    except PointerSwitchUncertain:
        raise       # the episode may be live: it keeps its slot
    except BaseException:
        if is_new:
            catalog.release_episode(series_id, episode_id)
        raise
    # live from here on: a failure to record it must not give its slot back
    if published.is_live:   # else a newer ingest went live first and recorded itself
        catalog.mark_published(series_id, episode_id, version=published.version,
                               duration_s=float(published.duration_s), is_free_preview=is_free_preview,
                               renditions=published.renditions)
    if progress:
        progress("published", 1.0)
    return published


def _transcode_and_publish(source, report: ValidationReport, series_id: str, episode_id: str,
                           settings: Settings, store: ObjectStore, keystore: KeyStore,
                           progress: Callable[[str, float], None] | None,
                           transcode_progress: Callable[[TranscodeProgress], None] | None,
                           on_report: Callable[[dict], None] | None,
                           versions: EpisodeVersions | None, sampler: PictureSampler,
                           on_version: Callable[[int], None] | None = None,
                           before_switch: Callable[[], None] | None = None,
                           watermark: WatermarkPlan | None = None) -> PublishedEpisode:
    video = report.info.video
    ladder = watermark.ladder if watermark else settings.ladder
    segments_per_key = watermark.segments_per_key if watermark else settings.segments_per_key
    if progress and ladder.mode == LadderMode.PER_TITLE:
        progress("validating", 0.5)     # the per-title analysis: a few probe encodes before the transcode
    plan = plan_ladder_for(source, video.display_width, video.display_height, ladder)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="ingest-") as work:
        try:
            encoded = transcode(source, list(plan.renditions), work, ladder,
                                progress=(lambda done: progress("transcoding", done)) if progress else None,
                                on_progress=transcode_progress, segment_format=settings.hls_segment_format,
                                frame_limits=settings.rules.frame_limits, frame_observer=sampler,
                                watermark=watermark.spec if watermark else None)
        except MediaOverLimit as exc:   # this decode is the validation decode: a rejection, not a failure
            raise MediaRejected(replace(report, issues=(
                Issue(code=exc.code, message=exc.message, how_to_fix=exc.how_to_fix),))) from exc
        for warning in encoded.quality_warnings:
            log.warning("%s/%s: %s", series_id, episode_id, warning)
        if progress:
            progress("packaging", 0.0)
        check_decoded(report, float(encoded.duration_s), settings, encoded.damage)
        location = EpisodeLocation(series_id=series_id, episode_id=episode_id)
        extras: EpisodeExtras = gather_extras(source, encoded.duration_s, sampler, store, location,
                                              settings.pictures.caption_rules)
        if on_report:
            on_report({**transcode_report(plan, encoded), **extras.report})
        segment_count = len(encoded.renditions[0].segments)
        periods = math.ceil(segment_count / segments_per_key)
        # the version is chosen before the keys so that they are recorded as its keys (for GC)
        version = versions.allocate(store, location) if versions else next_version(store, location)
        if on_version:
            on_version(version)
        keys = keystore.create_keys(series_id, episode_id, periods, version=version)
        try:
            if progress:
                progress("publishing", 0.0)     # may raise (a superseded job): the keys go below
            published = publish(
                encoded,
                store,
                EpisodeKeys(tuple(keys)),
                location,
                key_uri=key_uri,
                segments_per_key=segments_per_key,
                version=version,
                session_key=settings.hls_session_key,
                decode_segment=decode_segment,   # the self-check decodes with PyAV, which packager may not import
                switch_guard=lambda: _fenced_switch(versions, location, before_switch),
                captions=extras.captions,
                poster=extras.poster,
                storyboard=extras.storyboard,
            )
        except PointerSwitchUncertain:
            raise       # the version may be live: its keys stay (retention removes them if it is not)
        except BaseException:
            keystore.delete_keys([key.key_id for key in keys])
            raise
    collect_after_publish(store, keystore, location, settings)
    return published


@contextlib.contextmanager
def _fenced_switch(versions: EpisodeVersions | None, location: EpisodeLocation,
                   before_switch: Callable[[], None] | None) -> Iterator[None]:
    """The pointer switch's guard: the shared lease (when `versions` is given), then the caller's fence."""
    with versions.switch_lock(location) if versions else contextlib.nullcontext():
        if before_switch:
            before_switch()
        yield


def collect_after_publish(store: ObjectStore, keystore: KeyStore, location: EpisodeLocation,
                           settings: Settings) -> None:
    """Collect the episode's superseded versions after a publish; never raises (`series gc` retries)."""
    # the episode is live: a failed clean-up must not fail the ingest; `series gc` retries later
    try:
        collect_garbage(store, keystore, grace_s=settings.gc_grace_s, locations=[location])
    except Exception:  # noqa: BLE001
        log.warning("garbage collection after publishing %s failed; run `series gc`", location.prefix,
                    exc_info=True)


def check_decoded(report: ValidationReport, decoded_s: float, settings: Settings,
                  damage: DecodeDamage = DecodeDamage()) -> None:
    """Judge what the decoder actually found, not what the header promised: the duration of the
    pictures, and damaged video (the same `decode_errors` rule as `series validate`)."""
    issues = list(check_duration(decoded_s, settings.rules))
    issues += check_decode_errors(damage.count, damage.at_tail, damage.first_s)
    info = report.info
    # the video stream's own duration: audio running past the last picture is not a cut-off upload
    header_s = (info.video.header_duration_s or info.header_duration_s) if info and info.video else None
    if header_s and decoded_s < header_s - TRUNCATION_TOLERANCE_S:
        issues.insert(0, Issue(
            code="truncated",
            message=(f"The file says it lasts {format_duration(header_s)} but its pictures end at "
                     f"{format_duration(decoded_s)}; the upload was probably cut off"),
            how_to_fix="upload the complete file again",
        ))
    if issues:
        raise MediaRejected(replace(report, issues=tuple(issues)))

"""trace_leak(): which recorded playback session, if any, a leaked copy of a watermarked episode came from.

    1. the episode version(s) to compare with: the one named, or, when none is, every watermarked episode
       version that has recorded sessions, each tried by reading the leak against its reference (a leak that
       does not match an episode's pictures in time is skipped: that costs no decode, the leak's first pass
       is shared) and the version whose sessions explain it best kept;
    2. the leak's soft A/B value per segment (pipeline/watermark read_leak), against that version's reference;
    3. the candidates: every session recorded for that version (drm/access/watermark_sessions.py), each with its
       bits recomputed from the service's secret (session_bits);
    4. decide(): a session is named only when its p-value, corrected for the number of candidates (every
       session of every version the leak matched), is below `false_accusation` (1e-6 by default); otherwise
       the verdict is "undecided", with why.

A version's reference lives under its prefix (packager/publishing/watermark_variants.py), and is kept beside
the versions when `series gc` removes the version (packager/publishing/retention.py): leaks of superseded
versions stay traceable until the episode itself is deleted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from drm.access.watermark_sessions import WatermarkSession
from packager.errors import ObjectMissing
from packager.publishing.version_manifest import read_manifest
from packager.publishing.versions import EpisodeLocation
from packager.publishing.watermark_variants import archived_reference_key
from pipeline.watermark import (
    DEFAULT_FALSE_ACCUSATION,
    LeakDoesNotMatch,
    LeakReading,
    LeakSignatures,
    LeakTooShort,
    Verdict,
    WatermarkReference,
    decide,
    leak_signatures,
    read_leak,
    reference_grid,
    session_bits,
)
from server.config.watermark import WatermarkSettings, WatermarkUnavailable
from server.services import Services

log = logging.getLogger(__name__)

IDENTIFIED, UNDECIDED = "identified", "undecided"


@dataclass(frozen=True, slots=True, kw_only=True)
class TracedCandidate:
    viewer_id: str
    session_id: str
    payment_id: str           # the entitlement's reference when the session started: a purchase's payment id
    source: str               # purchase, comp, gift or free_preview
    confidence: float         # 1 - p_value
    p_value: float            # corrected for the number of candidates
    segments_read: int
    segments_agreeing: int
    is_accused: bool          # p_value below the trace's false-accusation bound


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    is_identified: bool
    reason: str                                   # why undecided; empty when identified
    false_accusation: float
    series_id: str | None = None                  # the episode version the leak was compared with
    episode_id: str | None = None
    version: int | None = None
    candidates: tuple[TracedCandidate, ...] = ()  # best first
    segments_read: int = 0
    offset_s: float | None = None                 # episode time of the leak's first frame
    match: float | None = None                    # temporal match of the leak to the episode, 0..1
    session_count: int = 0                        # recorded sessions compared

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": IDENTIFIED if self.is_identified else UNDECIDED,
            "candidates": [{"viewer_id": c.viewer_id, "session_id": c.session_id, "confidence": c.confidence,
                            "p_value": c.p_value, "payment_id": c.payment_id or None, "source": c.source,
                            "segments_read": c.segments_read, "segments_agreeing": c.segments_agreeing,
                            "accused": c.is_accused} for c in self.candidates],
            "reason": self.reason or None,
            "series_id": self.series_id, "episode_id": self.episode_id, "version": self.version,
            "segments_read": self.segments_read, "offset_s": self.offset_s, "match": self.match,
            "sessions_compared": self.session_count, "false_accusation": self.false_accusation,
        }


@dataclass(slots=True)
class _Compared:
    """One episode version the leak was read against."""

    series_id: str
    episode_id: str
    version: int
    reading: LeakReading
    sessions: list[WatermarkSession] = field(default_factory=list)
    candidates: dict[str, tuple[int, ...]] = field(default_factory=dict)   # see session_candidates()
    verdict: Verdict | None = None


CANDIDATE_SEPARATOR = "#"      # never in an id (drm/ids.py): "session#secret id" names one secret's guess


def session_candidates(sessions: list[WatermarkSession], watermark: WatermarkSettings, count: int,
                       unknown: set[str]) -> dict[str, tuple[int, ...]]:
    """Each session's A/B bits over `count` segments, keyed with the secret its row names. A row from before
    secrets had ids ('') is tried with every secret the service knows, each a candidate of its own (the
    correction counts them); a session whose secret the service no longer has cannot be compared: its id
    goes to `unknown`."""
    known = watermark.known_secrets
    candidates: dict[str, tuple[int, ...]] = {}
    for session in sessions:
        if not session.secret_id:
            for identifier, secret in known.items():
                candidates[f"{session.session_id}{CANDIDATE_SEPARATOR}{identifier}"] = session_bits(
                    secret, session.session_id, count)
        elif session.secret_id in known:
            candidates[session.session_id] = session_bits(known[session.secret_id], session.session_id, count)
        else:
            unknown.add(session.secret_id)
    return candidates


def trace_leak(path: str | os.PathLike, services: Services, *, series_id: str | None = None,
               episode_id: str | None = None, false_accusation: float = DEFAULT_FALSE_ACCUSATION) -> Trace:
    """Trace the leaked file at `path` (see the module docstring). Blocking: decodes the leak once per aspect
    ratio among the episodes compared, and once more per episode version it matches in time.

    Raises LeakNotVideo for a file that is not video, WatermarkUnavailable without the service's secret,
    ValueError for a false_accusation outside (0, 1), StoreError, DrmError.
    """
    watermark = services.settings.watermark
    if not watermark.is_configured:
        raise WatermarkUnavailable(series_id or "(any)")
    if not 0 < false_accusation < 1:
        raise ValueError(f"false_accusation is {false_accusation}; expected a probability between 0 and 1")
    undecided = _undecided_maker(false_accusation)
    versions = _versions_to_compare(services, series_id, episode_id)
    if not versions:
        where = f"episode {episode_id} of series {series_id}" if episode_id else "any watermarked episode"
        return undecided(f"no playback session of {where} was recorded: no watermarked playlist of it was ever "
                         "served, so there is nobody to name")
    compared: list[_Compared] = []
    problems: list[str] = []
    # the leak's first decode serves every episode of the same aspect ratio: one per grid shape, not per version
    first_pass: dict[tuple[int, int], LeakSignatures] = {}
    for s, e, version in versions:
        reference = _reference(services, s, e, version, problems)
        if reference is None:
            continue
        grid = reference_grid(reference)
        try:
            if grid not in first_pass:
                first_pass[grid] = leak_signatures(path, grid)
            reading = read_leak(path, reference, first_pass[grid])
        except LeakTooShort as exc:
            return undecided(str(exc))          # too short for any episode
        except LeakDoesNotMatch as exc:
            problems.append(f"{s}/{e} v{version}: {exc}")
            continue
        compared.append(_Compared(series_id=s, episode_id=e, version=version, reading=reading))
    if not compared:
        return undecided("the leak matches no episode version it was compared with: " + "; ".join(problems))
    unknown: set[str] = set()
    for entry in compared:
        entry.sessions = services.watermark_sessions.sessions_of(entry.series_id, entry.episode_id, entry.version)
        entry.candidates = session_candidates(entry.sessions, watermark, len(entry.reading.values), unknown)
    if unknown:
        log.warning("trace: sessions recorded under watermark secret(s) %s cannot be compared: the service no "
                    "longer has them (SERIES_WATERMARK_RETIRED_SECRETS)", ", ".join(sorted(unknown)))
    # every candidate of every version the leak matched is one of this trace's (a leak of an episode matches
    # each of its versions): the false-accusation bound counts them all
    population = sum(len(entry.candidates) for entry in compared)
    for entry in compared:
        entry.verdict = decide(entry.reading, entry.candidates, false_accusation=false_accusation,
                               compared=max(1, population))
    # the version whose sessions explain the leak best; among undecided ones, the best temporal match
    best = min(compared, key=lambda c: (not c.verdict.identified,
                                        c.verdict.candidates[0].p_value if c.verdict.candidates else 1.0,
                                        -c.reading.match))
    return _as_trace(best, false_accusation)


def _undecided_maker(false_accusation: float):
    return lambda reason: Trace(is_identified=False, reason=reason, false_accusation=false_accusation)


def _versions_to_compare(services: Services, series_id: str | None,
                         episode_id: str | None) -> list[tuple[str, str, int]]:
    """Episode versions with recorded sessions: of the named episode, or of every watermarked series."""
    if series_id is not None and episode_id is not None:
        services.catalog.get_episode(series_id, episode_id, include_deleted=True)   # UnknownEpisode: say so
        return services.watermark_sessions.recorded_versions(series_id, episode_id)
    return services.watermark_sessions.recorded_versions(series_id)


def _reference(services: Services, series_id: str, episode_id: str, version: int,
               problems: list[str]) -> WatermarkReference | None:
    """The version's reference, or None (with why in `problems`) when it has none or it was collected."""
    location = EpisodeLocation(series_id=series_id, episode_id=episode_id)
    manifest = read_manifest(services.store, location, version)
    # a collected version's reference was kept beside the versions (packager/publishing/retention.py)
    key = (f"{location.version_prefix(version)}/{manifest.watermark.reference}" if manifest and manifest.watermark
           else archived_reference_key(location, version))
    try:
        return WatermarkReference.from_bytes(services.store.get_bytes(key))
    except ObjectMissing:
        problems.append(f"{series_id}/{episode_id} v{version}: its watermark reference is gone (the episode was "
                        "deleted, or the version was not watermarked)")
        return None


def _as_trace(compared: _Compared, false_accusation: float) -> Trace:
    verdict = compared.verdict
    sessions = {s.session_id: s for s in compared.sessions}
    candidates, listed = [], set()
    for c in verdict.candidates:
        session = sessions[c.session_id.split(CANDIDATE_SEPARATOR)[0]]
        if session.session_id in listed:
            continue                    # one session tried with several secrets: its best guess only
        listed.add(session.session_id)
        candidates.append(TracedCandidate(
            viewer_id=session.viewer_id, session_id=session.session_id, payment_id=session.payment_id,
            source=session.source, confidence=c.confidence, p_value=c.p_value, segments_read=c.segments_read,
            segments_agreeing=c.segments_agreeing, is_accused=c.p_value < false_accusation))
    candidates = tuple(candidates)
    reason = "" if verdict.identified else _why_undecided(verdict, len(sessions), false_accusation)
    log.info("trace of %s/%s v%d: %s over %d sessions, %d segments read", compared.series_id, compared.episode_id,
             compared.version, IDENTIFIED if verdict.identified else UNDECIDED, len(sessions), verdict.segments_read)
    return Trace(is_identified=verdict.identified, reason=reason, false_accusation=false_accusation,
                 series_id=compared.series_id, episode_id=compared.episode_id, version=compared.version,
                 candidates=candidates, segments_read=verdict.segments_read, offset_s=compared.reading.offset_s,
                 match=compared.reading.match, session_count=len(sessions))


def _why_undecided(verdict: Verdict, session_count: int, false_accusation: float) -> str:
    if verdict.segments_read == 0:
        return "no segment of the leak could be read (the mark is washed out, or the leak is too short)"
    best = verdict.candidates[0] if verdict.candidates else None
    if best is None:
        return "no recorded session to compare with"
    return (f"the most likely of {session_count} sessions has p-value {best.p_value:.2g}, not below the "
            f"{false_accusation:g} a trace may accuse at ({best.segments_agreeing} of {best.segments_read} "
            "segments agree); a longer excerpt of the leak would give more evidence")

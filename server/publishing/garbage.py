"""collect_garbage(): delete old and orphaned episode versions from the store, and their content keys;
collect_deleted(): remove what is left of episodes (and series) the creator deleted, once the grace period
has passed since the deletion: every object, then the keys, then the catalog's row (the id is free again).

Runs after every successful publish (for that episode) and from `series gc` (for every episode, found
episode by episode with delimiter listings: never one listing of the whole bucket).
The rules of what is kept live in packager/publishing/retention.py; this adds drm's keys, which the packager
may not touch: a version's keys go after its objects, so no playable object ever loses its key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from drm.catalog.catalog import Catalog
from drm.keystore import KeyStore
from packager.publishing.retention import RetentionPlan, delete_episode, delete_versions, plan_retention
from packager.publishing.versions import EpisodeLocation, stored_episodes
from packager.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectedEpisode:
    plan: RetentionPlan
    objects_deleted: int
    keys_deleted: int


def collect_garbage(
    store: ObjectStore,
    keystore: KeyStore,
    *,
    grace_s: float,
    dry_run: bool = False,
    locations: Iterable[EpisodeLocation] | None = None,
    now: float | None = None,
) -> list[CollectedEpisode]:
    """Apply the retention rules to `locations` (default: every episode in the store or the key store).

    With `dry_run`, only plans: nothing is deleted and the counts are 0. Raises StoreError or DrmError.
    """
    now = time.time() if now is None else now
    results = []
    for location in _episodes(store, keystore) if locations is None else locations:
        key_versions = keystore.key_versions(location.series_id, location.episode_id)
        plan = plan_retention(store, location, grace_s=grace_s, now=now, other_versions=key_versions)
        objects = keys = 0
        if not dry_run and plan.delete:
            objects = delete_versions(store, plan)
            keys = sum(keystore.delete_version_keys(location.series_id, location.episode_id, version)
                       for version in plan.delete)
        results.append(CollectedEpisode(plan=plan, objects_deleted=objects, keys_deleted=keys))
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class RemovedEpisode:
    location: EpisodeLocation
    objects_deleted: int
    keys_deleted: int


def collect_deleted(
    store: ObjectStore,
    keystore: KeyStore,
    catalog: Catalog,
    *,
    grace_s: float,
    dry_run: bool = False,
    now: float | None = None,
) -> tuple[list[RemovedEpisode], list[str]]:
    """Remove the episodes deleted more than `grace_s` ago: objects (pointer first), keys, then the row.
    Then the rows of deleted series with no episode left. Returns (episodes, series ids) removed, or with
    `dry_run` those that would be (counts 0). A failure leaves the row, so the next run finishes the job.
    Raises StoreError or DrmError."""
    now = time.time() if now is None else now
    removed = []
    for series_id, episode_id in catalog.deleted_episodes(before=now - grace_s):
        location = EpisodeLocation(series_id=series_id, episode_id=episode_id)
        objects = keys = 0
        if not dry_run:
            objects = delete_episode(store, location)
            keys = keystore.delete_episode_keys(series_id, episode_id)
            catalog.purge_episode(series_id, episode_id)
        removed.append(RemovedEpisode(location=location, objects_deleted=objects, keys_deleted=keys))
    series = [] if dry_run else catalog.purge_deleted_series(before=now - grace_s)
    return removed, series


def _episodes(store: ObjectStore, keystore: KeyStore) -> Iterator[EpisodeLocation]:
    """Episodes in the store, one listing level at a time, then those with keys but no objects left.

    Only (series, episode) pairs are remembered, never object keys: each episode's objects are listed
    when its turn comes (plan_retention), so memory follows the episode count, not the bucket's size.
    """
    seen = set()
    for location in stored_episodes(store):
        seen.add((location.series_id, location.episode_id))
        yield location
    for series_id, episode_id in keystore.versioned_episodes():
        if (series_id, episode_id) not in seen:
            yield EpisodeLocation(series_id=series_id, episode_id=episode_id)

"""Which versions of an episode to keep, and removing the rest from the store.

Kept: the live version; the previous one for a grace period (players that loaded its playlists keep
fetching its segments and keys); and any version written to within the grace period, which may be
a publish still in progress; and the media version of every version kept (a version built without
re-transcoding plays another version's segments: packager/publishing/version_manifest.py), with its keys.
Everything else goes: superseded versions and the orphans of crashed or failed publishes (no
pointer ever pointed at them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from packager.publishing.version_manifest import media_version_of
from packager.publishing.versions import EpisodeLocation, read_pointer, stored_versions
from packager.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPlan:
    location: EpisodeLocation
    live_version: int | None
    keep: tuple[int, ...]
    delete: tuple[int, ...]


def plan_retention(
    store: ObjectStore,
    location: EpisodeLocation,
    *,
    grace_s: float,
    now: float,
    other_versions: Mapping[int, float] | None = None,
) -> RetentionPlan:
    """Decide, without deleting anything, which versions of `location` to keep.

    `other_versions` adds versions known outside the store (e.g. with keys but no objects) with
    the time they were last touched. Times are POSIX seconds. Raises StoreError.
    """
    last_touched = dict(other_versions or {})
    for version, modified_at in stored_versions(store, location).items():
        last_touched[version] = max(last_touched.get(version, 0.0), modified_at)
    pointer = read_pointer(store, location)
    live = int(pointer["version"]) if pointer else None
    previous = pointer.get("previous_version") if pointer else None
    previous_until = float(pointer.get("published_at", 0)) + grace_s if pointer else 0.0
    keep = {version for version in last_touched if version == live or (version == previous and now < previous_until)
            or now - last_touched[version] < grace_s}
    if live is not None:
        keep.add(live)
    # a kept version may play another version's segments: that one stays, with its keys, while it is needed
    keep |= {media_version_of(store, location, version) for version in keep if version in last_touched}
    delete = [version for version in sorted(last_touched) if version not in keep]
    return RetentionPlan(location=location, live_version=live, keep=tuple(sorted(v for v in keep if v in last_touched)),
                         delete=tuple(delete))


def delete_versions(store: ObjectStore, plan: RetentionPlan) -> int:
    """Delete the objects of every version in `plan.delete`; the number of objects deleted. Raises StoreError."""
    deleted = 0
    for version in plan.delete:
        if version == plan.live_version:   # a plan is data; never trust it to spare the live version
            raise ValueError(f"refusing to delete the live version v{version} of {plan.location.prefix}")
        count = store.delete_prefix(plan.location.version_prefix(version) + "/")
        log.info("collected %s v%d: %d objects", plan.location.prefix, version, count)
        deleted += count
    return deleted


def delete_episode(store: ObjectStore, location: EpisodeLocation) -> int:
    """Delete every object of a deleted episode: its pointer first (from then on nothing of it is served),
    then every version. The number of objects deleted. Raises StoreError (a retry finishes the job)."""
    deleted = store.delete_prefix(location.pointer_key)
    deleted += store.delete_prefix(location.prefix + "/")
    log.info("removed deleted episode %s: %d objects", location.prefix, deleted)
    return deleted

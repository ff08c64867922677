"""Where an episode's versions live in the bucket, and the pointer that says which one is live.

    series/{series_id}/episodes/{episode_id}/published.json     the pointer, written last
    series/{series_id}/episodes/{episode_id}/v{n}/...           one immutable prefix per publish
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from packager.errors import ObjectMissing
from packager.store import ObjectStore

POINTER_NAME = "published.json"
SERIES_ROOT = "series/"
_EPISODE_KEY = re.compile(r"series/([^/]+)/episodes/([^/]+)/")


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


def read_pointer(store: ObjectStore, location: EpisodeLocation) -> dict | None:
    """The live version's pointer, or None if the episode was never published."""
    try:
        return json.loads(store.get_bytes(location.pointer_key))
    except ObjectMissing:
        return None


def stored_versions(store: ObjectStore, location: EpisodeLocation) -> dict[int, float]:
    """Every version prefix holding objects -> the newest modification time among them (POSIX s)."""
    versions: dict[int, float] = {}
    pattern = re.compile(rf"{re.escape(location.prefix)}/v(\d+)/")
    for listed in store.list_objects(location.prefix + "/v"):
        match = pattern.match(listed.key)
        if match:
            version = int(match.group(1))
            versions[version] = max(versions.get(version, 0.0), listed.modified_at)
    return versions


def next_version(store: ObjectStore, location: EpisodeLocation) -> int:
    """One past every version that exists, live or abandoned, so no prefix is ever written twice."""
    versions = [0, *stored_versions(store, location)]
    pointer = read_pointer(store, location)
    if pointer:
        versions.append(int(pointer["version"]))
    return max(versions) + 1


def stored_episodes(store: ObjectStore) -> Iterator[EpisodeLocation]:
    """Every episode with any object in the bucket, published or not, in key order.

    Walks series/ → series/{id}/episodes/ → series/{id}/episodes/{id}/ with delimiter listings, one
    series at a time: memory holds one level's names, never the bucket's object keys.
    """
    for series_prefix in store.list_prefixes(SERIES_ROOT):
        for episode_prefix in store.list_prefixes(f"{series_prefix}episodes/"):
            match = _EPISODE_KEY.fullmatch(episode_prefix)
            if match:
                yield EpisodeLocation(series_id=match.group(1), episode_id=match.group(2))

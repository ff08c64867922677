"""May this viewer watch this episode? The rule, as a pure function of what is known about the episode
(drm's EpisodeFacts: free preview, unpublished, deleted), whether the viewer holds an entitlement to its
series, and who the viewer is (the operator's test viewers see unpublished episodes).

The catalog's part of it (drm.catalog.catalog.key_needs_entitlement) decides what the episode's state demands;
this adds the entitlement, and turns the answer into a Verdict the access room can give from memory or
after reading the database, the same either way. Every path that releases something of an episode
(content keys today; captions, storyboards and thumbnails next) goes through it.
"""

from __future__ import annotations

import enum

from drm.catalog.catalog import EpisodeFacts, key_needs_entitlement
from drm.errors import DrmError, EpisodeDeleted, EpisodeUnpublished, NotEntitled

__all__ = ["EpisodeFacts", "Verdict", "may_watch", "refusal"]


class Verdict(enum.Enum):
    GRANTED = "granted"
    NEEDS_ENTITLEMENT = "needs_entitlement"     # ask again with `entitled` known
    NOT_ENTITLED = "not_entitled"               # 403
    UNPUBLISHED = "episode_unpublished"         # 403: its creator unpublished it (test viewers excepted)
    DELETED = "episode_deleted"                 # 410: no one gets anything of a deleted episode


def may_watch(facts: EpisodeFacts, series_id: str, episode_id: str, viewer_id: str, entitled: bool | None, *,
              test_viewer_ids: frozenset[str] = frozenset()) -> Verdict:
    """The verdict for `viewer_id` on the episode `facts` describe. `entitled`: whether the viewer holds an
    active entitlement to the series, or None when not looked up yet: the rule answers NEEDS_ENTITLEMENT
    rather than have the caller look it up for an episode that does not need it (a free preview), or that
    nobody may watch."""
    try:
        needs_entitlement = key_needs_entitlement(facts, series_id, episode_id, viewer_id, test_viewer_ids)
    except EpisodeDeleted:
        return Verdict.DELETED
    except EpisodeUnpublished:
        return Verdict.UNPUBLISHED
    if not needs_entitlement:
        return Verdict.GRANTED
    if entitled is None:
        return Verdict.NEEDS_ENTITLEMENT
    return Verdict.GRANTED if entitled else Verdict.NOT_ENTITLED


def refusal(verdict: Verdict, viewer_id: str, series_id: str, episode_id: str) -> DrmError:
    """The error a refusing verdict is answered with (its code and HTTP status come with it)."""
    if verdict is Verdict.NOT_ENTITLED:
        return NotEntitled(viewer_id, series_id)
    if verdict is Verdict.UNPUBLISHED:
        return EpisodeUnpublished(series_id, episode_id)
    if verdict is Verdict.DELETED:
        return EpisodeDeleted(series_id, episode_id)
    raise ValueError(f"{verdict} is not a refusal of episode {series_id}/{episode_id}")

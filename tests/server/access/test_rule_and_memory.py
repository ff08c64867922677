"""The access rule as a pure function, and the bounded memory of answers."""

from __future__ import annotations

import pytest

from drm.catalog.catalog import ORDINARY, EpisodeFacts
from drm.errors import EpisodeDeleted, EpisodeUnpublished, NotEntitled
from server.access.memory import MISSING, AnswerCache
from server.access.rule import Verdict, may_watch, refusal

PAID, PREVIEW = ORDINARY, EpisodeFacts(is_free_preview=True)
QA = frozenset({"qa"})


def verdict(facts, viewer_id, entitled, episode_id="e1"):
    return may_watch(facts, "s1", episode_id, viewer_id, entitled, test_viewer_ids=QA)


def test_a_paid_episode_needs_the_entitlement_and_a_preview_does_not():
    assert verdict(PAID, "alice", None) is Verdict.NEEDS_ENTITLEMENT
    assert verdict(PAID, "alice", True) is Verdict.GRANTED
    assert verdict(PAID, "bob", False) is Verdict.NOT_ENTITLED
    for entitled in (None, True, False):
        assert verdict(PREVIEW, "bob", entitled) is Verdict.GRANTED
    error = refusal(Verdict.NOT_ENTITLED, "bob", "s1", "e1")
    assert isinstance(error, NotEntitled) and error.code == "not_entitled"
    with pytest.raises(ValueError):
        refusal(Verdict.GRANTED, "bob", "s1", "e1")


def test_an_unpublished_episode_only_for_test_viewers_and_a_deleted_one_for_nobody():
    unpublished = EpisodeFacts(is_unpublished=True)
    assert verdict(unpublished, "alice", True) is Verdict.UNPUBLISHED          # a buyer too
    assert verdict(unpublished, "qa", None) is Verdict.NEEDS_ENTITLEMENT       # test viewers need what anyone needs
    assert verdict(EpisodeFacts(is_unpublished=True, is_free_preview=True), "qa", None) is Verdict.GRANTED
    assert verdict(EpisodeFacts(is_deleted=True, is_free_preview=True), "qa", True) is Verdict.DELETED
    assert isinstance(refusal(Verdict.UNPUBLISHED, "alice", "s1", "e1"), EpisodeUnpublished)
    assert isinstance(refusal(Verdict.DELETED, "alice", "s1", "e1"), EpisodeDeleted)


def test_memory_is_bounded_and_keeps_what_is_used():
    cache = AnswerCache(max_entries=100, max_age_s=60)
    for n in range(10_000):
        cache.put(("viewer", n), True, 0.0)
        assert cache.get(("viewer", 0), 0.0) is True           # used all along: never pushed out
        assert len(cache) <= 100
    assert cache.get(("viewer", 5000), 0.0) is MISSING          # not used since: gone
    assert cache.get(("viewer", 9999), 0.0) is True


def test_an_answer_older_than_the_maximum_age_is_not_given():
    cache = AnswerCache(max_entries=10, max_age_s=60)
    cache.put("k", False, 100.0)
    assert cache.get("k", 160.0) is False                       # a remembered False is an answer, not a miss
    assert cache.get("k", 160.1) is MISSING
    assert len(cache) == 0
    cache.put("k", True, 0.0)
    cache.discard("k")
    assert cache.get("k", 0.0) is MISSING

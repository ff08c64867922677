"""The catalog's episode operations on both engines: places in the series, reorders, titles, status,
unpublishing, deletion, paging, and what ingest writes as it goes; racing writers included."""

from __future__ import annotations

import random

import pytest

from drm.catalog.catalog import MAX_EPISODES, ORDINARY, EpisodeFacts, SqlCatalog, key_needs_entitlement
from drm.errors import (
    EpisodeDeleted,
    EpisodeExists,
    EpisodeLimitReached,
    EpisodeUnpublished,
    InvalidCursor,
    InvalidField,
    SeriesStateConflict,
    UnknownEpisode,
)
from tests.drm.fixtures import FakeClock
from tests.drm.test_concurrency import race


@pytest.fixture
def catalog(db):
    catalog = SqlCatalog(db, clock=FakeClock(1000.0))
    catalog.create_series(series_id="s1", creator_id="c1", title="Knots", price_cents=499, currency="USD")
    return catalog


def order(catalog, series_id="s1", *, watchable_only=False) -> list[str]:
    return [e.episode_id for e in catalog.list_episodes(series_id, published_only=watchable_only)]


def positions(db, series_id="s1") -> list[int]:
    return [row[0] for row in db.query("SELECT position FROM episodes WHERE series_id = ? AND position IS NOT NULL"
                                       " ORDER BY position", (series_id,))]


def publish(catalog, episode_id, duration_s=60.0):
    catalog.reserve_episode("s1", episode_id, duration_s=duration_s)
    return catalog.mark_published("s1", episode_id, version=1, duration_s=duration_s, renditions=("360p", "234p"))


def test_episodes_take_the_next_place_and_keep_titles_apart_from_ids(catalog):
    for episode_id in ("3", "1", "2"):
        catalog.create_episode("s1", episode_id, title=f"Part {episode_id}")
    assert order(catalog) == ["3", "1", "2"]
    episode = catalog.get_episode("s1", "1")
    assert (episode.position, episode.title, episode.status, episode.stage) == (2, "Part 1", "uploading", "uploading")
    assert catalog.create_episode("s1", "0", position=1, description="Prologue\nwith two lines").position == 1
    assert order(catalog) == ["0", "3", "1", "2"]
    assert catalog.get_episode("s1", "0").title == "Episode 0"
    with pytest.raises(EpisodeExists):
        catalog.create_episode("s1", "3")
    with pytest.raises(InvalidField, match="position"):
        catalog.create_episode("s1", "9", position=6)


def test_move_and_set_order(catalog, db):
    for episode_id in "abcde":
        catalog.create_episode("s1", episode_id)
    catalog.move_episode("s1", "e", 1)
    assert order(catalog) == list("eabcd")
    catalog.move_episode("s1", "e", 5)
    assert order(catalog) == list("abcde")
    catalog.update_episode("s1", "b", position=4, title="Moved")
    assert order(catalog) == list("acdbe") and catalog.get_episode("s1", "b").title == "Moved"
    assert [e.episode_id for e in catalog.set_order("s1", list("edcba"))] == list("edcba")
    assert positions(db) == [1, 2, 3, 4, 5]
    for bad, words in ((list("edcb"), "missing a"), (list("edcbaz"), "unknown z"), (list("edcbaa"), "repeated a")):
        with pytest.raises(InvalidField, match=words):
            catalog.set_order("s1", bad)
    assert order(catalog) == list("edcba")
    with pytest.raises(InvalidField, match="position"):
        catalog.move_episode("s1", "a", 0)
    with pytest.raises(UnknownEpisode):
        catalog.move_episode("s1", "zz", 1)


def test_a_bad_field_in_an_update_writes_nothing(catalog):
    catalog.create_episode("s1", "a")
    catalog.create_episode("s1", "b")
    with pytest.raises(InvalidField):
        catalog.update_episode("s1", "a", title="New", position=3)
    assert order(catalog) == ["a", "b"] and catalog.get_episode("s1", "a").title == "Episode a"


def test_status_follows_the_ingest_and_the_creator(catalog, db):
    catalog.create_episode("s1", "a")
    with db.transaction() as tx:
        assert catalog.register_upload_within(tx, "s1", "a", "job_1") is False
        assert catalog.register_upload_within(tx, "s1", "new", "job_2") is True
    assert catalog.get_episode("s1", "new").position == 2
    assert catalog.get_episode("s1", "a").status == "processing"
    with db.transaction() as tx:
        catalog.record_stage_within(tx, "job_1", "transcoding", 42.25)
    episode = catalog.get_episode("s1", "a")
    assert (episode.status, episode.stage, episode.stage_percent) == ("processing", "transcoding", 42.2)
    assert catalog.reserve_episode("s1", "a", duration_s=61.0) is False       # registered: no new slot
    catalog.mark_published("s1", "a", version=1, duration_s=61.5, renditions=("360p",))
    with db.transaction() as tx:
        catalog.record_stage_within(tx, "job_1", "published")
    episode = catalog.get_episode("s1", "a")
    assert (episode.status, episode.stage, episode.duration_s, episode.renditions) == ("ready", None, 61.5, ("360p",))
    assert episode.ready_at == 1000.0
    failure = {"code": "too_short", "message": "too short", "reasons": [{"code": "too_short"}]}
    with db.transaction() as tx:
        catalog.record_stage_within(tx, "job_2", "failed", error=failure)
    assert (catalog.get_episode("s1", "new").status, catalog.get_episode("s1", "new").error) == ("errored", failure)
    catalog.set_episode_published("s1", "a", False)
    assert catalog.get_episode("s1", "a").status == "unpublished"
    assert order(catalog, watchable_only=True) == []
    catalog.set_episode_published("s1", "a", True)
    assert order(catalog, watchable_only=True) == ["a"]


def test_a_later_job_owns_the_status(catalog, db):
    with db.transaction() as tx:
        catalog.register_upload_within(tx, "s1", "a", "job_old")
        catalog.register_upload_within(tx, "s1", "a", "job_new")
        catalog.record_stage_within(tx, "job_old", "failed", error={"code": "x", "message": "old"})
    assert catalog.get_episode("s1", "a").stage == "queued"


def test_deleting_frees_the_place_and_slot_and_refuses_the_id_until_purged(catalog, db):
    for episode_id in "abc":
        publish(catalog, episode_id)
    catalog.update_series("s1", cover_episode_id="b")
    deleted = catalog.delete_episode("s1", "b")
    assert deleted.deleted_at == 1000.0 and deleted.position is None
    assert order(catalog) == ["a", "c"] and positions(db) == [1, 2]
    assert catalog.get_series("s1").cover_episode_id is None
    with pytest.raises(UnknownEpisode):
        catalog.get_episode("s1", "b")
    for attempt in (lambda: catalog.create_episode("s1", "b"),
                    lambda: catalog.reserve_episode("s1", "b", duration_s=60.0),
                    lambda: catalog.mark_published("s1", "b", version=2, duration_s=60.0)):
        with pytest.raises(EpisodeDeleted):
            attempt()
    assert catalog.deleted_episodes(before=1000.0) == []
    assert catalog.deleted_episodes(before=1001.0) == [("s1", "b")]
    assert catalog.purge_episode("s1", "b") and not catalog.purge_episode("s1", "a")
    assert catalog.create_episode("s1", "b").position == 3


def test_the_eightieth_slot_counts_episodes_not_deleted(catalog):
    for number in range(MAX_EPISODES):
        catalog.create_episode("s1", f"e{number}")
    with pytest.raises(EpisodeLimitReached):
        catalog.create_episode("s1", "one-more")
    catalog.delete_episode("s1", "e7")
    assert catalog.create_episode("s1", "one-more").position == MAX_EPISODES


def test_key_facts_and_the_release_rule(catalog):
    publish(catalog, "a")
    publish(catalog, "b")
    catalog.set_free_preview("s1", "b", True)
    assert catalog.episode_facts("s1", "a") == ORDINARY == catalog.episode_facts("s1", "unknown")
    catalog.set_episode_published("s1", "a", False)
    facts = catalog.episode_facts("s1", "a")
    assert facts == EpisodeFacts(is_unpublished=True)
    assert catalog.episode_facts("s1", "b") == EpisodeFacts(is_free_preview=True)
    with pytest.raises(EpisodeUnpublished, match="unpublished"):
        key_needs_entitlement(facts, "s1", "a", "buyer", frozenset({"qa"}))
    assert key_needs_entitlement(facts, "s1", "a", "qa", frozenset({"qa"})) is True
    assert key_needs_entitlement(EpisodeFacts(is_free_preview=True), "s1", "b", "anyone", frozenset()) is False
    with pytest.raises(EpisodeDeleted):
        key_needs_entitlement(EpisodeFacts(is_deleted=True, is_free_preview=True), "s1", "b", "qa", frozenset({"qa"}))


def test_pages_of_episodes_follow_the_order_and_refuse_a_cursor_after_a_reorder(catalog):
    for episode_id in "abcde":
        catalog.create_episode("s1", episode_id)
    first = catalog.page_episodes("s1", watchable_only=False, limit=2)
    assert [e.episode_id for e in first.items] == ["a", "b"] and first.next_cursor
    catalog.create_episode("s1", "f")                       # appended: the cursor still holds
    second = catalog.page_episodes("s1", watchable_only=False, cursor=first.next_cursor, limit=10)
    assert [e.episode_id for e in second.items] == ["c", "d", "e", "f"] and second.next_cursor is None
    catalog.move_episode("s1", "f", 1)
    with pytest.raises(InvalidCursor, match="changed places"):
        catalog.page_episodes("s1", watchable_only=False, cursor=first.next_cursor)
    with pytest.raises(InvalidCursor):
        catalog.page_episodes("s1", watchable_only=True, cursor=first.next_cursor)
    with pytest.raises(InvalidCursor):
        catalog.page_episodes("s1", watchable_only=False, cursor="not-a-cursor")


def test_an_archived_series_takes_no_episodes(catalog):
    catalog.set_series_status("s1", "archived")
    with pytest.raises(SeriesStateConflict) as caught:
        catalog.create_episode("s1", "a")
    assert caught.value.code == "series_archived"


# -- racing writers, each on its own connection ----------------------------------------------------

@pytest.fixture
def catalogs(open_db):
    made = [SqlCatalog(open_db()) for _ in range(4)]
    made[0].create_series(series_id="s1", creator_id="c1", title="T", price_cents=499, currency="USD")
    return made


def test_racing_moves_leave_a_whole_order(catalogs, open_db):
    for number in range(12):
        catalogs[0].create_episode("s1", f"e{number}")
    rng = random.Random(7)
    for _ in range(6):
        moves = [(f"e{rng.randrange(12)}", rng.randrange(1, 13)) for _ in catalogs]
        results = race(*(lambda c=c, m=m: c.move_episode("s1", *m) for c, m in zip(catalogs, moves)))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert positions(open_db()) == list(range(1, 13))
    assert sorted(order(catalogs[0])) == sorted(f"e{n}" for n in range(12))


def test_a_whole_new_order_racing_an_insert_either_lands_whole_or_is_refused(catalogs):
    for episode_id in "abcd":
        catalogs[0].create_episode("s1", episode_id)
    results = race(lambda: catalogs[1].set_order("s1", list("dcba")),
                   lambda: catalogs[2].create_episode("s1", "x"),
                   lambda: catalogs[3].move_episode("s1", "a", 2))
    assert not isinstance(results[1], Exception) and not isinstance(results[2], Exception)
    final = order(catalogs[0])
    assert sorted(final) == sorted("abcdx")
    if isinstance(results[0], InvalidField):        # the insert came first: the order named too few
        assert "missing x" in str(results[0])
    else:
        assert final.index("x") == 4 or final[:4] != list("abcd")


def test_two_deletes_of_one_episode_delete_it_once(catalogs, open_db):
    for episode_id in "abc":
        catalogs[0].create_episode("s1", episode_id)
    results = race(*(lambda c=c: c.delete_episode("s1", "b") for c in catalogs[:2]))
    assert sorted(type(r).__name__ for r in results) == ["Episode", "UnknownEpisode"]
    assert positions(open_db()) == [1, 2]


def test_racing_creators_take_the_last_slot_once(catalogs):
    for number in range(MAX_EPISODES - 1):
        catalogs[0].create_episode("s1", f"e{number}")
    results = race(*(lambda c=c, n=n: c.create_episode("s1", f"new{n}") for n, c in enumerate(catalogs)))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, EpisodeLimitReached) for r in results) == 3

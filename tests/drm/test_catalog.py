import sqlite3

import pytest

from drm.catalog.catalog import MAX_EPISODES, SqlCatalog
from drm.errors import DrmError, EpisodeLimitReached, InvalidField, SeriesExists, UnknownEpisode, UnknownSeries
from tests.drm.fixtures import FakeClock


@pytest.fixture
def catalog(db):
    return SqlCatalog(db, clock=FakeClock(1000.0))


def new_series(catalog, series_id="s1", **overrides):
    values = {"series_id": series_id, "creator_id": "c1", "title": "  Knots  ", "price_cents": 499, "currency": "USD"}
    values.update(overrides)
    return catalog.create_series(**values)


def test_series_round_trip(catalog):
    series = new_series(catalog)
    assert (series.title, series.price_cents, series.created_at) == ("Knots", 499, 1000.0)
    assert catalog.get_series("s1") == series
    assert catalog.list_series("c1") == [series] and catalog.list_series("c2") == []
    with pytest.raises(SeriesExists):
        new_series(catalog)
    with pytest.raises(UnknownSeries):
        catalog.get_series("s2")


@pytest.mark.parametrize("field, value", [
    ("price_cents", 99), ("price_cents", 19_001), ("price_cents", 100.0), ("price_cents", None),
    ("currency", "JPY"), ("currency", "us"), ("title", "\x00bad"), ("title", 5), ("creator_id", "a/b"),
])
def test_bad_series_fields_write_nothing(catalog, field, value):
    with pytest.raises(InvalidField) as caught:
        new_series(catalog, **{field: value})
    assert caught.value.field == field
    assert catalog.list_series() == []


def test_update_checks_every_field_before_writing(catalog):
    new_series(catalog)
    with pytest.raises(InvalidField):
        catalog.update_series("s1", title="New", price_cents=20_000)
    assert catalog.get_series("s1").title == "Knots"
    assert catalog.update_series("s1", price_cents=19_000).price_cents == 19_000


@pytest.mark.parametrize("duration_s", [29.9, 1200.1, float("nan"), True])
def test_episode_duration_bounds(catalog, duration_s):
    new_series(catalog)
    with pytest.raises(InvalidField):
        catalog.reserve_episode("s1", "e1", duration_s=duration_s)


def test_episode_bounds_follow_the_deployment_and_are_inclusive(db):
    catalog = SqlCatalog(db, episode_bounds_s=(5.0, 60.0))
    new_series(catalog)
    assert catalog.reserve_episode("s1", "e1", duration_s=5.0) is True
    assert catalog.reserve_episode("s1", "e2", duration_s=60.0) is True
    with pytest.raises(InvalidField, match="5..60"):
        catalog.reserve_episode("s1", "e3", duration_s=60.5)


def test_eighty_episodes_and_no_more(catalog):
    new_series(catalog)
    for number in range(MAX_EPISODES):
        assert catalog.reserve_episode("s1", f"e{number}", duration_s=30.0) is True
    with pytest.raises(EpisodeLimitReached) as caught:
        catalog.reserve_episode("s1", "one-more", duration_s=30.0)
    assert "80" in str(caught.value)
    catalog.release_episode("s1", "e0")                    # a failed first ingest gives its slot back
    assert catalog.reserve_episode("s1", "one-more", duration_s=30.0) is True


def test_reservation_is_hidden_until_published_and_kept_after(catalog):
    new_series(catalog)
    catalog.reserve_episode("s1", "e1", duration_s=31.0)
    assert catalog.list_episodes("s1") == []
    assert catalog.mark_published("s1", "e1", version=1, duration_s=31.2).is_published
    catalog.release_episode("s1", "e1")                    # a failed re-ingest must not drop a live episode
    assert [e.episode_id for e in catalog.list_episodes("s1")] == ["e1"]
    with pytest.raises(UnknownEpisode):
        catalog.mark_published("s1", "e2", version=1, duration_s=31.0)
    with pytest.raises(UnknownSeries):
        catalog.reserve_episode("nope", "e1", duration_s=31.0)


def test_price_check_is_also_in_the_schema(catalog, db):
    new_series(catalog)
    with pytest.raises((sqlite3.IntegrityError, DrmError)):
        with db.transaction() as tx:
            tx.execute("UPDATE series SET price_cents = 5")
    assert catalog.get_series("s1").price_cents == 499


def test_free_preview_flag_changes_only_when_a_version_goes_live(catalog):
    new_series(catalog)
    catalog.reserve_episode("s1", "e1", duration_s=40.0, is_free_preview=True)
    catalog.mark_published("s1", "e1", version=1, duration_s=40.0)
    assert catalog.is_free_preview("s1", "e1")
    assert catalog.reserve_episode("s1", "e1", duration_s=40.0, is_free_preview=False) is False
    assert catalog.is_free_preview("s1", "e1")               # a re-ingest still running (or failed) changes nothing
    catalog.mark_published("s1", "e1", version=2, duration_s=40.0, is_free_preview=False)
    assert not catalog.is_free_preview("s1", "e1")
    assert not catalog.is_free_preview("s1", "never")

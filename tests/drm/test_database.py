"""The unit of work and rows behave alike on both engines."""

import sqlite3
import threading

import pytest

from drm.errors import DrmError


def test_rows_answer_by_position_and_by_name(db):
    with db.transaction() as tx:
        tx.execute("INSERT INTO series (series_id, creator_id, title, price_cents, currency, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", ("s1", "c1", "What? 100%", 499, "USD", 1.5, 2.5))
        row = tx.fetch_one("SELECT series_id, price_cents, created_at FROM series WHERE series_id = ?", ("s1",))
    assert (row[0], row["price_cents"], row["created_at"]) == ("s1", 499, 1.5)
    series_id, price, created = db.query_one("SELECT series_id, price_cents, created_at FROM series")
    assert (series_id, price, created) == ("s1", 499, 1.5)
    assert dict(db.query("SELECT title, currency FROM series")[0]) == {"title": "What? 100%", "currency": "USD"}
    assert db.query_one("SELECT title FROM series WHERE series_id = ?", ("none",)) is None


def test_question_marks_and_percent_signs_inside_literals_are_text(db):
    with db.transaction() as tx:
        tx.execute("INSERT INTO series (series_id, creator_id, title, price_cents, currency, created_at, updated_at)"
                   " VALUES (?, 'c?', 'is it 100%?', ?, 'USD', 0, 0)", ("s1", 499))
    found = db.query_one("SELECT creator_id, title FROM series WHERE title LIKE ? AND title LIKE '%?'", ("%100%",))
    assert tuple(found) == ("c?", "is it 100%?")


def test_executemany_counts_rows_changed(db):
    rows = [(f"k{n}", "s", "e", n, b"w", "mk1", 0.0) for n in range(5)]
    with db.transaction() as tx:
        assert tx.executemany("INSERT INTO content_keys VALUES (?, ?, ?, ?, ?, ?, ?)", rows) == 5
        assert tx.executemany("DELETE FROM content_keys WHERE key_id = ?", [("k1",), ("k2",), ("nope",)]) == 2
        assert tx.executemany("DELETE FROM content_keys WHERE key_id = ?", []) == 0
    assert db.query_one("SELECT COUNT(*) FROM content_keys")[0] == 3


def test_a_failed_unit_of_work_leaves_nothing_and_the_database_usable(db):
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, at) VALUES ('v', 's', 0)")
            1 / 0
    with pytest.raises(Exception):
        with db.transaction() as tx:
            tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, at) VALUES ('v', 's', 0)")
            tx.execute("INSERT INTO no_such_table VALUES (1)")
    assert db.query("SELECT * FROM entitlement_changes") == []
    with pytest.raises((sqlite3.OperationalError, DrmError)):
        db.query("SELECT * FROM no_such_table")
    with db.transaction() as tx:
        tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, at) VALUES ('v', 's', 0)")
    assert db.query_one("SELECT COUNT(*) FROM entitlement_changes")[0] == 1


def test_a_lock_is_held_until_the_unit_of_work_ends(open_db):
    """Two units of work taking one lock run one after the other (on SQLite every writer does)."""
    first, second = open_db(), open_db()
    order: list[str] = []
    holding = threading.Event()

    def hold() -> None:
        with first.transaction() as tx:
            tx.lock("test:x")
            tx.lock("test:x")                      # taking it again in the same unit of work is harmless
            holding.set()
            threading.Event().wait(0.3)
            order.append("first done")

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    with second.transaction() as tx:
        tx.lock("test:x")
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_describe_never_shows_a_password():
    from drm.storage.database import redact_url

    assert redact_url("postgresql://series:hunter2@db.internal:5432/series") == \
        "postgresql://series:***@db.internal:5432/series"
    assert redact_url("postgresql://db.internal/series") == "postgresql://db.internal/series"
    assert "hunter2" not in redact_url("postgresql://db.internal/series?user=series&password=hunter2")
    assert "hunter2" not in redact_url("postgresql://series:hunter2@[::1/series")     # does not parse

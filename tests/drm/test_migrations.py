"""Schema migrations on both engines: from empty, from the previous version with data, refusals."""

import sqlite3
import threading
from pathlib import Path

import pytest

from drm.access.entitlements import EntitlementStore
from drm.errors import SchemaNotMigrated, SchemaTooNew
from drm.storage import migrations
from drm.storage.database import Database
from drm.storage.engines import connect_database, open_database
from drm.storage.migrations import MIGRATIONS, SCHEMA_VERSION, Migration, migrate, schema_version

TABLES = {"schema_version", "content_keys", "content_key_versions", "entitlements", "series", "episodes",
          "creators", "payments", "payment_events", "entitlement_events", "entitlement_changes",
          "viewer_progress", "idempotency_keys", "ingest_jobs", "episode_versions",
          "resumable_uploads", "ingest_job_attempts", "webhook_deliveries", "webhook_attempts",
          "playback_sessions", "account_revocations", "watermark_sessions"}

# The jobs tables as the service created them itself before they joined the schema (before job leases).
LEGACY_JOB_TABLES = """
CREATE TABLE IF NOT EXISTS ingest_jobs (job_id TEXT PRIMARY KEY, series_id TEXT NOT NULL, episode_id TEXT NOT NULL,
    state TEXT NOT NULL, stage_fraction REAL NOT NULL DEFAULT 0, source_kind TEXT NOT NULL, source_bucket TEXT NULL,
    source_key TEXT NULL, spool_path TEXT NULL, size_bytes INTEGER NULL, idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL, webhook_url TEXT NULL, webhook_status TEXT NULL, attempt INTEGER NOT NULL DEFAULT 1,
    version INTEGER NULL, report TEXT NULL, error_code TEXT NULL, error_message TEXT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, started_at REAL NULL, finished_at REAL NULL);
CREATE INDEX IF NOT EXISTS ingest_jobs_state ON ingest_jobs (state, created_at);
CREATE TABLE IF NOT EXISTS episode_versions (series_id TEXT NOT NULL, episode_id TEXT NOT NULL,
    last_version INTEGER NOT NULL, switch_holder TEXT NULL, switch_until REAL NULL, PRIMARY KEY (series_id, episode_id));
INSERT INTO ingest_jobs (job_id, series_id, episode_id, state, source_kind, idempotency_key, fingerprint, created_at,
    updated_at) VALUES ('job_1', 's1', 'e1', 'published', 'spool', 'k1', 'f1', 1.0, 2.0);
INSERT INTO episode_versions VALUES ('s1', 'e1', 7, NULL, NULL);
"""

# What the code before versioned migrations wrote to a new file, verbatim: files in the field look like this.
LEGACY_V2_FILE = """
CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS content_keys (key_id TEXT PRIMARY KEY, series_id TEXT NOT NULL, episode_id TEXT NOT NULL,
    period INTEGER NOT NULL, wrapped BLOB NOT NULL, master_key_id TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS content_keys_episode ON content_keys (series_id, episode_id);
CREATE INDEX IF NOT EXISTS content_keys_master ON content_keys (master_key_id);
CREATE TABLE IF NOT EXISTS content_key_versions (key_id TEXT PRIMARY KEY REFERENCES content_keys (key_id)
    ON DELETE CASCADE, series_id TEXT NOT NULL, episode_id TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS content_key_versions_episode ON content_key_versions (series_id, episode_id, version);
CREATE TABLE IF NOT EXISTS entitlements (viewer_id TEXT NOT NULL, series_id TEXT NOT NULL, source TEXT NOT NULL,
    granted_at REAL NOT NULL, revoked_at REAL NULL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (viewer_id, series_id));
INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 1);
ALTER TABLE entitlements ADD COLUMN reference TEXT NOT NULL DEFAULT '';
CREATE TABLE series (series_id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, title TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents BETWEEN 100 AND 19000), currency TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX series_creator ON series (creator_id);
CREATE TABLE episodes (series_id TEXT NOT NULL REFERENCES series (series_id), episode_id TEXT NOT NULL,
    duration_s REAL NOT NULL, is_free_preview INTEGER NOT NULL DEFAULT 0, published_version INTEGER NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (series_id, episode_id));
CREATE TABLE creators (creator_id TEXT PRIMARY KEY, status TEXT NOT NULL, profile TEXT NOT NULL, unmet TEXT NOT NULL,
    premium_content_url TEXT NOT NULL DEFAULT '', decided_by TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL);
CREATE TABLE payments (payment_id TEXT PRIMARY KEY, viewer_id TEXT NOT NULL, series_id TEXT NOT NULL,
    status TEXT NOT NULL, amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE payment_events (payment_id TEXT NOT NULL, event_type TEXT NOT NULL, event_id TEXT NOT NULL,
    received_at REAL NOT NULL, PRIMARY KEY (payment_id, event_type));
CREATE TABLE entitlement_events (event_id INTEGER PRIMARY KEY AUTOINCREMENT, viewer_id TEXT NOT NULL,
    series_id TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL,
    reference TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX entitlement_events_pair ON entitlement_events (viewer_id, series_id);
UPDATE schema_version SET version = 2 WHERE id = 1;
"""


@pytest.fixture
def empty_target(engine, tmp_path, request) -> str:
    if engine == "sqlite":
        return str(tmp_path / "new" / "drm.storage.sqlite")
    return request.getfixturevalue("empty_postgres_url")


def table_names(db: Database) -> set[str]:
    if db.dialect.name == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        rows = db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def test_an_empty_database_gets_every_migration(empty_target):
    with connect_database(empty_target) as db:
        assert schema_version(db) == 0
        result = migrate(db)
        assert (result.from_version, result.to_version, result.changed) == (0, SCHEMA_VERSION, True)
        assert table_names(db) == TABLES
        assert migrate(db).changed is False                     # a second run has nothing to do
        assert schema_version(db) == SCHEMA_VERSION


def test_the_previous_version_upgrades_in_place_keeping_its_data(empty_target, engine):
    if engine == "sqlite":
        Path(empty_target).parent.mkdir()
        raw = sqlite3.connect(empty_target)                     # a file exactly as the old code left it
        raw.executescript(LEGACY_V2_FILE)
        raw.execute("INSERT INTO entitlements VALUES ('v1', 's1', 'purchase', 1.0, NULL, 'old', 'p1')")
        raw.commit()
        raw.close()
    else:
        with connect_database(empty_target) as db:
            assert migrate(db, to_version=SCHEMA_VERSION - 1).to_version == SCHEMA_VERSION - 1
            with db.transaction() as tx:
                tx.execute("INSERT INTO entitlements VALUES ('v1', 's1', 'purchase', 1.0, NULL, 'old', 'p1')")
        with pytest.raises(SchemaNotMigrated, match="series db migrate") as refused:
            open_database(empty_target)                         # services do not migrate a shared database
        assert (refused.value.found, refused.value.wanted) == (SCHEMA_VERSION - 1, SCHEMA_VERSION)
        assert "127.0.0.1" in str(refused.value)
    with open_database(empty_target, migrate=True) as db:             # SQLite would without being asked
        assert schema_version(db) == SCHEMA_VERSION
        store = EntitlementStore(db)
        assert store.get("v1", "s1").reference == "p1" and store.is_entitled("v1", "s1")
        store.revoke("v1", "s1")                                # the new outbox is written from now on
        assert [tuple(row) for row in db.query("SELECT viewer_id, series_id FROM entitlement_changes")] == [
            ("v1", "s1")]


def test_sqlite_upgrades_itself_when_a_service_opens_it(tmp_path):
    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path)
    raw.executescript(LEGACY_V2_FILE)
    raw.close()
    with open_database(path) as db:
        assert schema_version(db) == SCHEMA_VERSION


def test_a_sqlite_file_with_the_services_own_job_tables_keeps_them(tmp_path):
    path = tmp_path / "jobs.sqlite"
    raw = sqlite3.connect(path)
    raw.executescript(LEGACY_V2_FILE + LEGACY_JOB_TABLES)
    raw.close()
    with open_database(path) as db:
        assert schema_version(db) == SCHEMA_VERSION
        job = db.query_one("SELECT state, owner_id, lease_expires_at FROM ingest_jobs WHERE job_id = 'job_1'")
        assert tuple(job) == ("published", None, None)          # lease columns added, the row kept
        assert db.query_one("SELECT last_version FROM episode_versions")[0] == 7


def test_postgresql_services_refuse_an_empty_database(empty_postgres_url):
    with pytest.raises(SchemaNotMigrated, match="at schema version 0"):
        open_database(empty_postgres_url)


def test_a_newer_schema_is_refused_even_when_asked_to_migrate(db, db_target):
    with db.transaction() as tx:
        tx.execute("UPDATE schema_version SET version = 99")
    for migrate_option in (None, True, False):
        with pytest.raises(SchemaTooNew, match="99") as caught:
            open_database(db_target, migrate=migrate_option)
        assert caught.value.code == "schema_too_new" and "upgrade the service" in str(caught.value)


def test_a_failed_migration_leaves_the_previous_version_whole(empty_target, monkeypatch):
    with connect_database(empty_target) as db:
        migrate(db, to_version=1)
        before = table_names(db)
        later = MIGRATIONS[1:]
        broken = Migration(version=later[-1].version, summary="broken", script=later[-1].script + "; THIS IS NOT SQL")
        monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS[:-1], broken))
        with pytest.raises(Exception):
            migrate(db)
        assert schema_version(db) == 1
        assert table_names(db) == before                          # DDL of every step rolled back with the rest
        monkeypatch.undo()
        assert migrate(db).to_version == SCHEMA_VERSION


def test_concurrent_migrators_wait_for_each_other(empty_target):
    results, errors = [], []
    start = threading.Barrier(4, timeout=60)

    def run() -> None:
        try:
            # each waits as long as a fresh file's every step may hold the lock on a loaded machine (the
            # 5 s default once ran out there with three waiting behind the first)
            with connect_database(empty_target, busy_timeout_ms=60_000) as db:
                start.wait()
                results.append(migrate(db))
        except BaseException as exc:  # pragma: no cover - reported below
            start.abort()             # the others must not wait at the barrier for this one forever
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(result.from_version for result in results) == [0, SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION]


def test_migrations_are_numbered_in_order():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    with pytest.raises(ValueError):
        migrate(None, to_version=SCHEMA_VERSION + 1)  # type: ignore[arg-type]


def test_episodes_from_before_positions_are_numbered_in_the_order_they_were_added(empty_target):
    with connect_database(empty_target) as db:
        migrate(db, to_version=3)
        with db.transaction() as tx:
            tx.execute("INSERT INTO series (series_id, creator_id, title, price_cents, currency, created_at,"
                       " updated_at) VALUES ('s1', 'c1', 'T', 499, 'USD', 1, 1)")
            for episode_id, created_at in (("b", 20.0), ("a", 10.0), ("c", 20.0), ("d", 5.0)):
                tx.execute("INSERT INTO episodes (series_id, episode_id, duration_s, is_free_preview,"
                           " published_version, created_at, updated_at) VALUES ('s1', ?, 60, 0, 1, ?, ?)",
                           (episode_id, created_at, created_at))
        migrate(db)
        rows = db.query("SELECT episode_id, position, title, ready_at FROM episodes ORDER BY position")
        assert [(row["episode_id"], row["position"]) for row in rows] == [("d", 1), ("a", 2), ("b", 3), ("c", 4)]
        assert rows[0]["title"] == "Episode d" and rows[0]["ready_at"] == 5.0
        assert db.query_one("SELECT status FROM series")["status"] == "published"

"""What only the embedded engine promises: its connection settings, its file on disk."""

import shutil
from pathlib import Path

import pytest

from drm import KeyStore
from drm.storage.engines import open_database
from tests.drm.fixtures import settings_for


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "drm.storage.sqlite"


@pytest.fixture
def sqlite_db(db_path):
    with open_database(db_path) as database:
        yield database


def _copy_files(db_path: Path, into: Path) -> dict[str, bytes]:
    into.mkdir()
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            copy = shutil.copy(path, into / path.name)
            found[path.name] = Path(copy).read_bytes()
    return found


def test_no_clear_key_bytes_on_disk(sqlite_db, db_path, tmp_path):
    created = KeyStore(sqlite_db, settings_for()).create_keys("s1", "e1", 20)
    # Copied while open, so the rows are still in the -wal file, then again after the checkpoint.
    open_files = _copy_files(db_path, tmp_path / "open")
    assert open_files[f"{db_path.name}-wal"]
    sqlite_db.close()
    closed_files = _copy_files(db_path, tmp_path / "closed")
    for files in (open_files, closed_files):
        everything = b"".join(files.values())
        assert created[0].key_id.encode() in everything  # we are looking at the right data
        for key in created:
            assert key.key not in everything
            assert key.key.hex().encode() not in everything
            assert key.key.hex().upper().encode() not in everything


def test_connection_pragmas(sqlite_db):
    conn = sqlite_db.connection
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_transaction_rolls_back_on_error(sqlite_db):
    with pytest.raises(RuntimeError):
        with sqlite_db.transaction() as tx:
            tx.execute(
                "INSERT INTO entitlements (viewer_id, series_id, source, granted_at, reason)"
                " VALUES ('v', 's', 'comp', 0, '')"
            )
            raise RuntimeError("boom")
    assert sqlite_db.query("SELECT * FROM entitlements") == []
    assert not sqlite_db.connection.in_transaction


def test_the_busy_timeout_is_the_callers_choice(db_path):
    with open_database(db_path, busy_timeout_ms=250) as quick:
        assert quick.connection.execute("PRAGMA busy_timeout").fetchone()[0] == 250


def test_an_unsupported_url_is_refused(tmp_path):
    from drm.errors import DrmError

    with pytest.raises(DrmError, match="'mysql' is not supported"):
        open_database("mysql://user@host/db")

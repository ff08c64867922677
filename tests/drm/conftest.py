"""The drm contract suite runs every store test against both engines: `db` is parametrized (`engine` and
`db_target` come from tests/conftest.py, which server stores' contract tests share).

Test ids end in [sqlite] or [postgresql]; `-k postgresql` runs one engine's half.
"""

from __future__ import annotations

import pytest

from drm.storage.database import Database
from drm.storage.engines import open_database


@pytest.fixture
def open_db(db_target):
    """Open (another connection to) the test's database; every one opened is closed after the test."""
    opened: list[Database] = []

    def open_another(**options) -> Database:
        database = open_database(db_target, **options)
        opened.append(database)
        return database

    yield open_another
    for database in opened:
        database.close()


@pytest.fixture
def db(open_db) -> Database:
    return open_db()

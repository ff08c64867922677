"""`series db migrate|status`, and `series serve` refusing a schema it does not know: one line each, never
the database's password."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import pytest

from drm.storage.engines import open_database
from drm.storage.migrations import SCHEMA_VERSION
from server.cli.common import EXIT_FAILED, EXIT_OK
from server.cli.main import main
from tests.conftest import settings_env


@pytest.fixture
def run(tmp_path, s3_store, monkeypatch, capsys):
    """run(*argv, **SERIES_ overrides) → (exit code, stdout, stderr), main() in this process."""
    for name, value in settings_env(tmp_path / "data", s3_store).items():
        monkeypatch.setenv(name, value)

    def invoke(*argv: str, **overrides: str) -> tuple[int, str, str]:
        for name, value in overrides.items():
            monkeypatch.setenv(f"SERIES_{name}", value)
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def with_password(url: str) -> str:
    """The URL with a password in it (the test cluster trusts loopback, so it is never checked)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:hunter2-pass@{parts.hostname}:{parts.port}"))


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_serve_refuses_an_unmigrated_database_until_it_is_migrated(run, empty_postgres_url):
    url = with_password(empty_postgres_url)
    code, _, err = run("serve", DATABASE_URL=url)
    line = one_line(err)
    assert code == EXIT_FAILED and "schema_not_migrated" in line and "series db migrate" in line
    assert "hunter2" not in err and "Traceback" not in err
    code, out, err = run("db", "status", DATABASE_URL=url)
    assert code == EXIT_FAILED and f"schema version 0, this code needs {SCHEMA_VERSION}" in out

    code, out, _ = run("db", "migrate", DATABASE_URL=url)
    assert code == EXIT_OK and f"from schema version 0 to {SCHEMA_VERSION}" in out and "hunter2" not in out
    code, out, _ = run("db", "migrate", "--json", DATABASE_URL=url)
    assert code == EXIT_OK and json.loads(out)["changed"] is False
    code, out, _ = run("db", "status", "--json", DATABASE_URL=url)
    assert code == EXIT_OK and json.loads(out) == {"database": json.loads(out)["database"], "version": SCHEMA_VERSION,
                                                   "code_version": SCHEMA_VERSION, "is_current": True}


def test_serve_refuses_a_schema_newer_than_its_code(run, postgres_url):
    with open_database(postgres_url) as db, db.transaction() as tx:
        tx.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    for argv in (("serve",), ("db", "migrate"), ("grant", "--viewer", "v1", "--series", "s1")):
        code, _, err = run(*argv, DATABASE_URL=postgres_url)
        assert code == EXIT_FAILED and "schema_too_new" in one_line(err) and "upgrade the service" in err


def test_an_unreachable_database_is_one_line_without_the_password(run):
    code, _, err = run("db", "status", DATABASE_URL="postgresql://series:hunter2-pass@127.0.0.1:9/series")
    assert code == EXIT_FAILED and "database_unavailable" in one_line(err)
    assert "hunter2" not in err and "series:***@127.0.0.1:9" in err


def test_the_embedded_file_upgrades_itself_and_may_be_migrated_too(run):
    code, out, _ = run("db", "status")
    assert code == EXIT_FAILED and "the embedded file upgrades itself" in out
    assert run("series", "list")[0] == EXIT_OK                                  # any command opens and upgrades it
    code, out, _ = run("db", "status")
    assert code == EXIT_OK and f"schema version {SCHEMA_VERSION}, this code's" in out
    code, out, _ = run("db", "migrate")
    assert code == EXIT_OK and "nothing to do" in out

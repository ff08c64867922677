"""The issue-6 settings: generated locally like the other secrets, checked, never echoed."""

from __future__ import annotations

import json

import pytest

from server.config import Settings, SettingsError


def test_local_setup_generates_operator_token_and_webhook_secret(tmp_path):
    settings = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    assert len(settings.operator_token.reveal()) >= 32 and len(settings.webhook_secret.reveal()) >= 32
    assert settings.operator_token.reveal() not in repr(settings)
    again = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    assert again.operator_token.reveal() == settings.operator_token.reveal()   # kept, not regenerated
    assert (tmp_path / "local-secrets.json").stat().st_mode & 0o777 == 0o600


def test_an_older_local_secrets_file_gains_the_new_secrets(tmp_path):
    Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    path = tmp_path / "local-secrets.json"
    old = json.loads(path.read_text())
    master_key = old["master_key"]
    del old["operator_token"], old["webhook_secret"]
    path.write_text(json.dumps(old))
    settings = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    assert settings.webhook_secret is not None
    assert json.loads(path.read_text())["master_key"] == master_key


@pytest.mark.parametrize("name, value, expected", [
    ("SERIES_ACCESS_CACHE_MAX_AGE_S", "0", "1 to 3600 seconds"),
    ("SERIES_ACCESS_CACHE_ENTRIES", "lots", "expected an integer"),
    ("SERIES_DATABASE_POOL_SIZE", "2", "at least 4"),
    ("SERIES_DATABASE_URL", "mysql://series:hunter2-SECRET@db/series", "expected postgresql://"),
    ("SERIES_DATABASE_URL", "postgresql://series:hunter2-SECRET@db:port/series", "does not parse"),
    ("SERIES_WEBHOOK_TOLERANCE_S", "0", "1 to 3600"),
    ("SERIES_OPERATOR_TOKEN", "hunter2", "too short"),
    ("SERIES_WEBHOOK_SECRET", "short-secret", "too short"),
])
def test_bad_values_name_the_variable_and_hide_secrets(tmp_path, name, value, expected):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), name: value})
    message = str(caught.value)
    assert name in message and expected in message
    if "TOKEN" in name or "SECRET" in name or "DATABASE_URL" in name:
        assert value not in message and "hunter2" not in message


def test_the_database_url_never_shows_its_password(tmp_path):
    settings = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path),
                                  "SERIES_DATABASE_URL": "postgresql://series:hunter2@db.internal:5432/series"})
    assert settings.database_target == "postgresql://series:hunter2@db.internal:5432/series"
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.describe_database()
    assert "series:***@db.internal:5432" in repr(settings)
    assert settings.access.lookup_threads == 4 and settings.database_pool_size >= 6
    embedded = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    assert embedded.database_url is None and embedded.database_target == str(tmp_path / "series.db")

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
    ("SERIES_ENTITLEMENT_CACHE_TTL_S", "6", "0 to 5 seconds"),
    ("SERIES_ENTITLEMENT_CACHE_TTL_S", "soon", "expected a number"),
    ("SERIES_WEBHOOK_TOLERANCE_S", "0", "1 to 3600"),
    ("SERIES_OPERATOR_TOKEN", "hunter2", "too short"),
    ("SERIES_WEBHOOK_SECRET", "short-secret", "too short"),
])
def test_bad_values_name_the_variable_and_hide_secrets(tmp_path, name, value, expected):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), name: value})
    message = str(caught.value)
    assert name in message and expected in message
    if "TOKEN" in name or "SECRET" in name:
        assert value not in message

"""The watermark secret: generated once on the embedded set-up (and added to an older secrets file), read from
SERIES_WATERMARK_SECRET elsewhere, refused when short or patterned (never echoed), absent when not given."""

from __future__ import annotations

import base64
import json
import os

import pytest

from server.config import Settings, SettingsError
from server.config.watermark import SessionSecretRetired, secret_id
from server.local.secrets import local_secrets

SECRET = base64.b64encode(bytes(range(7, 39))).decode()


def test_the_embedded_set_up_generates_one_secret_and_keeps_it(tmp_path):
    first = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).watermark
    again = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).watermark
    assert first.is_configured and len(first.secret) == 32 and again.secret == first.secret
    assert base64.b64encode(first.secret).decode() not in repr(first) and str(first.secret) not in repr(first)


def test_a_secrets_file_from_before_watermarking_gets_one_added(tmp_path):
    local_secrets(tmp_path)
    path = tmp_path / "local-secrets.json"
    content = json.loads(path.read_text())
    del content["watermark_secret"]
    path.write_text(json.dumps(content))
    secret = local_secrets(tmp_path)["watermark_secret"]
    assert len(secret) == 32 and json.loads(path.read_text())["watermark_secret"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert local_secrets(tmp_path)["master_key"] == base64.b64decode(content["master_key"])


def test_the_environment_names_it_and_a_bad_one_is_refused(tmp_path):
    env = {"SERIES_DATA_DIR": str(tmp_path), "SERIES_S3_ENDPOINT": "127.0.0.1:9", "SERIES_S3_ACCESS_KEY": "a",
           "SERIES_S3_SECRET_KEY": "b", "SERIES_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
           "SERIES_TOKEN_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode()}
    assert not Settings.from_env(env).watermark.is_configured        # off the embedded set-up: only if given
    assert Settings.from_env({**env, "SERIES_WATERMARK_SECRET": SECRET}).watermark.secret == bytes(range(7, 39))
    for bad in (base64.b64encode(b"x" * 40).decode(), base64.b64encode(os.urandom(16)).decode(), "not base64!"):
        with pytest.raises(SettingsError, match="SERIES_WATERMARK_SECRET") as refused:
            Settings.from_env({**env, "SERIES_WATERMARK_SECRET": bad})
        assert bad not in str(refused.value)


def test_retired_secrets_are_kept_by_their_public_ids_and_a_bad_one_is_refused(tmp_path):
    older = base64.b64encode(bytes(range(100, 132))).decode()
    watermark = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_WATERMARK_SECRET": SECRET,
                                   "SERIES_WATERMARK_RETIRED_SECRETS": f"{older}, {SECRET}"}).watermark
    current, retired = bytes(range(7, 39)), bytes(range(100, 132))
    assert watermark.retired == (retired,)                       # the current one is not listed twice
    assert list(watermark.known_secrets) == [secret_id(current), secret_id(retired)]
    assert watermark.secret_id == secret_id(current) != secret_id(retired)
    assert len(watermark.secret_id) == 16 and watermark.secret_id not in (SECRET, older)
    assert watermark.secret_for(secret_id(retired)) == retired
    with pytest.raises(SessionSecretRetired, match="SERIES_WATERMARK_RETIRED_SECRETS"):
        watermark.secret_for("0000000000000000")
    bad = base64.b64encode(b"y" * 40).decode()
    with pytest.raises(SettingsError, match="SERIES_WATERMARK_RETIRED_SECRETS") as refused:
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_WATERMARK_RETIRED_SECRETS": f"{older},{bad}"})
    assert bad not in str(refused.value)

"""Secrets at start-up: one minimum length and an entropy check for every bearer secret, one secret per
purpose, and every bad value named by its variable (never echoed)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from server.config import Settings, SettingsError
from server.config.credentials import MIN_SECRET_CHARS, estimated_bits

GOOD = "0vS9-kq2Lr8_XbT4eYw1Nc7Mz5Ah3Jp6"       # 32 URL-safe characters of a random-looking mix


def _env(tmp_path, **overrides: str) -> dict[str, str]:
    return {"SERIES_DATA_DIR": str(tmp_path), **{f"SERIES_{k}": v for k, v in overrides.items()}}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("variable", ["OPERATOR_TOKEN", "INGEST_TOKEN", "METRICS_TOKEN", "WEBHOOK_SECRET"])
@pytest.mark.parametrize("value, says", [
    ("a" * 24, "too predictable"),                       # long enough, but one letter
    ("abcabcabcabcabcabcabcabcabc", "too predictable"),
    ("Short-But-Random-7x", "too short"),                # 19 characters: under the one minimum
])
def test_every_bearer_secret_has_one_minimum_and_must_look_random(tmp_path, variable, value, says):
    with pytest.raises(SettingsError, match=f"SERIES_{variable} is {says}") as raised:
        Settings.from_env(_env(tmp_path, **{variable: value}))
    assert value not in str(raised.value)


def test_the_minimum_is_the_same_for_every_bearer_secret(tmp_path):
    exactly = GOOD[:MIN_SECRET_CHARS]
    for variable in ("OPERATOR_TOKEN", "INGEST_TOKEN", "METRICS_TOKEN", "WEBHOOK_SECRET"):
        Settings.from_env(_env(tmp_path / variable, **{variable: exactly}))
    assert estimated_bits("a" * 100) == 0 and estimated_bits(GOOD) > 128


def test_two_purposes_may_not_share_a_secret(tmp_path):
    with pytest.raises(SettingsError, match="SERIES_OPERATOR_TOKEN and SERIES_INGEST_TOKEN are the same secret"):
        Settings.from_env(_env(tmp_path, OPERATOR_TOKEN=GOOD, INGEST_TOKEN=GOOD))


def test_the_local_setup_generates_a_separate_secret_for_each_purpose(tmp_path):
    settings = Settings.from_env(_env(tmp_path))
    values = [settings.operator_token.reveal(), settings.webhook_secret.reveal(), settings.jobs.ingest_token,
              settings.jobs.webhook_secret]
    assert len(set(values)) == 4
    assert settings.jobs.webhook_secret.startswith("whsec_")


def test_job_webhook_secret_no_longer_defaults_to_the_ingest_token(tmp_path, s3_store):
    from tests.conftest import settings_env

    env = settings_env(tmp_path, s3_store, SERIES_INGEST_TOKEN=GOOD)
    assert Settings.from_env(env).jobs.webhook_secret is None
    with pytest.raises(SettingsError, match="SERIES_JOB_WEBHOOK_SECRET is not set, but SERIES_JOB_WEBHOOK_HOSTS"):
        Settings.from_env({**env, "SERIES_JOB_WEBHOOK_HOSTS": "hooks.example.com"})
    with pytest.raises(SettingsError, match="SERIES_JOB_WEBHOOK_SECRET must be a Standard Webhooks secret"):
        Settings.from_env({**env, "SERIES_JOB_WEBHOOK_SECRET": GOOD})
    with pytest.raises(SettingsError, match="SERIES_JOB_WEBHOOK_SECRET decodes to 32 bytes of a predictable"):
        Settings.from_env({**env, "SERIES_JOB_WEBHOOK_SECRET": "whsec_" + _b64(b"w" * 32)})


@pytest.mark.parametrize("overrides, message", [
    ({"TOKEN_KEYS": "k1:YQ=="}, "SERIES_TOKEN_KEYS entry 'k1' decodes to 1 byte;"),
    ({"TOKEN_KEYS": "k1:" + _b64(b"t" * 32)}, "SERIES_TOKEN_KEYS entry 'k1' decodes to 32 bytes of a predictable"),
    ({"TOKEN_KEYS": "k1:not base64!"}, "SERIES_TOKEN_KEYS entry 'k1' is not valid base64"),
    ({"TOKEN_KEYS": "../x:" + _b64(bytes(range(32)))}, "SERIES_TOKEN_KEYS has key id '../x'"),
    ({"TOKEN_KID": "nope"}, "SERIES_TOKEN_KID is 'nope', which SERIES_TOKEN_KEYS does not define"),
    ({"MASTER_KEY": _b64(b"m" * 32)}, "SERIES_MASTER_KEY decodes to 32 bytes of a predictable"),
    ({"MASTER_KEY_ID": "a b"}, "SERIES_MASTER_KEY_ID has key id 'a b'"),
    ({"OLD_MASTER_KEYS": "old:YQ=="}, "SERIES_OLD_MASTER_KEYS entry 'old' decodes to 1 bytes; expected 32"),
    ({"TOKEN_TTL_S": "0"}, "SERIES_TOKEN_TTL_S has value 0"),
    ({"TOKEN_PUBLIC_KEYS": "host:" + _b64(b"not a key")}, "SERIES_TOKEN_PUBLIC_KEYS entry 'host' is not a DER"),
])
def test_token_and_master_key_errors_name_the_variable_not_internal_fields(tmp_path, overrides, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(_env(tmp_path, **overrides))
    assert message in str(raised.value)
    assert "token_signing" not in str(raised.value) and "master_key_id" not in str(raised.value)


def test_public_token_keys_are_ed25519_or_p256_under_their_own_kids(tmp_path):
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.DER,
                                                                         PublicFormat.SubjectPublicKeyInfo)
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.DER,
                                                                             PublicFormat.SubjectPublicKeyInfo)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(Encoding.DER,
                                                                             PublicFormat.SubjectPublicKeyInfo)
    keys = Settings.from_env(_env(tmp_path, TOKEN_PUBLIC_KEYS=f"host-ed:{_b64(ed)}, host-es:{_b64(p256)}"))
    assert keys.token_public_keys == {"host-ed": ed, "host-es": p256}
    with pytest.raises(SettingsError, match="neither an Ed25519 nor a P-256"):
        Settings.from_env(_env(tmp_path, TOKEN_PUBLIC_KEYS=f"h:{_b64(p384)}"))
    secret = _b64(hashlib.sha256(b"k").digest())
    with pytest.raises(SettingsError, match="reuses a key id of SERIES_TOKEN_KEYS"):
        Settings.from_env(_env(tmp_path, TOKEN_KEYS=f"k1:{secret}", TOKEN_PUBLIC_KEYS=f"k1:{_b64(ed)}"))

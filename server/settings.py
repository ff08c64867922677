"""Settings: the one reader of the environment. Everything else receives a Settings object.

With nothing configured, the project runs on the embedded local object store (SeaweedFS `weed mini`)
and generates its secrets once into the data directory. Pointing SERIES_S3_ENDPOINT at a MinIO
cluster switches to that store; then every secret must come from the environment.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from drm.keystore import DrmSettings
from packager.store import StoreSettings
from pipeline.ladder import LadderSettings
from pipeline.validate import ValidationRules
from server.localstore import LocalStoreSettings

log = logging.getLogger(__name__)

PREFIX = "SERIES_"


class SettingsError(ValueError):
    code = "bad_settings"


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    db_path: Path
    store: StoreSettings
    local_store: LocalStoreSettings | None      # set when the embedded store is the store
    drm: DrmSettings
    ladder: LadderSettings
    rules: ValidationRules
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    segments_per_key: int = 10                  # key rotation period: 10 x 6 s = about 60 s

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = _Env(environ)
        data_dir = Path(env.str("DATA_DIR", "var")).absolute()
        endpoint = env.str("S3_ENDPOINT", "")
        local_store = None
        if endpoint:
            store = StoreSettings(
                endpoint=endpoint,
                access_key=env.required("S3_ACCESS_KEY"),
                secret_key=env.required("S3_SECRET_KEY", secret=True),
                bucket=env.str("S3_BUCKET", "series"),
                secure=env.bool("S3_SECURE", False),
                region=env.str("S3_REGION", "") or None,
            )
            generated = {}
        else:
            local_store = LocalStoreSettings(data_dir=data_dir / "seaweedfs", port=env.int("LOCAL_S3_PORT", 8333))
            store = StoreSettings(
                endpoint=f"127.0.0.1:{local_store.port}",
                access_key=local_store.access_key,
                secret_key=local_store.secret_key,
                bucket=env.str("S3_BUCKET", "series"),
            )
            generated = _local_secrets(data_dir)
        master_key = env.base64_key("MASTER_KEY", generated.get("master_key"), size=32)
        token_keys = env.token_keys("TOKEN_KEYS", generated.get("token_keys"))
        drm = DrmSettings(
            master_key=master_key,
            master_key_id=env.str("MASTER_KEY_ID", "mk1"),
            old_master_keys=env.old_master_keys("OLD_MASTER_KEYS"),
            token_signing_keys=token_keys,
            token_signing_kid=env.str("TOKEN_KID", sorted(token_keys)[-1]),
            token_ttl_s=env.int("TOKEN_TTL_S", 6 * 3600),
        )
        host = env.str("LISTEN_HOST", "127.0.0.1")
        port = env.int("LISTEN_PORT", 8080)
        return cls(
            data_dir=data_dir,
            db_path=Path(env.str("DB_PATH", str(data_dir / "series.db"))).absolute(),
            store=store,
            local_store=local_store,
            drm=drm,
            ladder=LadderSettings(
                max_renditions=env.int("LADDER_MAX_RENDITIONS", 5),
                preset=env.str("X264_PRESET", "veryfast"),
                min_psnr_db=env.float("MIN_PSNR_DB", 30.0),
            ),
            rules=ValidationRules(
                min_duration_s=env.float("MIN_DURATION_S", 30.0),
                max_duration_s=env.float("MAX_DURATION_S", 1200.0),
            ),
            listen_host=host,
            listen_port=port,
            public_url=env.str("PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            segments_per_key=env.int("SEGMENTS_PER_KEY", 10),
        )


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def str(self, name: str, default: str) -> str:
        return self.environ.get(PREFIX + name, default)

    def required(self, name: str, *, secret: bool = False) -> str:
        value = self.environ.get(PREFIX + name, "")
        if not value:
            raise SettingsError(f"{PREFIX}{name} is not set; it is required when {PREFIX}S3_ENDPOINT is set")
        return value

    def int(self, name: str, default: int) -> int:
        raw = self.environ.get(PREFIX + name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected an integer") from None

    def float(self, name: str, default: float) -> float:
        raw = self.environ.get(PREFIX + name)
        if raw is None or raw == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected a number") from None

    def bool(self, name: str, default: bool) -> bool:
        raw = self.environ.get(PREFIX + name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected true or false")

    def base64_key(self, name: str, fallback: bytes | None, *, size: int) -> bytes:
        raw = self.environ.get(PREFIX + name, "")
        if not raw:
            if fallback is None:
                raise SettingsError(
                    f"{PREFIX}{name} is not set; give {size} random bytes in base64 "
                    f"(e.g. python -c 'import os,base64;print(base64.b64encode(os.urandom({size})).decode())')"
                )
            return fallback
        key = _decode_b64(raw, PREFIX + name)
        if len(key) != size:
            raise SettingsError(f"{PREFIX}{name} decodes to {len(key)} bytes; expected {size}")
        return key

    def token_keys(self, name: str, fallback: dict[str, bytes] | None) -> dict[str, bytes]:
        """'kid:base64,kid2:base64' — several kids let a signing key rotate without logging viewers out."""
        raw = self.environ.get(PREFIX + name, "")
        if not raw:
            if fallback is None:
                raise SettingsError(f"{PREFIX}{name} is not set; give 'kid:base64secret[,kid2:base64secret]'")
            return fallback
        return self._kid_map(name, raw)

    def old_master_keys(self, name: str) -> dict[str, bytes]:
        raw = self.environ.get(PREFIX + name, "")
        return self._kid_map(name, raw) if raw else {}

    def _kid_map(self, name: str, raw: str) -> dict[str, bytes]:
        keys = {}
        for item in raw.split(","):
            kid, sep, value = item.strip().partition(":")
            if not sep or not kid:
                raise SettingsError(f"{PREFIX}{name} has an entry without 'kid:'; expected 'kid:base64secret,...'")
            keys[kid] = _decode_b64(value, f"{PREFIX}{name}[{kid}]")
        return keys


def _decode_b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} is not valid base64") from None


def _local_secrets(data_dir: Path) -> dict:
    """Secrets for the embedded local setup, generated once and kept (0600) beside its data."""
    path = data_dir / "local-secrets.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        content = {
            "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "token_keys": {"local1": base64.b64encode(secrets.token_bytes(32)).decode()},
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle)
        log.info("generated local secrets in %s (for the embedded setup only)", path)
    content = json.loads(path.read_text())
    return {
        "master_key": base64.b64decode(content["master_key"]),
        "token_keys": {kid: base64.b64decode(v) for kid, v in content["token_keys"].items()},
    }

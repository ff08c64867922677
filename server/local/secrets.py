"""The embedded set-up's secrets: generated once, kept (mode 0600) beside its data, for local use only."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def local_secrets(data_dir: Path) -> dict:
    """Secrets for the embedded local setup, generated once and kept (0600) beside its data: the master
    key, token keys, one secret per purpose (operator, payment webhook, ingest, job webhooks), and the key of
    viewers' watermark sequences."""
    path = data_dir / "local-secrets.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        content = {
            "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "token_keys": {"local1": base64.b64encode(secrets.token_bytes(32)).decode()},
            "operator_token": secrets.token_urlsafe(32),
            "webhook_secret": secrets.token_urlsafe(32),
            "ingest_token": secrets.token_urlsafe(32),
            "job_webhook_secret": _new_webhook_secret(),
            "watermark_secret": _new_binary_secret(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle)
        log.info("generated local secrets in %s (for the embedded setup only)", path)
    content = json.loads(path.read_text())
    missing = [name for name in _BEARER_SECRETS + tuple(_MADE_BY) if name not in content]
    if missing:  # a file from before these existed: add them, keep the rest, and keep them for next time
        content.update({name: _MADE_BY.get(name, lambda: secrets.token_urlsafe(32))() for name in missing})
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle)
        temporary.replace(path)
    return {
        "master_key": base64.b64decode(content["master_key"]),
        "token_keys": {kid: base64.b64decode(v) for kid, v in content["token_keys"].items()},
        "operator_token": content["operator_token"],
        "webhook_secret": content["webhook_secret"],
        "ingest_token": content["ingest_token"],
        "job_webhook_secret": content["job_webhook_secret"],
        "watermark_secret": base64.b64decode(content["watermark_secret"]),
    }


# one secret per purpose: a leaked ingest token must not also forge our completion webhooks
_BEARER_SECRETS = ("operator_token", "webhook_secret", "ingest_token")


def _new_webhook_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _new_binary_secret() -> str:
    """32 random bytes in base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# secrets not of the bearer kind, and how a file from before them gets one
_MADE_BY = {"job_webhook_secret": _new_webhook_secret, "watermark_secret": _new_binary_secret}

"""Helpers for ingest-job tests: settings with the hand-off API open, and polling a job over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from pathlib import Path

from server.config import Settings
from tests.conftest import settings_env
from tests.support.catalog import add_series_for

INGEST_TOKEN = "test-ingest-token-0123456789"
AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}
# completion webhooks are signed with their own secret (Standard Webhooks' whsec_ + base64 form)
JOB_WEBHOOK_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"tests: job webhooks").digest()).decode()
JOB_DEADLINE_S = 180.0          # a bound so a broken worker fails the test instead of hanging it


def ingest_env(data_dir: Path, s3_store, **overrides: str) -> dict[str, str]:
    # webhooks go to loopback receivers in tests; the default allow-list is empty
    overrides.setdefault("SERIES_JOB_WEBHOOK_HOSTS", "127.0.0.1")
    overrides.setdefault("SERIES_JOB_WEBHOOK_SECRET", JOB_WEBHOOK_SECRET)
    return settings_env(data_dir, s3_store, SERIES_INGEST_TOKEN=INGEST_TOKEN, **overrides)


def ingest_settings(data_dir: Path, s3_store, *, series: tuple[str, ...] = (), **overrides: str) -> Settings:
    """Settings with the hand-off API open; each of `series` is created in the catalog (ingest needs it)."""
    settings = Settings.from_env(ingest_env(data_dir, s3_store, **overrides))
    for series_id in series:
        add_series_for(settings, series_id)
    return settings


async def wait_for_job(client, job_id: str, *, until=lambda job: job["state"] in ("published", "failed"),
                       base: str = "") -> dict:
    """Poll GET /v1/jobs/{id} until `until(job)`; every state seen is in job["seen_states"]."""
    deadline = time.monotonic() + JOB_DEADLINE_S
    seen: list[str] = []
    while True:
        async with client.get(f"{base}/v1/jobs/{job_id}", headers=AUTH) as response:
            assert response.status == 200, await response.text()
            job = await response.json()
        if not seen or seen[-1] != job["state"]:
            seen.append(job["state"])
        job["seen_states"] = seen
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck: {job}"
        await asyncio.sleep(0.1)


def verify_completion_webhook(headers: dict, payload: bytes) -> dict:
    """The event of a completion webhook, verified by the Standard Webhooks reference library (raises
    standardwebhooks.WebhookVerificationError for a bad or missing signature)."""
    from standardwebhooks import Webhook

    return Webhook(JOB_WEBHOOK_SECRET).verify(payload, headers)

"""Completion webhooks: a finished job POSTed, signed, to the webhook_url its submitter gave.

The host is checked against SERIES_JOB_WEBHOOK_HOSTS again at delivery (the list may have shrunk since
the job was submitted), and the body is signed with SERIES_JOB_WEBHOOK_SECRET the way the payment
system signs the webhooks we receive, so a receiver can refuse forgeries and replays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from drm import purchases
from server.config import Settings
from server.ingest.job_store import JobStore
from server.ingest.jobs import Job, WebhookNotAllowed, check_webhook_allowed

log = logging.getLogger(__name__)

SIGNATURE_HEADER = purchases.SIGNATURE_HEADER
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_ATTEMPTS = 3


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The Series-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`.

    The timestamp is signed with the body so a receiver can refuse replays of old deliveries.
    """
    return purchases.sign(secret.encode(), timestamp, body)     # the scheme the payment system signs us with


class CompletionWebhooks:
    """Delivers finished jobs to their webhook URLs; the outcome is kept on the job (webhook_status)."""

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self._settings = settings
        self._jobs = jobs
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Open the HTTP client (on the event loop that will deliver)."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def notify(self, job: Job) -> None:
        """POST the finished job to its webhook URL, signed; a few tries, the outcome kept on the job."""
        if not job.webhook_url or self._http is None:
            return
        try:    # again at delivery: the allow-list may have shrunk since the job was submitted
            check_webhook_allowed(job.webhook_url, self._settings.jobs.webhook_hosts)
        except WebhookNotAllowed as exc:
            log.warning("job %s: webhook not sent: %s", job.job_id, exc)
            await asyncio.to_thread(self._jobs.set_webhook_status, job.job_id, "refused (host not allowed)")
            return
        body = json.dumps({"event": f"job.{job.state}", "job": job.as_public_dict()}).encode()
        status = "failed"
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: sign_webhook(self._settings.jobs.webhook_secret or "", timestamp, body)}
            try:
                async with self._http.post(job.webhook_url, data=body, headers=headers) as response:
                    if response.status < 300:
                        status = f"delivered (HTTP {response.status})"
                        break
                    status = f"failed (HTTP {response.status})"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                status = f"failed ({type(exc).__name__})"
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(0.5 * 2**attempt)
        log.info("job %s: webhook %s", job.job_id, status)
        await asyncio.to_thread(self._jobs.set_webhook_status, job.job_id, status)

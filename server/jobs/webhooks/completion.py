"""Completion webhooks: a finished job POSTed, signed, to the webhook_url its submitter gave.

One delivery attempt is deliver_once(): it checks the URL against SERIES_JOB_WEBHOOK_HOSTS again (the
list may have shrunk since the job was submitted), connects only to addresses the policy of
server/jobs/webhooks/addresses.py allows (checked on the socket itself, after DNS), never follows a
redirect (a 3xx is a failed delivery: following it would carry the signed body to a host nobody
listed), and returns a DeliveryOutcome saying whether to try again. server/jobs/webhooks/deliveries.py records
each delivery and calls deliver_once() once per attempt, on a schedule of hours, and on request.

Signatures follow Standard Webhooks (standardwebhooks.com): headers `webhook-id` (the same on every
attempt of one event, for the receiver's de-duplication), `webhook-timestamp` (unix seconds) and
`webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>." + body)>`, the key being the
base64 bytes after `whsec_` in SERIES_JOB_WEBHOOK_SECRET. Receivers can verify with any Standard
Webhooks library. For receivers of the older `Series-Signature: t=…,v1=<hex>` header, setting
SERIES_JOB_WEBHOOK_LEGACY_SECRET (the secret they verify today) adds that header too, until they move.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

import aiohttp

from drm.payments import purchases
from server.config.jobs import JobSettings, webhook_signing_key
from server.jobs.jobs import Job, WebhookNotAllowed, check_webhook_allowed
from server.jobs.webhooks.addresses import AddressNotAllowed, guarded_socket_factory, listed_networks

log = logging.getLogger(__name__)

LEGACY_SIGNATURE_HEADER = purchases.SIGNATURE_HEADER       # "Series-Signature", before Standard Webhooks
WEBHOOK_TIMEOUT_S = 10.0
MAX_LOCATION_SHOWN = 200
# answers worth another attempt: the receiver is down, overloaded or asks us to slow down
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def sign_webhook(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (Standard Webhooks v1): `v1,<base64 HMAC-SHA256>` of
    "<message_id>.<timestamp>." + body under `key`. The id and timestamp are signed with the body so a
    receiver can refuse replays (an old timestamp) and duplicates (an id it has seen)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_legacy(secret: str, timestamp: int, body: bytes) -> str:
    """The older `Series-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "t." + body>` header value."""
    return purchases.sign(secret.encode(), timestamp, body)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookMessage:
    """One event to deliver: the same id and body on every attempt."""

    message_id: str
    url: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOutcome:
    """What one attempt came to. `retryable`: another attempt later may succeed (a 5xx, a timeout, a
    refused connection); a redirect, a 4xx or an address we may not reach will not change by retrying."""

    delivered: bool
    retryable: bool
    status: str                   # for people and the job's webhook.status: "delivered (HTTP 204)", ...
    http_status: int | None = None


def message_for(job: Job) -> WebhookMessage:
    """The completion event of `job`, identified by job and final state."""
    body = json.dumps({"event": f"job.{job.state}", "job": job.as_public_dict()}).encode()
    return WebhookMessage(message_id=f"msg_{job.job_id}_{job.state}", url=job.webhook_url or "", body=body)


def open_webhook_session(jobs: JobSettings) -> aiohttp.ClientSession:
    """An HTTP client whose every connection passes the address policy; no proxies from the environment."""
    allowed = listed_networks(jobs.webhook_hosts, jobs.webhook_networks)
    connector = aiohttp.TCPConnector(socket_factory=guarded_socket_factory(allowed), limit=16)
    return aiohttp.ClientSession(connector=connector, trust_env=False,
                                 timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))


async def deliver_once(http: aiohttp.ClientSession, message: WebhookMessage, jobs: JobSettings,
                       *, now: float | None = None) -> DeliveryOutcome:
    """Make one signed delivery attempt of `message` with a session from open_webhook_session().

    Never raises for a failed delivery: the outcome says what happened and whether to retry.
    """
    try:
        check_webhook_allowed(message.url, jobs.webhook_hosts)
    except WebhookNotAllowed:
        return DeliveryOutcome(delivered=False, retryable=False, status="refused (host not allowed)")
    if not jobs.webhook_secret:
        return DeliveryOutcome(delivered=False, retryable=False,
                               status="refused (SERIES_JOB_WEBHOOK_SECRET is not set)")
    timestamp = int(time.time() if now is None else now)
    headers = {"Content-Type": "application/json", "webhook-id": message.message_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign_webhook(webhook_signing_key(jobs.webhook_secret), message.message_id,
                                                 timestamp, message.body)}
    if jobs.webhook_legacy_secret:
        headers[LEGACY_SIGNATURE_HEADER] = sign_legacy(jobs.webhook_legacy_secret, timestamp, message.body)
    try:
        async with http.post(message.url, data=message.body, headers=headers, allow_redirects=False) as response:
            status = response.status
            location = response.headers.get("Location", "")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressNotAllowed):
            return DeliveryOutcome(delivered=False, retryable=False,
                                   status=f"refused (address {exc.os_error.address} is {exc.os_error.kind} "
                                          "and not listed)")
        return DeliveryOutcome(delivered=False, retryable=True, status=f"failed ({type(exc).__name__})")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return DeliveryOutcome(delivered=False, retryable=True, status=f"failed ({type(exc).__name__})")
    if 200 <= status < 300:
        return DeliveryOutcome(delivered=True, retryable=False, status=f"delivered (HTTP {status})",
                               http_status=status)
    if 300 <= status < 400:
        shown = location[:MAX_LOCATION_SHOWN] or "no Location"
        return DeliveryOutcome(delivered=False, retryable=False, http_status=status,
                               status=f"failed (HTTP {status} redirect to {shown} not followed; "
                                      "give the final URL as webhook_url)")
    return DeliveryOutcome(delivered=False, retryable=status >= 500 or status in _RETRYABLE_STATUSES,
                           status=f"failed (HTTP {status})", http_status=status)

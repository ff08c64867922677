"""Settings of the ingest hand-off API and its jobs (SERIES_INGEST_*, SERIES_JOB_*, SERIES_UPLOADS_BUCKET, ...)."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IN_PROCESS, PROCRASTINATE = "in-process", "procrastinate"      # SERIES_JOB_ENGINE
JOB_ENGINES = (IN_PROCESS, PROCRASTINATE)
# Standard Webhooks' retry schedule: the first attempt at once, then after each of these (about 28 hours)
WEBHOOK_RETRY_DELAYS_S: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MIN_JOB_S = 1.0                  # SERIES_JOB_MAX_S may be set very low (tests do); the default is hours


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """The ingest hand-off API and its worker pool (SERIES_INGEST_*, SERIES_UPLOADS_BUCKET, ...)."""

    ingest_token: str | None = field(default=None, repr=False)  # None: the hand-off API refuses everyone
    # completion webhooks we send: Standard Webhooks secret (whsec_ + base64 key), and the older
    # Series-Signature secret still sent during receivers' transition (None: not sent)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_legacy_secret: str | None = field(default=None, repr=False)
    uploads_bucket: str = "uploads"
    spool_dir: Path = Path("var/uploads")
    max_upload_bytes: int = 8 * 1024**3
    workers: int = 1                # transcodes already use a thread per rendition; 2 cores here
    max_attempts: int = 3           # runs of one job (cut short by restarts or store outages) before it fails
    retry_delay_s: float = 30.0     # wait before re-running a job the object store failed; doubles each time
    db_busy_timeout_ms: int = 2000  # how long an API request waits for a locked database before 503
    # SSRF guard: the only hosts ("host" or "host:port", lower case) a job's webhook_url may name;
    # empty refuses every webhook_url (SERIES_JOB_WEBHOOK_HOSTS)
    webhook_hosts: tuple[str, ...] = ()
    # non-public networks a listed host name may resolve to (SERIES_JOB_WEBHOOK_NETWORKS); see
    # server/jobs/webhook_address.py: loopback, private and metadata addresses are refused otherwise
    webhook_networks: tuple[IpNetwork, ...] = ()
    lease_s: float = 60.0           # a claimed job whose owner stops renewing for this long is re-queued
    failed_upload_retention_s: float = 7 * 24 * 3600.0  # a failed job's spooled upload is kept this long
    # one run of a job may take this long before its worker is killed and the job failed (SERIES_JOB_MAX_S):
    # a 20-minute 4K upload transcodes in well under 2 hours on 2 cores at veryfast
    max_job_s: float = 4 * 3600.0
    # who runs jobs (SERIES_JOB_ENGINE): the in-process runner (the default on SQLite), or Procrastinate on the
    # shared PostgreSQL (the default there), whose `series worker` processes run them on any host
    engine: str = IN_PROCESS
    # a distributed worker silent for this long is taken for dead and its job run again elsewhere
    # (SERIES_JOB_STALLED_S); workers beat every third of it
    stalled_after_s: float = 30.0
    # delays between completion-webhook attempts (SERIES_JOB_WEBHOOK_RETRY_DELAYS_S, seconds, comma-separated)
    webhook_retry_delays_s: tuple[float, ...] = WEBHOOK_RETRY_DELAYS_S


def webhook_signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 bytes after 'whsec_' (checked at start-up)."""
    return base64.b64decode(secret.removeprefix("whsec_"))

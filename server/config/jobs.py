"""Settings of the ingest hand-off API and its jobs (SERIES_INGEST_*, SERIES_JOB_*, SERIES_UPLOADS_BUCKET, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """The ingest hand-off API and its worker pool (SERIES_INGEST_*, SERIES_UPLOADS_BUCKET, ...)."""

    ingest_token: str | None = field(default=None, repr=False)  # None: the hand-off API refuses everyone
    webhook_secret: str | None = field(default=None, repr=False)  # HMAC key for completion webhooks
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
    lease_s: float = 60.0           # a claimed job whose owner stops renewing for this long is re-queued
    failed_upload_retention_s: float = 7 * 24 * 3600.0  # a failed job's spooled upload is kept this long

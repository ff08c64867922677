"""Ingest jobs: what a job is, the states it goes through, and the errors of the job system.

    queued → validating → transcoding → packaging → publishing → published
       └──────────────────────────────────────────────────────────→ failed

Each run of a job has an `attempt` number; every write a worker makes names its attempt and is
ignored once the job moved on (re-queued after a restart, or finished). The table that keeps jobs,
their attempts and their leases is server/jobs/job_store.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

QUEUED, VALIDATING, TRANSCODING = "queued", "validating", "transcoding"
PACKAGING, PUBLISHING = "packaging", "publishing"
PUBLISHED, FAILED = "published", "failed"
RUNNING_STATES = (VALIDATING, TRANSCODING, PACKAGING, PUBLISHING)
TERMINAL_STATES = (PUBLISHED, FAILED)
STATES = (QUEUED, *RUNNING_STATES, *TERMINAL_STATES)

# failures worth running the job again for: the store was down or overloaded, the upload is fine
RETRYABLE_CODES = frozenset({"store_unavailable"})

SOURCE_SPOOL = "spool"      # the body was streamed to us and kept under data_dir/uploads
SOURCE_BUCKET = "bucket"    # an object the upload service had already put into the uploads bucket
# where resumable (tus) uploads keep their objects in the uploads bucket: tus/{upload_id}/media/{file}, ...;
# such an upload is ours to sweep, unlike an object an upload service named (server/ingest/resumable.py)
UPLOADS_PREFIX = "tus/"


class JobError(Exception):
    code = "job_error"


class JobNotFound(JobError):
    code = "job_not_found"
    http_status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no ingest job {job_id!r}")
        self.job_id = job_id

    def __reduce__(self):
        return type(self), (self.job_id,)


class IdempotencyConflict(JobError):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"
    http_status = 422   # the IETF Idempotency-Key draft's answer to a reused key

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for job {job_id} with a different request; "
                         "use a new key for a new upload")
        self.key, self.job_id = key, job_id

    def __reduce__(self):
        return type(self), (self.key, self.job_id)


class WebhookNotAllowed(JobError):
    """A webhook_url we will not call: not http(s), or a host outside SERIES_JOB_WEBHOOK_HOSTS (SSRF guard)."""

    code = "webhook_url_not_allowed"
    http_status = 422   # a webhook_url outside SERIES_JOB_WEBHOOK_HOSTS or not http(s)


class JobStoreUnavailable(JobError):
    """The database is locked by another writer or cannot be written (disk full); nothing was changed."""

    code = "database_unavailable"
    http_status = 503


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequest:
    series_id: str
    episode_id: str
    source_kind: str
    idempotency_key: str
    fingerprint: str
    source_bucket: str | None = None
    source_key: str | None = None
    spool_path: str | None = None
    spool_host: str | None = None     # the host whose disk holds spool_path
    size_bytes: int | None = None
    webhook_url: str | None = None
    poster_at_s: float | None = None  # the poster's time (seconds); None: picked by score


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    job_id: str
    series_id: str
    episode_id: str
    state: str
    stage_fraction: float
    source_kind: str
    source_bucket: str | None
    source_key: str | None
    spool_path: str | None
    size_bytes: int | None
    idempotency_key: str
    fingerprint: str
    webhook_url: str | None
    webhook_status: str | None
    attempt: int
    version: int | None
    report: dict | None
    error_code: str | None
    error_message: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    owner_id: str | None = None             # the runner holding the job, while its lease lasts
    lease_expires_at: float | None = None
    spool_host: str | None = None           # the host whose disk holds a streamed upload (None: any host)
    engine_job_id: int | None = None        # the distributed engine's job running this one (Procrastinate)
    cancel_requested_at: float | None = None
    # why each attempt that did not publish ended, oldest first (JobStore fills it in where it reads jobs)
    attempt_errors: tuple[dict, ...] = ()
    poster_at_s: float | None = None        # the poster's time the uploader named; None: picked by score

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def duration_s(self) -> float | None:
        return self.finished_at - self.created_at if self.finished_at else None

    def as_public_dict(self) -> dict[str, Any]:
        """What the API and webhooks show: no spool paths or fingerprints."""
        return {
            "job_id": self.job_id,
            "series_id": self.series_id,
            "episode_id": self.episode_id,
            "state": self.state,
            "stage_percent": round(self.stage_fraction * 100, 1),
            "attempt": self.attempt,
            "source": ({"bucket": self.source_bucket, "key": self.source_key} if self.source_kind == SOURCE_BUCKET
                       else {"upload_bytes": self.size_bytes}),
            "version": self.version,
            # a rejected upload's reasons; a published job's ladder and quality (one column holds either)
            "validation_report": self.report if self.state != PUBLISHED else None,
            "ingest_report": self.report if self.state == PUBLISHED else None,
            "error": {"code": self.error_code, "message": self.error_message} if self.error_code else None,
            "attempt_errors": list(self.attempt_errors),
            "webhook": {"url": self.webhook_url, "status": self.webhook_status} if self.webhook_url else None,
            "poster_at_s": self.poster_at_s,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def check_webhook_allowed(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """Raise WebhookNotAllowed unless `url` is http(s) to a host in `allowed_hosts` ("host" or "host:port").

    Without this the service would POST wherever a caller asks, from inside the network: to the
    cloud metadata endpoint, to admin ports on loopback (SSRF). Credentials in the URL are refused too:
    they would show in job listings.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookNotAllowed(f"webhook_url must be http or https, not {parts.scheme or 'schemeless'!r}")
    if parts.username is not None or parts.password is not None:
        raise WebhookNotAllowed("webhook_url must not carry credentials; the body is signed instead")
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    if host not in allowed_hosts and f"{shown}:{port}" not in allowed_hosts:
        raise WebhookNotAllowed(f"webhook host {shown}:{port} is not allowed; the operator lists the allowed "
                                "hosts in SERIES_JOB_WEBHOOK_HOSTS")


def describe_duration(seconds: float) -> str:
    """`seconds` for people, in the largest unit that counts it whole: "7 days", "36 hours", "90 minutes";
    else rounded in the largest unit it reaches: "about 7 days"."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for name, size in units:
        count = seconds / size
        if count >= 1 and count.is_integer() and count < 1000:
            return f"{count:g} {name}{'' if count == 1 else 's'}"
    name, size = next(((name, size) for name, size in units if seconds >= size), units[-1])
    count = round(seconds / size, 1)
    return f"about {count:g} {name}{'' if count == 1 else 's'}"


def upload_note(job: Job, retention_s: float) -> str:
    """What a failed job's error says about its upload: a spooled one, or a resumable upload's object, is kept
    `retention_s` (then swept: server/ingest/spool.py, upload_sweep.py); an object an upload service named in
    the uploads bucket is left where it is."""
    if job.source_kind == SOURCE_BUCKET and not (job.source_key or "").startswith(UPLOADS_PREFIX):
        return "the upload stays in the uploads bucket"
    return f"the upload is kept for {describe_duration(retention_s)}"


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A stable digest of what a request asked for, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

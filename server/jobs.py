"""Ingest jobs: persisted in SQLite so a hand-off survives a restart, and fenced so a stale worker
cannot overwrite the work of the attempt that replaced it.

    queued → validating → transcoding → packaging → publishing → published
       └──────────────────────────────────────────────────────────→ failed

Each run of a job has an `attempt` number; every write a worker makes names its attempt and is
ignored once the job moved on (re-queued after a restart, or finished). The table lives in the
service's database file beside drm's tables, but is owned here: drm knows nothing of jobs.

Several service instances may share the file. A runner claims a job before running it: the row
gets the runner's `owner_id` and a lease the runner renews while it lives. Recovery re-queues only
jobs whose lease ran out (their instance died), never another live instance's work; and a job is
not claimed while another job of the same episode is held, so re-ingests of one episode run one
after the other, in submission order, whichever instance took them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drm.database import Database
from server.job_owners import local_owner_prefix, owner_is_gone

QUEUED, VALIDATING, TRANSCODING = "queued", "validating", "transcoding"
PACKAGING, PUBLISHING = "packaging", "publishing"
PUBLISHED, FAILED = "published", "failed"
RUNNING_STATES = (VALIDATING, TRANSCODING, PACKAGING, PUBLISHING)
TERMINAL_STATES = (PUBLISHED, FAILED)
STATES = (QUEUED, *RUNNING_STATES, *TERMINAL_STATES)

# failures worth running the job again for: the store was down or overloaded, the upload is fine
RETRYABLE_CODES = frozenset({"store_unavailable"})

_IN_BATCH = 500             # values per "IN (...)": well under SQLite's limit on parameters

SOURCE_SPOOL = "spool"      # the body was streamed to us and kept under data_dir/uploads
SOURCE_BUCKET = "bucket"    # an object the upload service had already put into the uploads bucket

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_jobs (
    job_id          TEXT PRIMARY KEY,
    series_id       TEXT NOT NULL,
    episode_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    stage_fraction  REAL NOT NULL DEFAULT 0,
    source_kind     TEXT NOT NULL,
    source_bucket   TEXT NULL,
    source_key      TEXT NULL,
    spool_path      TEXT NULL,
    size_bytes      INTEGER NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint     TEXT NOT NULL,
    webhook_url     TEXT NULL,
    webhook_status  TEXT NULL,
    attempt         INTEGER NOT NULL DEFAULT 1,
    version         INTEGER NULL,
    report          TEXT NULL,
    error_code      TEXT NULL,
    error_message   TEXT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    started_at      REAL NULL,
    finished_at     REAL NULL,
    owner_id        TEXT NULL,
    lease_expires_at REAL NULL
);
CREATE INDEX IF NOT EXISTS ingest_jobs_state ON ingest_jobs (state, created_at);
"""


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


class JobError(Exception):
    code = "job_error"


class JobNotFound(JobError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no ingest job {job_id!r}")
        self.job_id = job_id

    def __reduce__(self):
        return type(self), (self.job_id,)


class IdempotencyConflict(JobError):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for job {job_id} with a different request; "
                         "use a new key for a new upload")
        self.key, self.job_id = key, job_id

    def __reduce__(self):
        return type(self), (self.key, self.job_id)


class WebhookNotAllowed(JobError):
    """A webhook_url we will not call: not http(s), or a host outside SERIES_JOB_WEBHOOK_HOSTS (SSRF guard)."""

    code = "webhook_url_not_allowed"


class JobStoreUnavailable(JobError):
    """The database is locked by another writer or cannot be written (disk full); nothing was changed."""

    code = "database_unavailable"


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
    size_bytes: int | None = None
    webhook_url: str | None = None


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
            "validation_report": self.report,
            "error": {"code": self.error_code, "message": self.error_message} if self.error_code else None,
            "webhook": {"url": self.webhook_url, "status": self.webhook_status} if self.webhook_url else None,
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


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A stable digest of what a request asked for, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class JobStore:
    """The ingest_jobs table. Safe to share between threads (Database serializes); each process opens its own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with self._translated(), db.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(ingest_jobs)")}
            for column in ("owner_id TEXT NULL", "lease_expires_at REAL NULL"):   # tables from before leases
                if column.split()[0] not in columns:
                    conn.execute(f"ALTER TABLE ingest_jobs ADD COLUMN {column}")

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout_ms: int = 2000) -> JobStore:
        """A JobStore on its own connection: a slow jobs write never holds the key server's lock."""
        db = Database.open(path)
        db.connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return cls(db)

    def close(self) -> None:
        self.db.close()

    def create(self, request: JobRequest, *, job_id: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job, or return the one this Idempotency-Key already made: (job, created).

        Raises IdempotencyConflict when the key was used for a different request, JobStoreUnavailable
        when the database is locked or full.
        """
        job_id = job_id or new_job_id()
        now = time.time()
        with self._translated(), self.db.transaction() as conn:
            existing = conn.execute("SELECT * FROM ingest_jobs WHERE idempotency_key = ?",
                                    (request.idempotency_key,)).fetchone()
            if existing is not None:
                job = _job(existing)
                if job.fingerprint != request.fingerprint:
                    raise IdempotencyConflict(request.idempotency_key, job.job_id)
                return job, False
            conn.execute(
                "INSERT INTO ingest_jobs (job_id, series_id, episode_id, state, source_kind, source_bucket,"
                " source_key, spool_path, size_bytes, idempotency_key, fingerprint, webhook_url, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, request.series_id, request.episode_id, QUEUED, request.source_kind, request.source_bucket,
                 request.source_key, request.spool_path, request.size_bytes, request.idempotency_key,
                 request.fingerprint, request.webhook_url, now, now),
            )
        return self.get(job_id), True

    def get(self, job_id: str) -> Job:
        with self._translated():
            rows = self.db.query("SELECT * FROM ingest_jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise JobNotFound(job_id)
        return _job(rows[0])

    def list(self, *, state: str | None = None, limit: int = 50) -> list[Job]:
        """Newest first."""
        with self._translated():
            if state:
                rows = self.db.query("SELECT * FROM ingest_jobs WHERE state = ? ORDER BY created_at DESC LIMIT ?",
                                     (state, limit))
            else:
                rows = self.db.query("SELECT * FROM ingest_jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [_job(row) for row in rows]

    def with_spool(self, *, paths: Collection[str], job_ids: Collection[str]) -> list[Job]:
        """Jobs whose spooled upload is one of `paths`, or whose id is one of `job_ids` (for the spool sweep)."""
        found: dict[str, Job] = {}
        for column, values in (("spool_path", list(paths)), ("job_id", list(job_ids))):
            for start in range(0, len(values), _IN_BATCH):     # SQLite caps the parameters of one statement
                batch = values[start:start + _IN_BATCH]
                with self._translated():
                    rows = self.db.query(f"SELECT * FROM ingest_jobs WHERE {column} IN"
                                         f" ({','.join('?' * len(batch))})", tuple(batch))
                found.update((row["job_id"], _job(row)) for row in rows)
        return list(found.values())

    def queued(self, *, claimable_only: bool = False) -> list[Job]:
        """Jobs waiting for a worker, oldest first; with `claimable_only`, not those another runner holds."""
        sql = "SELECT * FROM ingest_jobs WHERE state = ?"
        parameters: tuple = (QUEUED,)
        if claimable_only:
            sql += " AND (owner_id IS NULL OR lease_expires_at < ?)"
            parameters += (time.time(),)
        with self._translated():
            rows = self.db.query(sql + " ORDER BY created_at", parameters)
        return [_job(row) for row in rows]

    def claim(self, job_id: str, attempt: int, owner: str, lease_s: float) -> bool:
        """Take queued `attempt` of `job_id` for `owner` for `lease_s` seconds; False if it is not free.

        Not free: another live runner holds it, it moved on, or another job of the same episode is held
        (or is older and still waiting: episodes' jobs run in submission order).
        """
        now = time.time()
        with self._translated(), self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE ingest_jobs SET owner_id = ?, lease_expires_at = ?"
                " WHERE job_id = ? AND attempt = ? AND state = ?"
                " AND (owner_id IS NULL OR owner_id = ? OR lease_expires_at < ?)"
                " AND NOT EXISTS (SELECT 1 FROM ingest_jobs other WHERE other.series_id = ingest_jobs.series_id"
                "   AND other.episode_id = ingest_jobs.episode_id AND other.job_id != ingest_jobs.job_id"
                "   AND ((other.owner_id IS NOT NULL AND other.lease_expires_at >= ?)"
                "        OR (other.state = ? AND other.created_at < ingest_jobs.created_at)))",
                (owner, now + lease_s, job_id, attempt, QUEUED, owner, now, now, QUEUED))
            return cursor.rowcount == 1

    def renew(self, owner: str, lease_s: float, *, job_ids: Collection[str]) -> int:
        """Extend the lease of `job_ids` that `owner` still holds; how many it extended.

        Only the jobs a runner is actually running: a job it holds but no longer runs (its worker ended
        and the final write failed, or it waits out a retry delay) must let its lease lapse, so that
        recovery, here or in another instance, takes it instead of it staying "running" for ever.
        """
        if not job_ids:
            return 0
        placeholders = ",".join("?" * len(job_ids))
        with self._translated(), self.db.transaction() as conn:
            return conn.execute(f"UPDATE ingest_jobs SET lease_expires_at = ? WHERE owner_id = ?"
                                f" AND job_id IN ({placeholders})",
                                (time.time() + lease_s, owner, *job_ids)).rowcount

    def release(self, owner: str) -> int:
        """Give up every job `owner` holds (its runner is stopping): the next recovery, here or in another
        instance, takes them at once instead of after their lease. How many were released."""
        with self._translated(), self.db.transaction() as conn:
            return conn.execute("UPDATE ingest_jobs SET owner_id = NULL, lease_expires_at = NULL WHERE owner_id = ?",
                                (owner,)).rowcount

    def advance(self, job_id: str, attempt: int, state: str, fraction: float, *, owner: str | None = None) -> bool:
        """Record progress of `attempt`; False if that attempt (of `owner`, when given) no longer owns the job."""
        if state not in RUNNING_STATES:
            raise ValueError(f"advance() takes a running state, not {state!r}")
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = ?, updated_at = ?, started_at = COALESCE(started_at, ?)",
            (state, max(0.0, min(1.0, fraction)), now, now),
        )

    def finish_published(self, job_id: str, attempt: int, version: int, *, owner: str | None = None) -> bool:
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = 1, version = ?, error_code = NULL, error_message = NULL,"
            " updated_at = ?, finished_at = ?, owner_id = NULL, lease_expires_at = NULL",
            (PUBLISHED, version, now, now),
        )

    def fail(self, job_id: str, attempt: int, code: str, message: str, report: dict | None = None, *,
             owner: str | None = None) -> bool:
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, error_code = ?, error_message = ?, report = ?, updated_at = ?, finished_at = ?,"
            " owner_id = NULL, lease_expires_at = NULL",
            (FAILED, code, message, json.dumps(report) if report is not None else None, now, now),
        )

    def requeue_after_failure(self, job_id: str, attempt: int, code: str, message: str, *,
                              owner: str | None = None, hold_s: float = 0.0) -> bool:
        """Record why `attempt` failed and queue the next attempt in one step, so no reader ever sees a
        job fail that is about to run again; the error stays visible until a later attempt publishes.
        The owner keeps the job for `hold_s` more seconds (its retry delay): other runners wait too."""
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = 0, attempt = attempt + 1, error_code = ?, error_message = ?, updated_at = ?,"
            " lease_expires_at = CASE WHEN owner_id IS NULL THEN NULL ELSE MAX(lease_expires_at, ?) END",
            (QUEUED, code, message, time.time(), time.time() + hold_s),
        )

    def set_webhook_status(self, job_id: str, status: str) -> None:
        with self._translated(), self.db.transaction() as conn:
            conn.execute("UPDATE ingest_jobs SET webhook_status = ? WHERE job_id = ?", (status, job_id))

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """Re-queue running jobs whose runner is gone (no owner, or its lease ran out) from the start, or fail
        those interrupted `max_attempts` times; jobs a live runner holds are left alone, whichever
        instance it is. Returns (requeued job ids, failed job ids)."""
        requeued, failed = [], []
        now = time.time()
        placeholders = ",".join("?" * len(RUNNING_STATES))
        with self._translated(), self.db.transaction() as conn:
            rows = conn.execute(f"SELECT * FROM ingest_jobs WHERE state IN ({placeholders}, ?) AND"
                                " (owner_id IS NULL OR lease_expires_at < ? OR owner_id LIKE ?)",
                                (*RUNNING_STATES, QUEUED, now, local_owner_prefix() + "%"))
            for job in [_job(row) for row in rows.fetchall()]:
                is_orphan = job.owner_id is None or (job.lease_expires_at or 0) < now or owner_is_gone(job.owner_id)
                if not is_orphan:
                    continue
                if job.state == QUEUED:     # claimed (or held for a retry) by a runner that is gone: free it
                    if job.owner_id is not None:
                        conn.execute("UPDATE ingest_jobs SET owner_id = NULL, lease_expires_at = NULL"
                                     " WHERE job_id = ?", (job.job_id,))
                elif job.attempt < max_attempts:
                    conn.execute("UPDATE ingest_jobs SET state = ?, stage_fraction = 0, attempt = attempt + 1,"
                                 " owner_id = NULL, lease_expires_at = NULL, updated_at = ? WHERE job_id = ?",
                                 (QUEUED, now, job.job_id))
                    requeued.append(job.job_id)
                else:
                    conn.execute(
                        "UPDATE ingest_jobs SET state = ?, error_code = ?, error_message = ?, updated_at = ?,"
                        " finished_at = ?, owner_id = NULL, lease_expires_at = NULL WHERE job_id = ?",
                        (FAILED, "interrupted",
                         f"the service stopped while the job was {job.state}, {job.attempt} times; "
                         "the upload is kept: submit it again with a new Idempotency-Key", now, now, job.job_id))
                    failed.append(job.job_id)
        return requeued, failed

    def _update_owned(self, job_id: str, attempt: int, owner: str | None, assignments: str,
                      parameters: tuple) -> bool:
        terminal = ",".join("?" * len(TERMINAL_STATES))
        owned = " AND owner_id = ?" if owner is not None else ""
        with self._translated(), self.db.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE ingest_jobs SET {assignments} WHERE job_id = ? AND attempt = ?"
                f" AND state NOT IN ({terminal}){owned}",
                (*parameters, job_id, attempt, *TERMINAL_STATES, *((owner,) if owner is not None else ())),
            )
            return cursor.rowcount == 1

    @contextmanager
    def _translated(self) -> Iterator[None]:
        # sqlite3 errors enter here and leave as ours: a locked or full database is a 503, not a 500
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text or "full" in text or "disk" in text:
                raise JobStoreUnavailable(f"the jobs database cannot be written right now ({exc}); "
                                          "retry in a few seconds") from exc
            raise


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["report"] = json.loads(values["report"]) if values["report"] else None
    return Job(**values)

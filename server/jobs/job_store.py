"""The ingest_jobs table: jobs persisted in the service's database (the SQLite file, or the PostgreSQL
every instance shares) so a hand-off survives a restart, and fenced so a stale worker cannot overwrite
the work of the attempt that replaced it.

The table is owned here; its schema is one of drm/storage/migrations.py's steps, because the database has one
schema version. Progress writes are plain UPDATEs of this table: nothing here notifies anyone.

Several service instances may share the database. A runner claims a job before running it: the row
gets the runner's `owner_id` and a lease the runner renews while it lives. Recovery re-queues only
jobs whose lease ran out (their instance died), never another live instance's work; and a job is
not claimed while another job of the same episode is held, so re-ingests of one episode run one
after the other, in submission order, whichever instance took them. On PostgreSQL (READ COMMITTED)
the writes that read before they decide take a lock first (claim: the episode's; recover: the rows).

Every change of a job's state is mirrored, in the same transaction, onto its episode in the catalog
(drm's record_stage_within): the catalog API shows an episode's status (processing with stage and
percent, errored with reasons) without reading this table, and the two never disagree. A job is
created together with its episode (register_upload_within), so the 80-episode limit holds at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from drm.catalog.catalog import SqlCatalog
from drm.errors import UnknownSeries
from drm.storage.database import Database, Transaction
from drm.storage.engines import open_database
from server.jobs.job_rows import attempt_ended, episode_error, job_of, translated_errors
from server.jobs.jobs import (
    FAILED,
    PUBLISHED,
    QUEUED,
    RUNNING_STATES,
    TERMINAL_STATES,
    IdempotencyConflict,
    Job,
    JobNotFound,
    JobRequest,
    new_job_id,
    upload_note,
)
from server.jobs.owners import local_host, local_owner_prefix, owner_is_gone

_IN_BATCH = 500             # values per "IN (...)": well under SQLite's limit on parameters
_CANCELLED_MESSAGE = "the job was cancelled by an operator; nothing of it was published"

class JobStore:
    """The ingest_jobs table. Safe to share between threads (Database serializes); each process opens its own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._catalog = SqlCatalog(db)      # only to mirror job states onto episodes (see the docstring)

    @classmethod
    def open(cls, target: str | Path, *, busy_timeout_ms: int = 2000, pool_max_size: int = 4) -> JobStore:
        """A JobStore on a database of its own (`target`: a SQLite file or a postgresql:// URL, see
        Settings.database_target): on SQLite a slow jobs write never holds the key server's connection,
        and waits `busy_timeout_ms` for a locked file before JobStoreUnavailable. Raises what
        drm.open_database raises (SchemaNotMigrated, DatabaseUnavailable, ...)."""
        return cls(open_database(target, busy_timeout_ms=busy_timeout_ms, pool_max_size=pool_max_size))

    def close(self) -> None:
        self.db.close()

    def create(self, request: JobRequest, *, job_id: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job, or return the one this Idempotency-Key already made: (job, created).

        Raises IdempotencyConflict when the key was used for a different request, JobStoreUnavailable
        when the database is locked or full, and the catalog's refusals of a new episode (UnknownSeries,
        EpisodeLimitReached, EpisodeDeleted, SeriesStateConflict): then nothing is recorded.
        """
        job_id = job_id or new_job_id()
        now = time.time()
        with self._translated(), self.db.transaction() as conn:
            # insert-or-nothing, then read: two requests with one key racing on two instances both end
            # with the row the first committed (a read-then-insert would let the second fail on UNIQUE)
            inserted = conn.execute(
                "INSERT INTO ingest_jobs (job_id, series_id, episode_id, state, source_kind, source_bucket,"
                " source_key, spool_path, spool_host, size_bytes, idempotency_key, fingerprint, webhook_url,"
                " poster_at_s, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (job_id, request.series_id, request.episode_id, QUEUED, request.source_kind, request.source_bucket,
                 request.source_key, request.spool_path, request.spool_host, request.size_bytes,
                 request.idempotency_key, request.fingerprint, request.webhook_url, request.poster_at_s, now, now),
            ).rowcount
            if inserted:
                try:
                    self._catalog.register_upload_within(conn, request.series_id, request.episode_id, job_id)
                except UnknownSeries:
                    # refused before writing anything: the API checks the series first (a 404), and a job for a
                    # series the catalog does not know fails when it runs, as it always has
                    pass
            job = job_of(conn.fetch_one("SELECT * FROM ingest_jobs WHERE idempotency_key = ?",
                                      (request.idempotency_key,)))
        if not inserted and job.fingerprint != request.fingerprint:
            raise IdempotencyConflict(request.idempotency_key, job.job_id)
        return job, bool(inserted)

    def get(self, job_id: str) -> Job:
        with self._translated():
            rows = self.db.query("SELECT * FROM ingest_jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise JobNotFound(job_id)
        return self._with_attempt_errors([job_of(rows[0])])[0]

    def list(self, *, state: str | None = None, limit: int = 50) -> list[Job]:
        """Newest first."""
        with self._translated():
            if state:
                rows = self.db.query("SELECT * FROM ingest_jobs WHERE state = ? ORDER BY created_at DESC LIMIT ?",
                                     (state, limit))
            else:
                rows = self.db.query("SELECT * FROM ingest_jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return self._with_attempt_errors([job_of(row) for row in rows])

    def _with_attempt_errors(self, jobs: list[Job]) -> list[Job]:
        """`jobs` with each one's attempt_errors read (one query per _IN_BATCH jobs)."""
        errors: dict[str, list[dict]] = {}
        for start in range(0, len(jobs), _IN_BATCH):
            batch = [job.job_id for job in jobs[start:start + _IN_BATCH]]
            with self._translated():
                rows = self.db.query("SELECT job_id, attempt, ended_at, error_code, error_message FROM"
                                     f" ingest_job_attempts WHERE job_id IN ({','.join('?' * len(batch))})"
                                     " ORDER BY job_id, attempt", tuple(batch))
            for row in rows:
                errors.setdefault(row["job_id"], []).append(
                    {"attempt": row["attempt"], "ended_at": row["ended_at"], "code": row["error_code"],
                     "message": row["error_message"]})
        return [replace(job, attempt_errors=tuple(errors.get(job.job_id, ()))) for job in jobs]

    def with_spool(self, *, paths: Collection[str], job_ids: Collection[str]) -> list[Job]:
        """Jobs whose spooled upload is one of `paths`, or whose id is one of `job_ids` (for the spool sweep)."""
        found: dict[str, Job] = {}
        for column, values in (("spool_path", list(paths)), ("job_id", list(job_ids))):
            for start in range(0, len(values), _IN_BATCH):     # SQLite caps the parameters of one statement
                batch = values[start:start + _IN_BATCH]
                with self._translated():
                    rows = self.db.query(f"SELECT * FROM ingest_jobs WHERE {column} IN"
                                         f" ({','.join('?' * len(batch))})", tuple(batch))
                found.update((row["job_id"], job_of(row)) for row in rows)
        return list(found.values())

    def queued(self, *, claimable_only: bool = False) -> list[Job]:
        """Jobs waiting for a worker, oldest first; with `claimable_only`, not those another runner holds nor
        those whose streamed upload is on another host's disk."""
        sql = "SELECT * FROM ingest_jobs WHERE state = ?"
        parameters: tuple = (QUEUED,)
        if claimable_only:
            sql += " AND (owner_id IS NULL OR lease_expires_at < ?) AND (spool_host IS NULL OR spool_host = ?)"
            parameters += (time.time(), local_host())
        with self._translated():
            rows = self.db.query(sql + " ORDER BY created_at", parameters)
        return [job_of(row) for row in rows]

    def claim(self, job_id: str, attempt: int, owner: str, lease_s: float) -> bool:
        """Take queued `attempt` of `job_id` for `owner` for `lease_s` seconds; False if it is not free.

        Not free: another live runner holds it, it moved on, its streamed upload is on another host, or
        another job of the same episode is held (or is older and still waiting: episodes' jobs run in
        submission order).
        """
        with self._translated(), self.db.transaction() as conn:
            episode = conn.fetch_one("SELECT series_id, episode_id FROM ingest_jobs WHERE job_id = ?", (job_id,))
            if episode is None:
                return False
            # One claimer per episode at a time: at READ COMMITTED two claims of two jobs of one episode
            # would each see the other's row still free. Read the clock after the lock: the wait counts.
            conn.lock(f"episode:{episode['series_id']}/{episode['episode_id']}")
            now = time.time()
            cursor = conn.execute(
                "UPDATE ingest_jobs SET owner_id = ?, lease_expires_at = ?"
                " WHERE job_id = ? AND attempt = ? AND state = ?"
                " AND (owner_id IS NULL OR owner_id = ? OR lease_expires_at < ?)"
                " AND (spool_host IS NULL OR spool_host = ?)"
                " AND NOT EXISTS (SELECT 1 FROM ingest_jobs other WHERE other.series_id = ingest_jobs.series_id"
                "   AND other.episode_id = ingest_jobs.episode_id AND other.job_id != ingest_jobs.job_id"
                "   AND ((other.owner_id IS NOT NULL AND other.lease_expires_at >= ?)"
                "        OR (other.state = ? AND other.created_at < ingest_jobs.created_at)))",
                (owner, now + lease_s, job_id, attempt, QUEUED, owner, now, local_host(), now, QUEUED))
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
        fraction = max(0.0, min(1.0, fraction))
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = ?, updated_at = ?, started_at = COALESCE(started_at, ?)",
            (state, fraction, now, now),
            mirror=lambda tx: self._catalog.record_stage_within(tx, job_id, state, fraction * 100),
            unless_cancelled=True,
        )

    def finish_published(self, job_id: str, attempt: int, version: int, *, owner: str | None = None,
                         report: dict | None = None) -> bool:
        """Record the job published as `version`, with its ingest report (the ladder, each rung's quality)."""
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = 1, version = ?, error_code = NULL, error_message = NULL, report = ?,"
            " updated_at = ?, finished_at = ?, owner_id = NULL, lease_expires_at = NULL",
            (PUBLISHED, version, json.dumps(report) if report is not None else None, now, now),
            mirror=lambda tx: self._catalog.record_stage_within(tx, job_id, "published"),
        )

    def fail(self, job_id: str, attempt: int, code: str, message: str, report: dict | None = None, *,
             owner: str | None = None) -> bool:
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, error_code = ?, error_message = ?, report = ?, updated_at = ?, finished_at = ?,"
            " owner_id = NULL, lease_expires_at = NULL",
            (FAILED, code, message, json.dumps(report) if report is not None else None, now, now),
            mirror=lambda tx: (self._catalog.record_stage_within(tx, job_id, "failed",
                                                                 error=episode_error(code, message, report)),
                               attempt_ended(tx, job_id, attempt, code, message)),
        )

    def requeue_after_failure(self, job_id: str, attempt: int, code: str, message: str, *,
                              owner: str | None = None, hold_s: float = 0.0) -> bool:
        """Record why `attempt` failed and queue the next attempt in one step, so no reader ever sees a
        job fail that is about to run again; the error stays visible until a later attempt publishes.
        The owner keeps the job for `hold_s` more seconds (its retry delay): other runners wait too."""
        greatest = self.db.dialect.greatest
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, stage_fraction = 0, attempt = attempt + 1, error_code = ?, error_message = ?, updated_at = ?,"
            f" lease_expires_at = CASE WHEN owner_id IS NULL THEN NULL ELSE {greatest}(lease_expires_at, ?) END",
            (QUEUED, code, message, time.time(), time.time() + hold_s),
            mirror=lambda tx: (self._catalog.record_stage_within(tx, job_id, QUEUED),
                               attempt_ended(tx, job_id, attempt, code, message)),
        )

    def start_run(self, job_id: str, owner: str, max_attempts: int, *, upload_retention_s: float) -> Job | None:
        """A job engine begins a run of `job_id` for `owner` (one run, one owner id): the job as this run must
        name it in every write (its attempt), or None when there is nothing to run (finished or cancelled).

        A job that an earlier run had started (or claimed) is a re-run: its attempt goes up by one, so every
        write of the earlier run, should it wake up, is refused. A re-run past `max_attempts` fails the job
        (its error says how long the upload is kept: `upload_retention_s`) and returns None.
        """
        now = time.time()
        with self._translated(), self.db.transaction() as conn:
            row = conn.fetch_one(f"SELECT * FROM ingest_jobs WHERE job_id = ?{conn.dialect.for_update}", (job_id,))
            if row is None or row["state"] in TERMINAL_STATES:
                return None
            job = job_of(row)
            if job.cancel_requested_at is not None:
                self._fail_within(conn, job, "cancelled", _CANCELLED_MESSAGE, now)
                return None
            rerun = not (job.state == QUEUED and job.owner_id is None)
            if rerun and job.attempt >= max_attempts:
                message = (f"the job's worker stopped while the job was {job.state}, {job.attempt} times; "
                           f"{upload_note(job, upload_retention_s)}: submit it again with a new Idempotency-Key")
                self._fail_within(conn, job, "interrupted", message, now)
                return None
            if rerun:
                attempt_ended(conn, job_id, job.attempt, "interrupted",
                               f"its worker went silent (or was stopped) while the job was {job.state}")
            conn.execute("UPDATE ingest_jobs SET state = ?, stage_fraction = 0, attempt = attempt + ?, owner_id = ?,"
                         " lease_expires_at = NULL, updated_at = ? WHERE job_id = ?",
                         (QUEUED, 1 if rerun else 0, owner, now, job_id))
            if rerun:
                self._catalog.record_stage_within(conn, job_id, QUEUED)
            return job_of(conn.fetch_one("SELECT * FROM ingest_jobs WHERE job_id = ?", (job_id,)))

    def request_cancel(self, job_id: str) -> Job:
        """Ask for `job_id` to stop: a job no run holds fails `cancelled` at once; a running one refuses its
        run's next progress write (the run stops itself, and its engine records the cancellation). A finished
        job is returned unchanged. Raises JobNotFound."""
        now = time.time()
        with self._translated(), self.db.transaction() as conn:
            row = conn.fetch_one(f"SELECT * FROM ingest_jobs WHERE job_id = ?{conn.dialect.for_update}", (job_id,))
            if row is None:
                raise JobNotFound(job_id)
            job = job_of(row)
            if job.is_finished:
                return job
            conn.execute("UPDATE ingest_jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?), updated_at = ?"
                         " WHERE job_id = ?", (now, now, job_id))
            if job.state == QUEUED and job.owner_id is None:
                self._fail_within(conn, job, "cancelled", _CANCELLED_MESSAGE, now)
            return job_of(conn.fetch_one("SELECT * FROM ingest_jobs WHERE job_id = ?", (job_id,)))

    def finish_cancelled(self, job_id: str, attempt: int, *, owner: str | None = None) -> bool:
        """Record that `attempt` stopped because it was cancelled (after its run ended); False if it had
        moved on meanwhile (published first, say)."""
        now = time.time()
        return self._update_owned(
            job_id, attempt, owner,
            "state = ?, error_code = ?, error_message = ?, updated_at = ?, finished_at = ?,"
            " owner_id = NULL, lease_expires_at = NULL",
            (FAILED, "cancelled", _CANCELLED_MESSAGE, now, now),
            mirror=lambda tx: (self._catalog.record_stage_within(
                tx, job_id, "failed", error=episode_error("cancelled", _CANCELLED_MESSAGE, None)),
                attempt_ended(tx, job_id, attempt, "cancelled", _CANCELLED_MESSAGE)))

    def record_version(self, job_id: str, attempt: int, version: int, *, owner: str | None = None) -> bool:
        """Note the version `attempt` is about to publish, before its pointer switch: a re-run after a crash
        that lost the "published" write finds the version live and records it instead of publishing again."""
        return self._update_owned(job_id, attempt, owner, "version = ?, updated_at = ?", (version, time.time()),
                                  unless_cancelled=True)

    def set_engine_job(self, job_id: str, engine_job_id: int) -> None:
        """Record which job of the distributed engine runs `job_id` (for cancel and the engine's view)."""
        with self._translated(), self.db.transaction() as conn:
            conn.execute("UPDATE ingest_jobs SET engine_job_id = ? WHERE job_id = ?", (engine_job_id, job_id))

    def not_handed_over(self, *, older_than_s: float) -> list[Job]:
        """Queued jobs no engine job runs yet, recorded over `older_than_s` ago: the submitter stopped between
        recording the job and handing it to the engine. Oldest first."""
        with self._translated():
            rows = self.db.query("SELECT * FROM ingest_jobs WHERE state = ? AND engine_job_id IS NULL"
                                 " AND created_at < ? ORDER BY created_at", (QUEUED, time.time() - older_than_s))
        return [job_of(row) for row in rows]

    def unfinished_counts(self) -> dict[str, int]:
        """How many jobs are in each unfinished state (queued: the queue's depth), across every instance."""
        placeholders = ",".join("?" * len(TERMINAL_STATES))
        with self._translated():
            rows = self.db.query(f"SELECT state, count(*) AS n FROM ingest_jobs WHERE state NOT IN ({placeholders})"
                                 " GROUP BY state", TERMINAL_STATES)
        return {row["state"]: int(row["n"]) for row in rows}

    def _fail_within(self, conn: Transaction, job: Job, code: str, message: str, now: float) -> None:
        attempt_ended(conn, job.job_id, job.attempt, code, message)
        conn.execute("UPDATE ingest_jobs SET state = ?, error_code = ?, error_message = ?, updated_at = ?,"
                     " finished_at = ?, owner_id = NULL, lease_expires_at = NULL WHERE job_id = ?",
                     (FAILED, code, message, now, now, job.job_id))
        self._catalog.record_stage_within(conn, job.job_id, "failed", error=episode_error(code, message, None))

    def set_webhook_status(self, job_id: str, status: str) -> None:
        with self._translated(), self.db.transaction() as conn:
            conn.execute("UPDATE ingest_jobs SET webhook_status = ? WHERE job_id = ?", (status, job_id))

    def recover(self, max_attempts: int, *, upload_retention_s: float) -> tuple[list[str], list[str]]:
        """Re-queue running jobs whose runner is gone (no owner, or its lease ran out) from the start, or fail
        those interrupted `max_attempts` times (their error says how long the upload is kept:
        `upload_retention_s`); jobs a live runner holds are left alone, whichever instance it is.
        Returns (requeued job ids, failed job ids)."""
        requeued, failed = [], []
        now = time.time()
        placeholders = ",".join("?" * len(RUNNING_STATES))
        with self._translated(), self.db.transaction() as conn:
            # the rows locked while decided: a renewal or a second recoverer waits, then finds them changed
            rows = conn.fetch_all(f"SELECT * FROM ingest_jobs WHERE state IN ({placeholders}, ?) AND"
                                  " (owner_id IS NULL OR lease_expires_at < ? OR owner_id LIKE ?)"
                                  f" ORDER BY job_id{conn.dialect.for_update}",
                                  (*RUNNING_STATES, QUEUED, now, local_owner_prefix() + "%"))
            for job in [job_of(row) for row in rows]:
                is_orphan = job.owner_id is None or (job.lease_expires_at or 0) < now or owner_is_gone(job.owner_id)
                if not is_orphan:
                    continue
                if job.cancel_requested_at is not None:     # its runner died while it was being cancelled
                    self._fail_within(conn, job, "cancelled", _CANCELLED_MESSAGE, now)
                    failed.append(job.job_id)
                elif job.state == QUEUED:   # claimed (or held for a retry) by a runner that is gone: free it
                    if job.owner_id is not None:
                        conn.execute("UPDATE ingest_jobs SET owner_id = NULL, lease_expires_at = NULL"
                                     " WHERE job_id = ?", (job.job_id,))
                elif job.attempt < max_attempts:
                    attempt_ended(conn, job.job_id, job.attempt, "interrupted",
                                   f"its runner stopped while the job was {job.state}")
                    conn.execute("UPDATE ingest_jobs SET state = ?, stage_fraction = 0, attempt = attempt + 1,"
                                 " owner_id = NULL, lease_expires_at = NULL, updated_at = ? WHERE job_id = ?",
                                 (QUEUED, now, job.job_id))
                    self._catalog.record_stage_within(conn, job.job_id, QUEUED)
                    requeued.append(job.job_id)
                else:
                    message = (f"the service stopped while the job was {job.state}, {job.attempt} times; "
                               f"{upload_note(job, upload_retention_s)}: submit it again with a new Idempotency-Key")
                    self._fail_within(conn, job, "interrupted", message, now)
                    failed.append(job.job_id)
        return requeued, failed

    def _update_owned(self, job_id: str, attempt: int, owner: str | None, assignments: str,
                      parameters: tuple, *, mirror: Callable[[Transaction], None] | None = None,
                      unless_cancelled: bool = False) -> bool:
        terminal = ",".join("?" * len(TERMINAL_STATES))
        owned = " AND owner_id = ?" if owner is not None else ""
        if unless_cancelled:        # a cancelled job's run stops at its next progress write
            owned += " AND cancel_requested_at IS NULL"
        with self._translated(), self.db.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE ingest_jobs SET {assignments} WHERE job_id = ? AND attempt = ?"
                f" AND state NOT IN ({terminal}){owned}",
                (*parameters, job_id, attempt, *TERMINAL_STATES, *((owner,) if owner is not None else ())),
            )
            if cursor.rowcount == 1 and mirror is not None:
                mirror(conn)            # the episode's status, in this same transaction
            return cursor.rowcount == 1

    def _translated(self):
        return translated_errors("jobs")

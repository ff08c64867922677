"""The process side of ingest jobs: run one job in a worker process, writing its progress to the database.

Everything here runs in a process the JobRunner starts for the job (work_process_main). The worker
opens its own database connection and its own object-store client (minio is not fork-safe), so a
crash or a stall here never reaches the key server. Every write names the job's attempt and the
runner that claimed it: a worker left over from an earlier run of the service, or of another
instance whose lease ran out, cannot overwrite the attempt that replaced it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from drm.catalog.eligibility import CreatorRegistry
from drm.errors import DrmError
from drm.keystore import KeyStore
from packager.errors import PackagerError
from packager.publishing.versions import EpisodeLocation, read_pointer
from packager.store import ObjectStore
from pipeline.errors import MediaRejected, PipelineError
from server.config import Settings
from server.jobs.job_store import JobStore
from server.jobs.jobs import (
    FAILED,
    PUBLISHED,
    QUEUED,
    RETRYABLE_CODES,
    RUNNING_STATES,
    SOURCE_BUCKET,
    VALIDATING,
    Job,
    JobError,
    JobStoreUnavailable,
    upload_note,
)
from server.publishing.admission import SeriesNotSellable
from server.publishing.episode import ingest_episode
from server.publishing.versions import EpisodeVersions
from server.services import open_catalog

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_PROGRESS_EVERY_S = 0.5     # at most this often per job: progress is for people, not a hot path
_RECORD_END_FIRST_DELAY_S = 0.2
_RECORD_END_MAX_DELAY_S = 5.0
# The worker's exit status when it knows how its job ended but could not write it: the runner then
# neither overwrites the job with "worker_crashed" nor renews its lease, and recovery takes it.
EXIT_END_NOT_RECORDED = 75     # EX_TEMPFAIL
_parent_pid: int | None = None


def worker_init() -> None:
    """Pool initializer: die with the service, and log like it.

    Without PDEATHSIG a service killed with SIGKILL would leave its workers transcoding and
    publishing, racing the restarted service that re-runs their jobs.
    """
    global _parent_pid
    _parent_pid = os.getppid()
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    if not os.environ.get("SERIES_FFMPEG_LOG"):
        logging.getLogger("libav").setLevel(logging.ERROR)


class _Superseded(Exception):
    """This attempt no longer owns the job (the service restarted and re-queued it)."""


class EndNotRecorded(JobError):
    """The job ended but the database refused its final state for as long as we tried."""

    code = "job_end_not_recorded"


def work_process_main(settings: Settings, job_id: str, attempt: int, owner: str) -> None:
    """Entry point of a job's worker process (spawned by the runner, which reads the outcome from the database)."""
    worker_init()
    try:
        run_job(settings, job_id, attempt, owner)
    except EndNotRecorded as exc:
        log.error("%s", exc)
        sys.exit(EXIT_END_NOT_RECORDED)


def record_end(job_id: str, write: Callable[[], bool], *, within_s: float) -> bool:
    """Run `write` (a job's final-state write) until it goes through, for up to about `within_s` seconds.

    A database locked by another writer or briefly full must not leave a finished job "running": the
    write is tried again, backing off, while the runner (which sees this process alive) keeps the
    job's lease. Returns what `write` returned (False: the attempt was superseded meanwhile); raises
    EndNotRecorded when the database stayed unavailable.
    """
    deadline = time.monotonic() + within_s
    delay_s = _RECORD_END_FIRST_DELAY_S
    while True:
        try:
            return write()
        except JobStoreUnavailable as exc:
            if time.monotonic() + delay_s > deadline:
                raise EndNotRecorded(f"job {job_id}: its end could not be recorded for {within_s:.0f} s: {exc}; "
                                     "the upload is kept as for any failed job, and recovery takes the job "
                                     "once its lease runs out") from exc
            log.warning("job %s: could not record its end (%s); trying again in %.1f s", job_id, exc, delay_s)
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, _RECORD_END_MAX_DELAY_S)


class _ProgressWriter:
    def __init__(self, jobs: JobStore, job: Job, owner: str | None) -> None:
        self.jobs, self.job, self.owner = jobs, job, owner
        self.state, self.fraction, self.written_at = None, 0.0, 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        if _parent_pid is not None and os.getppid() != _parent_pid:
            raise _Superseded("the service that started this worker has gone")
        if stage not in RUNNING_STATES:
            return                      # "published" is written by the caller with the version
        now = time.monotonic()
        if stage == self.state and now - self.written_at < _PROGRESS_EVERY_S and fraction < 1.0:
            return
        if not self.jobs.advance(self.job.job_id, self.job.attempt, stage, fraction, owner=self.owner):
            raise _Superseded(f"job {self.job.job_id} attempt {self.job.attempt} was superseded")
        self.state, self.fraction, self.written_at = stage, fraction, now


def run_job(settings: Settings, job_id: str, attempt: int, owner: str | None = None) -> str:
    """Run attempt `attempt` of job `job_id`, claimed by runner `owner`, to its end; the job's state after
    it ("" if superseded).

    Never raises for a failed ingest: the failure, its code and any validation report are written
    to the job, or, when the object store failed and attempts are left, the job is queued again.
    Only a crash of the process itself is left to the caller to record. Raises EndNotRecorded when
    the database refused the final write for a whole lease term (see record_end).
    """
    jobs = JobStore.open(settings.database_target, busy_timeout_ms=max(5000, settings.jobs.db_busy_timeout_ms),
                         pool_max_size=2)

    def record(write: Callable[..., bool], *args, **kwargs) -> bool:
        return record_end(job_id, lambda: write(*args, **kwargs), within_s=settings.jobs.lease_s)

    try:
        job = jobs.get(job_id)
        if (job.attempt != attempt or job.state != QUEUED or (owner is not None and job.owner_id != owner)
                or job.cancel_requested_at is not None):
            return ""
        if job.version is not None and (live := _live_version_of(settings, jobs, job)) is not None:
            # an earlier run switched the pointer to its version, then died before recording it: record it,
            # do not publish a second version of the same upload
            record(jobs.finish_published, job_id, attempt, live, owner=owner, report=job.report)
            log.warning("job %s: v%d of an earlier run is live; recorded as published, not published again",
                        job_id, live)
            return PUBLISHED
        started = time.monotonic()
        progress = _ProgressWriter(jobs, job, owner)
        reports: list[dict] = []

        def on_version(version: int) -> None:
            if not jobs.record_version(job_id, attempt, version, owner=owner):
                raise _Superseded(f"job {job_id} attempt {attempt} was superseded or cancelled before publishing")

        def before_switch() -> None:
            current = jobs.get(job_id)
            if (current.attempt != attempt or current.is_finished or current.cancel_requested_at is not None
                    or (owner is not None and current.owner_id != owner)):
                raise _Superseded(f"job {job_id} attempt {attempt} was superseded or cancelled before its pointer "
                                  "switch; nothing of it went live")

        try:
            progress(VALIDATING, 0.0)
            with ObjectStore(settings.store) as store, _source_file(settings, job) as source:
                published = ingest_episode(
                    source, series_id=job.series_id, episode_id=job.episode_id, settings=settings,
                    store=store, keystore=KeyStore(jobs.db, settings.drm), catalog=open_catalog(jobs.db, settings),
                    progress=progress, on_report=reports.append, versions=EpisodeVersions(jobs.db),
                    creators=CreatorRegistry(jobs.db), on_version=on_version, before_switch=before_switch,
                    poster_at_s=job.poster_at_s)
        except _Superseded as exc:
            log.warning("job %s: %s; stopping", job_id, exc)
            return ""
        except MediaRejected as exc:
            record(jobs.fail, job_id, attempt, exc.code, _with_upload_note(str(exc), job, settings),
                   report=exc.report.as_dict(), owner=owner)
            log.info("job %s: rejected: %s", job_id, exc)
            return FAILED
        except (PipelineError, PackagerError, DrmError, JobError, SeriesNotSellable) as exc:
            if isinstance(exc.__cause__, _Superseded):     # refused at the pointer switch; publish discarded it
                log.warning("job %s: %s; stopping", job_id, exc.__cause__)
                return ""
            if exc.code in RETRYABLE_CODES and attempt < settings.jobs.max_attempts:
                record(jobs.requeue_after_failure, job_id, attempt, exc.code,
                       f"{exc} (the upload is kept; attempt {attempt + 1} will run it again)",
                       owner=owner, hold_s=retry_delay_s(settings, attempt))
                log.warning("job %s attempt %d failed: %s: %s; it will run again", job_id, attempt, exc.code, exc)
                return QUEUED
            record(jobs.fail, job_id, attempt, exc.code, _with_upload_note(str(exc), job, settings), owner=owner)
            log.warning("job %s failed: %s: %s", job_id, exc.code, exc)
            return FAILED
        except Exception as exc:  # noqa: BLE001 - a job must end in a state, whatever broke
            log.exception("job %s failed unexpectedly", job_id)
            record(jobs.fail, job_id, attempt, "internal_error",
                   _with_upload_note(f"{type(exc).__name__}: {exc}", job, settings), owner=owner)
            return FAILED
        recorded = record(jobs.finish_published, job_id, attempt, published.version, owner=owner,
                          report=reports[0] if reports else None)
        log.info("job %s: published %s v%d in %.1f s", job_id, published.location.prefix, published.version,
                 time.monotonic() - started)
        if job.spool_path and recorded:     # not recorded: superseded, and the next attempt needs the upload
            # kept until now so that no failure could lose it; published, the spooled copy has done its work
            Path(job.spool_path).unlink(missing_ok=True)
        return PUBLISHED
    finally:
        jobs.close()


def _live_version_of(settings: Settings, jobs: JobStore, job: Job) -> int | None:
    """`job.version` when the episode's pointer names it (that version went live); else None. The catalog
    learns it too, in case the run died between the switch and recording it there."""
    location = EpisodeLocation(series_id=job.series_id, episode_id=job.episode_id)
    with ObjectStore(settings.store) as store:
        pointer = read_pointer(store, location)
    if pointer is None or int(pointer["version"]) != job.version:
        return None
    open_catalog(jobs.db, settings).mark_published(
        job.series_id, job.episode_id, version=job.version, duration_s=float(pointer.get("duration_s", 0.0)),
        renditions=tuple(pointer.get("renditions", ())))
    return job.version


def retry_delay_s(settings: Settings, attempt: int) -> float:
    """How long to wait before running the attempt after `attempt` (doubling each time)."""
    return settings.jobs.retry_delay_s * 2 ** (attempt - 1)


def _with_upload_note(message: str, job: Job, settings: Settings) -> str:
    return f"{message} ({upload_note(job, settings.jobs.failed_upload_retention_s)}; the job can be submitted again)"


def upload_name(job: Job) -> str:
    """What the uploader sent, as errors and reports name it: the object's name for an uploads-bucket
    reference ("8812.mp4"), "the upload" for a streamed body; never our spool file's name."""
    if job.source_kind == SOURCE_BUCKET and job.source_key:
        name = _UNSAFE_NAME.sub("_", job.source_key.rsplit("/", 1)[-1])[:MAX_UPLOAD_NAME_CHARS].lstrip(".")
        if name:
            return name
    return "the upload"


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")
MAX_UPLOAD_NAME_CHARS = 100


@contextlib.contextmanager
def _source_file(settings: Settings, job: Job) -> Iterator[Path]:
    """The upload as a local file named as the uploader knows it (upload_name): the spooled body itself
    (through a link of that name), or a temporary copy of the uploads-bucket object."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="upload-") as directory:
        named = Path(directory) / upload_name(job)
        if job.source_kind != SOURCE_BUCKET:
            path = Path(job.spool_path or "")
            if not path.is_file():
                raise JobError(f"the spooled upload of job {job.job_id} is missing at {path}")
            named.symlink_to(path)
            yield named
            return
        uploads = ObjectStore(replace(settings.store, bucket=job.source_bucket))
        try:
            with open(named, "wb") as handle:
                for chunk in uploads.get_stream(job.source_key, chunk_size=1024 * 1024):
                    handle.write(chunk)
            yield named
        finally:
            uploads.close()

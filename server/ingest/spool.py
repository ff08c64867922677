"""The upload spool's retention: which streamed uploads under SERIES_UPLOAD_SPOOL_DIR may go, and when.

A job's worker deletes its spooled upload once the job is published. A failed job's upload is kept
(a failure must not lose the upload: the operator may look into it, the uploader may submit it again)
for SERIES_FAILED_UPLOAD_RETENTION_S after the job ended, then sweep_spool() deletes it. Files no
job names — a crash between writing the spool and recording its job, an upload cut off mid-stream
(`.part`) — go once they are that old too. The upload of a queued or running job is never deleted,
however old. The service sweeps at start-up and hourly, in a thread; `series gc` sweeps on demand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from server.config import Settings
from server.jobs.job_store import JobStore
from server.jobs.jobs import FAILED, PUBLISHED, Job, JobStoreUnavailable

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0       # the window is days; an hour late costs nothing

FAILED_JOB, PUBLISHED_JOB, ORPHAN = "failed_job", "published_job", "orphan"


@dataclass(frozen=True, slots=True, kw_only=True)
class SweptUpload:
    path: Path
    size_bytes: int
    reason: str                 # FAILED_JOB (past the window), PUBLISHED_JOB (left over), ORPHAN (no job)
    job_id: str | None = None

    def as_dict(self) -> dict:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "reason": self.reason, "job_id": self.job_id}


def sweep_spool(jobs: JobStore, spool_dir: Path, *, retention_s: float, now: float | None = None,
                dry_run: bool = False) -> list[SweptUpload]:
    """Delete the spooled uploads that are due (see the module docstring); what was (or would be) deleted.

    `now` is a Unix time (default: the clock). Raises JobStoreUnavailable when the jobs table cannot be
    read; a file that cannot be deleted is logged and skipped.
    """
    now = time.time() if now is None else now
    cutoff = now - retention_s
    files = _spool_files(spool_dir)
    if not files:
        return []
    # only the jobs that name these files: by path, and by name (a spool directory that was moved keeps
    # its files' job ids)
    known = jobs.with_spool(paths=[str(path) for path, _ in files], job_ids=[path.stem for path, _ in files])
    by_path: dict[str, list[Job]] = {}
    for job in known:
        if job.spool_path:
            by_path.setdefault(job.spool_path, []).append(job)
    by_id = {job.job_id: job for job in known}
    swept = []
    for path, status in files:
        owners = by_path.get(str(path), [])
        named = by_id.get(path.stem)
        if named is not None and all(job.job_id != named.job_id for job in owners):
            owners = [*owners, named]
        due = _due(owners, status, cutoff)
        if due is None:
            continue
        if not dry_run:
            try:
                path.unlink(missing_ok=True)    # missing: another instance's sweep, or the worker, took it first
            except OSError as exc:
                log.warning("could not delete the spooled upload %s: %s", path, exc)
                continue
        swept.append(SweptUpload(path=path, size_bytes=status.st_size, reason=due,
                                 job_id=owners[0].job_id if owners else None))
    if swept and not dry_run:
        log.info("spool: deleted %d uploads (%d bytes)", len(swept), sum(upload.size_bytes for upload in swept))
    return swept


def _spool_files(spool_dir: Path) -> list[tuple[Path, os.stat_result]]:
    """The regular files in `spool_dir` with their status (one stat each), by name; none if it is missing."""
    files = []
    try:
        entries = list(os.scandir(spool_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        try:
            status = entry.stat()
        except FileNotFoundError:
            continue                        # deleted since it was listed
        if stat.S_ISREG(status.st_mode):
            files.append((Path(entry.path), status))
    return sorted(files, key=lambda file: file[0])


def _due(owners: list[Job], status: os.stat_result, cutoff: float) -> str | None:
    """Why a spooled file with these `owners` and this `status` may be deleted now, or None to keep it."""
    if any(not job.is_finished for job in owners):
        return None                     # queued or running: its worker needs it
    if any(job.state == PUBLISHED for job in owners):
        return PUBLISHED_JOB            # done its work; its worker stopped before deleting it
    if owners:
        ended_at = max(job.finished_at or job.updated_at for job in owners if job.state == FAILED)
        return FAILED_JOB if ended_at < cutoff else None
    # no job names it: fresh, it may be an upload between its spool write and its row; old, it is debris
    return ORPHAN if status.st_mtime < cutoff else None


async def sweep_spool_forever(jobs: JobStore, settings: Settings) -> None:
    """Sweep the spool now and every SWEEP_INTERVAL_S until cancelled (the service runs it beside the jobs
    it runs): failed jobs' uploads past their retention, and orphans; a directory walk, so off the loop."""
    while True:
        try:
            await asyncio.to_thread(sweep_spool, jobs, settings.jobs.spool_dir,
                                    retention_s=settings.jobs.failed_upload_retention_s)
        except JobStoreUnavailable as exc:
            log.warning("spool sweep: %s", exc)         # the next sweep catches up
        except Exception:  # noqa: BLE001 - the sweep must outlive one bad round
            log.exception("spool sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)

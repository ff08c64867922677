"""JobQueue: what the hand-off API, the tus uploads and the CLI ask of whichever engine runs jobs.

    submit(job)      run a job already recorded in the jobs table (JobStore.create made it, once per
                     Idempotency-Key); one job per episode at a time, in submission order, by `priority`
    cancel(job_id)   stop it: a waiting job fails `cancelled` at once, a running one's child stops within
                     seconds (its next progress write is refused; its parent kills it if it lingers)
    views(jobs)      the engine's view of some jobs: its status, where it runs, attempts, heartbeat age

Two engines: the in-process runner (runner.py; the embedded default on SQLite, and possible on
PostgreSQL for a one-host install) and Procrastinate on PostgreSQL (procrastinate_engine.py; the default
there: `series worker` processes on any host). Our jobs table keeps state, stage, percent, reports and
errors for the API either way; the engine owns claiming and re-running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from server.config import Settings
from server.config.jobs import IN_PROCESS
from server.jobs.engines.runner import JobMetrics, JobRunner
from server.jobs.job_store import JobStore
from server.jobs.jobs import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineView:
    """One job as its engine sees it."""

    job_id: str
    engine: str                      # IN_PROCESS or PROCRASTINATE
    status: str                      # the engine's word: "todo", "doing", "succeeded", ...; "held", "waiting"
    where: str | None                # the runner or worker holding it (host:pid:...)
    engine_attempts: int | None      # how many times the engine started it (None: the engine does not count)
    heartbeat_age_s: float | None    # since its holder last showed life

    def as_dict(self) -> dict:
        return {"engine": self.engine, "status": self.status, "where": self.where,
                "engine_attempts": self.engine_attempts, "heartbeat_age_s": self.heartbeat_age_s}


class JobQueue(Protocol):
    settings: Settings
    engine: str
    metrics: JobMetrics

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def submit(self, job: Job, *, priority: int = 0) -> None: ...
    async def cancel(self, job_id: str) -> Job: ...
    async def views(self, jobs: Sequence[Job]) -> dict[str, EngineView]: ...


class InProcessQueue:
    """The in-process runner as a JobQueue: this process's worker processes, leases in the jobs table."""

    engine = IN_PROCESS

    def __init__(self, settings: Settings, jobs: JobStore, *, run_jobs: bool = True) -> None:
        self.settings = settings
        self.jobs = jobs
        self.runner = JobRunner(settings, jobs, runs_jobs=run_jobs)
        self.metrics = self.runner.metrics

    async def start(self) -> None:
        await self.runner.start()

    async def close(self) -> None:
        await self.runner.close()

    async def submit(self, job: Job, *, priority: int = 0) -> None:
        # the runner takes jobs oldest first; priorities are the distributed engine's
        self.runner.submit(job)

    async def cancel(self, job_id: str) -> Job:
        return await asyncio.to_thread(self.jobs.request_cancel, job_id)

    async def views(self, jobs: Sequence[Job]) -> dict[str, EngineView]:
        return {job.job_id: in_process_view(job, self.settings) for job in jobs}


def in_process_view(job: Job, settings: Settings) -> EngineView:
    """What the in-process runner's lease says of `job`: held (by whom, renewed how long ago) or waiting."""
    held = job.owner_id is not None and job.lease_expires_at is not None and not job.is_finished
    renewed_s = (time.time() - (job.lease_expires_at - settings.jobs.lease_s)) if held else None
    status = "held" if held else ("waiting" if not job.is_finished else job.state)
    return EngineView(job_id=job.job_id, engine=IN_PROCESS, status=status, where=job.owner_id if held else None,
                      engine_attempts=None, heartbeat_age_s=max(0.0, renewed_s) if renewed_s is not None else None)

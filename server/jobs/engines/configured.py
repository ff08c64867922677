"""open_queue(): the JobQueue that SERIES_JOB_ENGINE names (server/jobs/queue.py says what a queue does)."""

from __future__ import annotations

from server.config import Settings
from server.config.jobs import PROCRASTINATE
from server.jobs.job_store import JobStore
from server.jobs.queue import InProcessQueue, JobQueue


def open_queue(settings: Settings, jobs: JobStore, *, run_jobs: bool = True) -> JobQueue:
    """The engine SERIES_JOB_ENGINE names. With `run_jobs` False the in-process runner runs nothing here
    (another process sharing the database does). A Procrastinate queue runs nothing in the service itself:
    `series worker` processes do (for a one-host install, run one beside `series serve`, or set
    SERIES_JOB_ENGINE=in-process)."""
    if settings.jobs.engine == PROCRASTINATE:
        # imported here: the embedded set-up (SQLite, ./run demo) never loads the engine
        from server.jobs.engines.procrastinate_engine import ProcrastinateQueue

        return ProcrastinateQueue(settings, jobs)
    return InProcessQueue(settings, jobs, run_jobs=run_jobs)

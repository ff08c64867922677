"""The service side of ingest jobs: bounded worker processes owned by the app, leases, recovery, retries.

Transcodes are minutes of CPU, so they run in worker processes (server/jobs/worker.py); the event
loop only hands job ids over and waits. Jobs are in the database before they are handed over, so
nothing is lost when the service stops: jobs whose runner is gone (this instance before a restart,
or another instance whose lease ran out) are re-queued from the start (their upload is kept until
they publish) or, after too many interruptions, failed with a reason. A job the object store failed
is re-queued by its worker and submitted again here after retry_delay_s (doubling per attempt), up
to SERIES_JOB_MAX_ATTEMPTS. The runner also sweeps the upload spool (server/ingest/spool.py), and
hands finished jobs to their completion webhooks (server/jobs/webhooks/completion.py).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from server.config import Settings
from server.jobs.child import run_in_child
from server.jobs.job_store import JobStore
from server.jobs.jobs import QUEUED, Job, JobStoreUnavailable
from server.jobs.owners import new_owner_id
from server.jobs.webhooks.deliveries import DeliveryLoop
from server.jobs.worker import retry_delay_s

log = logging.getLogger(__name__)

DISPATCH_POLL_S = 2.0       # how often a runner looks for jobs queued by other processes (API-only ones, say)


@dataclass
class JobMetrics:
    """Counters for a metrics endpoint to read; `on_finished` is the hook for job-duration histograms."""

    finished: Counter = field(default_factory=Counter)     # final state -> count
    duration_s_total: float = 0.0
    on_finished: list[Callable[[Job], None]] = field(default_factory=list)

    def record(self, job: Job) -> None:
        self.finished[job.state] += 1
        self.duration_s_total += job.duration_s or 0.0
        for hook in self.on_finished:
            hook(job)


class JobRunner:
    """Runs queued jobs, each in a worker process of its own, at most `workers` at once and one at a time
    per episode; claims them in the database under a lease it renews, so instances can share the table.

    With `runs_jobs` False (the other processes of `series serve --processes N`) it runs nothing: jobs
    submitted there stay queued in the database until a running runner's dispatch poll takes them.
    """

    def __init__(self, settings: Settings, jobs: JobStore, *, runs_jobs: bool = True) -> None:
        self.settings = settings
        self.jobs = jobs
        self.runs_jobs = runs_jobs
        self.metrics = JobMetrics()
        self.owner_id = new_owner_id()
        self._slots = asyncio.Semaphore(settings.jobs.workers)
        # job id -> its worker; while it runs, the only leases the heartbeat renews
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self._tasks: set[asyncio.Task] = set()
        self._running: set[str] = set()
        # two versions of one episode published at once would race for the version number
        self._episode_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.webhooks = DeliveryLoop(settings.jobs, jobs.db, self.owner_id)

    async def start(self) -> None:
        """Recover jobs a dead runner left behind, dispatch every queued job, and start the heartbeat."""
        if not self.runs_jobs:
            return
        self.webhooks.start()
        await self._recover_and_dispatch()
        self._spawn(self._heartbeat())
        self._spawn(self._dispatch_queued())

    async def close(self) -> None:
        # A running transcode would hold shutdown for minutes: its worker is killed, and its job released
        # for the next start (or another instance) to run again.
        if not self.runs_jobs:
            return
        processes = list(self._processes.values())     # before the tasks that track them are cancelled
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            await asyncio.to_thread(process.join, 5)
        try:
            await asyncio.to_thread(self.jobs.release, self.owner_id)
        except JobStoreUnavailable as exc:      # their leases run out instead
            log.warning("could not release this runner's jobs: %s", exc)
        await self.webhooks.close()

    def submit(self, job: Job) -> None:
        """Run `job` (queued in the database) when a worker slot and its episode are free; a runner that
        runs no jobs leaves it to the one that does."""
        if job.job_id in self._running or not self.runs_jobs:
            return
        self._running.add(job.job_id)
        self._spawn(self._run(job))

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for operators, and for tests that crash one)."""
        return sorted(process.pid for process in self._processes.values() if process.is_alive() and process.pid)

    async def _heartbeat(self) -> None:
        # renew our leases, take over jobs of runners that died, and pick up jobs submitted elsewhere
        interval_s = self.settings.jobs.lease_s / 3
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.jobs.renew, self.owner_id, self.settings.jobs.lease_s,
                                        job_ids=tuple(self._processes))
                await self._recover_and_dispatch()
            except JobStoreUnavailable as exc:
                log.warning("job heartbeat: %s", exc)     # leases are long enough to miss a beat or two
            except Exception:  # noqa: BLE001 - the heartbeat must outlive one bad round
                log.exception("job heartbeat failed")

    async def _dispatch_queued(self) -> None:
        # jobs queued by processes that run none (series serve --processes N), or by another instance
        # whose runner is busy: one indexed read every DISPATCH_POLL_S, no progress writes involved
        while True:
            await asyncio.sleep(DISPATCH_POLL_S)
            try:
                for job in await asyncio.to_thread(self.jobs.queued, claimable_only=True):
                    self.submit(job)
            except JobStoreUnavailable as exc:
                log.debug("job dispatch poll: %s", exc)       # the heartbeat reports a database that stays away
            except Exception:  # noqa: BLE001 - the poll must outlive one bad round
                log.exception("job dispatch poll failed")

    async def _recover_and_dispatch(self) -> None:
        requeued, failed = await asyncio.to_thread(self.jobs.recover, self.settings.jobs.max_attempts,
                                                   upload_retention_s=self.settings.jobs.failed_upload_retention_s)
        for job_id in requeued:
            log.warning("job %s was interrupted (its runner is gone); re-queued from the start", job_id)
        for job_id in failed:
            log.error("job %s was interrupted too often; marked failed", job_id)
            self._spawn(self.webhooks.notify(await asyncio.to_thread(self.jobs.get, job_id)))
        for job in await asyncio.to_thread(self.jobs.queued, claimable_only=True):
            self.submit(job)

    async def _submit_later(self, job: Job, delay_s: float) -> None:
        # a restart meanwhile loses nothing: the job is queued in the database and dispatched at start-up
        await asyncio.sleep(delay_s)
        self.submit(job)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        lock = self._episode_locks.setdefault((job.series_id, job.episode_id), asyncio.Lock())
        try:
            async with lock, self._slots:
                claimed = await asyncio.to_thread(self.jobs.claim, job.job_id, job.attempt, self.owner_id,
                                                  self.settings.jobs.lease_s)
                if not claimed:
                    # another runner holds it or its episode; the heartbeat offers it again once free
                    log.debug("job %s is not free to run here yet", job.job_id)
                    return
                await self._execute(job)
            # A job still running here matches neither case below: its end could not be written (database
            # locked or full, _execute logged it), so no longer renewed, its lease and recovery take it.
            finished = await asyncio.to_thread(self.jobs.get, job.job_id)
            if finished.state == QUEUED and finished.attempt == job.attempt + 1:     # the worker re-queued it
                delay_s = retry_delay_s(self.settings, job.attempt)
                log.warning("job %s: %s; attempt %d in %.0f s", job.job_id, finished.error_code,
                            finished.attempt, delay_s)
                self._spawn(self._submit_later(finished, delay_s))
                return
            if finished.is_finished and finished.attempt == job.attempt:
                self.metrics.record(finished)
                await self.webhooks.notify(finished)
        except asyncio.CancelledError:
            raise       # the service is stopping: the job stays in the database and is recovered on start
        except Exception:  # noqa: BLE001 - one job's bookkeeping must not stop the others
            log.exception("job %s: the runner failed", job.job_id)
        finally:
            self._running.discard(job.job_id)

    async def _execute(self, job: Job) -> None:
        await run_in_child(self.settings, self.jobs, job, self.owner_id, processes=self._processes)

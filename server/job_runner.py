"""The service side of ingest jobs: a bounded process pool owned by the app, restart recovery, webhooks.

Transcodes are minutes of CPU, so they run in worker processes (server/job_worker.py); the event
loop only hands job ids over and waits. Jobs are in the database before they are handed over, so
nothing is lost when the service stops: on start-up, jobs left running are re-queued from the start
(their upload is kept until they publish) or, after too many interruptions, failed with a reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import aiohttp

from server.job_worker import run_job, worker_init
from server.jobs import QUEUED, Job, JobStore, WebhookNotAllowed, check_webhook_allowed
from server.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Series-Signature"
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_ATTEMPTS = 3
POOL_RESTARTS_PER_JOB = 3       # a pool that breaks again and again (say, workers cannot start) fails the job


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


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The Series-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`.

    The timestamp is signed with the body so a receiver can refuse replays of old deliveries.
    """
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class JobRunner:
    """Hands queued jobs to a bounded process pool, one at a time per episode."""

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self.settings = settings
        self.jobs = jobs
        self.metrics = JobMetrics()
        self._pool: ProcessPoolExecutor | None = None
        self._tasks: set[asyncio.Task] = set()
        self._running: set[str] = set()
        # two versions of one episode published at once would race for the version number
        self._episode_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Recover jobs a previous run left behind, then dispatch every queued job."""
        requeued, failed = await asyncio.to_thread(self.jobs.recover, self.settings.jobs.max_attempts)
        for job_id in requeued:
            log.warning("job %s was interrupted by a restart; re-queued from the start", job_id)
        for job_id in failed:
            log.error("job %s was interrupted too often; marked failed", job_id)
        self._pool = self._new_pool()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))
        for job in await asyncio.to_thread(self.jobs.queued):
            self.submit(job)
        for job_id in failed:
            self._spawn(self._notify(await asyncio.to_thread(self.jobs.get, job_id)))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await asyncio.to_thread(self._stop_pool, self._pool)
        if self._http is not None:
            await self._http.close()

    def submit(self, job: Job) -> None:
        """Run `job` (queued in the database) when a worker and its episode are free."""
        if job.job_id in self._running:
            return
        self._running.add(job.job_id)
        self._spawn(self._run(job))

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
            async with lock:
                await self._execute(job)
            finished = await asyncio.to_thread(self.jobs.get, job.job_id)
            if finished.state == QUEUED and finished.attempt == job.attempt + 1:     # the worker re-queued it
                delay_s = self.settings.jobs.retry_delay_s * 2 ** (job.attempt - 1)
                log.warning("job %s: %s; attempt %d in %.0f s", job.job_id, finished.error_code,
                            finished.attempt, delay_s)
                self._spawn(self._submit_later(finished, delay_s))
                return
            if finished.is_finished and finished.attempt == job.attempt:
                self.metrics.record(finished)
                await self._notify(finished)
        except asyncio.CancelledError:
            raise       # the service is stopping: the job stays in the database and is recovered on start
        except Exception:  # noqa: BLE001 - one job's bookkeeping must not stop the others
            log.exception("job %s: the runner failed", job.job_id)
        finally:
            self._running.discard(job.job_id)

    def worker_pids(self) -> list[int]:
        """PIDs of the pool's live worker processes (for operators, and for tests that crash one)."""
        processes = (getattr(self._pool, "_processes", None) or {}).values()
        return sorted(process.pid for process in processes if process.is_alive())

    async def _execute(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(POOL_RESTARTS_PER_JOB):
            pool = self._pool
            try:
                await loop.run_in_executor(pool, run_job, self.settings, job.job_id, job.attempt)
                return
            except BrokenProcessPool as exc:
                # a worker died (killed, out of memory, a crash in native code): every future of that pool
                # fails with it, so replace the pool once and tell the crashed job from the ones it stranded
                log.error("job %s: a worker process died: %s", job.job_id, exc)
                if self._pool is pool:
                    self._pool = self._new_pool()
                    await asyncio.to_thread(self._stop_pool, pool)
            current = await asyncio.to_thread(self.jobs.get, job.job_id)
            if current.state != QUEUED or current.attempt != job.attempt:
                break                       # it had started: this job's worker is the one that died
        await asyncio.to_thread(
            self.jobs.fail, job.job_id, job.attempt, "worker_crashed",
            "the worker process running this job died (killed or crashed); the upload is kept: "
            "submit it again with a new Idempotency-Key")

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the service has threads (to_thread, minio pools) that fork would copy half-held
        return ProcessPoolExecutor(max_workers=self.settings.jobs.workers, initializer=worker_init,
                                   mp_context=multiprocessing.get_context("spawn"))

    @staticmethod
    def _stop_pool(pool: ProcessPoolExecutor) -> None:
        # A running transcode would hold shutdown for minutes; its job is re-queued at the next start.
        # The executor has no public way to stop busy workers before Python 3.14 (terminate_workers).
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)

    async def _notify(self, job: Job) -> None:
        """POST the finished job to its webhook URL, signed; a few tries, the outcome kept on the job."""
        if not job.webhook_url or self._http is None:
            return
        try:    # again at delivery: the allow-list may have shrunk since the job was submitted
            check_webhook_allowed(job.webhook_url, self.settings.jobs.webhook_hosts)
        except WebhookNotAllowed as exc:
            log.warning("job %s: webhook not sent: %s", job.job_id, exc)
            await asyncio.to_thread(self.jobs.set_webhook_status, job.job_id, "refused (host not allowed)")
            return
        body = json.dumps({"event": f"job.{job.state}", "job": job.as_public_dict()}).encode()
        status = "failed"
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: sign_webhook(self.settings.jobs.webhook_secret or "", timestamp, body)}
            try:
                async with self._http.post(job.webhook_url, data=body, headers=headers) as response:
                    if response.status < 300:
                        status = f"delivered (HTTP {response.status})"
                        break
                    status = f"failed (HTTP {response.status})"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                status = f"failed ({type(exc).__name__})"
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(0.5 * 2**attempt)
        log.info("job %s: webhook %s", job.job_id, status)
        await asyncio.to_thread(self.jobs.set_webhook_status, job.job_id, status)

"""Jobs on Procrastinate, the PostgreSQL job engine: deferral, claiming, one job per episode at a time
(its `lock`, taken in submission order), priorities, retries, worker heartbeats and the stalled-job sweep.

Procrastinate's tables live in the same PostgreSQL as ours; `series db migrate` applies its schema
(apply_schema). A job of ours is deferred as one `series.transcode` job (its id kept as the job's
engine_job_id; `queueing_lock` = our job id, so a job is never queued twice). A worker (`series worker`,
run_worker) runs it: start_run() takes the job for a fresh owner id and a new attempt when it is a re-run,
the transcode runs in a child process (server/jobs/child.py), and every write of the run names that
attempt and owner. So a worker that was only paused and wakes after its job was re-run elsewhere has
all its writes refused, and a version that an earlier run made live is recognised, not published again.

Dead workers: every worker beats (update_heartbeat_interval = SERIES_JOB_STALLED_S / 3) and sweeps every
few seconds: jobs whose worker has not beaten for SERIES_JOB_STALLED_S are retried (get_stalled_jobs,
retry_job) and run again by a live worker. The sweep also hands over jobs recorded but never deferred (the
service stopped in between), and webhook deliveries that are due with no task queued for them.

Completion webhooks are `series.deliver_webhook` tasks: one attempt each, the next deferred for when it
is due (server/jobs/webhooks/deliveries.py keeps the schedule and every attempt).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import signal
from collections.abc import Iterable, MutableMapping, Sequence

import procrastinate
from procrastinate import exceptions as procrastinate_errors

from server.config import Settings
from server.config.jobs import PROCRASTINATE
from server.jobs.child import Process, run_in_child
from server.jobs.engines.runner import JobMetrics
from server.jobs.job_store import JobStore
from server.jobs.jobs import QUEUED, Job, JobStoreUnavailable
from server.jobs.owners import new_owner_id
from server.jobs.queue import EngineView
from server.jobs.webhooks.completion import open_webhook_session
from server.jobs.webhooks.deliveries import PENDING, DeliveryStore, attempt_delivery
from server.jobs.worker_metrics import WorkerCollector, serve_worker_metrics

log = logging.getLogger(__name__)

TRANSCODE_QUEUE, WEBHOOK_QUEUE = "transcode", "webhooks"
TRANSCODE_TASK, WEBHOOK_TASK = "series.transcode", "series.deliver_webhook"
HAND_OVER_AFTER_S = 30.0        # a job recorded this long ago and still not deferred: its submitter stopped
SWEEP_EVERY_S = 2.0


class RunNotFinished(Exception):
    """The run ended without an outcome worth keeping (a store outage queued the job again, or its end
    could not be written): Procrastinate retries it, with backoff."""


def episode_lock(job: Job) -> str:
    return f"episode:{job.series_id}/{job.episode_id}"


class Engine:
    """One process's Procrastinate app with our two tasks, bound to its settings and stores."""

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self.settings = settings
        self.jobs = jobs
        self.deliveries = DeliveryStore(jobs.db, settings.jobs)
        self.metrics = JobMetrics()
        self.stalled_reruns = 0
        self.processes: MutableMapping[str, Process] = {}
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=settings.database_target, min_size=1, max_size=4))
        retry = procrastinate.RetryStrategy(
            max_attempts=max(2, settings.jobs.max_attempts * 2),    # our own attempt count decides; this bounds it
            wait=int(settings.jobs.retry_delay_s), linear_wait=int(settings.jobs.retry_delay_s),
            retry_exceptions={RunNotFinished, JobStoreUnavailable, asyncio.CancelledError})
        self.transcode = self.app.task(name=TRANSCODE_TASK, queue=TRANSCODE_QUEUE, pass_context=True,
                                       retry=retry)(self._transcode)
        self.deliver = self.app.task(name=WEBHOOK_TASK, queue=WEBHOOK_QUEUE, pass_context=True,
                                     retry=procrastinate.RetryStrategy(max_attempts=5, wait=5,
                                                                       retry_exceptions={JobStoreUnavailable}))(
            self._deliver)
        self._http = None

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self.app.close_async()

    async def defer(self, job: Job, *, priority: int = 0) -> None:
        """Hand `job` to the engine (once: a second deferral of a queued job is ignored)."""
        try:
            engine_id = await self.transcode.configure(
                lock=episode_lock(job), queueing_lock=job.job_id, priority=priority).defer_async(job_id=job.job_id)
        except procrastinate_errors.AlreadyEnqueued:
            return
        await asyncio.to_thread(self.jobs.set_engine_job, job.job_id, engine_id)

    async def defer_delivery(self, delivery_id: str, *, at: float | None = None) -> None:
        schedule = {"schedule_at": datetime.datetime.fromtimestamp(at, datetime.UTC)} if at else {}
        try:
            await self.deliver.configure(queueing_lock=delivery_id, **schedule).defer_async(delivery_id=delivery_id)
        except procrastinate_errors.AlreadyEnqueued:
            pass

    async def _transcode(self, context: procrastinate.JobContext, job_id: str) -> None:
        owner = f"{new_owner_id()}:w{context.job.worker_id or 0}"
        job = await asyncio.to_thread(self.jobs.start_run, job_id, owner, self.settings.jobs.max_attempts,
                                      upload_retention_s=self.settings.jobs.failed_upload_retention_s)
        if job is None:     # finished, cancelled, or failed here for too many interruptions
            await self._finished(await asyncio.to_thread(self.jobs.get, job_id))
            return
        log.info("job %s: attempt %d runs here (%s)", job_id, job.attempt, owner)
        await run_in_child(self.settings, self.jobs, job, owner, processes=self.processes)
        after = await asyncio.to_thread(self.jobs.get, job_id)
        if after.attempt == job.attempt and after.is_finished:
            await self._finished(after)
            return
        if after.state == QUEUED and after.attempt == job.attempt + 1:      # the child queued it again
            await asyncio.to_thread(self.jobs.release, owner)
            raise RunNotFinished(f"job {job_id}: {after.error_code}: {after.error_message}")
        if after.attempt == job.attempt:
            raise RunNotFinished(f"job {job_id}: attempt {job.attempt} ended without recording its end")
        log.warning("job %s: attempt %d was superseded by attempt %d while it ran here", job_id, job.attempt,
                    after.attempt)

    async def _finished(self, job: Job) -> None:
        if not job.is_finished:
            return
        self.metrics.record(job)
        delivery = await asyncio.to_thread(self.deliveries.record, job)
        if delivery is not None and delivery.state == PENDING:
            await self.defer_delivery(delivery.delivery_id)

    async def _deliver(self, context: procrastinate.JobContext, delivery_id: str) -> None:
        if self._http is None:
            self._http = open_webhook_session(self.settings.jobs)
        holder = f"{new_owner_id()}:w{context.job.worker_id or 0}"
        done = await attempt_delivery(self.deliveries, self._http, self.settings.jobs, delivery_id, holder)
        if done is None:
            return
        (log.info if done.state != PENDING else log.warning)("job %s: webhook %s: %s", done.job_id, delivery_id,
                                                              done.last_status)
        if done.state == PENDING and done.next_attempt_at is not None:
            # the next attempt is a task of its own, scheduled for when it is due (the queueing lock binds only
            # jobs still to do, not this running one)
            await self.defer_delivery(delivery_id, at=done.next_attempt_at)

    async def sweep(self) -> None:
        """One round: re-run stalled jobs, hand over jobs and deliveries that nothing queued."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.settings.jobs.stalled_after_s, task_name=TRANSCODE_TASK)
        for engine_job in stalled:
            try:
                await self.app.job_manager.retry_job(engine_job)
            except Exception as exc:  # noqa: BLE001 - another worker's sweep retried it first
                log.debug("stalled job %s: %s", engine_job.id, exc)
                continue
            self.stalled_reruns += 1
            log.warning("job %s: its worker %s stopped beating for %.0f s; it runs again",
                        engine_job.task_kwargs.get("job_id"), engine_job.worker_id, self.settings.jobs.stalled_after_s)
        for job in await asyncio.to_thread(self.jobs.not_handed_over, older_than_s=HAND_OVER_AFTER_S):
            await self.defer(job)
        due = await asyncio.to_thread(self.deliveries.due)
        if due:
            # A delivery whose task is running but has not taken it yet (or has just released it) looks due and
            # unheld; the queueing lock binds only tasks still to do, so a second task would be queued for it.
            queued = {row["queueing_lock"] for row in await self.app.connector.execute_query_all_async(
                "SELECT queueing_lock FROM procrastinate_jobs WHERE task_name = %(task)s"
                " AND status IN ('todo', 'doing')", task=WEBHOOK_TASK)}
            # ... and a task that ended between the two reads is in neither: a delivery still due after them
            # had no task throughout
            still_due = {delivery.delivery_id for delivery in await asyncio.to_thread(self.deliveries.due)}
            for delivery in due:
                if delivery.delivery_id in still_due and delivery.delivery_id not in queued:
                    await self.defer_delivery(delivery.delivery_id)

    async def views(self, jobs: Sequence[Job]) -> dict[str, EngineView]:
        ids = [job.engine_job_id for job in jobs if job.engine_job_id is not None]
        rows = await self.app.connector.execute_query_all_async(
            "SELECT j.id, j.status, j.attempts, EXTRACT(EPOCH FROM NOW() - w.last_heartbeat) AS age"
            " FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id"
            " WHERE j.id = ANY(%(ids)s)", ids=ids) if ids else []
        by_id = {row["id"]: row for row in rows}
        views = {}
        for job in jobs:
            row = by_id.get(job.engine_job_id)
            views[job.job_id] = EngineView(
                job_id=job.job_id, engine=PROCRASTINATE, status=str(row["status"]) if row else "not handed over",
                where=job.owner_id if row and row["status"] == "doing" else None,
                engine_attempts=int(row["attempts"]) if row else None,
                heartbeat_age_s=float(row["age"]) if row and row["age"] is not None else None)
        return views

    async def queue_depth(self) -> dict[str, int]:
        rows = await self.app.connector.execute_query_all_async(
            "SELECT queue_name, status, count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            " GROUP BY queue_name, status")
        return {f"{row['queue_name']}/{row['status']}": int(row["n"]) for row in rows}


class ProcrastinateQueue:
    """The JobQueue of a service on Procrastinate: it defers jobs; `series worker` processes run them."""

    engine = PROCRASTINATE

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self.settings = settings
        self.jobs = jobs
        self._engine = Engine(settings, jobs)
        self.metrics = self._engine.metrics

    async def start(self) -> None:
        await self._engine.open()

    async def close(self) -> None:
        await self._engine.close()

    async def submit(self, job: Job, *, priority: int = 0) -> None:
        await self._engine.defer(job, priority=priority)

    async def cancel(self, job_id: str) -> Job:
        job = await asyncio.to_thread(self.jobs.request_cancel, job_id)
        if job.engine_job_id is not None and job.is_finished:
            # not started yet: take it off the queue (a running one stops through the fence, see child.py)
            await self._engine.app.job_manager.cancel_job_by_id_async(job.engine_job_id, abort=False)
        return job

    async def views(self, jobs: Sequence[Job]) -> dict[str, EngineView]:
        return await self._engine.views(jobs)


async def run_worker(settings: Settings, *, concurrency: int = 1, queues: Iterable[str] | None = None,
                     drain_s: float = 60.0, name: str | None = None, metrics_port: int | None = None) -> None:
    """Run a worker until SIGTERM or SIGINT: it takes jobs of `queues` (default: all), `concurrency` at once,
    beats, and sweeps stalled jobs. On the signal it takes no new job and waits up to `drain_s` for the
    running ones; then their children are killed and the jobs handed back (retried elsewhere at once).
    With `metrics_port`, its counters are served on 127.0.0.1 (server/jobs/worker_metrics.py)."""
    jobs = await asyncio.to_thread(JobStore.open, settings.database_target,
                                   busy_timeout_ms=settings.jobs.db_busy_timeout_ms, pool_max_size=4)
    engine = Engine(settings, jobs)
    if metrics_port is not None:
        serve_worker_metrics(metrics_port, WorkerCollector(engine.metrics, lambda: engine.stalled_reruns,
                                                           lambda: len(engine.processes)))
    await engine.open()
    sweeper = asyncio.get_running_loop().create_task(_sweep_forever(engine))
    worker = asyncio.get_running_loop().create_task(engine.app.run_worker_async(
        queues=list(queues) if queues else None, concurrency=concurrency, name=name or "series-worker",
        update_heartbeat_interval=settings.jobs.stalled_after_s / 3,
        stalled_worker_timeout=settings.jobs.stalled_after_s, shutdown_graceful_timeout=drain_s,
        fetch_job_polling_interval=1.0, abort_job_polling_interval=1.0, install_signal_handlers=False))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.cancel)     # a cancelled run_worker_async stops gracefully
    try:
        await asyncio.gather(worker, return_exceptions=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await engine.close()
        jobs.close()


async def _sweep_forever(engine: Engine) -> None:
    while True:
        try:
            await engine.sweep()
        except JobStoreUnavailable as exc:
            log.warning("job sweep: %s", exc)
        except Exception:  # noqa: BLE001 - the sweep must outlive one bad round
            log.exception("job sweep failed")
        await asyncio.sleep(SWEEP_EVERY_S)


def apply_schema(database_url: str) -> bool:
    """Create Procrastinate's tables in `database_url` unless they are there; whether it created them."""
    async def apply() -> bool:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url, min_size=1,
                                                                         max_size=1))
        async with app.open_async():
            if await app.check_connection_async():
                return False
            await app.schema_manager.apply_schema_async()
            return True
    return asyncio.run(apply())

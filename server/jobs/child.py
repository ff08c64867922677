"""A job's run in a child process, as both engines start it: wait for it, stop it, and record how it ended
when the child could not.

The transcode is minutes of CPU in a process of its own (server/jobs/worker.py is its side): its death is
seen from its exit code, and stopping it is process.kill(), both public API (a pool's workers are reachable
only through private attributes). spawn, not fork: the parent has threads (to_thread, minio and database
pools) that fork would copy half-held. The child dies with its parent (PDEATHSIG, worker_init), so a
worker killed with SIGKILL leaves no transcode running on beside the run that replaces it.

While the child runs, the parent looks at the job every CANCEL_POLL_S: a cancelled job's child stops
itself at its next progress write, and is killed if it has not within CANCEL_GRACE_S. A child that runs
past SERIES_JOB_MAX_S is killed and its job failed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import MutableMapping

from server.config import Settings
from server.jobs.job_store import JobStore
from server.jobs.jobs import Job, JobStoreUnavailable, describe_duration, upload_note
from server.jobs.worker import EXIT_END_NOT_RECORDED, work_process_main

log = logging.getLogger(__name__)

CANCEL_POLL_S = 1.0
CANCEL_GRACE_S = 2.0       # a cancelled child's own stop comes within a progress interval; then it is killed

Process = multiprocessing.process.BaseProcess


async def run_in_child(settings: Settings, jobs: JobStore, job: Job, owner: str, *,
                       processes: MutableMapping[str, Process] | None = None) -> None:
    """Run attempt `job.attempt` of `job` (claimed by `owner`) in a child process until it ends.

    The child records the job's outcome itself; this records what it could not: a crash, a time-out, a
    cancellation it stopped for. While it runs the child is in `processes` under the job id (for the
    heartbeat, and for tests that kill it). Cancelling this coroutine kills the child, and the job is left
    as it was for its engine to run again. Never raises JobStoreUnavailable (logged; the lease or the
    engine's stalled-job sweep takes the job).
    """
    process = multiprocessing.get_context("spawn").Process(
        target=work_process_main, args=(settings, job.job_id, job.attempt, owner),
        name=f"job-{job.job_id}", daemon=True)
    if processes is not None:
        processes[job.job_id] = process
    try:
        # on the loop's thread, not in to_thread: the child's PDEATHSIG fires when the *thread* that
        # started it ends, and executor threads come and go
        process.start()
        try:
            outcome = await asyncio.wait_for(_watch(jobs, job, process), timeout=settings.jobs.max_job_s)
        except asyncio.TimeoutError:
            await _stop(process)
            await _record(jobs, job, settings, "could not record the time-out", jobs.fail, job.job_id, job.attempt,
                          "job_timed_out", _timed_out_message(job, settings), owner=owner)
            log.error("job %s: still running after %s (SERIES_JOB_MAX_S); its child %s was killed",
                      job.job_id, describe_duration(settings.jobs.max_job_s), process.pid)
            return
        except BaseException:
            await _stop(process)        # cancelled (the engine is stopping or aborting): no child runs on
            raise
    finally:
        if processes is not None:
            processes.pop(job.job_id, None)
    if outcome != "cancelled" and process.exitcode == 0 and await _was_cancelled(jobs, job):
        outcome = "cancelled"           # the child stopped itself at its first refused write, before we looked
    if outcome == "cancelled":
        await _record(jobs, job, settings, "could not record the cancellation", jobs.finish_cancelled,
                      job.job_id, job.attempt, owner=owner)
        log.warning("job %s: cancelled; its child %s stopped", job.job_id, process.pid)
        return
    if process.exitcode == 0:
        return
    if process.exitcode == EXIT_END_NOT_RECORDED:
        # the child knows how the job ended but could not write it; "worker_crashed" would be a lie (the
        # episode may be published), so the job is left to the lease or the engine's re-run
        log.error("job %s: the child could not record the job's end (exit status %d: the database refused the "
                  "write); once its lease lapses (within %.0f s) recovery re-queues or fails the job (on a distributed "
                  "engine, the job runs again); a version it published is recognised, not published twice",
                  job.job_id, process.exitcode, settings.jobs.lease_s)
        return
    how = (f"was killed by signal {-process.exitcode}" if process.exitcode < 0
           else f"exited with status {process.exitcode}")
    log.error("job %s: the child process %s %s", job.job_id, process.pid, how)
    # a no-op when the child had already recorded an outcome
    await _record(jobs, job, settings, "could not record the crash", jobs.fail, job.job_id, job.attempt,
                  "worker_crashed", f"the worker process running this job {how}; "
                  f"{upload_note(job, settings.jobs.failed_upload_retention_s)}: "
                  "submit it again with a new Idempotency-Key", owner=owner)


async def _watch(jobs: JobStore, job: Job, process: Process) -> str:
    """Wait until `process` ends: "ended", or "cancelled" when the job was cancelled meanwhile."""
    ended = _exited(process)
    try:
        return await _poll(jobs, job, process, ended)
    finally:
        ended.cancel()      # cancelled from outside (time-out, engine abort): stop listening to the sentinel


async def _poll(jobs: JobStore, job: Job, process: Process, ended: asyncio.Future) -> str:
    # The look-ups run beside the wait, never in its way: a locked database must not hide the child's end.
    cancel_seen_at: float | None = None
    lookup: asyncio.Future | None = None
    next_lookup_at = time.monotonic() + CANCEL_POLL_S
    try:
        while True:
            if lookup is None and cancel_seen_at is None and time.monotonic() >= next_lookup_at:
                lookup = asyncio.ensure_future(asyncio.to_thread(jobs.get, job.job_id))
            waiting = {ended} if lookup is None else {ended, lookup}
            done, _ = await asyncio.wait(waiting, timeout=CANCEL_POLL_S, return_when=asyncio.FIRST_COMPLETED)
            if ended in done:
                await ended
                return "ended" if cancel_seen_at is None else "cancelled"
            if lookup is not None and lookup in done:
                current = None if lookup.exception() else lookup.result()
                lookup, next_lookup_at = None, time.monotonic() + CANCEL_POLL_S
                if current is not None and current.cancel_requested_at is not None and not current.is_finished:
                    cancel_seen_at = time.monotonic()
            if cancel_seen_at is not None and time.monotonic() - cancel_seen_at > CANCEL_GRACE_S:
                process.kill()
    finally:
        if lookup is not None:      # its thread finishes on its own; its outcome is not needed
            lookup.add_done_callback(lambda future: future.cancelled() or future.exception())


async def _was_cancelled(jobs: JobStore, job: Job) -> bool:
    try:
        current = await asyncio.to_thread(jobs.get, job.job_id)
    except JobStoreUnavailable:
        return False        # the lease or the engine's re-run finds the cancel request later
    return current.cancel_requested_at is not None and not current.is_finished and current.attempt == job.attempt


def _exited(process: Process) -> asyncio.Future:
    """A future that is done, without a thread, when `process` ends (its sentinel becomes readable)."""
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def on_readable() -> None:
        loop.remove_reader(process.sentinel)
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(process.sentinel, on_readable)
    ended.add_done_callback(lambda _: loop.remove_reader(process.sentinel))
    return asyncio.ensure_future(_reaped(ended, process))


async def _reaped(ended: asyncio.Future, process: Process) -> None:
    await ended
    await asyncio.to_thread(process.join)     # reaps it; returns at once


async def _stop(process: Process) -> None:
    if process.is_alive():
        process.kill()
    await asyncio.to_thread(process.join, 5)


async def _record(jobs: JobStore, job: Job, settings: Settings, what: str, write, *args, **kwargs) -> None:
    try:
        await asyncio.to_thread(write, *args, **kwargs)
    except JobStoreUnavailable as exc:
        log.error("job %s: %s (%s); once its lease lapses (within %.0f s) or its engine re-runs it, the job is "
                  "taken again", job.job_id, what, exc, settings.jobs.lease_s)


def _timed_out_message(job: Job, settings: Settings) -> str:
    limit = describe_duration(settings.jobs.max_job_s)
    return (f"the job was stopped after running for {limit}, the limit one job may take (SERIES_JOB_MAX_S); "
            f"{upload_note(job, settings.jobs.failed_upload_retention_s)}: if the upload is a normal episode, "
            "submit it again with a new Idempotency-Key, else export it at a lower resolution or frame rate")

"""`series jobs`, `series worker` and `series webhooks`: following and cancelling ingest jobs, running them
on a distributed engine, and the completion webhooks they send."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from server.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from server.config import Settings
from server.config.jobs import PROCRASTINATE
from server.jobs.job_store import JobStore
from server.jobs.jobs import STATES, Job
from server.jobs.queue import EngineView, in_process_view
from server.jobs.webhooks.deliveries import DELIVERY_STATES, DeliveryStore

log = logging.getLogger("server.cli")


def add_commands(commands: argparse._SubParsersAction) -> None:
    jobs = commands.add_parser(
        "jobs", help="list ingest jobs with their engine's view, show one, or cancel one",
        description="`series jobs` lists recent jobs; `series jobs ID` shows one; `series jobs cancel ID` stops one "
                    "(a waiting job fails at once, a running one within seconds; nothing half-published)")
    jobs.add_argument("words", nargs="*", metavar="[cancel] JOB_ID", help="a job id, or `cancel` and a job id")
    jobs.add_argument("--state", choices=STATES, help="list only jobs in this state")
    jobs.add_argument("--limit", type=int, default=20, help="list at most this many, newest first (default 20)")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=cmd_jobs)

    worker = commands.add_parser(
        "worker", help="run ingest jobs from the shared PostgreSQL (SERIES_JOB_ENGINE=procrastinate), on any host",
        description="A transcode worker: takes jobs from the queue, runs each transcode in a child process, beats, "
                    "and re-runs jobs of workers that went silent. SIGTERM drains it: no new job, running ones "
                    "finish within --drain-s or are handed back to run elsewhere.")
    worker.add_argument("--concurrency", type=_positive, default=1, metavar="N",
                        help="jobs at once (each a child process; one per two cores is plenty). Default 1")
    worker.add_argument("--queues", default="", metavar="Q1,Q2",
                        help="take only these queues (transcode, webhooks). Default: both")
    worker.add_argument("--drain-s", type=float, default=60.0, metavar="S",
                        help="on SIGTERM, wait this long for running jobs before handing them back. Default 60")
    worker.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve this worker's metrics (jobs, stalled re-runs, running children) on 127.0.0.1:PORT")
    worker.set_defaults(handler=cmd_worker)

    webhooks = commands.add_parser("webhooks", help="completion-webhook deliveries: list them, redeliver one")
    actions = webhooks.add_subparsers(dest="webhooks_action", required=True, metavar="ACTION")
    listing = actions.add_parser("deliveries", help="list deliveries (newest first) with each attempt's outcome")
    listing.add_argument("--job", metavar="JOB_ID", help="only this job's")
    listing.add_argument("--state", choices=DELIVERY_STATES, help="only deliveries in this state")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_deliveries)
    again = actions.add_parser("redeliver", help="deliver again now, its retry schedule started afresh")
    again.add_argument("delivery_id", metavar="DELIVERY_ID",
                       help="the delivery (dlv_…) as `series webhooks deliveries` lists it")
    again.add_argument("--json", action="store_true", help="print JSON")
    again.set_defaults(handler=cmd_redeliver)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--concurrency must be a whole number of 1 or more, not {text!r}")
    return int(text)


def cmd_jobs(args, settings: Settings) -> int:
    words = args.words
    if len(words) > 2 or (len(words) == 2 and words[0] != "cancel") or words == ["cancel"]:
        print("series: jobs takes nothing, a job id, or `cancel JOB_ID`; see `series jobs --help`", file=sys.stderr)
        return EXIT_USAGE
    jobs = JobStore.open(settings.database_target)
    try:
        if len(words) == 2:
            return _cancel(jobs, settings, words[1], as_json=args.json)
        listed = [jobs.get(words[0])] if words else jobs.list(state=args.state, limit=args.limit)
        views = engine_views(settings, jobs, listed)
    finally:
        jobs.close()
    if args.json:
        shown = [{**job.as_public_dict(), "engine": views[job.job_id].as_dict()} for job in listed]
        print(json.dumps(shown[0] if words else shown, indent=2))
    elif words:
        job = listed[0]
        print(f"{job.job_id}: {job.state} ({job.stage_fraction:.0%}), series {job.series_id} episode "
              f"{job.episode_id}, attempt {job.attempt}" + (f", published as v{job.version}" if job.version
                                                            and job.state == "published" else ""))
        print(f"  engine: {_describe(views[job.job_id])}")
        if job.error_code:
            print(f"  error {job.error_code}: {job.error_message}")
        for reason in (job.report or {}).get("reasons", []):
            print(f"  rejected: {reason['message']} [{reason['code']}]")
    else:
        for job in listed:
            print(f"{job.job_id}  {job.state:<11} {job.stage_fraction:>4.0%}  {job.series_id}/{job.episode_id}"
                  f"  attempt {job.attempt}  {_describe(views[job.job_id])}"
                  + (f"  {job.error_code}" if job.error_code else ""))
    return EXIT_OK


def _cancel(jobs: JobStore, settings: Settings, job_id: str, *, as_json: bool) -> int:
    if settings.jobs.engine == PROCRASTINATE:
        from server.jobs.engines.procrastinate_engine import ProcrastinateQueue

        async def cancel() -> Job:
            queue = ProcrastinateQueue(settings, jobs)
            await queue.start()
            try:
                return await queue.cancel(job_id)
            finally:
                await queue.close()
        job = asyncio.run(cancel())
    else:
        job = jobs.request_cancel(job_id)
    if as_json:
        print(json.dumps(job.as_public_dict(), indent=2))
    elif job.error_code == "cancelled":
        print(f"{job.job_id}: cancelled; nothing of it was published")
    elif job.is_finished:
        print(f"{job.job_id}: already {job.state}; nothing to cancel")
    else:
        print(f"{job.job_id}: cancel requested; its worker stops it within seconds (`series jobs {job.job_id}`)")
    return EXIT_OK


def engine_views(settings: Settings, jobs: JobStore, listed: list[Job]) -> dict[str, EngineView]:
    """The engine's view of `listed` (Procrastinate's tables on PostgreSQL, the runner's leases otherwise)."""
    if settings.jobs.engine != PROCRASTINATE:
        return {job.job_id: in_process_view(job, settings) for job in listed}
    from server.jobs.engines.procrastinate_engine import Engine

    async def views() -> dict[str, EngineView]:
        engine = Engine(settings, jobs)
        await engine.open()
        try:
            return await engine.views(listed)
        finally:
            await engine.close()
    return asyncio.run(views())


def _describe(view: EngineView) -> str:
    parts = [f"{view.engine} {view.status}"]
    if view.where:
        parts.append(f"on {view.where.split(':')[0]} pid {view.where.split(':')[1]}" if view.where.count(":") >= 2
                     else f"on {view.where}")
    if view.engine_attempts is not None:
        parts.append(f"{view.engine_attempts} engine attempts")
    if view.heartbeat_age_s is not None:
        parts.append(f"heartbeat {view.heartbeat_age_s:.0f} s ago")
    return ", ".join(parts)


def cmd_worker(args, settings: Settings) -> int:
    if settings.jobs.engine != PROCRASTINATE:
        print("series: `series worker` runs jobs from PostgreSQL: set SERIES_DATABASE_URL (and leave "
              "SERIES_JOB_ENGINE unset or `procrastinate`); with the embedded SQLite file `series serve` runs them",
              file=sys.stderr)
        return EXIT_FAILED
    from server.cli.common import running_services
    from server.jobs.engines.procrastinate_engine import run_worker

    queues = [queue.strip() for queue in args.queues.split(",") if queue.strip()]
    with running_services(settings):       # the schema and the store checked once, with one-line errors
        pass
    log.info("worker: concurrency %d, queues %s, stalled after %.0f s", args.concurrency,
             ",".join(queues) or "all", settings.jobs.stalled_after_s)
    asyncio.run(run_worker(settings, concurrency=args.concurrency, queues=queues or None, drain_s=args.drain_s,
                           metrics_port=args.metrics_port))
    return EXIT_OK


def cmd_deliveries(args, settings: Settings) -> int:
    jobs = JobStore.open(settings.database_target)
    try:
        store = DeliveryStore(jobs.db, settings.jobs)
        listed = store.list(job_id=args.job, state=args.state, limit=args.limit)
        attempts = {delivery.delivery_id: store.attempts(delivery.delivery_id) for delivery in listed}
    finally:
        jobs.close()
    if args.json:
        print(json.dumps([d.as_dict(attempts[d.delivery_id]) for d in listed], indent=2))
        return EXIT_OK
    if not listed:
        print("no webhook deliveries" + (f" for job {args.job}" if args.job else ""))
    for delivery in listed:
        print(f"{delivery.delivery_id}  {delivery.state:<9}  job {delivery.job_id}  {delivery.url}")
        for attempt in attempts[delivery.delivery_id]:
            print(f"    attempt {attempt.attempt}: {attempt.status}")
        if delivery.state == "pending" and delivery.next_attempt_at:
            print(f"    next attempt at {delivery.next_attempt_at:.0f} (unix time)")
    return EXIT_OK


def cmd_redeliver(args, settings: Settings) -> int:
    jobs = JobStore.open(settings.database_target)
    try:
        delivery = DeliveryStore(jobs.db, settings.jobs).redeliver(args.delivery_id)
    finally:
        jobs.close()
    if args.json:
        print(json.dumps(delivery.as_dict()))
    else:
        print(f"{delivery.delivery_id}: redelivery queued; the first attempt is due now "
              "(`series webhooks deliveries --job " + delivery.job_id + "` follows it)")
    return EXIT_OK

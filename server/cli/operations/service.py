"""`series serve` and `series store`: the HTTP service (one process, or several sharing one port), and the
embedded object store it may run on."""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.cli.common import EXIT_FAILED, EXIT_OK, log, running_services, running_store
from server.cli.operations.processes import serve_processes
from server.cli.operations.serving import serve_until_signalled
from server.config import Settings
from server.local.object_store import LocalObjectStore

MAX_PROCESSES = 64


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the HTTP service (playlists, segments, keys, APIs)")
    serve.add_argument("--processes", type=_process_count, default=1, metavar="N",
                       help="serve from N processes sharing SERIES_LISTEN_PORT (SO_REUSEPORT: the kernel spreads "
                            "connections); the first also runs ingest jobs, unless `series worker`s run them "
                            "(SERIES_JOB_ENGINE=procrastinate). Default 1")
    serve.set_defaults(handler=cmd_serve)

    store = commands.add_parser("store", help="start, stop or inspect the embedded local object store")
    store.add_argument("action", choices=("start", "stop", "status"),
                       help="start it (kept running), stop the one this data directory started, or show its status")
    store.set_defaults(handler=cmd_store)


def _process_count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"--processes must be a whole number from 1 to {MAX_PROCESSES}, not {text!r}")
    return int(text)


def cmd_serve(args, settings: Settings) -> int:
    if args.processes > 1:
        with running_store(settings):
            with running_services(settings):
                pass        # every process would refuse the same schema or store: say so once, here
            return serve_processes(settings, args.processes)
    with running_services(settings) as services:
        asyncio.run(serve_until_signalled(settings, services, on_ready=lambda: log.info(
            "serving on %s (Ctrl+C stops)", settings.public_url)))
    return EXIT_OK


def cmd_store(args, settings: Settings) -> int:
    if settings.local_store is None:
        print("series: SERIES_S3_ENDPOINT is set, so the embedded store is not used", file=sys.stderr)
        return EXIT_FAILED
    local = LocalObjectStore(settings.local_store)
    if args.action == "start":
        local.start()
        print(f"local object store serves S3 at http://{local.endpoint} (PID {local.pid}); data in {settings.local_store.data_dir}")
    elif args.action == "stop":
        local.stop()
        print("local object store stopped")
    else:
        running = local.is_running()
        print(f"local object store: {'running at http://' + local.endpoint if running else 'stopped'}")
    return EXIT_OK

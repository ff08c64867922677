"""`series serve --processes N`: N service processes on one port (SO_REUSEPORT), watched by this one.

Each process is a whole service (its own database pool, change-feed follower, caches, rate limits) and
shares nothing in memory with the others: they share the database and the object store, exactly as
instances on several hosts do. The first (index 0) also runs ingest jobs; the others accept them and
leave them queued for it (server/jobs/engines/runner.py). A process that dies is started again; one that
dies within START_GRACE_S of its start takes every process down with an error instead (a bad
configuration, a database that refuses: restarting would only loop). SIGINT or SIGTERM stops them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from server.cli.common import EXIT_FAILED, EXIT_OK
from server.config import Settings

log = logging.getLogger("series")

START_GRACE_S = 10.0            # a process that ends sooner after its start failed to start
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0           # how long stopping processes get before they are killed
_PR_SET_PDEATHSIG = 1


def serve_processes(settings: Settings, count: int) -> int:
    """Run `count` service processes until SIGINT/SIGTERM; the exit code (1 if one could not start)."""
    context = multiprocessing.get_context("spawn")     # the parent may have threads; fork would copy them half-held
    stopping = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}
    failed = False

    def start(index: int) -> None:
        process = context.Process(target=_serve_one, args=(settings, index, count), name=f"series-serve-{index}")
        process.start()
        processes[index] = (process, time.monotonic())

    try:
        for index in range(count):
            start(index)
        log.info("serving on %s from %d processes (PIDs %s; Ctrl+C stops)", settings.public_url, count,
                 ", ".join(str(process.pid) for process, _ in processes.values()))
        while not stopping.is_set():
            wait([process.sentinel for process, _ in processes.values()], timeout=0.5)
            for index, (process, started) in list(processes.items()):
                if process.is_alive() or stopping.is_set():
                    continue
                process.join()
                lived_s = time.monotonic() - started
                if lived_s < START_GRACE_S:
                    log.error("service process %d exited with status %s %.1f s after its start; stopping all "
                              "(its log above says why)", index, process.exitcode, lived_s)
                    failed = True
                    stopping.set()
                    break
                log.error("service process %d (PID %s) ended with status %s; starting it again", index,
                          process.pid, process.exitcode)
                time.sleep(RESTART_DELAY_S)
                start(index)
    finally:
        _stop_all([process for process, _ in processes.values()])
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_FAILED if failed else EXIT_OK


def _stop_all(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()          # SIGTERM: the process finishes its requests and closes cleanly
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("service process %s did not stop within %.0f s; killing it", process.pid, STOP_TIMEOUT_S)
            process.kill()
            process.join()


def _serve_one(settings: Settings, index: int, count: int) -> None:
    """One service process: the whole service on the shared port; ingest jobs only in the first."""
    import asyncio

    from server.cli.operations.serving import serve_until_signalled
    from server.services import Services

    if sys.platform == "linux":      # die with the parent: a killed supervisor must not leave servers behind
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s[{index}]: %(message)s")
    if not os.environ.get("SERIES_FFMPEG_LOG"):
        logging.getLogger("libav").setLevel(logging.ERROR)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl+C reaches the supervisor, which sends SIGTERM
    with Services.open(settings) as services:
        asyncio.run(serve_until_signalled(
            settings, services, reuse_port=True, run_jobs=index == 0, stop_signals=(signal.SIGTERM,),
            on_ready=lambda: log.info("process %d of %d serving (PID %d)%s", index + 1, count, os.getpid(),
                                      ", running ingest jobs" if index == 0 else "")))

"""Serving the app until a signal stops it: what `series serve` (each of its processes) and `series demo` run."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from server.config import Settings
from server.edge.accesslog import configure_access_log
from server.services import Services


async def serve_until_signalled(settings: Settings, services: Services, on_ready: Callable[[], None], *,
                                reuse_port: bool = False, run_jobs: bool = True,
                                stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Serve the app on SERIES_LISTEN_HOST:PORT until one of `stop_signals`; `on_ready` once it listens.
    `reuse_port`: share the port with other processes (SO_REUSEPORT); `run_jobs`: see create_app()."""
    from server.app import create_app, start_runner  # the whole service: imported only by commands that serve

    configure_access_log(sys.stderr)      # JSON lines, tokens redacted, written off the event loop
    runner = await start_runner(create_app(settings, services, run_jobs=run_jobs))
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port, reuse_port=reuse_port or None)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in stop_signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()

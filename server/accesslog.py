"""Structured access logs: one JSON line per request, with playback tokens redacted.

aiohttp's default access log prints the request line, and the request line of a key or playlist
request carries `?token=...`: a bearer credential that must never reach log storage. Servers run
with `access_log_options()` so this logger replaces aiohttp's.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import re
import time as clock
from typing import Any
from urllib.parse import unquote_plus

from logging.handlers import QueueHandler, QueueListener

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

ACCESS_LOGGER = "series.access"
REDACTED = "REDACTED"
SECRET_QUERY_PARAMETERS = frozenset({"token", "access_token", "signature", "x-amz-signature"})
VIEWER_ID = web.RequestKey("viewer_id", str)      # set by handlers once a token names the viewer


def redacted_path(request: web.BaseRequest) -> str:
    """The path with the raw query, secret parameters' values replaced by REDACTED.

    A regular expression on the raw query rather than parse-and-re-encode: it runs on every request,
    and it keeps the rest of the query exactly as the client sent it.
    """
    query = request.query_string
    if not query:
        return request.path
    return f"{request.path}?{_SECRET_VALUE.sub(_redact, query)}"


_SECRET_VALUE = re.compile(r"(?:^|(?<=[&;]))([^&;=]*)=([^&;]*)")


def _redact(match: re.Match[str]) -> str:
    name = unquote_plus(match.group(1)).lower()
    return f"{match.group(1)}={REDACTED}" if name in SECRET_QUERY_PARAMETERS else match.group(0)


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request on the `series.access` logger, at INFO."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        entry: dict[str, Any] = {
            "time": clock.strftime("%Y-%m-%dT%H:%M:%SZ", clock.gmtime()),
            "method": request.method,
            "path": redacted_path(request),
            "status": response.status,
            "duration_ms": round(time * 1000, 3),
            "body_bytes": response.content_length,     # None when streamed without a length
            "bytes_sent": response.body_length,        # headers included, as aiohttp counts it
            "remote": request.remote,
        }
        viewer_id = request.get(VIEWER_ID) if isinstance(request, web.Request) else None
        if viewer_id is not None:
            entry["viewer_id"] = viewer_id
        self.logger.info("%s", json.dumps(entry, separators=(",", ":")))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def access_log_options() -> dict[str, Any]:
    """Keyword arguments for web.AppRunner (or pytest-aiohttp's server) that install this access log."""
    return {"access_log_class": JsonAccessLogger, "access_log": logging.getLogger(ACCESS_LOGGER)}


def configure_access_log(stream) -> None:
    """Entry points call this once: access lines go to `stream` as bare JSON, one per line.

    Lines pass through a queue to a writer thread, so a slow or blocked stream (a full pipe to the
    journal) never stalls the event loop; the queue is drained at exit.
    """
    logger = logging.getLogger(ACCESS_LOGGER)
    for previous in list(logger.handlers):     # idempotent: main() may run more than once per process
        logger.removeHandler(previous)
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    lines: queue.SimpleQueue = queue.SimpleQueue()
    listener = QueueListener(lines, writer)
    listener.start()
    atexit.register(listener.stop)
    logger.addHandler(QueueHandler(lines))
    logger.setLevel(logging.INFO)
    logger.propagate = False      # the root handler's prefix would break the JSON lines

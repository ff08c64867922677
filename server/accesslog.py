"""Structured access logs: one JSON line per request, with playback tokens redacted.

aiohttp's default access log prints the request line, and the request line of a key or playlist
request carries `?token=...`: a bearer credential that must never reach log storage. Servers run
with `access_log_options()` so this logger replaces aiohttp's.
"""

from __future__ import annotations

import json
import logging
import time as clock
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

ACCESS_LOGGER = "series.access"
REDACTED = "REDACTED"
SECRET_QUERY_PARAMETERS = frozenset({"token", "access_token", "signature", "x-amz-signature"})
VIEWER_ID = web.RequestKey("viewer_id", str)      # set by handlers once a token names the viewer


def redacted_path(request: web.BaseRequest) -> str:
    """The path with the query, secret parameters' values replaced by REDACTED."""
    query = request.query_string
    if not query:
        return request.path
    pairs = [(name, REDACTED if name.lower() in SECRET_QUERY_PARAMETERS else value)
             for name, value in parse_qsl(query, keep_blank_values=True)]
    return f"{request.path}?{urlencode(pairs, safe='/:')}"


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
    """Entry points call this once: access lines go to `stream` as bare JSON, one per line."""
    logger = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for previous in list(logger.handlers):     # idempotent: main() may run more than once per process
        logger.removeHandler(previous)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False      # the root handler's prefix would break the JSON lines

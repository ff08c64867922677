"""Prometheus metrics for one app: requests, key grants and denials, latency, job durations.

Each app owns its registry (no process-global state), so tests and several apps in one process
never see each other's counts. Other modules record through the `Metrics` object at app[METRICS].
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from server.auth import AuthRequired, Forbidden, bearer
from server.settings import Secret

# Key responses are sub-millisecond to tens of ms; playlists and segments can take longer (store reads).
REQUEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Jobs (validate, transcode, publish) run seconds to an hour.
JOB_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
UNMATCHED_ROUTE = "unmatched"     # one label for every 404 path, so scanners cannot explode the label set


class Metrics:
    """The service's metrics in its own registry. Thread-safe (prometheus_client locks per metric)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("series_http_requests", "HTTP requests answered, by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("series_http_request_duration_seconds",
                                 "Time from request to handler return, by route",
                                 ["route"], buckets=REQUEST_BUCKETS_S, registry=self.registry)
        self.key_requests = Counter("series_key_requests",
                                    "Key requests by outcome: granted, or the denial's error code",
                                    ["outcome"], registry=self.registry)
        self.key_path = Counter("series_key_grants_by_path",
                                "Granted keys answered from memory vs. through the database",
                                ["path"], registry=self.registry)
        self.job_duration = Histogram("series_job_duration_seconds", "Background job durations by kind and outcome",
                                      ["kind", "outcome"], buckets=JOB_BUCKETS_S, registry=self.registry)
        self._request_children: dict[tuple[str, str, int], tuple] = {}
        self._granted = self.key_requests.labels("granted")            # the hot path's children, looked up once
        self._granted_from_memory = self.key_path.labels("memory")

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Count and time one answered request. Runs on every request: label lookups are memoized."""
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(route))
            self._request_children[(method, route, status)] = children   # bounded: routes x methods x statuses
        children[0].inc()
        children[1].observe(duration_s)

    def key_granted(self, path: str) -> None:
        """A key left the server; `path` is "memory" or "database"."""
        self._granted.inc()
        (self._granted_from_memory if path == "memory" else self.key_path.labels(path)).inc()

    def key_denied(self, code: str) -> None:
        """A key request was refused; `code` is the error's stable code (not_entitled, rate_limited, ...)."""
        self.key_requests.labels(code).inc()

    def observe_job(self, kind: str, duration_s: float, outcome: str = "succeeded") -> None:
        """Record one finished job: `kind` like "ingest", `outcome` like "succeeded" or "failed"."""
        self.job_duration.labels(kind, outcome).observe(duration_s)

    @contextmanager
    def time_job(self, kind: str) -> Iterator[None]:
        """Time the block as one job of `kind`; an exception records outcome "failed" and propagates."""
        started = time.perf_counter()
        outcome = "failed"
        try:
            yield
            outcome = "succeeded"
        finally:
            self.observe_job(kind, time.perf_counter() - started, outcome)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


def route_of(request: web.Request) -> str:
    """The route pattern ("/v1/keys/{key_id}"), never the raw path: ids must not become labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Counts and times every request. Outermost, so it sees the status the client will see."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in KNOWN_METHODS else "OTHER"   # any token is a method
        request.app[METRICS].observe_request(method, route_of(request), status,
                                             time.perf_counter() - started)


class MetricsTokenRequired(AuthRequired):
    code = "metrics_token_required"


class MetricsLoopbackOnly(Forbidden):
    code = "metrics_loopback_only"


# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its peer address.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_loopback_request(request: web.Request) -> bool:
    """Whether the peer is this machine and no proxy in front forwarded the request for someone else."""
    try:
        is_loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        is_loopback = False         # a unix socket or an unknown peer: not provably local
    return is_loopback and not any(name in request.headers for name in _FORWARDING_HEADERS)


def metrics_endpoint(token: Secret | None):
    """The /metrics handler: Bearer `token` when configured (SERIES_METRICS_TOKEN), else loopback scrapers only."""

    async def handler(request: web.Request) -> web.Response:
        if token is not None:
            given = bearer(request) or ""
            if not hmac.compare_digest(given.encode(), token.reveal().encode()):
                raise MetricsTokenRequired("send 'Authorization: Bearer <SERIES_METRICS_TOKEN>'")
        elif not is_loopback_request(request):
            # route and status counts still tell an outsider about traffic and errors
            raise MetricsLoopbackOnly("/metrics answers loopback clients only; set SERIES_METRICS_TOKEN "
                                      "to let a remote scraper in")
        response = web.Response(body=request.app[METRICS].exposition(), headers={"Cache-Control": "no-store"})
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return handler


def add_routes(app: web.Application, *, token: Secret | None = None) -> None:
    """Give `app` its Metrics and the /metrics endpoint (see metrics_endpoint for who may read it)."""
    app[METRICS] = Metrics()
    app.router.add_get("/metrics", metrics_endpoint(token))

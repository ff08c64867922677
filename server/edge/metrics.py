"""Prometheus metrics for one app: requests, key grants and denials, latency, job durations.

Each app owns its registry (no process-global state), so tests and several apps in one process
never see each other's counts. Other modules record through the `Metrics` object at app[METRICS].
"""

from __future__ import annotations

import ipaddress
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.utils import floatToGoString

from server.config import Secret
from server.edge.auth import AuthRequired, Forbidden, bearer_matches, checked_credentials

# Key responses are sub-millisecond to tens of ms; playlists and segments can take longer (store reads).
REQUEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Jobs (validate, transcode, publish) run seconds to an hour.
JOB_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
UNMATCHED_ROUTE = "unmatched"     # one label for every 404 path, so scanners cannot explode the label set


class RequestTally:
    """Request counts, latency histograms and key outcomes as plain integers, exported at scrape time.

    prometheus_client's Counter and Histogram take a lock per update and run ~40 lines of Python per
    observation; on the key path that was a tenth of the request. Every update here comes from the
    event loop (middleware and key handler), one thread, so a dict increment suffices. A prometheus
    Collector: registered in the app's registry, it yields the same families Counter/Histogram would.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._bounds = buckets
        self.requests: dict[tuple[str, str, int], int] = {}      # (method, route, status) -> count
        self.latency: dict[str, list] = {}                       # route -> [per-bucket counts (+Inf last), sum]
        self.key_outcomes: dict[str, int] = {}                   # "granted" or the denial's code -> count
        self.key_paths: dict[str, int] = {}                      # "memory" | "database" -> grants

    def observe(self, method: str, route: str, status: int, duration_s: float) -> None:
        key = (method, route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1                # bounded: methods x routes x statuses
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = [[0] * (len(self._bounds) + 1), 0.0]
        histogram[0][bisect_left(self._bounds, duration_s)] += 1   # first bound >= value: Prometheus' "le"
        histogram[1] += duration_s

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("series_http_requests", "HTTP requests answered, by route and status",
                                       labels=["method", "route", "status"])
        for (method, route, status), count in list(self.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily("series_http_request_duration_seconds",
                                        "Time from request to handler return, by route", labels=["route"])
        for route, (counts, total_s) in list(self.latency.items()):
            cumulative = list(accumulate(counts))
            buckets = [(floatToGoString(bound), n) for bound, n in zip(self._bounds, cumulative)]
            latency.add_metric([route], [*buckets, ("+Inf", cumulative[-1])], total_s)
        yield latency
        outcomes = CounterMetricFamily("series_key_requests",
                                       "Key requests by outcome: granted, or the denial's error code",
                                       labels=["outcome"])
        for outcome, count in list(self.key_outcomes.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        paths = CounterMetricFamily("series_key_grants_by_path",
                                    "Granted keys answered from memory vs. through the database", labels=["path"])
        for path, count in list(self.key_paths.items()):
            paths.add_metric([path], count)
        yield paths


class Metrics:
    """The service's metrics in its own registry. Requests and key outcomes are recorded on the event
    loop only (RequestTally); job durations from any thread (prometheus_client locks those)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tally = RequestTally(REQUEST_BUCKETS_S)
        self.registry.register(self.tally)
        self.job_duration = Histogram("series_job_duration_seconds", "Background job durations by kind and outcome",
                                      ["kind", "outcome"], buckets=JOB_BUCKETS_S, registry=self.registry)
        self.jobs_waiting = Gauge("series_jobs", "Ingest jobs not finished, by state (queued: the queue's depth), "
                                  "as last counted in the shared database", ["state"], registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Count and time one answered request (event loop only)."""
        self.tally.observe(method, route, status, duration_s)

    def key_granted(self, path: str) -> None:
        """A key left the server; `path` is "memory" or "database" (event loop only)."""
        outcomes, paths = self.tally.key_outcomes, self.tally.key_paths
        outcomes["granted"] = outcomes.get("granted", 0) + 1
        paths[path] = paths.get(path, 0) + 1

    def key_denied(self, code: str) -> None:
        """A key request was refused; `code` is the error's stable code (not_entitled, rate_limited, ...)."""
        outcomes = self.tally.key_outcomes
        outcomes[code] = outcomes.get(code, 0) + 1

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

    def set_job_counts(self, counts: dict[str, int], states: tuple[str, ...]) -> None:
        """The unfinished jobs by state (every state in `states` reported, 0 when absent)."""
        for state in states:
            self.jobs_waiting.labels(state).set(counts.get(state, 0))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


def route_of(request: web.Request) -> str:
    """The route pattern ("/v1/keys/{key_id}"), never the raw path: ids must not become labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


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
            def check() -> None:
                if not bearer_matches(request, token.reveal()):
                    raise MetricsTokenRequired("send 'Authorization: Bearer <SERIES_METRICS_TOKEN>'")
            checked_credentials(request, check)
        elif not is_loopback_request(request):
            # route and status counts still tell an outsider about traffic and errors
            raise MetricsLoopbackOnly("/metrics answers loopback clients only; set SERIES_METRICS_TOKEN "
                                      "to let a remote scraper in")
        response = web.Response(body=request.app[METRICS].exposition(), headers={"Cache-Control": "no-store"})
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return handler


def add_routes(app: web.Application, metrics: Metrics, *, token: Secret | None = None) -> None:
    """Give `app` its Metrics (the ones server/edge/middleware.py records into) and the /metrics endpoint
    (see metrics_endpoint for who may read it)."""
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_endpoint(token))

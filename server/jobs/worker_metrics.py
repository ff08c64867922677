"""A `series worker`'s own /metrics (`--metrics-port`), on loopback: what only the worker knows.

    series_worker_jobs_total{outcome}        jobs this worker ran to an end (published, failed)
    series_worker_job_duration_seconds       from a job's creation to its end, for jobs ending here
    series_worker_stalled_reruns_total       jobs of silent workers this worker's sweep sent to run again
    series_worker_running_jobs               transcode children running now

The queue's depth is the service's series_jobs{state} gauge (from the shared database).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from server.jobs.engines.runner import JobMetrics


class WorkerCollector:
    """Reads the engine's counters at scrape time (no state of its own)."""

    def __init__(self, metrics: JobMetrics, stalled_reruns, running) -> None:
        self._metrics, self._stalled_reruns, self._running = metrics, stalled_reruns, running

    def collect(self) -> Iterator[Metric]:
        finished = CounterMetricFamily("series_worker_jobs", "Jobs this worker ran to an end, by final state",
                                       labels=["outcome"])
        for outcome, count in list(self._metrics.finished.items()):
            finished.add_metric([outcome], count)
        yield finished
        yield CounterMetricFamily("series_worker_job_duration_seconds",
                                  "Summed time from creation to end of the jobs that ended here",
                                  value=self._metrics.duration_s_total)
        yield CounterMetricFamily("series_worker_stalled_reruns",
                                  "Jobs of silent workers that this worker's sweep sent to run again",
                                  value=self._stalled_reruns())
        yield GaugeMetricFamily("series_worker_running_jobs", "Transcode children running now",
                                value=self._running())


def serve_worker_metrics(port: int, collector: WorkerCollector) -> None:
    """Serve `collector` on 127.0.0.1:`port` (a thread of prometheus_client's); a scraper on the host reads it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    start_http_server(port, addr="127.0.0.1", registry=registry)

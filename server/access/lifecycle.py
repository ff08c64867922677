"""The app's Access: made once its Services are open, followed by /metrics, closed before the Services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from server.access.gate import Access
from server.config import Settings
from server.edge.auth import REVOCATION_CHECK
from server.edge.metrics import METRICS
from server.services import SERVICES

ACCESS = web.AppKey("access", Access)


def install(app: web.Application, settings: Settings) -> None:
    """Give `app` its Access at app[ACCESS]. Call after the cleanup_ctx that opens app[SERVICES] and
    after metrics.add_routes(app) (its counts join the app's metrics)."""

    async def access_ctx(app: web.Application) -> AsyncIterator[None]:
        access = Access(app[SERVICES], settings.access)
        await access.start()
        app[ACCESS] = access
        app[REVOCATION_CHECK] = access.check_not_revoked
        app[METRICS].registry.register(_AccessCollector(access))
        try:
            yield
        finally:
            await access.close()

    app.cleanup_ctx.append(access_ctx)


class _AccessCollector:
    """series_access_database_queries_total{what}, series_access_remembered{kind} and
    series_access_feed_age_seconds, read from the Access at scrape time."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        queries = CounterMetricFamily(
            "series_access_database_queries", "Database reads of the key path: entitlement and episode lookups, "
            "content keys not in memory, change-feed polls", labels=["what"])
        for what, count in sorted(self._access.database_queries.items()):
            queries.add_metric([what], count)
        yield queries
        remembered = GaugeMetricFamily("series_access_remembered", "Answers held in memory, by kind", labels=["kind"])
        for kind, count in self._access.remembered().items():
            remembered.add_metric([kind], count)
        yield remembered
        yield GaugeMetricFamily("series_access_feed_age_seconds", "Seconds since the last successful change-feed "
                                "poll started (past 5, memory is not trusted)", value=self._access.feed_age_s())

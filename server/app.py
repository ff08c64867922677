"""create_app(): the service, composed from its rooms — the edge every request passes, who may watch what
(access), then the key server, playback, the catalog API and payment webhook, the ingest hand-off with its
jobs and resumable uploads, the API reference and the viewer web app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from server import access
from server.catalog import routes as catalog
from server.config import Settings
from server.edge import health, metrics
from server.edge.accesslog import access_log_options
from server.edge.auth import AUTH_FAILURES
from server.edge.middleware import EDGE_HEADERS, edge_middleware
from server.edge.ratelimit import AuthFailureLimiter
from server.edge.security import EdgeHeaders
from server.ingest import api as ingest_api
from server.ingest import deliveries_api, uploads_api
from server.keys import endpoint as key_endpoint
from server.keys import token_api
from server.playback import pictures as playback_pictures
from server.playback import routes as playback
from server.reference import page as reference
from server.services import SERVICES, Services
from server.web import routes as web_app


def create_app(settings: Settings, services: Services | None = None, *, run_jobs: bool = True) -> web.Application:
    """The service. Without `services`, it opens its own from settings and closes them on cleanup. With
    `run_jobs` False it accepts ingest jobs but leaves running them to another process sharing the database."""
    app_metrics, edge_headers = metrics.Metrics(), EdgeHeaders(settings.http)
    app = web.Application(middlewares=[edge_middleware(app_metrics, edge_headers)],
                          client_max_size=settings.http.max_request_bytes)
    app[EDGE_HEADERS] = edge_headers
    app[AUTH_FAILURES] = AuthFailureLimiter(settings.auth_failures, settings.http.trusted_proxies)
    app.cleanup_ctx.append(_services_ctx(settings, services))
    metrics.add_routes(app, app_metrics, token=settings.metrics_token)
    access.install(app, settings)          # who may watch what, for keys and playback
    health.add_routes(app, settings)
    playback.add_routes(app)
    playback_pictures.add_routes(app, settings)   # captions, storyboards, thumbnails, posters
    key_endpoint.add_routes(app, settings)
    token_api.add_routes(app)              # refresh, end, revoke
    catalog.add_routes(app, settings)
    ingest_api.add_routes(app, settings, run_jobs=run_jobs)
    deliveries_api.add_routes(app)                # completion-webhook deliveries, for the operator
    uploads_api.add_routes(app, settings)         # resumable (tus) uploads, on the ingest jobs
    reference.add_routes(app)
    web_app.add_routes(app, settings)
    return app


async def start_runner(app: web.Application) -> web.AppRunner:
    """Set up `app` the way the service runs it: the JSON access log (configure_access_log() says
    where it goes), and plain key GETs answered ahead of the router (keys.endpoint.answer_keys_first)."""
    runner = web.AppRunner(app, **access_log_options())
    await runner.setup()
    key_endpoint.answer_keys_first(runner)
    return runner


def _services_ctx(settings: Settings, given: Services | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        services = given or await asyncio.to_thread(Services.open, settings)
        app[SERVICES] = services
        yield
        if given is None:
            services.close()
    return ctx

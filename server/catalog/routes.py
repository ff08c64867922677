"""add_routes(): every route of the catalog room, with what they need (the progress-report limit, the
hourly pruning of idempotency keys)."""

from __future__ import annotations

from aiohttp import web

from server.catalog import api, episodes_api, operator_api, pictures_api, series_api, viewer_api
from server.catalog.idempotency import prune_keys
from server.catalog.payments import sales_api, webhook
from server.config import Settings

MODULES = (api, series_api, episodes_api, pictures_api, sales_api, viewer_api, operator_api, webhook)


def add_routes(app: web.Application, settings: Settings) -> None:
    """Add the catalog API to `app`; the app's Services must be at app[SERVICES]."""
    for module in MODULES:
        app.router.add_routes(module.routes)
    viewer_api.add_progress_limit(app, settings)
    app.cleanup_ctx.append(prune_keys)

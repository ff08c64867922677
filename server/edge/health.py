"""/healthz: is this instance able to serve? It checks the database and the object store, answering
503 when one is down so a load balancer takes the instance out of rotation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from packager.store import ObjectStore
from server.config import Settings
from server.services import SERVICES, Services

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0        # a health check that hangs is a failed check; load balancers time out too
PROBE_STORE = web.AppKey("health_probe_store", ObjectStore)


def _database_check(services: Services) -> None:
    services.db.query("SELECT 1 FROM schema_version")


def _store_check(store: ObjectStore) -> None:
    store.check()


async def _run_check(name: str, check, argument) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(check, argument), CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"; the reason goes to the log
        log.warning("health check %s failed: %s", name, exc or type(exc).__name__)
        return "down"
    return "ok"


def add_routes(app: web.Application, settings: Settings) -> None:
    """Add GET /healthz to `app`; the app's Services must be at app[SERVICES]."""

    async def probe_store_ctx(app: web.Application) -> AsyncIterator[None]:
        # Its own client without retries: the shared one backs off for seconds before giving up.
        store = ObjectStore(settings.store, retry_attempts=1)
        app[PROBE_STORE] = store
        yield
        store.close()

    async def healthz(request: web.Request) -> web.Response:
        database, store = await asyncio.gather(
            _run_check("database", _database_check, request.app[SERVICES]),
            _run_check("store", _store_check, request.app[PROBE_STORE]),
        )
        checks = {"database": database, "store": store}
        is_healthy = all(state == "ok" for state in checks.values())
        # Which dependency is down, never why: details (endpoints, paths) stay in the log.
        return web.json_response({"status": "ok" if is_healthy else "unavailable", "checks": checks},
                                 status=200 if is_healthy else 503, headers={"Cache-Control": "no-store"})

    app.cleanup_ctx.append(probe_store_ctx)
    app.router.add_get("/healthz", healthz)

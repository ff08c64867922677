"""`Idempotency-Key` on every write of the catalog API (IETF httpapi draft semantics, kept in the
database by drm/payments/idempotency.py so every instance answers a retry alike).

    @routes.patch(...)
    @idempotent
    async def handler(request): ...

Optional on every write: without the header a write runs as it always did. With it, the same client
(the operator, or a creator or viewer by account) sending the same key with the same request (method,
path, query and body bytes) gets the first successful answer again, marked `Idempotent-Replayed:
true`; with a different request 422 `idempotency_key_reused`; while the first is still running 409
`idempotency_key_in_flight`. A refused or failed write changed nothing, so its key is released and a
retry with it runs again. Keys are kept SERIES_IDEMPOTENCY_TTL_S (a day), pruned hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from drm.errors import DrmError
from drm.payments.idempotency import StoredResponse, response_headers
from server.catalog.callers import ANONYMOUS, identify
from server.edge.auth import AuthRequired, Forbidden
from server.edge.bodies import read_bytes
from server.services import SERVICES

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PRUNE_EVERY_S = 3600.0
_KEY = re.compile(r"[\x21-\x7e]{1,255}")     # printable ASCII without spaces, as the ingest API takes
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadIdempotencyKey(Exception):
    code = "invalid_idempotency_key"
    http_status = 400


def idempotent(handler: Handler) -> Handler:
    """Wrap a write handler with Idempotency-Key handling (see the module docstring)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request)
        if not _KEY.fullmatch(key):
            raise BadIdempotencyKey(f"{HEADER} must be 1 to 255 printable ASCII characters without spaces")
        services = request.app[SERVICES]
        try:
            caller = identify(request, services)
        except (DrmError, Forbidden, AuthRequired):
            caller = None                        # a playback token (progress reports) or bad credentials
        if caller is None or caller.role == ANONYMOUS:
            return await handler(request)        # the handler judges: no account to keep a key for
        body = await read_bytes(request)          # kept on the request: the handler reads the same bytes
        fingerprint = hashlib.sha256(b"\n".join((request.method.encode(), request.raw_path.encode(), body))).hexdigest()
        stored = await asyncio.to_thread(services.idempotency.begin, caller.scope, key, fingerprint)
        if stored is not None:
            return web.Response(status=stored.status, body=stored.body,
                                headers={**stored.headers, REPLAYED_HEADER: "true"})
        try:
            response = await handler(request)
        except BaseException:
            await _release(services, caller.scope, key)
            raise
        if 200 <= response.status < 300 and isinstance(response, web.Response):
            kept = StoredResponse(response.status, response_headers(response.headers), response.body or b"")
            await asyncio.to_thread(services.idempotency.finish, caller.scope, key, kept)
        else:
            await _release(services, caller.scope, key)
        return response

    wrapper.is_idempotent = True          # for the OpenAPI test: every write takes the header
    return wrapper


async def _release(services, scope: str, key: str) -> None:
    try:
        await asyncio.shield(asyncio.to_thread(services.idempotency.release, scope, key))
    except Exception:  # noqa: BLE001 - the key's lock lapses on its own; the answer matters more
        log.warning("could not release Idempotency-Key of %s; it frees itself within a minute", scope, exc_info=True)


async def prune_keys(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: forget keys past their retention, hourly, off the event loop."""
    async def prune_forever() -> None:
        while True:
            try:
                pruned = await asyncio.to_thread(app[SERVICES].idempotency.prune)
                if pruned:
                    log.info("forgot %d idempotency keys past their retention", pruned)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("idempotency key pruning failed", exc_info=True)
            await asyncio.sleep(PRUNE_EVERY_S)

    task = asyncio.create_task(prune_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""GET /v1/keys/{key_id} at the edge: rate limits, an answer from memory when memory suffices, metrics.

release_key() (server/keys.py) stays the one place that decides; it runs in one of the key path's
own threads because it may read SQLite. Most grants need no database at all, though: the token check
is CPU only (and remembered), content keys never change once created (KeyStore keeps them unwrapped),
and which viewers bought which series, and which episodes are free previews, are held here as a
snapshot refreshed every second. So while the snapshot is fresh a request is answered on the event
loop, granted or refused by the same two rules release_key() applies; anything else (a key not yet
cached, a stale snapshot) goes to release_key(). A new rule in release_key() must be mirrored in
EntitlementSnapshot.decide().
A revocation made through this process is enforced on the next request (any write of ours makes the
snapshot untrusted until reloaded); one made by another process, within about ENTITLEMENT_REFRESH_S.

The service answers plain key GETs ahead of aiohttp's router and middleware chain
(answer_keys_first): on a request that costs ~150 µs of CPU in all, routing and the middleware
chain (three awaited layers) took ~13 % of its instructions. The route stays registered, and both
ways give the same answer: the handler does the edge's work (headers, problem answers) itself, and
the fast path adds the one thing the edge would (the request metric).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter

from aiohttp import hdrs, web
from multidict import CIMultiDict

from drm.errors import NotEntitled, TokenInvalid, WrongSeries
from drm.tokens import PlaybackToken, TokenSigner
from server.accesslog import VIEWER_ID
from server.edge import EDGE_HEADERS
from server.keys import release_key
from server.metrics import METRICS
from server.problems import problem_for
from server.ratelimit import KeyRequestLimits
from server.security import client_address
from server.services import Services
from server.settings import Settings

log = logging.getLogger(__name__)

ENTITLEMENT_REFRESH_S = 1.0      # how stale the in-memory entitlements may be (revocation latency)
SNAPSHOT_STALE_S = 10.0          # older than this (the refresh is failing): stop trusting it
KEY_ROUTE = "/v1/keys/{key_id}"
KEY_LOOKUP_THREADS = 2
KEY_RESPONSE_HEADERS = CIMultiDict({hdrs.CONTENT_TYPE: "application/octet-stream", hdrs.CACHE_CONTROL: "no-store"})


class EntitlementSnapshot:
    """Every active (viewer, series) pair, reloaded when the database reports a committed change.

    Memory grows with active entitlements (~150 bytes each): fine to a few hundred thousand; past
    that, a per-viewer cache is the better trade.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (active pairs, free-preview episodes, when checked, this process's own change count when loaded)
        self._state: tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], float, int] = (
            frozenset(), frozenset(), -math.inf, -1)
        self._marker: tuple[int, int] | None = None
        self._refreshing = threading.Lock()       # one refresh at a time keeps marker and pairs matched

    def refresh(self, services: Services) -> None:
        """Reload if anything was committed since the last load (blocking: call it in a thread)."""
        with self._refreshing:
            marker = services.db.change_marker()     # read first: a write racing the load forces the next one
            if marker != self._marker:
                pairs = services.entitlements.active_pairs()
                previews = services.catalog.free_preview_episodes()
                self._marker = marker
                self._state = (pairs, previews, self._clock(), marker[1])
                log.debug("entitlement snapshot reloaded: %d active, %d previews", len(pairs), len(previews))
            else:
                self._state = (self._state[0], self._state[1], self._clock(), marker[1])

    def decide(self, viewer_id: str, series_id: str, episode_id: str | None, own_changes: int) -> bool | None:
        """release_key()'s verdict from memory: True (entitled, or a free-preview episode), False
        (neither), or None when the snapshot cannot be trusted: False means "not entitled", None
        means "ask the database".

        `own_changes` is the database's current own_changes: if this process wrote since the load (a
        refund through this instance's API, say), the snapshot is not trusted until reloaded, so a
        change made here is enforced on the very next request.
        """
        pairs, previews, checked_at, loaded_changes = self._state
        if own_changes != loaded_changes or self._clock() - checked_at >= SNAPSHOT_STALE_S:
            return None
        return (viewer_id, series_id) in pairs or (series_id, episode_id) in previews


class VerifiedTokens:
    """TokenSigner.verify that remembers tokens it verified until they expire: a player sends the same
    token for every key of a session, and PyJWT's verify (~50-90 µs) is the largest cost left on the
    key path.

    A token string that verified once stays valid until its exp (its signature cannot change, and the
    signing keys are fixed for the process), so a remembered token has only its expiry re-checked.
    Refused tokens are remembered as well, in a separate bounded LRU, so garbage cannot evict good
    tokens. Thread-safe: the event loop and release_key() in a worker thread share it.
    """

    def __init__(self, signer: TokenSigner, *, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._signer = signer
        self._max_entries = max_entries
        self._clock = clock
        self._tokens: OrderedDict[str, PlaybackToken] = OrderedDict()
        # Refusals too: a stuck player or a scraper replays the same bad token, and PyJWT checks a
        # refused token character by character (~100 µs). Kept as (error type, message) only.
        self._refused: OrderedDict[str, tuple[type[TokenInvalid], str]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str | None) -> PlaybackToken:
        """Same contract as TokenSigner.verify: the grant, or TokenInvalid / TokenExpired."""
        if not token:
            return self._signer.verify(token)
        with self._lock:
            found = self._tokens.get(token)
            if found is not None and self._clock() < found.expires_at:
                self._tokens.move_to_end(token)
                return found
            refused = self._refused.get(token)
        if refused is not None:
            error_type, message = refused
            raise error_type(message)        # a fresh exception: a shared one would grow its traceback
        try:
            grant = self._signer.verify(token)
        except TokenInvalid as exc:          # TokenExpired included: an expired token stays expired
            self._remember(self._refused, token, (type(exc), str(exc)))
            raise
        self._remember(self._tokens, token, grant)
        return grant

    def _remember(self, entries: OrderedDict, token: str, value) -> None:
        with self._lock:
            entries[token] = value
            if len(entries) > self._max_entries:
                entries.popitem(last=False)


class KeyEdge:
    def __init__(self, settings: Settings) -> None:
        self.limits = KeyRequestLimits(settings.rate_limits)
        self.snapshot = EntitlementSnapshot()
        self._trusted_proxies = settings.http.trusted_proxies
        self._services: Services | None = None          # set by bind() once the app's Services are open
        self._tokens: VerifiedTokens | None = None
        self._release_services: Services | None = None
        # Its own threads: segment and playlist reads share the default pool and can wait on the
        # store for seconds; key lookups must not queue behind them. Two suffice: SQLite access is
        # serialized by the Database lock anyway.
        self.lookups = ThreadPoolExecutor(max_workers=KEY_LOOKUP_THREADS, thread_name_prefix="key-lookup")

    def bind(self, services: Services) -> None:
        """Serve from `services` (called once they are open). release_key() gets the same remembered
        tokens, so a denial does not pay PyJWT twice."""
        self._services = services
        self._tokens = VerifiedTokens(services.tokens)
        self._release_services = dataclasses.replace(services, tokens=self._tokens)

    def from_memory(self, request: web.Request, token: str | None, key_id: str) -> bytes | None:
        """The key, when memory can decide; None when release_key() must (see from_database). Raises what
        release_key raises, or RateLimited. Synchronous: most key requests end here, without an await."""
        self.limits.by_address.take(client_address(request, self._trusted_proxies))
        viewer = self._tokens.verify(token)   # CPU only, and mostly a dict lookup
        request[VIEWER_ID] = viewer.viewer_id
        self.limits.by_viewer.take(viewer.viewer_id)
        services = self._services
        key = services.keystore.cached(key_id)
        if key is None:
            return None
        verdict = self.snapshot.decide(viewer.viewer_id, key.series_id, key.episode_id, services.db.own_changes)
        if verdict is None:
            return None
        # the same order and errors as release_key(): series first, then entitlement or preview
        if key.series_id != viewer.series_id:
            raise WrongSeries(viewer.series_id, key.series_id)
        if not verdict:
            raise NotEntitled(viewer.viewer_id, key.series_id)
        return key.key

    async def from_database(self, token: str | None, key_id: str) -> bytes:
        """release_key() in one of the key path's own threads (it may read SQLite); the limits were taken."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.lookups, release_key, self._release_services, token, key_id)


KEY_EDGE = web.AppKey("key_edge", KeyEdge)
KeyAnswer = Callable[[web.Request, str], Awaitable[web.Response]]
KEY_ANSWER = web.AppKey[KeyAnswer]("key_answer")     # (request, key_id) -> the complete answer, metric taken
# A key GET the router would send to KEY_ROUTE with this very id: an id of URL-safe characters (so
# the raw path is the decoded one), then the query or nothing. Anything else takes the router's way.
_PLAIN_KEY_TARGET = re.compile(r"/v1/keys/([A-Za-z0-9_-]+)(?:\?|\Z)")


async def _refresh_forever(snapshot: EntitlementSnapshot, services: Services) -> None:
    while True:
        try:
            await asyncio.to_thread(snapshot.refresh, services)
        except Exception as exc:  # noqa: BLE001 - a failed refresh only sends requests to the database
            log.warning("entitlement snapshot refresh failed: %s", exc)
        await asyncio.sleep(ENTITLEMENT_REFRESH_S)


def add_routes(app: web.Application, settings: Settings, *, services_key: web.AppKey,
               token_of: Callable[[web.Request], str | None]) -> None:
    """Add the key endpoint to `app`. Call after metrics.add_routes(app), after app[EDGE_HEADERS] is set,
    and after the cleanup_ctx that puts Services at services_key."""
    app[KEY_EDGE] = KeyEdge(settings)

    async def snapshot_refresher(app: web.Application) -> AsyncIterator[None]:
        app[KEY_EDGE].bind(app[services_key])
        task = asyncio.create_task(_refresh_forever(app[KEY_EDGE].snapshot, app[services_key]))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        app[KEY_EDGE].lookups.shutdown(wait=True)

    edge, metrics = app[KEY_EDGE], app[METRICS]     # looked up once, not on every request
    edge_headers = app[EDGE_HEADERS]
    grant_headers = edge_headers.with_base(KEY_RESPONSE_HEADERS)     # complete: the edge leaves them
    observe = metrics.tally.observe

    async def answer(request: web.Request, key_id: str) -> web.Response:
        """The complete answer, edge headers included, so both ways in give the same one."""
        origin, token = request.headers.get(hdrs.ORIGIN), token_of(request)
        try:
            body, path = edge.from_memory(request, token, key_id), "memory"
            if body is None:
                body, path = await edge.from_database(token, key_id), "database"
        except Exception as exc:  # noqa: BLE001 - answered here: no unwinding through the edge
            metrics.key_denied(getattr(exc, "code", "error"))
            denied = problem_for(exc, request)
            denied.headers.extend(edge_headers.for_origin(origin))
            return denied
        metrics.key_granted(path)
        return web.Response(body=body, headers=grant_headers(origin))    # copied by Response

    async def get_key(request: web.Request) -> web.Response:      # through the router and the edge
        return await answer(request, request.match_info["key_id"])

    async def answer_directly(request: web.Request, key_id: str) -> web.Response:
        """answer() plus the request metric the edge middleware would have taken."""
        started = perf_counter()
        status = 500            # cancelled (the client left) counts as the 500 it would have been
        try:
            response = await answer(request, key_id)
            status = response.status
            return response
        finally:
            observe(hdrs.METH_GET, KEY_ROUTE, status, perf_counter() - started)

    app[KEY_ANSWER] = answer_directly

    app.cleanup_ctx.append(snapshot_refresher)
    app.router.add_get(KEY_ROUTE, get_key)


def answer_keys_first(runner: web.AppRunner) -> None:
    """Have `runner`'s server answer plain key GETs itself, ahead of the app's router and middleware.

    Call after runner.setup(), best before its sites start: a connection takes the handler when it
    opens. Every other request (HEAD, an OPTIONS preflight, an Expect header, an id the router would
    decode) goes to the app as before.

    A key GET answered here has no match_info (nor request.app): the key path reads neither. And it
    passes no middleware and no on_response_prepare hook, which is why this refuses an app with any
    but the edge middleware, whose work the key handler and answer_directly() do themselves.
    """
    server, app = runner.server, runner.app
    if server is None:
        raise RuntimeError("answer_keys_first() needs a runner that is set up")
    if len(app.middlewares) != 1 or len(app.on_response_prepare):
        raise RuntimeError("answer_keys_first() answers key GETs as the edge middleware alone would: "
                           "an app with other middleware or response hooks would skip them")
    answer_directly = app[KEY_ANSWER]
    handle_in_app = server.request_handler
    match_target = _PLAIN_KEY_TARGET.match

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == hdrs.METH_GET:
            target = match_target(request.raw_path)
            if target is not None and hdrs.EXPECT not in request.headers:
                return await answer_directly(request, target.group(1))
        return await handle_in_app(request)

    server.request_handler = handle

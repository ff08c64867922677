"""GET /v1/keys/{key_id} at the edge: rate limits, an answer from memory when memory suffices, metrics.

Most grants need no database and no await: the token check is CPU only (and remembered, tokens.py),
content keys never change once created (KeyStore keeps them unwrapped), and who may watch what is
remembered per viewer and per episode by the access room (server/access/), which the change feed keeps
true. So a request whose key and answer are in memory is decided on the event loop by the same rule
(server/access/rule.py) the database path applies; anything else (a key not yet in memory, an answer
memory does not hold or no longer trusts) goes to release_key() (release.py), which reads what is
missing in the access room's own threads. A revocation anywhere is enforced within the change feed's
bound (milliseconds on PostgreSQL, about a second on SQLite, at once through this process).

The service answers plain key GETs ahead of aiohttp's router and middleware chain
(answer_keys_first): on a request that costs ~150 µs of CPU in all, routing and the middleware
chain (three awaited layers) took ~13 % of its instructions. The route stays registered, and both
ways give the same answer: the handler does the edge's work (headers, problem answers) itself, and
the fast path adds the one thing the edge would (the request metric).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter

from aiohttp import hdrs, web
from multidict import CIMultiDict

from drm.access.tokens import PlaybackToken
from drm.errors import WrongSeries
from server.access import ACCESS, Access, Verdict
from server.access.rule import refusal
from server.config import Settings
from server.edge.accesslog import VIEWER_ID
from server.edge.auth import token_of
from server.edge.metrics import METRICS
from server.edge.middleware import EDGE_HEADERS
from server.edge.problems import problem_for
from server.edge.ratelimit import KeyRequestLimits
from server.edge.security import client_address
from server.keys.release import release_key
from server.keys.tokens import VerifiedTokens
from server.services import SERVICES, Services

log = logging.getLogger(__name__)

KEY_ROUTE = "/v1/keys/{key_id}"
KEY_RESPONSE_HEADERS = CIMultiDict({hdrs.CONTENT_TYPE: "application/octet-stream", hdrs.CACHE_CONTROL: "no-store"})


class KeyEdge:
    def __init__(self, settings: Settings) -> None:
        self.limits = KeyRequestLimits(settings.rate_limits)
        self._trusted_proxies = settings.http.trusted_proxies
        self._services: Services | None = None          # set by bind() once the app's Services are open
        self._access: Access | None = None
        self._tokens: VerifiedTokens | None = None

    def bind(self, services: Services, access: Access) -> None:
        """Serve from `services` and `access` (called once they are open)."""
        self._services, self._access = services, access
        self._tokens = VerifiedTokens(services.tokens, max_entries=services.settings.access.token_entries)

    def from_memory(self, request: web.Request, token: str | None, key_id: str) -> bytes | PlaybackToken:
        """The key, when memory can decide; else the verified viewer, for from_database(). Raises what
        release_key raises, or RateLimited. Synchronous: most key requests end here, without an await."""
        self.limits.by_address.take(client_address(request, self._trusted_proxies))
        viewer = self._tokens.verify(token)   # CPU only, and mostly a dict lookup
        request[VIEWER_ID] = viewer.viewer_id
        self.limits.by_viewer.take(viewer.viewer_id)
        self._access.check_not_revoked(viewer.viewer_id, viewer.issued_at, "playback token")
        key = self._services.keystore.cached(key_id)
        if key is None:
            return viewer
        # the same order and errors as release_key(): series first, then the access rule
        if key.series_id != viewer.series_id:
            raise WrongSeries(viewer.series_id, key.series_id)
        verdict = self._access.decide_from_memory(viewer.viewer_id, key.series_id, key.episode_id)
        if verdict is None:
            return viewer
        if verdict is not Verdict.GRANTED:
            raise refusal(verdict, viewer.viewer_id, key.series_id, key.episode_id)
        if not self._access.sessions.is_admitted(viewer.viewer_id, viewer.session_id):
            return viewer       # a new session, or one last written a while ago: counted in the database
        return key.key

    async def from_database(self, viewer: PlaybackToken, key_id: str) -> bytes:
        """release_key(): what memory could not decide, read in the access room's threads; limits were taken."""
        return await release_key(self._access, self._services.keystore, viewer, key_id)


KEY_EDGE = web.AppKey("key_edge", KeyEdge)
KeyAnswer = Callable[[web.Request, str], Awaitable[web.Response]]
KEY_ANSWER = web.AppKey[KeyAnswer]("key_answer")     # (request, key_id) -> the complete answer, metric taken
# A key GET the router would send to KEY_ROUTE with this very id: an id of URL-safe characters (so
# the raw path is the decoded one), then the query or nothing. Anything else takes the router's way.
_PLAIN_KEY_TARGET = re.compile(r"/v1/keys/([A-Za-z0-9_-]+)(?:\?|\Z)")


def add_routes(app: web.Application, settings: Settings) -> None:
    """Add the key endpoint to `app`. Call after metrics.add_routes(app), after app[EDGE_HEADERS] is set,
    and after the cleanup_ctxs that put Services at app[SERVICES] and Access at app[ACCESS]."""
    app[KEY_EDGE] = KeyEdge(settings)

    async def bind_key_edge(app: web.Application) -> AsyncIterator[None]:
        app[KEY_EDGE].bind(app[SERVICES], app[ACCESS])
        yield

    edge, metrics = app[KEY_EDGE], app[METRICS]     # looked up once, not on every request
    edge_headers = app[EDGE_HEADERS]
    grant_headers = edge_headers.with_base(KEY_RESPONSE_HEADERS)     # complete: the edge leaves them
    observe = metrics.tally.observe

    async def answer(request: web.Request, key_id: str) -> web.Response:
        """The complete answer, edge headers included, so both ways in give the same one."""
        origin, token = request.headers.get(hdrs.ORIGIN), token_of(request)
        try:
            body, path = edge.from_memory(request, token, key_id), "memory"
            if type(body) is not bytes:
                body, path = await edge.from_database(body, key_id), "database"
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

    app.cleanup_ctx.append(bind_key_edge)
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

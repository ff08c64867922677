"""The one middleware every request passes: metrics, CORS, problem answers and security headers.

One layer instead of four (three middlewares and an on_response_prepare hook): each layer is an
awaited call on every request, and on the key path, where the whole request costs about 100 µs,
the layers cost as much as the key lookup itself.

Responses that are streamed (server/playback/segments.py) send their headers before this middleware sees
them again: server/playback/segments.py takes the edge's headers from app[EDGE_HEADERS] before prepare().
A handler may also put them on its response itself (the key endpoint's are built once): a response
that already carries the Server header is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter

from aiohttp import hdrs, web

from server.edge.metrics import KNOWN_METHODS, Metrics, route_of
from server.edge.problems import problem_for
from server.edge.security import EDGE_HEADERS, EdgeHeaders, is_preflight, preflight

__all__ = ["CLIENT_CLOSED_REQUEST", "EDGE_HEADERS", "edge_middleware"]

log = logging.getLogger(__name__)
CLIENT_CLOSED_REQUEST = 499     # nginx's status for a request the client abandoned; never sent to anyone


def edge_middleware(metrics: Metrics, edge_headers: EdgeHeaders):
    """Counts and times every request (the status the client sees), answers CORS preflights, turns
    errors into problem+json (server/edge/problems.py) and puts the edge's headers on every response."""
    observe = metrics.tally.observe
    for_origin = edge_headers.for_origin

    @web.middleware
    async def edge(request: web.Request, handler) -> web.StreamResponse:
        started = perf_counter()
        status = 500
        try:
            try:
                if is_preflight(request):
                    response = preflight(request, edge_headers)
                else:
                    response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:        # a redirect travels as an exception: headers on, passed on
                    status = exc.status
                    _add_headers(exc, for_origin(request.headers.get(hdrs.ORIGIN)))
                    raise
                response = _answer(exc, request)
            except ConnectionError as exc:
                if not _client_left(request):
                    raise
                # the client hung up mid-request (usually mid-body): nothing went wrong here, and no one
                # is left to answer. 499 (nginx's "client closed request") in the access log and metrics.
                log.info("%s %s: the client closed the connection before the request was complete (%s)",
                         request.method, request.path, exc)
                response = web.Response(status=CLIENT_CLOSED_REQUEST)
            except asyncio.CancelledError:
                if _client_left(request):       # a runner with handler_cancellation on says it this way
                    status = CLIENT_CLOSED_REQUEST
                    log.info("%s %s: the client closed the connection before the answer", request.method,
                             request.path)
                raise
            except Exception as exc:  # noqa: BLE001 - the one place errors become HTTP answers
                response = _answer(exc, request)
            status = response.status
            if not response.prepared:
                _add_headers(response, for_origin(request.headers.get(hdrs.ORIGIN)))
            return response
        finally:        # cancelled counts as the 500 it would have been; a client that left, as 499
            method = request.method
            observe(method if method in KNOWN_METHODS else "OTHER",      # any token is a method
                    route_of(request), status, perf_counter() - started)

    return edge


def _client_left(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _answer(exc: Exception, request: web.Request) -> web.StreamResponse:
    if request.writer.output_size:
        # a streamed response already started: a problem answer would land inside its body. Raised
        # on, aiohttp logs it and drops the connection, which is all the client can be told now.
        raise exc
    return problem_for(exc, request)


def _add_headers(response: web.StreamResponse, headers) -> None:
    response_headers = response.headers
    if hdrs.SERVER not in response_headers:
        response_headers.extend(headers)

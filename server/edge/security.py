"""The HTTP edge's rules: CORS for configured player origins, security headers, client addresses behind
proxies. server/edge/middleware.py applies them to every response."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping

from aiohttp import hdrs, web
from multidict import CIMultiDict

from server.config.http import HttpSettings, IpNetwork
from server.edge.problems import problem

# players GET and HEAD; viewer and creator apps also POST, PATCH, PUT and DELETE in the catalog API
CORS_ALLOWED_METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")
CORS_METHODS = ", ".join(CORS_ALLOWED_METHODS + ("OPTIONS",))
# the tus headers: the creator studio uploads from the browser with tus-js-client (/v1/uploads)
TUS_REQUEST_HEADERS = ("Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum, "
                       "Upload-Defer-Length, Upload-Concat")
TUS_EXPOSED_HEADERS = ("Location, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
                       "Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Series-Job-Id")
CORS_REQUEST_HEADERS = "Authorization, Range, Content-Type, Idempotency-Key, " + TUS_REQUEST_HEADERS
CORS_EXPOSED_HEADERS = "Retry-After, Content-Length, Content-Range, " + TUS_EXPOSED_HEADERS
CORS_PREFLIGHT_MAX_AGE_S = 600
# Nothing we serve is a document: forbid every source and framing, for JSON and problem bodies above all.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SERVER_NAME = "series"      # instead of aiohttp's "Python/3.x aiohttp/3.y", which names what to attack


def client_address(request: web.Request, trusted_proxies: tuple[IpNetwork, ...]) -> str:
    """The address a request came from: the peer, unless the peer is a trusted proxy.

    Then X-Forwarded-For is read from the right, skipping our own proxies, and the first address not
    ours is the client: entries further left were written by the client and prove nothing.
    """
    peer = request.remote or "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded = [part.strip() for value in request.headers.getall(hdrs.X_FORWARDED_FOR, [])
                 for part in value.split(",")]
    for hop in reversed(forwarded):
        if not _is_trusted(hop, trusted_proxies):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_trusted(address: str, trusted: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


# Set on every response (name, value); no handler sets its own.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),          # token-bearing URLs must not leak as referrers
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    (hdrs.SERVER, SERVER_NAME),                  # also how server/edge/middleware.py tells a response already has them
)

Headers = tuple[tuple[str, str], ...]


class EdgeHeaders:
    """What the edge adds to every response, by the request's Origin: the security headers, and CORS
    for the configured player origins. A disallowed origin gets no CORS headers, so the browser
    refuses to hand the response to its script.

    Every set is built once, at start-up: there is one per configured origin (or one for any origin),
    and one for requests without an allowed Origin.
    """

    def __init__(self, settings: HttpSettings) -> None:
        self.allows_any_origin = settings.allows_any_origin
        self._allowed = frozenset(settings.cors_origins)
        exposed = ((hdrs.ACCESS_CONTROL_EXPOSE_HEADERS, CORS_EXPOSED_HEADERS),)
        if self.allows_any_origin:
            # A wildcard never carries credentials (Fetch spec): tokens then ride in the URI only.
            self.without_cors: Headers = SECURITY_HEADERS
            self._any: Headers = SECURITY_HEADERS + exposed + ((hdrs.ACCESS_CONTROL_ALLOW_ORIGIN, "*"),)
        else:
            vary = ((hdrs.VARY, "Origin"),)     # caches must not serve one origin's answer to another
            self.without_cors = SECURITY_HEADERS + vary
            self._by_origin: dict[str, Headers] = {
                origin: SECURITY_HEADERS + vary + exposed + ((hdrs.ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                                                             (hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
                for origin in self._allowed}

    def is_allowed(self, origin: str | None) -> bool:
        return origin is not None and (self.allows_any_origin or origin in self._allowed)

    def for_origin(self, origin: str | None) -> Headers:
        if origin is None:
            return self.without_cors
        if self.allows_any_origin:
            return self._any
        return self._by_origin.get(origin, self.without_cors)

    def for_request(self, request: web.BaseRequest) -> Headers:
        return self.for_origin(request.headers.get(hdrs.ORIGIN))

    def with_base(self, base: Mapping[str, str]) -> Callable[[str | None], CIMultiDict]:
        """for_origin with a route's fixed headers in front, every combination built once, now: the
        answer is complete, and the edge middleware leaves it as it is (it carries Server)."""
        sets = [self.without_cors, *([self._any] if self.allows_any_origin else self._by_origin.values())]
        built = {id(edge_set): CIMultiDict((*base.items(), *edge_set)) for edge_set in sets}
        for_origin = self.for_origin
        return lambda origin: built[id(for_origin(origin))]


EDGE_HEADERS = web.AppKey("edge_headers", EdgeHeaders)     # the app's, for handlers that stream


def is_preflight(request: web.BaseRequest) -> bool:
    return request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers


def preflight(request: web.BaseRequest, edge_headers: EdgeHeaders) -> web.Response:
    """The answer to a CORS preflight: refused outright for an origin or method we do not allow."""
    requested = request.headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].upper()
    if not edge_headers.is_allowed(request.headers.get(hdrs.ORIGIN)) or requested not in CORS_ALLOWED_METHODS:
        return problem(403, "cors_refused", "this origin or method may not call the service from a browser")
    return web.Response(status=204, headers={
        hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
        hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_REQUEST_HEADERS,
        hdrs.ACCESS_CONTROL_MAX_AGE: str(CORS_PREFLIGHT_MAX_AGE_S),
    })

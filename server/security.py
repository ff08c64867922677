"""The HTTP edge: CORS for configured player origins, security headers, client addresses behind proxies."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web

from server.problems import problem

from server.http_settings import HttpSettings, IpNetwork

# players GET and HEAD; viewer and creator apps also POST and PATCH the catalog API
CORS_ALLOWED_METHODS = ("GET", "HEAD", "POST", "PATCH")
CORS_METHODS = ", ".join(CORS_ALLOWED_METHODS + ("OPTIONS",))
CORS_REQUEST_HEADERS = "Authorization, Range, Content-Type, Idempotency-Key"
CORS_EXPOSED_HEADERS = "Retry-After, Content-Length, Content-Range"
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


CORS_HEADERS = web.RequestKey("cors_headers", dict)   # what add_edge_headers writes when the response starts


def cors_middleware(settings: HttpSettings):
    """CORS for the configured player origins. A disallowed origin gets no CORS headers, so the
    browser refuses to hand the response to its script; preflights for it are refused outright.

    The headers are decided here but written by the on_response_prepare hook, because streamed
    responses (segments) send their headers before this middleware sees the response again.
    """
    allowed = frozenset(settings.cors_origins)
    any_origin = settings.allows_any_origin

    @web.middleware
    async def cors(request: web.Request, handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        is_allowed = origin is not None and (any_origin or origin in allowed)
        headers: dict[str, str] = {}
        if is_allowed:
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = CORS_EXPOSED_HEADERS
            if any_origin:
                # A wildcard never carries credentials (Fetch spec): tokens then ride in the URI only.
                headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
            else:
                headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
                headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        if not any_origin:
            headers[hdrs.VARY] = "Origin"    # caches must not serve one origin's answer to another
        request[CORS_HEADERS] = headers
        if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return _preflight(request, is_allowed)
        return await handler(request)

    return cors


def _preflight(request: web.Request, is_allowed: bool) -> web.StreamResponse:
    requested = request.headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].upper()
    if not is_allowed or requested not in CORS_ALLOWED_METHODS:
        return problem(403, "cors_refused", "this origin or method may not call the service from a browser")
    return web.Response(status=204, headers={
        hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
        hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_REQUEST_HEADERS,
        hdrs.ACCESS_CONTROL_MAX_AGE: str(CORS_PREFLIGHT_MAX_AGE_S),
    })


# Set on every response unless the handler chose its own value (name, value).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),          # token-bearing URLs must not leak as referrers
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
)


async def add_edge_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: security headers on every response, error pages included, and the
    CORS headers cors_middleware chose for this request. One hook, not two: it runs on every key
    request, where each awaited hook costs about as much as the headers it writes."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        if name not in headers:
            headers[name] = value
    headers[hdrs.SERVER] = SERVER_NAME
    cors = request.get(CORS_HEADERS)
    if cors:
        for name, value in cors.items():
            if name == hdrs.VARY:
                headers.add(name, value)    # added: compression may vary the response on Accept-Encoding too
            else:
                headers[name] = value


def install(app: web.Application) -> None:
    """Security and CORS headers on every response of `app`, streamed ones included."""
    app.on_response_prepare.append(add_edge_headers)

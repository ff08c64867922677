"""The HTTP edge: CORS for configured player origins, security headers, client addresses behind proxies."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import hdrs, web

from server.problems import problem

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CORS_METHODS = "GET, HEAD, OPTIONS"
CORS_REQUEST_HEADERS = "Authorization, Range"
CORS_EXPOSED_HEADERS = "Retry-After, Content-Length, Content-Range"
CORS_PREFLIGHT_MAX_AGE_S = 600
# Nothing we serve is a document: forbid every source and framing, for JSON and problem bodies above all.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SERVER_NAME = "series"      # instead of aiohttp's "Python/3.x aiohttp/3.y", which names what to attack


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    cors_origins: tuple[str, ...] = ("*",)              # SERIES_CORS_ORIGINS; "*" = any origin, no credentials
    trusted_proxies: tuple[IpNetwork, ...] = ()          # SERIES_TRUSTED_PROXIES: peers whose X-Forwarded-For counts
    max_request_bytes: int = 1024 * 1024                 # SERIES_MAX_REQUEST_BYTES: larger bodies get 413

    @property
    def allows_any_origin(self) -> bool:
        return "*" in self.cors_origins


def parse_origins(raw: str) -> tuple[str, ...]:
    """'https://a.example, https://b.example' → a tuple; raises ValueError naming a malformed entry."""
    origins = tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
    for origin in origins:
        if origin != "*" and not (origin.startswith(("https://", "http://")) and "/" not in origin.split("://", 1)[1]):
            raise ValueError(f"{origin!r} is not an origin; expected scheme://host[:port] or *")
    return origins


def parse_networks(raw: str) -> tuple[IpNetwork, ...]:
    """'10.0.0.0/8, 127.0.0.1' → networks; raises ValueError naming a malformed entry."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


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


def cors_middleware(settings: HttpSettings):
    """CORS for the configured player origins. A disallowed origin gets no CORS headers, so the
    browser refuses to hand the response to its script; preflights for it are refused outright."""
    allowed = frozenset(settings.cors_origins)
    any_origin = settings.allows_any_origin

    @web.middleware
    async def cors(request: web.Request, handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        is_allowed = origin is not None and (any_origin or origin in allowed)
        if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            response = _preflight(request, is_allowed)
        else:
            response = await handler(request)
            if is_allowed:
                response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = CORS_EXPOSED_HEADERS
        if is_allowed:
            if any_origin:
                # A wildcard never carries credentials (Fetch spec): tokens then ride in the URI only.
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
            else:
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        if not any_origin:
            response.headers.add(hdrs.VARY, "Origin")    # caches must not serve one origin's answer to another
        return response

    return cors


def _preflight(request: web.Request, is_allowed: bool) -> web.StreamResponse:
    requested = request.headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].upper()
    if not is_allowed or requested not in ("GET", "HEAD"):
        return problem(403, "cors_refused", "this origin or method may not call the service from a browser")
    return web.Response(status=204, headers={
        hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
        hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_REQUEST_HEADERS,
        hdrs.ACCESS_CONTROL_MAX_AGE: str(CORS_PREFLIGHT_MAX_AGE_S),
    })


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, error pages included."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")   # token-bearing URLs must not leak as referrers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers[hdrs.SERVER] = SERVER_NAME


def install(app: web.Application) -> None:
    """Security headers on every response of `app`."""
    app.on_response_prepare.append(add_security_headers)

"""Settings of the HTTP edge (CORS origins, trusted proxies, body limit, key-request rate limits) and
their parsers: here, below the edge, so the edge's rooms read them and config imports none of them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from server.config.environment import PREFIX, Environment, SettingsError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitSettings:
    viewer_per_s: float = 1.0        # sustained key requests per viewer (SERIES_RATE_VIEWER_PER_S)
    viewer_burst: int = 60           # requests a viewer may make at once (SERIES_RATE_VIEWER_BURST)
    ip_per_s: float = 20.0           # per client address: many viewers may share one NAT (SERIES_RATE_IP_PER_S)
    ip_burst: int = 200              # (SERIES_RATE_IP_BURST)
    max_tracked: int = 100_000       # buckets kept per limiter before the least recent go (SERIES_RATE_MAX_TRACKED)

    def __post_init__(self) -> None:
        for name in ("viewer_per_s", "ip_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} is {getattr(self, name)!r}; expected a positive rate")
        for name in ("viewer_burst", "ip_burst", "max_tracked"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} is {getattr(self, name)!r}; expected at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailureSettings:
    """Failed authentications allowed per client address before 429 (operator, ingest, metrics and
    account tokens): a burst for people mistyping, then a slow refill that makes guessing hopeless."""

    per_s: float = 0.1               # one more failure allowed every 10 s (SERIES_AUTH_FAILURES_PER_S)
    burst: int = 20                  # failures in a row before the address waits (SERIES_AUTH_FAILURES_BURST)
    max_tracked: int = 100_000       # addresses remembered (least recent dropped first)


_RATE_VARIABLES = {"viewer_per_s": "RATE_VIEWER_PER_S", "viewer_burst": "RATE_VIEWER_BURST",
                   "ip_per_s": "RATE_IP_PER_S", "ip_burst": "RATE_IP_BURST", "max_tracked": "RATE_MAX_TRACKED"}


def read_rate_limits(env: Environment) -> RateLimitSettings:
    default = RateLimitSettings()
    values = {}
    for attribute, variable in _RATE_VARIABLES.items():
        read = env.float if attribute.endswith("_per_s") else env.int
        values[attribute] = value = read(variable, getattr(default, attribute))
        if not value > 0:
            raise SettingsError(f"{PREFIX}{variable} has value {value!r}; expected a positive number")
    return RateLimitSettings(**values)


def read_http(env: Environment) -> HttpSettings:
    try:
        origins = parse_origins(env.str("CORS_ORIGINS", "*"))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}CORS_ORIGINS: {exc}") from None
    proxies = read_networks(env, "TRUSTED_PROXIES")
    max_request_bytes = env.int("MAX_REQUEST_BYTES", HttpSettings().max_request_bytes)
    if max_request_bytes < 1:
        raise SettingsError(f"{PREFIX}MAX_REQUEST_BYTES has value {max_request_bytes!r}; expected a positive integer")
    return HttpSettings(cors_origins=origins, trusted_proxies=proxies, max_request_bytes=max_request_bytes)


def read_auth_failures(env: Environment) -> AuthFailureSettings:
    default = AuthFailureSettings()
    per_s = env.float("AUTH_FAILURES_PER_S", default.per_s)
    burst = env.int("AUTH_FAILURES_BURST", default.burst)
    if not per_s > 0:
        raise SettingsError(f"{PREFIX}AUTH_FAILURES_PER_S has value {per_s!r}; expected a positive number")
    if burst < 1:
        raise SettingsError(f"{PREFIX}AUTH_FAILURES_BURST has value {burst!r}; expected a positive integer")
    return AuthFailureSettings(per_s=per_s, burst=burst)


def read_networks(env: Environment, name: str):
    try:
        return parse_networks(env.str(name, ""))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name}: {exc}") from None

"""Settings of the access room (who may watch what) and of the database every instance shares
(SERIES_DATABASE_URL, SERIES_DATABASE_POOL_SIZE, SERIES_ACCESS_*): here, below the rooms that read them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from drm.storage.database import POSTGRESQL_SCHEMES, redact_url
from server.config.environment import PREFIX, Environment, SettingsError


class DatabaseUrl:
    """A postgresql:// URL, which may hold a password: its repr and str show it without one."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = url

    def reveal(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"DatabaseUrl({redact_url(self._url)!r})"

    def __str__(self) -> str:
        return redact_url(self._url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseUrl) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    @staticmethod
    def is_postgresql(raw: str) -> bool:
        return raw.startswith(POSTGRESQL_SCHEMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessSettings:
    """How much the key path remembers (per process) and for how long. Memory is bounded by these
    numbers, not by how many viewers bought something: about 0.2 KB per remembered answer, 0.35 KB per
    token, 0.3 KB per key, so ~45 MB with every default bound full."""

    entitled_entries: int = 100_000      # (viewer, series) pairs remembered as entitled (SERIES_ACCESS_CACHE_ENTRIES)
    refused_entries: int = 20_000        # remembered as not entitled, apart, so scrapers cannot evict buyers
    episode_entries: int = 20_000        # per-episode facts (free preview, ...) (SERIES_ACCESS_EPISODE_ENTRIES)
    max_age_s: float = 300.0             # a remembered answer is asked again after this (SERIES_ACCESS_CACHE_MAX_AGE_S)
    key_entries: int = 20_000            # unwrapped content keys (SERIES_KEY_CACHE_ENTRIES)
    token_entries: int = 50_000          # verified playback tokens (SERIES_TOKEN_CACHE_ENTRIES)
    lookup_threads: int = 2              # the key path's own threads for database lookups (SERIES_KEY_LOOKUP_THREADS)
    # Sharing (README: Sharing and sessions)
    max_sessions: int = 3                # concurrent playback sessions per viewer; 0: no limit (SERIES_MAX_SESSIONS)
    session_idle_s: float = 300.0        # a session without key requests this long lapses (SERIES_SESSION_IDLE_S)
    refresh_grace_s: int = 300           # a playback token refreshes itself until this long past its exp
    session_max_age_s: int = 86400       # ... and only this long after its session's first token; then a refresh
                                         # needs the viewer's account token (SERIES_SESSION_MAX_AGE_S)

    def __post_init__(self) -> None:
        for name in ("entitled_entries", "refused_entries", "episode_entries", "key_entries", "token_entries",
                     "lookup_threads"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"{name} is {getattr(self, name)!r}; expected a positive integer")
        if not 1.0 <= self.max_age_s <= 3600.0:
            raise ValueError(f"max_age_s is {self.max_age_s!r}; expected 1 to 3600 seconds")
        if type(self.max_sessions) is not int or self.max_sessions < 0:
            raise ValueError(f"max_sessions is {self.max_sessions!r}; expected 0 (no limit) or more")
        # a playing session asks for a key once a key period (about 60 s), and is remembered for half the
        # idle time: it must be written again within the idle time (server/access/sessions.py)
        if not 90.0 <= self.session_idle_s <= 86400.0:
            raise ValueError(f"session_idle_s is {self.session_idle_s!r}; expected 90 to 86400 seconds")
        if type(self.refresh_grace_s) is not int or not 0 <= self.refresh_grace_s <= 86400:
            raise ValueError(f"refresh_grace_s is {self.refresh_grace_s!r}; expected 0 to 86400 seconds")
        if type(self.session_max_age_s) is not int or not 600 <= self.session_max_age_s <= 30 * 86400:
            raise ValueError(f"session_max_age_s is {self.session_max_age_s!r}; expected 600 to 2592000 seconds")


def read_database_url(env: Environment) -> DatabaseUrl | None:
    """SERIES_DATABASE_URL: unset (or empty) keeps the embedded SQLite file. Its value may hold a password,
    so no message echoes it."""
    raw = env.str("DATABASE_URL", "").strip()
    if not raw:
        return None
    if not DatabaseUrl.is_postgresql(raw):
        scheme = raw.split("://", 1)[0] if "://" in raw else ""
        shown = f"scheme {scheme[:20]!r}" if scheme.isalnum() else "a value that is not a URL"
        raise SettingsError(f"{PREFIX}DATABASE_URL has {shown}; expected postgresql://user:password@host:port/database "
                            f"(or unset it to use the embedded SQLite file, {PREFIX}DB_PATH)")
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"{PREFIX}DATABASE_URL does not parse as a URL; expected "
                            "postgresql://user:password@host:port/database (percent-encode special characters "
                            "in the password)") from None
    return DatabaseUrl(raw)


def read_pool_size(env: Environment, lookup_threads: int) -> int:
    """SERIES_DATABASE_POOL_SIZE: PostgreSQL connections per process (the LISTEN connection is one more)."""
    least = lookup_threads + 2
    size = env.positive_int("DATABASE_POOL_SIZE", max(10, least))
    if size < least:
        raise SettingsError(f"{PREFIX}DATABASE_POOL_SIZE has value {size}; expected at least {least}: one connection "
                            f"per key lookup thread ({PREFIX}KEY_LOOKUP_THREADS = {lookup_threads}), plus the change "
                            "feed's poll and the API's requests")
    return size


def read_access(env: Environment, *, is_postgresql: bool) -> AccessSettings:
    # SQLite serializes a process's reads on one connection: more lookup threads would only queue;
    # PostgreSQL answers several lookups at once, each a network round trip.
    default = AccessSettings(lookup_threads=4 if is_postgresql else 2)
    values = {
        "entitled_entries": env.positive_int("ACCESS_CACHE_ENTRIES", default.entitled_entries),
        "refused_entries": env.positive_int("ACCESS_CACHE_REFUSALS", default.refused_entries),
        "episode_entries": env.positive_int("ACCESS_EPISODE_ENTRIES", default.episode_entries),
        "max_age_s": env.float("ACCESS_CACHE_MAX_AGE_S", default.max_age_s),
        "key_entries": env.positive_int("KEY_CACHE_ENTRIES", default.key_entries),
        "token_entries": env.positive_int("TOKEN_CACHE_ENTRIES", default.token_entries),
        "lookup_threads": env.positive_int("KEY_LOOKUP_THREADS", default.lookup_threads),
        "max_sessions": env.int("MAX_SESSIONS", default.max_sessions),
        "session_idle_s": env.float("SESSION_IDLE_S", default.session_idle_s),
        "refresh_grace_s": env.int("TOKEN_REFRESH_GRACE_S", default.refresh_grace_s),
        "session_max_age_s": env.int("SESSION_MAX_AGE_S", default.session_max_age_s),
    }
    if not 1 <= values["max_age_s"] <= 3600:
        raise SettingsError(f"{PREFIX}ACCESS_CACHE_MAX_AGE_S has value {values['max_age_s']!r}; "
                            "expected 1 to 3600 seconds")
    for name, variable, low, high in (("max_sessions", "MAX_SESSIONS", 0, 1000),
                                      ("session_idle_s", "SESSION_IDLE_S", 90, 86400),
                                      ("refresh_grace_s", "TOKEN_REFRESH_GRACE_S", 0, 86400),
                                      ("session_max_age_s", "SESSION_MAX_AGE_S", 600, 30 * 86400)):
        if not low <= values[name] <= high:
            raise SettingsError(f"{PREFIX}{variable} has value {values[name]!r}; expected {low} to {high}")
    if values["lookup_threads"] > 64:
        raise SettingsError(f"{PREFIX}KEY_LOOKUP_THREADS has value {values['lookup_threads']}; expected 1 to 64")
    return AccessSettings(**values)

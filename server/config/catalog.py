"""Settings of the catalog API (SERIES_TEST_VIEWER_IDS, SERIES_IDEMPOTENCY_TTL_S, SERIES_PROGRESS_*)."""

from __future__ import annotations

from dataclasses import dataclass

from server.config.credentials import is_id
from server.config.environment import PREFIX, Environment, SettingsError


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    # The operator's test viewers: they still get the keys of unpublished episodes (entitlement or free
    # preview still needed), so a creator's unpublished edit can be checked before it goes out again.
    test_viewer_ids: frozenset[str] = frozenset()
    idempotency_ttl_s: float = 24 * 3600.0   # how long an Idempotency-Key's answer is kept for retries
    # progress reports a viewer may send: a player reports every ~10 s; past the burst, 429
    progress_per_s: float = 0.5
    progress_burst: int = 30


def read_catalog_settings(env: Environment) -> CatalogSettings:
    """The operator's test viewers (ids, comma-separated), idempotency retention, progress report rate."""
    viewers = []
    for item in (part.strip() for part in env.str("TEST_VIEWER_IDS", "").split(",")):
        if item and not is_id(item):
            raise SettingsError(f"{PREFIX}TEST_VIEWER_IDS has entry {item[:40]!r}; viewer ids are a letter or digit, "
                                "then letters, digits, '-' or '_'")
        if item:
            viewers.append(item)
    default = CatalogSettings()
    ttl_s = env.float("IDEMPOTENCY_TTL_S", default.idempotency_ttl_s, minimum=60.0)
    per_s = env.float("PROGRESS_PER_S", default.progress_per_s)
    burst = env.int("PROGRESS_BURST", default.progress_burst)
    if not per_s > 0 or burst < 1:
        raise SettingsError(f"{PREFIX}PROGRESS_PER_S and {PREFIX}PROGRESS_BURST must be positive "
                            f"(got {per_s!r} and {burst!r})")
    return CatalogSettings(test_viewer_ids=frozenset(viewers), idempotency_ttl_s=ttl_s, progress_per_s=per_s,
                           progress_burst=burst)

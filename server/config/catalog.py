"""Settings of the catalog API (SERIES_TEST_VIEWER_IDS, SERIES_IDEMPOTENCY_TTL_S, SERIES_PROGRESS_*)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    # The operator's test viewers: they still get the keys of unpublished episodes (entitlement or free
    # preview still needed), so a creator's unpublished edit can be checked before it goes out again.
    test_viewer_ids: frozenset[str] = frozenset()
    idempotency_ttl_s: float = 24 * 3600.0   # how long an Idempotency-Key's answer is kept for retries
    # progress reports a viewer may send: a player reports every ~10 s; past the burst, 429
    progress_per_s: float = 0.5
    progress_burst: int = 30

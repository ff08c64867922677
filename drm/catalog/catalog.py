"""The catalog: series (owner, title, description, price, status) and their episodes (place in the series,
title, status, duration, renditions, free-preview flag).

Product rules live here so every entry point (HTTP, CLI, ingest) enforces the same ones: a price
of $1..$190 in integer cents, at most 80 episodes per series at positions 1..80, each 30 s to 20 min.
Entitlements are per series, so a purchase covers episodes added later. The records and rules are in
catalog_records.py, series operations in series_store.py, episode operations in episode_store.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from drm.catalog.cursors import Page
from drm.catalog.episode_store import EpisodeRecords
from drm.catalog.records import (
    ARCHIVED,
    CURRENCIES,
    DELETED,
    DRAFT,
    EPISODE_STATUSES,
    MAX_DESCRIPTION_CHARS,
    MAX_EPISODE_S,
    MAX_EPISODES,
    MAX_PRICE_CENTS,
    MAX_TITLE_CHARS,
    MIN_EPISODE_S,
    MIN_PRICE_CENTS,
    ORDINARY,
    PUBLISHED,
    SERIES_STATUSES,
    UNPUBLISHED,
    Episode,
    EpisodeFacts,
    Series,
    check_currency,
    check_description,
    check_duration,
    check_price,
    check_title,
    key_needs_entitlement,
)
from drm.catalog.series_store import SeriesRecords, series_lock
from drm.storage.database import Database, Transaction

__all__ = [
    "ARCHIVED", "CURRENCIES", "DELETED", "DRAFT", "EPISODE_STATUSES", "MAX_DESCRIPTION_CHARS", "MAX_EPISODES",
    "MAX_EPISODE_S", "MAX_PRICE_CENTS", "MAX_TITLE_CHARS", "MIN_EPISODE_S", "MIN_PRICE_CENTS", "ORDINARY",
    "PUBLISHED", "SERIES_STATUSES", "UNPUBLISHED", "Catalog", "Episode", "EpisodeFacts", "Page", "Series",
    "SqlCatalog", "SqliteCatalog", "check_currency", "check_description", "check_duration", "check_price",
    "check_title", "key_needs_entitlement", "series_lock",
]


class Catalog(Protocol):
    """What the service needs from a catalog; SqlCatalog keeps it in the drm database (either engine)."""

    def create_series(self, *, series_id: str, creator_id: str, title: str, price_cents: int, currency: str,
                      description: str = "", status: str = PUBLISHED) -> Series: ...
    def update_series(self, series_id: str, *, title: str | None = None, price_cents: int | None = None,
                      currency: str | None = None, description: str | None = None,
                      cover_episode_id: str | None = None) -> Series: ...
    def get_series(self, series_id: str, *, include_deleted: bool = False) -> Series: ...
    def list_series(self, creator_id: str | None = None) -> list[Series]: ...
    def page_series(self, *, creator_id: str | None = None, statuses: Sequence[str] = (PUBLISHED,),
                    cursor: str | None = None, limit: int = 50) -> Page[Series]: ...
    def set_series_status(self, series_id: str, status: str) -> Series: ...
    def delete_series(self, series_id: str) -> Series: ...
    def buyer_count(self, series_id: str) -> int: ...
    def series_within(self, tx: Transaction, series_id: str) -> Series | None: ...
    def purge_deleted_series(self, before: float) -> list[str]: ...
    def create_episode(self, series_id: str, episode_id: str, *, title: str | None = None, description: str = "",
                       position: int | None = None, is_free_preview: bool = False) -> Episode: ...
    def register_upload_within(self, tx: Transaction, series_id: str, episode_id: str, job_id: str) -> bool: ...
    def reserve_episode(self, series_id: str, episode_id: str, *, duration_s: float,
                        is_free_preview: bool | None = None) -> bool: ...
    def mark_published(self, series_id: str, episode_id: str, *, version: int, duration_s: float,
                       is_free_preview: bool | None = None, renditions: Sequence[str] = ()) -> Episode: ...
    def release_episode(self, series_id: str, episode_id: str) -> None: ...
    def withdraw_episode(self, series_id: str, episode_id: str) -> bool: ...
    def record_stage_within(self, tx: Transaction, job_id: str, stage: str, percent: float = 0.0,
                            error: dict[str, Any] | None = None) -> None: ...
    def update_episode(self, series_id: str, episode_id: str, *, title: str | None = None,
                       description: str | None = None, is_free_preview: bool | None = None,
                       position: int | None = None) -> Episode: ...
    def set_free_preview(self, series_id: str, episode_id: str, is_free_preview: bool) -> Episode: ...
    def move_episode(self, series_id: str, episode_id: str, position: int) -> list[Episode]: ...
    def set_order(self, series_id: str, episode_ids: Sequence[str]) -> list[Episode]: ...
    def set_episode_published(self, series_id: str, episode_id: str, is_published: bool) -> Episode: ...
    def delete_episode(self, series_id: str, episode_id: str) -> Episode: ...
    def get_episode(self, series_id: str, episode_id: str, *, include_deleted: bool = False) -> Episode: ...
    def list_episodes(self, series_id: str, *, published_only: bool = True) -> list[Episode]: ...
    def page_episodes(self, series_id: str, *, watchable_only: bool, cursor: str | None = None,
                      limit: int = 100) -> Page[Episode]: ...
    def watchable_totals(self, series_ids: Sequence[str]) -> dict[str, tuple[int, float]]: ...
    def episode_facts(self, series_id: str, episode_id: str) -> EpisodeFacts: ...
    def is_free_preview(self, series_id: str, episode_id: str) -> bool: ...
    def on_episode_change(self, listener: Callable[[str, str], None]) -> Callable[[], None]: ...
    def deleted_episodes(self, before: float) -> list[tuple[str, str]]: ...
    def purge_episode(self, series_id: str, episode_id: str) -> bool: ...


class SqlCatalog(SeriesRecords, EpisodeRecords):
    """The catalog in the drm database, SQLite or PostgreSQL. Thread-safe; synchronous.

    A write that changes what decides access to an episode (its existence, free preview, unpublished,
    deleted) also appends an episode change to the change feed in its transaction
    (drm/access/entitlement_changes.py), so key servers caching an episode's facts forget them; a new write of
    that kind must do the same (EpisodeRecords._episode_changed).
    """

    def __init__(self, db: Database, clock: Callable[[], float] = time.time, *,
                 episode_bounds_s: tuple[float, float] = (MIN_EPISODE_S, MAX_EPISODE_S)) -> None:
        self._db = db
        self._clock = clock
        self._episode_bounds_s = episode_bounds_s
        self._episode_listeners: tuple[Callable[[str, str], None], ...] = ()


SqliteCatalog = SqlCatalog   # its name from when only SQLite held it; server/ still uses it

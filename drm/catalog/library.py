"""A viewer's library: the series they hold (by page) and where they stopped in each episode.

Players report the position they reached (seconds into the episode); the latest report wins. An
episode is counted as watched once the position is within COMPLETE_AT of its end (credits are not
watched to the last second).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from drm.catalog.cursors import Page, decode_cursor, encode_cursor
from drm.catalog.records import _SERIES_COLUMNS, DELETED, Series
from drm.errors import InvalidField
from drm.ids import check_id
from drm.storage.database import Database

COMPLETE_AT = 0.95


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    series_id: str
    episode_id: str
    position_s: float
    is_completed: bool
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnedSeries:
    series: Series
    source: str         # purchase | comp | gift
    granted_at: float


class Library:
    """Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db, self._clock = db, clock

    def owned(self, viewer_id: str, *, cursor: str | None = None, limit: int = 20) -> Page[OwnedSeries]:
        """The series `viewer_id` holds now (any status but deleted), most recently granted first."""
        check_id("viewer_id", viewer_id)
        listing = f"library|{viewer_id}"
        where, parameters = "", [viewer_id, DELETED]
        if cursor is not None:
            granted_at, series_id = decode_cursor(listing, cursor, (float, str))
            where = " AND (e.granted_at < ? OR (e.granted_at = ? AND e.series_id < ?))"
            parameters += [granted_at, granted_at, series_id]
        columns = ", ".join(f"s.{column.strip()}" for column in _SERIES_COLUMNS.split(","))
        rows = self._db.query(
            f"SELECT {columns}, e.source AS source, e.granted_at AS granted_at FROM entitlements e"
            " JOIN series s ON s.series_id = e.series_id WHERE e.viewer_id = ? AND e.revoked_at IS NULL"
            f" AND s.status != ?{where} ORDER BY e.granted_at DESC, e.series_id DESC LIMIT ?", (*parameters, limit + 1))
        items = []
        for row in rows[:limit]:
            values = dict(row)
            source, granted_at = values.pop("source"), values.pop("granted_at")
            items.append(OwnedSeries(series=Series(**values), source=source, granted_at=granted_at))
        after = (encode_cursor(listing, (items[-1].granted_at, items[-1].series.series_id))
                 if len(rows) > limit else None)
        return Page(items, after)

    def record_progress(self, viewer_id: str, series_id: str, episode_id: str, *, position_s: object,
                        duration_s: float) -> Progress:
        """Remember where the viewer stopped; raises InvalidField for a position outside 0..duration."""
        if type(position_s) not in (int, float) or not math.isfinite(position_s) or \
                not 0 <= position_s <= duration_s + 1:
            raise InvalidField("position_s", f"expected seconds from 0 to the episode's {duration_s:g}, "
                               f"got {position_s!r}")
        position = min(float(position_s), duration_s)
        completed = duration_s > 0 and position >= COMPLETE_AT * duration_s
        now = self._clock()
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO viewer_progress (viewer_id, series_id, episode_id, position_s, completed, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (viewer_id, series_id, episode_id) DO UPDATE SET"
                " position_s = excluded.position_s, completed = excluded.completed, updated_at = excluded.updated_at",
                (viewer_id, series_id, episode_id, position, int(completed), now))
        return Progress(series_id=series_id, episode_id=episode_id, position_s=position, is_completed=completed,
                        updated_at=now)

    def progress(self, viewer_id: str, series_ids: Collection[str]) -> dict[tuple[str, str], Progress]:
        """(series_id, episode_id) -> the viewer's progress, for the given series."""
        if not series_ids:
            return {}
        marks = ", ".join("?" * len(series_ids))
        rows = self._db.query("SELECT series_id, episode_id, position_s, completed, updated_at FROM viewer_progress"
                              f" WHERE viewer_id = ? AND series_id IN ({marks})", (viewer_id, *series_ids))
        return {(row["series_id"], row["episode_id"]): Progress(
            series_id=row["series_id"], episode_id=row["episode_id"], position_s=row["position_s"],
            is_completed=bool(row["completed"]), updated_at=row["updated_at"]) for row in rows}

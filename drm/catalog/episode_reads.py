"""Reading a series' episodes: one, in order, by page, their totals, and the facts the key path needs.

The read half of EpisodeRecords (episode_store.py), which SqlCatalog (catalog.py) mixes in; it sets `_db`.
"""

from __future__ import annotations

from collections.abc import Sequence

from drm.catalog.cursors import Page, decode_cursor, encode_cursor
from drm.catalog.records import _EPISODE_COLUMNS, ORDINARY, Episode, EpisodeFacts, episode_from_row
from drm.errors import InvalidCursor, UnknownEpisode
from drm.storage.database import Database, Row


class EpisodeReads:
    """Episode queries; never writes."""

    _db: Database

    # -- reading ------------------------------------------------------------------------------------

    def get_episode(self, series_id: str, episode_id: str, *, include_deleted: bool = False) -> Episode:
        """The episode (published or not), or UnknownEpisode (also once deleted, unless asked)."""
        row = self._db.query_one(f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE series_id = ? AND episode_id = ?",
                                 (series_id, episode_id))
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise UnknownEpisode(series_id, episode_id)
        return episode_from_row(row)

    def list_episodes(self, series_id: str, *, published_only: bool = True) -> list[Episode]:
        """A series' episodes in order: only those viewers may watch, or every one not deleted.
        Raises UnknownSeries."""
        self.get_series(series_id, include_deleted=True)  # type: ignore[attr-defined]
        rows = self._db.query(f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE series_id = ?"
                              f" AND deleted_at IS NULL{_WATCHABLE if published_only else ''} ORDER BY position",
                              (series_id,))
        return [episode_from_row(row) for row in rows]

    def page_episodes(self, series_id: str, *, watchable_only: bool, cursor: str | None = None,
                      limit: int = 100) -> Page[Episode]:
        """A page of a series' episodes in order (a whole series fits the default page).

        A cursor made before episodes changed places is refused (InvalidCursor): positions moved, so
        the next page would repeat or skip episodes. Raises UnknownSeries.
        """
        series = self.get_series(series_id, include_deleted=True)  # type: ignore[attr-defined]
        listing = f"episodes|{series_id}|{'watchable' if watchable_only else 'all'}"
        after = 0
        if cursor is not None:
            order_version, after = decode_cursor(listing, cursor, (int, int))
            if order_version != series.order_version:
                raise InvalidCursor(f"the episodes of series {series_id} changed places since this cursor was made; "
                                    "list again from the first page")
        rows = self._db.query(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE series_id = ? AND deleted_at IS NULL AND position > ?"
            f"{_WATCHABLE if watchable_only else ''} ORDER BY position LIMIT ?", (series_id, after, limit + 1))
        items = [episode_from_row(row) for row in rows[:limit]]
        next_cursor = encode_cursor(listing, (series.order_version, items[-1].position)) if len(rows) > limit else None
        return Page(items, next_cursor)

    def watchable_totals(self, series_ids: Sequence[str]) -> dict[str, tuple[int, float]]:
        """series_id -> (episodes viewers may watch, their total seconds), in one query."""
        if not series_ids:
            return {}
        rows = self._db.query(
            "SELECT series_id, COUNT(*) AS episodes, SUM(duration_s) AS seconds FROM episodes WHERE series_id IN"
            f" ({', '.join('?' * len(series_ids))}) AND deleted_at IS NULL{_WATCHABLE} GROUP BY series_id",
            tuple(series_ids))
        totals = {series_id: (0, 0.0) for series_id in series_ids}
        totals.update((row["series_id"], (int(row["episodes"]), float(row["seconds"]))) for row in rows)
        return totals

    def episode_facts(self, series_id: str, episode_id: str) -> EpisodeFacts:
        """What the key path needs to know of one episode, in one query (ORDINARY for one it does not know)."""
        row = self._db.query_one("SELECT is_free_preview, unpublished_at, deleted_at FROM episodes"
                                 " WHERE series_id = ? AND episode_id = ?", (series_id, episode_id))
        return _facts(row) if row is not None else ORDINARY

    def is_free_preview(self, series_id: str, episode_id: str) -> bool:
        """Whether the episode is a free preview; False for an episode the catalog does not know."""
        return self.episode_facts(series_id, episode_id).is_free_preview

    def deleted_episodes(self, before: float) -> list[tuple[str, str]]:
        """(series_id, episode_id) of episodes deleted before `before` (unix s): for gc to remove."""
        rows = self._db.query("SELECT series_id, episode_id FROM episodes WHERE deleted_at < ?"
                              " ORDER BY series_id, episode_id", (before,))
        return [(row["series_id"], row["episode_id"]) for row in rows]


_WATCHABLE = " AND published_version IS NOT NULL AND unpublished_at IS NULL"


def _facts(row: Row) -> EpisodeFacts:
    return EpisodeFacts(is_free_preview=bool(row["is_free_preview"]), is_unpublished=row["unpublished_at"] is not None,
                        is_deleted=row["deleted_at"] is not None)

"""The series half of SqlCatalog (drm/catalog/catalog.py): create, edit, list by page, publish, unpublish, archive
and delete series.

A series' status decides who sees it and whether it is sold (drm/catalog/records.py): only a published
series is sold; buyers keep access to an unpublished or archived one. A series with buyers is never
deleted (archive it instead); one without is marked deleted at once and removed by `series gc` after
the grace period, with its episodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from drm.catalog.cursors import Page, decode_cursor, encode_cursor
from drm.catalog.records import (
    _SERIES_COLUMNS,
    ARCHIVED,
    DELETED,
    DRAFT,
    PUBLISHED,
    SERIES_STATUSES,
    UNPUBLISHED,
    Series,
    check_currency,
    check_description,
    check_price,
    check_title,
    series_from_row,
)
from drm.errors import InvalidField, SeriesExists, SeriesStateConflict, UnknownSeries
from drm.ids import field_id
from drm.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)

# publish / unpublish / archive: the statuses each may start from (deleted is never a start)
_TRANSITIONS = {
    PUBLISHED: {DRAFT, UNPUBLISHED, PUBLISHED},
    UNPUBLISHED: {PUBLISHED, UNPUBLISHED, DRAFT},
    ARCHIVED: {DRAFT, PUBLISHED, UNPUBLISHED, ARCHIVED},
}


def series_lock(series_id: str) -> str:
    """The lock a change of a series' status (and a purchase of it) takes (see Transaction.lock)."""
    return f"series:{series_id}"


class SeriesRecords:
    """Series operations; mixed into SqlCatalog, which sets `_db` and `_clock` (and EpisodeRecords gives
    `_episode_changed` and `_notify_episode`: deleting a series changes its episodes' facts)."""

    _db: Database
    _clock: Callable[[], float]
    _episode_changed: Callable[[Transaction, str, str], None]
    _notify_episode: Callable[..., None]

    def create_series(
        self, *, series_id: str, creator_id: str, title: str, price_cents: int, currency: str,
        description: str = "", status: str = PUBLISHED,
    ) -> Series:
        """Create a series, published (sold at once) or a draft; raises InvalidField for a bad field,
        SeriesExists if the id is taken (by a deleted series too, until gc removes it)."""
        field_id("series_id", series_id)
        field_id("creator_id", creator_id)
        values = (check_title(title), check_description(description), check_price(price_cents),
                  check_currency(currency))
        if status not in (DRAFT, PUBLISHED):
            raise InvalidField("status", f"a new series is {DRAFT!r} or {PUBLISHED!r}, not {status!r}")
        now = self._clock()
        with self._db.transaction() as tx:
            inserted = tx.execute(
                "INSERT INTO series (series_id, creator_id, title, description, price_cents, currency, status,"
                " created_at, updated_at, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (series_id) DO NOTHING",
                (series_id, creator_id, *values, status, now, now, now if status == PUBLISHED else None),
            ).rowcount
        if not inserted:
            raise SeriesExists(series_id)
        log.info("series %s created by %s (%s)", series_id, creator_id, status)
        return self.get_series(series_id)

    def update_series(
        self, series_id: str, *, title: str | None = None, price_cents: int | None = None,
        currency: str | None = None, description: str | None = None, cover_episode_id: str | None = None,
    ) -> Series:
        """Change the given fields (None keeps one); all are checked before anything is written.

        A new price applies to purchases from now on; buyers keep what they bought. The cover must
        name an episode of the series. Raises UnknownSeries, UnknownEpisode, InvalidField.
        """
        changes: dict[str, object] = {}
        if title is not None:
            changes["title"] = check_title(title)
        if description is not None:
            changes["description"] = check_description(description)
        if price_cents is not None:
            changes["price_cents"] = check_price(price_cents)
        if currency is not None:
            changes["currency"] = check_currency(currency)
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            if cover_episode_id is not None:
                field_id("cover_episode_id", cover_episode_id)
                if tx.fetch_one("SELECT 1 FROM episodes WHERE series_id = ? AND episode_id = ? AND deleted_at IS NULL",
                                (series_id, cover_episode_id)) is None:
                    raise InvalidField("cover_episode_id", f"series {series_id} has no episode {cover_episode_id}")
                changes["cover_episode_id"] = cover_episode_id
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                tx.execute(f"UPDATE series SET {assignments}, updated_at = ? WHERE series_id = ?",
                           (*changes.values(), self._clock(), series_id))
        return self.get_series(series_id)

    def get_series(self, series_id: str, *, include_deleted: bool = False) -> Series:
        """The series, or UnknownSeries (also for a malformed id, and for a deleted one unless asked)."""
        row = self._db.query_one(f"SELECT {_SERIES_COLUMNS} FROM series WHERE series_id = ?", (series_id,))
        if row is None or (row["status"] == DELETED and not include_deleted):
            raise UnknownSeries(series_id)
        return series_from_row(row)

    def list_series(self, creator_id: str | None = None) -> list[Series]:
        """Every series but deleted ones, or one creator's, by series_id (for the CLI)."""
        where, parameters = "status != ?", [DELETED]
        if creator_id is not None:
            where += " AND creator_id = ?"
            parameters.append(creator_id)
        rows = self._db.query(f"SELECT {_SERIES_COLUMNS} FROM series WHERE {where} ORDER BY series_id", parameters)
        return [series_from_row(row) for row in rows]

    def page_series(self, *, creator_id: str | None = None, statuses: Sequence[str] = (PUBLISHED,),
                    cursor: str | None = None, limit: int = 50) -> Page[Series]:
        """Series newest first, optionally one creator's, in the given statuses; `limit` per page.

        Keyset paging on (created_at, series_id): a series created between two pages never shifts them.
        Raises InvalidCursor, InvalidField for an unknown status.
        """
        for status in statuses:
            if status not in SERIES_STATUSES or status == DELETED:
                raise InvalidField("status", f"{status!r} is not one of draft, published, unpublished, archived")
        listing = f"series|{creator_id or '*'}|{','.join(sorted(statuses))}"
        where = [f"status IN ({', '.join('?' * len(statuses))})"]
        parameters: list[object] = list(statuses)
        if creator_id is not None:
            where.append("creator_id = ?")
            parameters.append(creator_id)
        if cursor is not None:
            created_at, series_id = decode_cursor(listing, cursor, (float, str))
            where.append("(created_at < ? OR (created_at = ? AND series_id < ?))")
            parameters += [created_at, created_at, series_id]
        rows = self._db.query(
            f"SELECT {_SERIES_COLUMNS} FROM series WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, series_id DESC LIMIT ?", (*parameters, limit + 1))
        items = [series_from_row(row) for row in rows[:limit]]
        after = encode_cursor(listing, (items[-1].created_at, items[-1].series_id)) if len(rows) > limit else None
        return Page(items, after)

    def set_series_status(self, series_id: str, status: str) -> Series:
        """Publish (sold and listed), unpublish (neither; buyers keep access) or archive (for good: buyers
        keep access, nothing is sold or added again). Raises UnknownSeries, SeriesStateConflict."""
        if status not in _TRANSITIONS:
            raise InvalidField("status", f"expected one of {', '.join(_TRANSITIONS)}, got {status!r}")
        with self._db.transaction() as tx:
            row = self._lock_series(tx, series_id)
            if row["status"] not in _TRANSITIONS[status]:
                raise SeriesStateConflict("series_archived", f"series {series_id} is archived: it stays with its "
                                          "buyers and is not published again; create a new series instead")
            if row["status"] != status:
                now = self._clock()
                tx.execute("UPDATE series SET status = ?, updated_at = ?,"
                           " published_at = CASE WHEN ? = 'published' THEN ? ELSE published_at END"
                           " WHERE series_id = ?", (status, now, status, now, series_id))
                log.info("series %s: %s -> %s", series_id, row["status"], status)
        return self.get_series(series_id)

    def buyer_count(self, series_id: str) -> int:
        """How many viewers hold an active entitlement to the series (bought, comped or gifted)."""
        row = self._db.query_one("SELECT COUNT(*) FROM entitlements WHERE series_id = ? AND revoked_at IS NULL",
                                 (series_id,))
        return int(row[0])

    def delete_series(self, series_id: str) -> Series:
        """Delete a series nobody holds: it and its episodes vanish at once, and `series gc` removes their
        files and keys after the grace period. Raises SeriesStateConflict (series_has_buyers) when
        anyone holds it: archive it instead, so buyers keep what they paid for."""
        with self._db.transaction() as tx:
            # purchases of the series take this lock too: none can slip in between the count and the delete
            tx.lock(series_lock(series_id))
            self._lock_series(tx, series_id)
            (buyers,) = tx.fetch_one("SELECT COUNT(*) FROM entitlements WHERE series_id = ? AND revoked_at IS NULL",
                                     (series_id,))
            if buyers:
                raise SeriesStateConflict(
                    "series_has_buyers", f"series {series_id} has {buyers} buyer{'s' if buyers != 1 else ''}, who keep "
                    f"what they paid for: archive it instead (POST /v1/series/{series_id}/archive)")
            now = self._clock()
            tx.execute("UPDATE series SET status = ?, deleted_at = ?, updated_at = ? WHERE series_id = ?",
                       (DELETED, now, now, series_id))
            episodes = [(series_id, row["episode_id"]) for row in tx.fetch_all(
                "SELECT episode_id FROM episodes WHERE series_id = ? AND deleted_at IS NULL", (series_id,))]
            tx.execute("UPDATE episodes SET deleted_at = ?, position = NULL, updated_at = ?"
                       " WHERE series_id = ? AND deleted_at IS NULL", (now, now, series_id))
            for _, episode_id in episodes:
                self._episode_changed(tx, series_id, episode_id)
        self._notify_episode(*episodes)
        log.info("series %s deleted", series_id)
        return self.get_series(series_id, include_deleted=True)

    def series_within(self, tx: Transaction, series_id: str) -> Series | None:
        """The series as the transaction sees it, deleted ones included; None when there is none."""
        row = tx.fetch_one(f"SELECT {_SERIES_COLUMNS} FROM series WHERE series_id = ?", (series_id,))
        return series_from_row(row) if row is not None else None

    def purge_deleted_series(self, before: float) -> list[str]:
        """Remove the rows of series deleted before `before` (unix s) whose episodes are gone; their ids."""
        with self._db.transaction() as tx:
            rows = tx.fetch_all(
                "SELECT series_id FROM series WHERE status = ? AND deleted_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM episodes WHERE episodes.series_id = series.series_id)", (DELETED, before))
            doomed = [row["series_id"] for row in rows]
            tx.executemany("DELETE FROM series WHERE series_id = ?", [(series_id,) for series_id in doomed])
        return doomed

    def _lock_series(self, tx: Transaction, series_id: str) -> Row:
        """The series row, locked until `tx` ends (PostgreSQL: FOR UPDATE; SQLite: the write transaction
        already excludes other writers). Changes of one series' episodes are serialized by it."""
        row = tx.fetch_one(f"SELECT status, order_version FROM series WHERE series_id = ?{tx.dialect.for_update}",
                           (series_id,))
        if row is None or row["status"] == DELETED:
            raise UnknownSeries(series_id)
        return row

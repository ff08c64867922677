"""The entitlement change feed: which (viewer, series) pairs changed since a watermark.

Every grant and revoke appends a row to `entitlement_changes` in its own transaction (see
EntitlementStore), so a reader that polls this feed cannot miss a committed change, and a cache
of answers can forget exactly the pairs that changed. On PostgreSQL the same insert also
NOTIFYs channel ``entitlements`` with ``viewer_id/series_id`` at commit (a trigger); the poll is
what makes a lost notification harmless.

Watermarks are opaque integers. On SQLite they are change ids: writers commit one at a time, so
ids become visible in order. On PostgreSQL ids are taken in insertion order but become visible
in commit order, so a poll for "ids above the last seen" could skip a row whose transaction
commits late; the watermark is instead a transaction id: the poll reads rows written by
transactions at or above it, and the next watermark is the oldest transaction still running at
the poll's snapshot, taken in the same statement. Rows may come back twice; none is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .database import Database

DEFAULT_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitlementChanges:
    pairs: frozenset[tuple[str, str]]   # (viewer_id, series_id) whose entitlement changed
    watermark: int                      # pass to the next changes_since()
    is_complete: bool                   # False: more changed than the limit; forget every cached answer


class EntitlementFeed:
    """Reads the change feed; safe to share between threads."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def watermark(self) -> int:
        """Where to start reading: changes committed after this call come back from changes_since()."""
        if self._db.dialect.name == "postgresql":
            row = self._db.query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        else:
            row = self._db.query_one("SELECT COALESCE(MAX(change_id), 0) + 1 FROM entitlement_changes")
        return int(row[0])

    def changes_since(self, watermark: int, *, limit: int = DEFAULT_LIMIT) -> EntitlementChanges:
        """The pairs changed at or after ``watermark``, and the watermark to read from next.

        At most ``limit`` rows are read; past that the answer is incomplete (is_complete False) and
        the caller must treat every pair as changed. One statement on either engine.
        """
        if type(watermark) is not int or watermark < 0:
            raise ValueError(f"watermark is {watermark!r}; expected a value from watermark() or changes_since()")
        if self._db.dialect.name == "postgresql":
            return self._postgresql_changes(watermark, limit)
        rows = self._db.query(
            "SELECT change_id, viewer_id, series_id FROM entitlement_changes WHERE change_id >= ?"
            " ORDER BY change_id LIMIT ?", (watermark, limit + 1))
        is_complete = len(rows) <= limit
        rows = rows[:limit]
        next_watermark = rows[-1]["change_id"] + 1 if rows else watermark
        return EntitlementChanges(pairs=frozenset((row["viewer_id"], row["series_id"]) for row in rows),
                                  watermark=next_watermark, is_complete=is_complete)

    def _postgresql_changes(self, watermark: int, limit: int) -> EntitlementChanges:
        # The snapshot's xmin and the rows come from one statement, hence one snapshot: every
        # transaction below xmin has ended (its rows, if committed, are in this result), and any
        # at or above it is read again next time.
        rows = self._db.query(
            "SELECT snapshot.xmin, changed.viewer_id, changed.series_id"
            " FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin) AS snapshot"
            " LEFT JOIN LATERAL (SELECT viewer_id, series_id FROM entitlement_changes"
            "   WHERE txid >= ?::xid8 LIMIT ?) AS changed ON true",
            (str(watermark), limit + 1))
        next_watermark = max(int(rows[0]["xmin"]), watermark)
        found = [(row["viewer_id"], row["series_id"]) for row in rows if row["viewer_id"] is not None]
        return EntitlementChanges(pairs=frozenset(found[:limit]), watermark=next_watermark,
                                  is_complete=len(found) <= limit)

    def prune(self, *, older_than_s: float) -> int:
        """Delete changes recorded more than ``older_than_s`` seconds ago; how many went.

        A reader whose watermark is older than that would miss them: keep it well above the
        longest a reader may go without polling (a key server stops trusting its cache after 5 s).
        """
        if older_than_s < 60:
            raise ValueError(f"older_than_s is {older_than_s!r}; keep changes at least 60 s")
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM entitlement_changes WHERE at < ?",
                              (self._clock() - older_than_s,)).rowcount

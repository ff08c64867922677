"""The change feed of who may watch what: which (viewer, series) entitlements and which episodes changed
since a watermark.

Every grant and revoke appends a row to `entitlement_changes` in its own transaction (see
EntitlementStore), and so does every catalog write that changes what a key server caches about an
episode (see SqlCatalog; record_episode_change). A reader that polls this feed cannot miss a committed
change, and a cache of answers can forget exactly what changed. On PostgreSQL the same insert also
NOTIFYs channel ``entitlements`` at commit (a trigger) with ``viewer_id/series_id`` or
``/series_id/episode_id`` (parse_notification); the poll is what makes a lost notification harmless.

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

from drm.storage.database import Database, Transaction

DEFAULT_LIMIT = 10_000
MIN_RETENTION_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitlementChanges:
    pairs: frozenset[tuple[str, str]]       # (viewer_id, series_id) whose entitlement changed
    episodes: frozenset[tuple[str, str]]    # (series_id, episode_id) whose facts changed
    watermark: int                          # pass to the next changes_since()
    is_complete: bool                       # False: more changed than the limit; forget every cached answer


def record_entitlement_change(tx: Transaction, viewer_id: str, series_id: str, at: float) -> None:
    """Append "this viewer's access to this series changed" to the feed, inside the writer's transaction."""
    tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, at) VALUES (?, ?, ?)",
               (viewer_id, series_id, at))


def record_episode_change(tx: Transaction, series_id: str, episode_id: str, at: float) -> None:
    """Append "this episode's facts changed" to the feed, inside the writer's transaction.

    Every catalog write that changes what decides access to an episode (free preview, published or
    not, the episode's existence) must call this, or key servers keep their cached facts until they
    age out.
    """
    tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, episode_id, at) VALUES ('', ?, ?, ?)",
               (series_id, episode_id, at))


def parse_notification(payload: str) -> tuple[str, str, str | None] | None:
    """A NOTIFY payload as (viewer_id, series_id, None) or ("", series_id, episode_id); None if malformed."""
    parts = payload.split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], None
    if len(parts) == 3 and not parts[0] and parts[1] and parts[2]:
        return "", parts[1], parts[2]
    return None


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
        """What changed at or after ``watermark``, and the watermark to read from next.

        At most ``limit`` rows are read; past that the answer is incomplete (is_complete False) and
        the caller must treat everything as changed. One statement on either engine.
        """
        if type(watermark) is not int or watermark < 0:
            raise ValueError(f"watermark is {watermark!r}; expected a value from watermark() or changes_since()")
        if self._db.dialect.name == "postgresql":
            return self._postgresql_changes(watermark, limit)
        rows = self._db.query(
            "SELECT change_id, viewer_id, series_id, episode_id FROM entitlement_changes WHERE change_id >= ?"
            " ORDER BY change_id LIMIT ?", (watermark, limit + 1))
        is_complete = len(rows) <= limit
        rows = rows[:limit]
        next_watermark = rows[-1]["change_id"] + 1 if rows else watermark
        return _changes(rows, next_watermark, is_complete)

    def _postgresql_changes(self, watermark: int, limit: int) -> EntitlementChanges:
        # The snapshot's xmin and the rows come from one statement, hence one snapshot: every
        # transaction below xmin has ended (its rows, if committed, are in this result), and any
        # at or above it is read again next time.
        rows = self._db.query(
            "SELECT snapshot.xmin, changed.viewer_id, changed.series_id, changed.episode_id"
            " FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin) AS snapshot"
            " LEFT JOIN LATERAL (SELECT viewer_id, series_id, episode_id FROM entitlement_changes"
            "   WHERE txid >= ?::xid8 LIMIT ?) AS changed ON true",
            (str(watermark), limit + 1))
        next_watermark = max(int(rows[0]["xmin"]), watermark)
        found = [row for row in rows if row["series_id"] is not None]
        return _changes(found[:limit], next_watermark, len(found) <= limit)

    def prune(self, *, older_than_s: float) -> int:
        """Delete changes recorded more than ``older_than_s`` seconds ago; how many went.

        A reader whose watermark is older than that would miss them: keep it well above the
        longest a reader may go without polling (a key server stops trusting its cache after 5 s).
        """
        if older_than_s < MIN_RETENTION_S:
            raise ValueError(f"older_than_s is {older_than_s!r}; keep changes at least {MIN_RETENTION_S:g} s")
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM entitlement_changes WHERE at < ?",
                              (self._clock() - older_than_s,)).rowcount


def _changes(rows: list, watermark: int, is_complete: bool) -> EntitlementChanges:
    pairs, episodes = set(), set()
    for row in rows:
        if row["episode_id"] is None:
            pairs.add((row["viewer_id"], row["series_id"]))
        else:
            episodes.add((row["series_id"], row["episode_id"]))
    return EntitlementChanges(pairs=frozenset(pairs), episodes=frozenset(episodes), watermark=watermark,
                              is_complete=is_complete)

"""Playback sessions: how many places one viewer watches from at once, on every key server alike.

A session is a playback token's `sid`: the catalog mints a new one per "play" and a refresh keeps it
(see tokens.py), so one player is one session for as long as it plays. A session is live while its
key requests keep coming: its row's `last_seen_at` is moved on by admit(), and a row not seen for
`idle_s` no longer counts (and is deleted the next time its viewer is admitted, or by prune()).

A new session beyond the limit is refused, the live ones play on (SessionLimitReached, with how long
until the least recently active one lapses). Refusing rather than evicting the oldest: a shared URL
cannot throw the buyer out of their own playback, a refusal needs no message to other key servers
(evicting would have to reach whichever process remembers the old session), and the viewer who is
refused knows why and what to do. The cost: a player closed without ending its session holds its
place for up to `idle_s`.

Callers remember an admission for less than `idle_s` (the key path: half of it), so a remembered
session is always still counted here: memory never lets in more sessions than the database holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from drm.errors import SessionLimitReached
from drm.ids import check_id
from drm.storage.database import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackSession:
    viewer_id: str
    session_id: str
    started_at: float       # unix s
    last_seen_at: float     # unix s: the last admit() that wrote (callers remember admissions in between)


class PlaybackSessions:
    """The live sessions of every viewer, in the database every key server shares. Thread-safe."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def admit(self, viewer_id: str, session_id: str, *, limit: int, idle_s: float) -> None:
        """Count `session_id` as live now: a session already live is seen again, a new one is started if the
        viewer has fewer than `limit` live sessions. Raises SessionLimitReached otherwise, InvalidId for a
        malformed id, DatabaseUnavailable when the database cannot be reached.

        One transaction under a per-viewer lock (PostgreSQL: an advisory lock; SQLite: the write lock), so
        two key servers admitting two new sessions of one viewer at once cannot both take the last place.
        """
        check_id("viewer_id", viewer_id)
        check_id("session_id", session_id)
        if type(limit) is not int or limit < 1:
            raise ValueError(f"limit is {limit!r}; expected a positive integer")
        now = self._clock()
        with self._db.transaction() as tx:
            tx.lock(f"playback-sessions:{viewer_id}")
            tx.execute("DELETE FROM playback_sessions WHERE viewer_id = ? AND last_seen_at < ?",
                       (viewer_id, now - idle_s))
            seen = tx.execute("UPDATE playback_sessions SET last_seen_at = ? WHERE viewer_id = ? AND session_id = ?",
                              (now, viewer_id, session_id)).rowcount
            if seen:
                return
            live, least_recent = tx.fetch_one(
                "SELECT COUNT(*), MIN(last_seen_at) FROM playback_sessions WHERE viewer_id = ?", (viewer_id,))
            if live >= limit:
                raise SessionLimitReached(viewer_id, limit, max(1, math.ceil(least_recent + idle_s - now)))
            tx.execute("INSERT INTO playback_sessions (viewer_id, session_id, started_at, last_seen_at)"
                       " VALUES (?, ?, ?, ?)", (viewer_id, session_id, now, now))

    def end(self, viewer_id: str, session_id: str) -> bool:
        """Stop counting a session (the player stopped, or an operator ended it); whether it was live."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM playback_sessions WHERE viewer_id = ? AND session_id = ?",
                              (viewer_id, session_id)).rowcount > 0

    def end_all(self, viewer_id: str) -> int:
        """Stop counting every session of a viewer (their account's tokens were revoked); how many."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM playback_sessions WHERE viewer_id = ?", (viewer_id,)).rowcount

    def live(self, viewer_id: str, *, idle_s: float) -> list[PlaybackSession]:
        """The viewer's sessions seen within `idle_s`, the least recently active first."""
        rows = self._db.query(
            "SELECT viewer_id, session_id, started_at, last_seen_at FROM playback_sessions"
            " WHERE viewer_id = ? AND last_seen_at >= ? ORDER BY last_seen_at, session_id",
            (viewer_id, self._clock() - idle_s))
        return [PlaybackSession(**dict(row)) for row in rows]

    def prune(self, *, idle_s: float) -> int:
        """Delete every session not seen within `idle_s` (of viewers who never came back); how many."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM playback_sessions WHERE last_seen_at < ?",
                              (self._clock() - idle_s,)).rowcount

"""Who was served which watermarked episode: the record a leaked copy is traced back to.

Each playback session of a watermarked episode gets its own sequence of A and B segments (its bits are a
keyed hash of its session id: pipeline/watermark). A leak's bits name a session; this table turns the
session into a viewer and the payment behind their access, so an operator can act (refund, ban, notice).

One row per (episode version, session), written the first time the session fetches a watermarked media
playlist of that version, before the playlist is served: a session that was served A/B segments always
has its row. The entitlement (how the viewer holds the series, and its reference: the payment id of a
purchase) is read in the same transaction, so the row says what access the viewer had when they watched.
Unlike playback_sessions, rows are never pruned as sessions lapse: this is evidence, and leaks surface
months later. An episode's rows go when `series gc` removes the deleted episode for good (with its
references nothing of it can be traced any more).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from drm.ids import check_id
from drm.storage.database import Database

FREE_PREVIEW = "free_preview"     # `source` of a session that played a free preview without an entitlement


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkSession:
    series_id: str
    episode_id: str
    version: int
    session_id: str
    viewer_id: str
    source: str          # how the viewer held the series: purchase, comp, gift, or free_preview
    payment_id: str      # the entitlement's reference: the payment id of a purchase, '' otherwise
    fetched_at: float    # unix s: the first fetch of a watermarked playlist of this version
    secret_id: str       # which watermark secret keyed its A/B sequence; '' if recorded before secrets had ids


class WatermarkSessions:
    """The durable session → viewer → payment record of watermarked playback. Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def record(self, *, series_id: str, episode_id: str, version: int, session_id: str, viewer_id: str,
               secret_id: str) -> str:
        """Record that `session_id` of `viewer_id` was served version `version` of the episode, its sequence
        keyed with watermark secret `secret_id`, with the viewer's entitlement as it is now; a second call for
        the same session and version changes nothing. The secret id the session's row holds: `secret_id`,
        or the first call's (a session keeps its sequence when the secret is rotated while it plays).
        Raises InvalidId, DatabaseUnavailable."""
        for name, value in (("series_id", series_id), ("episode_id", episode_id), ("session_id", session_id),
                            ("viewer_id", viewer_id), ("secret_id", secret_id)):
            check_id(name, value)
        key = (series_id, episode_id, version, session_id)
        with self._db.transaction() as tx:
            held = tx.fetch_one("SELECT source, reference FROM entitlements WHERE viewer_id = ? AND series_id = ?"
                                " AND revoked_at IS NULL", (viewer_id, series_id))
            source, payment_id = (held["source"], held["reference"]) if held else (FREE_PREVIEW, "")
            if tx.execute(
                "INSERT INTO watermark_sessions (series_id, episode_id, version, session_id, viewer_id, source,"
                " payment_id, fetched_at, secret_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (series_id, episode_id, version, session_id) DO NOTHING",
                (*key, viewer_id, source, payment_id, self._clock(), secret_id),
            ).rowcount > 0:
                return secret_id
            return tx.fetch_one("SELECT secret_id FROM watermark_sessions WHERE series_id = ? AND episode_id = ?"
                                " AND version = ? AND session_id = ?", key)["secret_id"]

    def sessions_of(self, series_id: str, episode_id: str, version: int | None = None) -> list[WatermarkSession]:
        """Every recorded session of the episode (of one version, if given), oldest first."""
        where, parameters = "series_id = ? AND episode_id = ?", [series_id, episode_id]
        if version is not None:
            where += " AND version = ?"
            parameters.append(version)
        rows = self._db.query(f"SELECT series_id, episode_id, version, session_id, viewer_id, source, payment_id,"
                              f" fetched_at, secret_id FROM watermark_sessions WHERE {where}"
                              " ORDER BY fetched_at, session_id",
                              parameters)
        return [WatermarkSession(**dict(row)) for row in rows]

    def recorded_versions(self, series_id: str | None = None,
                          episode_id: str | None = None) -> list[tuple[str, str, int]]:
        """(series, episode, version) of every episode version with a recorded session (of one series or
        episode, if given), newest version first within an episode."""
        where, parameters = [], []
        for column, value in (("series_id", series_id), ("episode_id", episode_id)):
            if value is not None:
                where.append(f"{column} = ?")
                parameters.append(value)
        rows = self._db.query("SELECT DISTINCT series_id, episode_id, version FROM watermark_sessions"
                              + (f" WHERE {' AND '.join(where)}" if where else "")
                              + " ORDER BY series_id, episode_id, version DESC", parameters)
        return [(row["series_id"], row["episode_id"], int(row["version"])) for row in rows]

    def forget_episode(self, series_id: str, episode_id: str) -> int:
        """Delete the rows of an episode removed for good (its references are gone: nothing can be traced)."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM watermark_sessions WHERE series_id = ? AND episode_id = ?",
                              (series_id, episode_id)).rowcount

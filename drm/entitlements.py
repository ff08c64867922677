"""Who may watch which series: one row per (viewer, series), revocable and re-grantable."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from .database import Database
from .errors import NotEntitled
from .ids import check_id

log = logging.getLogger(__name__)

_COLUMNS = "viewer_id, series_id, source, granted_at, revoked_at, reason"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlement:
    viewer_id: str
    series_id: str
    source: str  # how it was granted: "comp", "purchase", ...
    granted_at: float  # unix seconds of the latest (re-)grant
    revoked_at: float | None  # unix seconds; None while active
    reason: str  # why it was last granted or revoked

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class EntitlementStore:
    """Grants, revokes and checks entitlements. Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def grant(
        self, viewer_id: str, series_id: str, *, source: str = "comp", reason: str = ""
    ) -> Entitlement:
        """Entitle the viewer to the series and return the entitlement.

        Idempotent: granting an active entitlement returns it unchanged. Granting a
        revoked one re-activates it with a new ``granted_at``, ``source`` and ``reason``.
        Raises InvalidId for a bad id.
        """
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO entitlements ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?)"
                " ON CONFLICT (viewer_id, series_id) DO UPDATE SET"
                " source = excluded.source, granted_at = excluded.granted_at,"
                " revoked_at = NULL, reason = excluded.reason"
                " WHERE entitlements.revoked_at IS NOT NULL",
                (viewer_id, series_id, source, self._clock(), reason),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM entitlements WHERE viewer_id = ? AND series_id = ?",
                (viewer_id, series_id),
            ).fetchone()
        log.info("granted %s to %s (%s)", series_id, viewer_id, source)
        return _entitlement(row)

    def revoke(self, viewer_id: str, series_id: str, *, reason: str = "") -> bool:
        """Revoke an active entitlement; False if there was none. Raises InvalidId for a bad id.

        Keys already fetched stay with the player; revocation stops the next key
        request and the next token.
        """
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE entitlements SET revoked_at = ?, reason = ?"
                " WHERE viewer_id = ? AND series_id = ? AND revoked_at IS NULL",
                (self._clock(), reason, viewer_id, series_id),
            ).rowcount
        if changed:
            log.info("revoked %s from %s", series_id, viewer_id)
        return changed == 1

    def is_entitled(self, viewer_id: str, series_id: str) -> bool:
        """True if the viewer holds an active entitlement. Raises InvalidId for a bad id."""
        found = self.get(viewer_id, series_id)
        return found is not None and found.is_active

    def require(self, viewer_id: str, series_id: str) -> None:
        """Return quietly if entitled; raise NotEntitled otherwise (InvalidId for a bad id)."""
        if not self.is_entitled(viewer_id, series_id):
            raise NotEntitled(viewer_id, series_id)

    def get(self, viewer_id: str, series_id: str) -> Entitlement | None:
        """The entitlement row, active or revoked, or None. Raises InvalidId for a bad id."""
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM entitlements WHERE viewer_id = ? AND series_id = ?",
            (viewer_id, series_id),
        )
        return _entitlement(rows[0]) if rows else None

    def active_pairs(self) -> frozenset[tuple[str, str]]:
        """Every active (viewer_id, series_id): the data of a server's in-memory snapshot."""
        rows = self._db.query("SELECT viewer_id, series_id FROM entitlements WHERE revoked_at IS NULL")
        return frozenset((row["viewer_id"], row["series_id"]) for row in rows)

    def list_for_viewer(self, viewer_id: str) -> list[Entitlement]:
        """All of a viewer's entitlements, revoked ones included, by series_id.

        Raises InvalidId for a bad id.
        """
        check_id("viewer_id", viewer_id)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM entitlements WHERE viewer_id = ? ORDER BY series_id",
            (viewer_id,),
        )
        return [_entitlement(row) for row in rows]


def _entitlement(row: sqlite3.Row) -> Entitlement:
    return Entitlement(
        viewer_id=row["viewer_id"],
        series_id=row["series_id"],
        source=row["source"],
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
        reason=row["reason"],
    )

"""Who may watch which series: one row per (viewer, series), revocable and re-grantable.

Every change is also appended to an audit trail (entitlement_events): who granted or revoked
what, when, why, and on which reference (a payment id for purchases).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from drm.access.entitlement_changes import record_entitlement_change
from drm.errors import InvalidField, NotEntitled
from drm.ids import check_id
from drm.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)

_COLUMNS = "viewer_id, series_id, source, granted_at, revoked_at, reason, reference"
SOURCES = frozenset({"purchase", "comp", "gift"})
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlement:
    viewer_id: str
    series_id: str
    source: str  # how it was granted: "comp", "purchase", ...
    granted_at: float  # unix seconds of the latest (re-)grant
    revoked_at: float | None  # unix seconds; None while active
    reason: str  # why it was last granted or revoked
    reference: str = ""  # what it was granted for: the payment id of a purchase, else ""

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitlementEvent:
    """One line of the audit trail."""

    event_id: int
    viewer_id: str
    series_id: str
    action: str  # "grant" | "revoke"
    source: str
    reason: str
    actor: str  # "operator:<name>", "payments", "cli", ...
    reference: str
    at: float  # unix seconds


class EntitlementStore:
    """Grants, revokes and checks entitlements. Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        # a tuple replaced whole, so a writer thread iterates a stable one while another adds or removes
        self._listeners: tuple[Callable[[str, str], None], ...] = ()

    def on_change(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``listener(viewer_id, series_id)`` after each grant or revoke made through this store
        (in the writer's thread, after the commit); returns what removes the listener again.

        Caches in this process use it to forget at once; other processes' writes reach them through
        the change feed (drm/access/entitlement_changes.py).
        """
        self._listeners = (*self._listeners, listener)

        def remove() -> None:
            self._listeners = tuple(other for other in self._listeners if other is not listener)
        return remove

    def grant(
        self, viewer_id: str, series_id: str, *, source: str = "comp", reason: str = "",
        actor: str = "", reference: str = "",
    ) -> Entitlement:
        """Entitle the viewer to the series and return the entitlement.

        Idempotent: granting an active entitlement returns it unchanged (and audits nothing).
        Granting a revoked one re-activates it with a new ``granted_at``, ``source``,
        ``reason`` and ``reference``. Raises InvalidId for a bad id, InvalidField for a
        source outside purchase/comp/gift or an over-long reason.
        """
        with self._db.transaction() as tx:
            entitlement, changed = self.grant_within(
                tx, viewer_id, series_id, source=source, reason=reason, actor=actor, reference=reference)
        if changed:
            self.notify_changed(viewer_id, series_id)
        return entitlement

    def grant_within(
        self, tx: Transaction, viewer_id: str, series_id: str, *, source: str, reason: str = "",
        actor: str = "", reference: str = "",
    ) -> tuple[Entitlement, bool]:
        """grant() inside the caller's unit of work; returns (entitlement, whether it changed).

        For callers that must record something else atomically with the grant (a payment).
        After committing, the caller calls notify_changed() if it changed.
        """
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        _check_source(source)
        _check_reason(reason)
        tx.lock(pair_lock(viewer_id, series_id))
        changed = tx.execute(
            f"INSERT INTO entitlements ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, ?)"
            " ON CONFLICT (viewer_id, series_id) DO UPDATE SET"
            " source = excluded.source, granted_at = excluded.granted_at,"
            " revoked_at = NULL, reason = excluded.reason, reference = excluded.reference"
            " WHERE entitlements.revoked_at IS NOT NULL",
            (viewer_id, series_id, source, self._clock(), reason, reference),
        ).rowcount
        entitlement = _entitlement(tx.fetch_one(
            f"SELECT {_COLUMNS} FROM entitlements WHERE viewer_id = ? AND series_id = ?",
            (viewer_id, series_id),
        ))
        if changed:
            self._record_change(tx, "grant", entitlement, actor)
            log.info("granted %s to %s (%s)", series_id, viewer_id, source)
        return entitlement, changed == 1

    def transfer_within(self, tx: Transaction, viewer_id: str, series_id: str, *,
                        from_reference: str, to_reference: str) -> bool:
        """Make the active entitlement granted for `from_reference` stand on `to_reference` instead
        (a second payment for a series the viewer already owned, when the first is refunded), so that
        refunding the second later revokes it. Whether one was moved; access does not change."""
        tx.lock(pair_lock(viewer_id, series_id))
        moved = tx.execute(
            "UPDATE entitlements SET reference = ?"
            " WHERE viewer_id = ? AND series_id = ? AND revoked_at IS NULL AND reference = ?",
            (to_reference, viewer_id, series_id, from_reference),
        ).rowcount
        if moved:
            log.info("%s keeps %s: now held by %s instead of %s", viewer_id, series_id, to_reference, from_reference)
        return moved == 1

    def revoke(
        self, viewer_id: str, series_id: str, *, reason: str = "", actor: str = "",
        only_reference: str | None = None,
    ) -> bool:
        """Revoke an active entitlement; False if there was none. Raises InvalidId for a bad id.

        With ``only_reference``, only an entitlement granted for that reference is revoked:
        refunding an old payment must not revoke access bought again with a newer one.
        Keys already fetched stay with the player; revocation stops the next key
        request and the next token.
        """
        with self._db.transaction() as tx:
            changed = self.revoke_within(
                tx, viewer_id, series_id, reason=reason, actor=actor, only_reference=only_reference)
        if changed:
            self.notify_changed(viewer_id, series_id)
        return changed

    def revoke_within(
        self, tx: Transaction, viewer_id: str, series_id: str, *, reason: str = "", actor: str = "",
        only_reference: str | None = None,
    ) -> bool:
        """revoke() inside the caller's unit of work; call notify_changed() after commit if True."""
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        _check_reason(reason)
        tx.lock(pair_lock(viewer_id, series_id))
        condition, parameters = "", ()
        if only_reference is not None:
            condition, parameters = " AND reference = ?", (only_reference,)
        changed = tx.execute(
            "UPDATE entitlements SET revoked_at = ?, reason = ?"
            f" WHERE viewer_id = ? AND series_id = ? AND revoked_at IS NULL{condition}",
            (self._clock(), reason, viewer_id, series_id, *parameters),
        ).rowcount
        if changed:
            row = tx.fetch_one(
                f"SELECT {_COLUMNS} FROM entitlements WHERE viewer_id = ? AND series_id = ?",
                (viewer_id, series_id),
            )
            self._record_change(tx, "revoke", _entitlement(row), actor)
            log.info("revoked %s from %s", series_id, viewer_id)
        return changed == 1

    def audit_trail(
        self, *, viewer_id: str | None = None, series_id: str | None = None, limit: int = 100
    ) -> list[EntitlementEvent]:
        """The latest ``limit`` grants and revokes, newest first, optionally for one viewer/series."""
        conditions, parameters = [], []
        for column, value in (("viewer_id", viewer_id), ("series_id", series_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.query(
            f"SELECT * FROM entitlement_events{where} ORDER BY event_id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [EntitlementEvent(**dict(row)) for row in rows]

    def _record_change(self, tx: Transaction, action: str, entitlement: Entitlement, actor: str) -> None:
        # The audit line, and the change feed's row (on PostgreSQL its trigger NOTIFYs at commit).
        now = self._clock()
        tx.execute(
            "INSERT INTO entitlement_events (viewer_id, series_id, action, source, reason, actor, reference, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (entitlement.viewer_id, entitlement.series_id, action, entitlement.source, entitlement.reason,
             actor, entitlement.reference, now),
        )
        record_entitlement_change(tx, entitlement.viewer_id, entitlement.series_id, now)

    def notify_changed(self, viewer_id: str, series_id: str) -> None:
        """Tell this process's caches that the pair changed (after the change committed)."""
        for listener in self._listeners:
            listener(viewer_id, series_id)

    def is_entitled(self, viewer_id: str, series_id: str) -> bool:
        """True if the viewer holds an active entitlement. Raises InvalidId for a bad id.

        One primary-key lookup: the key path's question when its cache does not know.
        """
        check_id("viewer_id", viewer_id)
        check_id("series_id", series_id)
        return bool(self._db.query(
            "SELECT 1 FROM entitlements WHERE viewer_id = ? AND series_id = ? AND revoked_at IS NULL",
            (viewer_id, series_id),
        ))

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


def pair_lock(viewer_id: str, series_id: str) -> str:
    """The lock every change of one (viewer, series) entitlement takes (see Transaction.lock)."""
    return f"entitlement:{viewer_id}/{series_id}"


def _entitlement(row: Row) -> Entitlement:
    return Entitlement(
        viewer_id=row["viewer_id"],
        series_id=row["series_id"],
        source=row["source"],
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
        reason=row["reason"],
        reference=row["reference"],
    )


def _check_source(source: object) -> None:
    if source not in SOURCES:
        raise InvalidField("source", f"{source!r} is not one of {', '.join(sorted(SOURCES))}")


def _check_reason(reason: object) -> None:
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise InvalidField("reason", f"expected printable text of at most {MAX_REASON_CHARS} characters")

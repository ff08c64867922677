"""Who may watch which series: one row per (viewer, series), revocable and re-grantable.

Every change is also appended to an audit trail (entitlement_events): who granted or revoked
what, when, why, and on which reference (a payment id for purchases).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .database import Database, Row, Transaction
from .errors import InvalidField, NotEntitled
from .ids import check_id

log = logging.getLogger(__name__)

_COLUMNS = "viewer_id, series_id, source, granted_at, revoked_at, reason, reference"
SOURCES = frozenset({"purchase", "comp", "gift"})
MAX_REASON_CHARS = 500
MAX_CACHE_TTL_S = 5.0  # the product promise: a revocation stops key release within seconds
_CACHE_ENTRIES = 100_000


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
        self._listeners: list[Callable[[str, str], None]] = []

    def on_change(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(viewer_id, series_id)`` after each grant or revoke made through this store.

        Caches in this process use it to forget at once; other processes' writes reach them by TTL.
        """
        self._listeners.append(listener)

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
        tx.execute("INSERT INTO entitlement_changes (viewer_id, series_id, at) VALUES (?, ?, ?)",
                   (entitlement.viewer_id, entitlement.series_id, now))

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


class EntitlementCache:
    """``is_entitled`` answers remembered for at most ``ttl_s`` seconds, for the key path.

    A player fetches a key per rendition and period, so a view is many key requests for one
    (viewer, series); the cache keeps those off the database. Changes made through the given
    store are forgotten at once; changes by other processes (CLI, other instances) are seen
    within ``ttl_s``, which is why it may not exceed 5 s. ``ttl_s`` = 0 disables caching.
    """

    def __init__(
        self, store: EntitlementStore, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if type(ttl_s) not in (int, float) or not 0 <= ttl_s <= MAX_CACHE_TTL_S:
            raise ValueError(f"entitlement cache ttl_s is {ttl_s!r}; expected 0..{MAX_CACHE_TTL_S} seconds")
        self._store = store
        self._ttl_s = float(ttl_s)
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[bool, float]] = {}
        self._lock = threading.Lock()
        store.on_change(self.forget)

    def is_entitled(self, viewer_id: str, series_id: str) -> bool:
        """Like EntitlementStore.is_entitled, at most ``ttl_s`` seconds stale."""
        pair = (viewer_id, series_id)
        now = self._clock()
        with self._lock:
            remembered = self._answers.get(pair)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        answer = self._store.is_entitled(viewer_id, series_id)
        if self._ttl_s > 0:
            with self._lock:
                if len(self._answers) >= _CACHE_ENTRIES:
                    self._answers = {k: v for k, v in self._answers.items() if v[1] > now}
                    if len(self._answers) >= _CACHE_ENTRIES:
                        self._answers.clear()
                self._answers[pair] = (answer, now + self._ttl_s)
        return answer

    def require(self, viewer_id: str, series_id: str) -> None:
        """Return quietly if entitled (per the cache); raise NotEntitled otherwise."""
        if not self.is_entitled(viewer_id, series_id):
            raise NotEntitled(viewer_id, series_id)

    def forget(self, viewer_id: str, series_id: str) -> None:
        with self._lock:
            self._answers.pop((viewer_id, series_id), None)

"""Account-token revocation: "sign this account out everywhere", without rotating the signing key.

Per account, one instant: every token of that subject issued at or before it is refused, account tokens
and the playback tokens minted from them alike; tokens issued later are not (signing in again works).
It is Firebase Auth's tokensValidAfterTime rather than a deny-list of token ids: one row per account
however many tokens it holds, no lookup of what was minted, and tokens a host application minted
itself (Ed25519/ES256, tokens.py) are covered as well, since every token carries its `iat`.

`iat` is whole seconds, so the instant is the whole second of the revocation: a token minted in that
same second, even just after it, is refused too (sign in again a second later).

A row matters only while a token it refuses could still be unexpired: prune() drops rows older than the
longest account-token lifetime, so the whole table stays small enough to be held in memory by every
key server (server/access/revocations.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from drm.access.tokens import MAX_ACCOUNT_TOKEN_TTL_S
from drm.ids import check_id, field_id
from drm.storage.database import Database


class AccountRevocations:
    """Revocation instants by subject (a viewer or creator id), in the shared database. Thread-safe."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def revoke(self, subject: str, *, actor: str) -> int:
        """Refuse every token of `subject` issued up to now; returns that instant (unix s, whole).

        Revoking again moves the instant on. Raises InvalidField for a malformed subject or actor.
        """
        field_id("account", subject)
        if not isinstance(actor, str) or not 0 < len(actor) <= 200:
            raise ValueError(f"actor is {actor!r}; expected who revoked, e.g. 'cli' or 'operator:alice'")
        now = self._clock()
        not_before = int(now)
        with self._db.transaction() as tx:
            tx.execute("INSERT INTO account_revocations (subject, not_before, revoked_at, revoked_by)"
                       " VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET"
                       " not_before = excluded.not_before, revoked_at = excluded.revoked_at,"
                       " revoked_by = excluded.revoked_by", (subject, not_before, now, actor))
        return not_before

    def not_before(self, subject: str) -> int | None:
        """The subject's revocation instant, or None if its tokens were never revoked."""
        row = self._db.query_one("SELECT not_before FROM account_revocations WHERE subject = ?",
                                 (check_id("subject", subject),))
        return int(row[0]) if row else None

    def current(self) -> dict[str, int]:
        """subject -> revocation instant, for every revocation that may still refuse an unexpired token."""
        rows = self._db.query("SELECT subject, not_before FROM account_revocations WHERE not_before > ?",
                              (int(self._clock()) - MAX_ACCOUNT_TOKEN_TTL_S,))
        return {row[0]: int(row[1]) for row in rows}

    def prune(self) -> int:
        """Delete revocations older than the longest account-token lifetime (nothing left to refuse); how many."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM account_revocations WHERE not_before <= ?",
                              (int(self._clock()) - MAX_ACCOUNT_TOKEN_TTL_S,)).rowcount

"""Idempotency keys for the API's writes, kept in the database so every instance answers a retry alike.

The semantics of the IETF httpapi Idempotency-Key draft: a request with a key the same client used
before for the same request gets the first answer again; with a different request, 422; while the
first is still being processed, 409. A key is remembered for `ttl_s` (a day by default) and then
forgotten (prune()). Only successful answers are kept: a refused or failed write changed nothing
(every write is all-or-nothing), so its key is released and a retry runs again.

An instance that dies while holding a key leaves it "in flight" until `lock_s` passes; then a retry
runs the request again (our writes are idempotent by nature: absolute positions, set states).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drm.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from drm.storage.database import Database

DEFAULT_TTL_S = 24 * 3600.0
DEFAULT_LOCK_S = 60.0
MAX_KEY_CHARS = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]      # Content-Type, Location, ...
    body: bytes


class IdempotencyStore:
    """Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time, *, ttl_s: float = DEFAULT_TTL_S,
                 lock_s: float = DEFAULT_LOCK_S) -> None:
        self._db, self._clock, self._ttl_s, self._lock_s = db, clock, ttl_s, lock_s

    def begin(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim `key` of `scope` (who sends it) for a request with this fingerprint.

        None: go ahead (then call finish() or release()). A StoredResponse: the answer to replay.
        Raises IdempotencyKeyReused (same key, other request) and IdempotencyKeyInFlight.
        """
        now = self._clock()
        with self._db.transaction() as tx:
            tx.lock(f"idempotency:{scope}/{key}")
            row = tx.fetch_one("SELECT fingerprint, status, headers, body, locked_until, expires_at FROM"
                               " idempotency_keys WHERE scope = ? AND idempotency_key = ?", (scope, key))
            if row is not None and row["expires_at"] > now:
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused(key)
                if row["status"] is not None:
                    return StoredResponse(int(row["status"]), json.loads(row["headers"]), bytes(row["body"] or b""))
                if row["locked_until"] > now:
                    raise IdempotencyKeyInFlight(key)
            tx.execute(
                "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, status, headers, body, locked_until,"
                " expires_at) VALUES (?, ?, ?, NULL, '{}', NULL, ?, ?) ON CONFLICT (scope, idempotency_key) DO UPDATE"
                " SET fingerprint = excluded.fingerprint, status = NULL, headers = '{}', body = NULL,"
                " locked_until = excluded.locked_until, expires_at = excluded.expires_at",
                (scope, key, fingerprint, now + self._lock_s, now + self._ttl_s))
        return None

    def finish(self, scope: str, key: str, response: StoredResponse) -> None:
        """Keep the answer to the request that claimed `key`, for its retries."""
        with self._db.transaction() as tx:
            tx.execute("UPDATE idempotency_keys SET status = ?, headers = ?, body = ? WHERE scope = ?"
                       " AND idempotency_key = ? AND status IS NULL",
                       (response.status, json.dumps(dict(response.headers)), response.body, scope, key))

    def release(self, scope: str, key: str) -> None:
        """Forget a claimed key whose request changed nothing (refused or failed): a retry runs again."""
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM idempotency_keys WHERE scope = ? AND idempotency_key = ? AND status IS NULL",
                       (scope, key))

    def prune(self) -> int:
        """Forget keys past their retention; how many went."""
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM idempotency_keys WHERE expires_at < ?", (self._clock(),)).rowcount


def response_headers(headers: Mapping[str, str], names: tuple[str, ...] = ("Content-Type", "Location")) -> dict:
    """The headers of an answer worth replaying (not the edge's, which are added again)."""
    return {name: headers[name] for name in names if name in headers}

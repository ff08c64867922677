"""Version numbers for episode publishes, allocated in the service's database (SQLite or PostgreSQL).

Two publishes of one episode at once (two jobs on two service instances, or the CLI beside the
service) used to read the store, see the same highest version, and write into the same prefix.
Here the number comes from one row per episode, bumped by one atomic upsert: every caller sharing
the database gets a number nobody else got. The store is still read first, as a floor, so versions
written before this table existed (or by a tool without it) are never reused. The table's schema is a
step of drm/storage/migrations.py.

The same row serves as a short lease for the pointer switch, so two publishers that finish at the
same moment read and replace `published.json` one after the other (see packager.publishing.publish).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from drm.storage.database import Database
from packager.publishing.versions import EpisodeLocation, next_version
from packager.store import ObjectStore

log = logging.getLogger(__name__)

# A pointer switch is one small read and one small write; a holder that takes longer has died.
SWITCH_LEASE_S = 30.0
_SWITCH_POLL_S = 0.05

class SwitchLockTimeout(Exception):
    code = "pointer_switch_busy"


class EpisodeVersions:
    """Allocates version numbers and serialises pointer switches for every process sharing `db`'s file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def allocate(self, store: ObjectStore, location: EpisodeLocation) -> int:
        """A version of `location` no other caller was given, above every version in the store. Raises StoreError."""
        # read outside the transaction: a slow listing must not hold the database's write lock
        floor = next_version(store, location) - 1
        greatest = self._db.dialect.greatest
        with self._db.transaction() as conn:
            # One statement reads and bumps the row: at READ COMMITTED a SELECT then an UPDATE would let
            # two allocators read the same last_version; the upsert's row lock makes the second wait and
            # bump what the first wrote.
            (version,) = conn.fetch_one(
                "INSERT INTO episode_versions (series_id, episode_id, last_version) VALUES (?, ?, ?)"
                " ON CONFLICT (series_id, episode_id) DO UPDATE"
                f" SET last_version = {greatest}(episode_versions.last_version, excluded.last_version - 1) + 1"
                " RETURNING last_version",
                (location.series_id, location.episode_id, floor + 1))
        log.info("allocated %s v%d", location.prefix, version)
        return int(version)

    @contextmanager
    def switch_lock(self, location: EpisodeLocation, *, timeout_s: float = 2 * SWITCH_LEASE_S) -> Iterator[None]:
        """Hold the episode's pointer-switch lease for the block (across processes sharing the database).

        A lease, not an open transaction: the store write inside the block must not hold the database's
        write lock, which the key server and the payment webhook need. A holder that died is replaced
        once its lease ran out. Raises SwitchLockTimeout after `timeout_s`.
        """
        holder = f"{os.getpid()}-{secrets.token_hex(6)}"
        deadline = time.monotonic() + timeout_s
        while not self._try_take(location, holder):
            if time.monotonic() > deadline:
                raise SwitchLockTimeout(f"another publisher of {location.prefix} has held the pointer switch "
                                        f"for over {timeout_s:.0f} s")
            time.sleep(_SWITCH_POLL_S)
        try:
            yield
        finally:
            try:
                with self._db.transaction() as conn:
                    conn.execute("UPDATE episode_versions SET switch_holder = NULL, switch_until = NULL"
                                 " WHERE series_id = ? AND episode_id = ? AND switch_holder = ?",
                                 (location.series_id, location.episode_id, holder))
            except Exception as exc:  # noqa: BLE001 - the switch itself is done; the lease runs out anyway
                log.warning("could not release the pointer-switch lease of %s (it expires in %.0f s): %s",
                            location.prefix, SWITCH_LEASE_S, exc)

    def _try_take(self, location: EpisodeLocation, holder: str) -> bool:
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO episode_versions (series_id, episode_id, last_version) VALUES (?, ?, 0)"
                         " ON CONFLICT (series_id, episode_id) DO NOTHING",
                         (location.series_id, location.episode_id))
            cursor = conn.execute(
                "UPDATE episode_versions SET switch_holder = ?, switch_until = ?"
                " WHERE series_id = ? AND episode_id = ? AND (switch_holder IS NULL OR switch_until < ?)",
                (holder, now + SWITCH_LEASE_S, location.series_id, location.episode_id, now))
            return cursor.rowcount == 1

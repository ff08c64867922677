"""Content keys for HLS AES-128: created at ingest, stored wrapped under a master key."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drm.errors import InvalidId, KeyUnwrapFailed, UnknownKey
from drm.ids import check_id
from drm.storage.database import Database, Row

log = logging.getLogger(__name__)

MASTER_KEY_SIZE_BYTES = 32
CONTENT_KEY_SIZE_BYTES = 16
MIN_SIGNING_KEY_SIZE_BYTES = 32
_NONCE_SIZE_BYTES = 12
_WRAPPED_SIZE_BYTES = _NONCE_SIZE_BYTES + CONTENT_KEY_SIZE_BYTES + 16  # nonce, ciphertext, GCM tag
_AAD_PREFIX = b"drm.content_key.v1"
DEFAULT_CACHE_ENTRIES = 4096

# Playback tokens last minutes, not hours: a posted URL stops working soon, and players refresh theirs
# (server/keys/refresh.py) keeping their session.
DEFAULT_PLAYBACK_TOKEN_TTL_S = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class DrmSettings:
    """Secrets and lifetimes for drm/.

    Raises ValueError on a bad value (InvalidId on a malformed key id); messages
    name the field and never echo a secret.
    """

    master_key: bytes = field(repr=False)  # 32 bytes, AES-256-GCM key-encryption key
    master_key_id: str = "mk1"
    old_master_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    token_signing_keys: Mapping[str, bytes] = field(repr=False)  # kid -> HMAC secret, >= 32 bytes
    token_signing_kid: str
    token_ttl_s: int = DEFAULT_PLAYBACK_TOKEN_TTL_S

    def __post_init__(self) -> None:
        check_id("master_key_id", self.master_key_id)
        _check_secret("master_key", self.master_key, exact=MASTER_KEY_SIZE_BYTES)
        for master_key_id, key in self.old_master_keys.items():
            check_id("old master_key_id", master_key_id)
            _check_secret(f"old_master_keys[{master_key_id}]", key, exact=MASTER_KEY_SIZE_BYTES)
        if self.master_key_id in self.old_master_keys:
            raise ValueError(
                f"master key id {self.master_key_id} is both current and old; "
                "remove it from old_master_keys"
            )
        for kid, secret in self.token_signing_keys.items():
            check_id("token signing kid", kid)
            name = f"token_signing_keys[{kid}]"
            _check_secret(name, secret, minimum=MIN_SIGNING_KEY_SIZE_BYTES)
        if self.token_signing_kid not in self.token_signing_keys:
            raise ValueError(
                f"token_signing_kid {self.token_signing_kid!r} is not in token_signing_keys "
                f"(have {sorted(self.token_signing_keys)})"
            )
        if type(self.token_ttl_s) is not int or self.token_ttl_s <= 0:
            raise ValueError(f"token_ttl_s is {self.token_ttl_s!r}; expected a positive integer")
        # Private copies so a caller mutating its dict later cannot bypass the checks above.
        # Plain dicts, not MappingProxyType: settings are pickled into worker processes.
        object.__setattr__(self, "old_master_keys", dict(self.old_master_keys))
        object.__setattr__(self, "token_signing_keys", dict(self.token_signing_keys))


def _check_secret(name: str, value: object, *, exact: int = 0, minimum: int = 0) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    if exact and len(value) != exact:
        raise ValueError(f"{name} is {len(value)} bytes; expected exactly {exact}")
    if minimum and len(value) < minimum:
        raise ValueError(f"{name} is {len(value)} bytes; expected at least {minimum}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentKey:
    key_id: str  # opaque, "k_" + 22 url-safe characters
    series_id: str
    episode_id: str
    period: int  # crypto period index within the episode, from 0
    key: bytes = field(repr=False)  # 16 bytes, the AES-128 key players fetch


class KeyStore:
    """Creates, wraps, stores and unwraps content keys. Thread-safe; synchronous.

    Unwrapped keys are kept in a bounded in-memory LRU (``cache_entries``, ~0.3 KB each): rows
    never change their key, but a row deleted by another process stays servable here until evicted.
    """

    def __init__(
        self, db: Database, settings: DrmSettings, clock: Callable[[], float] = time.time, *,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        if type(cache_entries) is not int or cache_entries < 1:
            raise ValueError(f"cache_entries is {cache_entries!r}; expected a positive integer")
        self._db = db
        self._settings = settings
        self._clock = clock
        self._cache_entries = cache_entries
        self._cache: OrderedDict[str, ContentKey] = OrderedDict()
        self._cache_lock = threading.Lock()

    def create_keys(
        self, series_id: str, episode_id: str, periods: int, *, version: int | None = None
    ) -> list[ContentKey]:
        """Create ``periods`` fresh random keys for one episode, numbered 0..periods-1.

        ``version`` records which published version of the episode the keys encrypt, so that
        garbage collection can delete them with that version (see delete_version_keys).
        All rows are written in one transaction: either every key exists or none does.
        Raises InvalidId for a bad series/episode id, ValueError if ``periods`` < 1.
        """
        check_id("series_id", series_id)
        check_id("episode_id", episode_id)
        if type(periods) is not int or periods < 1:
            raise ValueError(f"periods is {periods!r}; expected an integer >= 1")
        keys = [
            ContentKey(
                key_id="k_" + secrets.token_urlsafe(16),
                series_id=series_id,
                episode_id=episode_id,
                period=period,
                key=secrets.token_bytes(CONTENT_KEY_SIZE_BYTES),
            )
            for period in range(periods)
        ]
        now = self._clock()
        current_id = self._settings.master_key_id
        rows = [
            (k.key_id, k.series_id, k.episode_id, k.period, self._wrap(k), current_id, now)
            for k in keys
        ]
        with self._db.transaction() as tx:
            tx.executemany(
                "INSERT INTO content_keys (key_id, series_id, episode_id, period, wrapped,"
                " master_key_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if version is not None:
                tx.executemany(
                    "INSERT INTO content_key_versions (key_id, series_id, episode_id, version)"
                    " VALUES (?, ?, ?, ?)",
                    [(k.key_id, series_id, episode_id, version) for k in keys],
                )
        for key in keys:
            self._remember(key)
        log.info("created %d content keys for %s/%s", periods, series_id, episode_id)
        return keys

    def get(self, key_id: str) -> ContentKey:
        """Return the unwrapped content key ``key_id``.

        Raises UnknownKey if no such row exists (a malformed id is simply unknown),
        KeyUnwrapFailed if the row's master key is not configured or the row was tampered with.
        """
        try:
            check_id("key_id", key_id)
        except InvalidId as exc:
            raise UnknownKey(key_id) from exc
        with self._cache_lock:
            cached = self._cache.get(key_id)
            if cached is not None:
                self._cache.move_to_end(key_id)
                return cached
        rows = self._db.query(
            "SELECT key_id, series_id, episode_id, period, wrapped, master_key_id"
            " FROM content_keys WHERE key_id = ?",
            (key_id,),
        )
        if not rows:
            raise UnknownKey(key_id)
        key = self._unwrap_row(rows[0])
        self._remember(key)
        return key

    def cached(self, key_id: str) -> ContentKey | None:
        """The unwrapped key if it is in memory, else None; never touches the database.

        Lets an async caller answer from memory and send only misses to a thread.
        """
        with self._cache_lock:
            found = self._cache.get(key_id)
            if found is not None:
                self._cache.move_to_end(key_id)
            return found

    def episode_key(self, key_id: str, series_id: str, episode_id: str) -> bytes | None:
        """The 16 key bytes of `key_id` if it is a key of that episode; None if unknown or another episode's.

        For the server decrypting an episode's own segments (thumbnails, a new poster, a republish's
        self-check): a playlist can only ever name its own episode's keys.
        """
        try:
            key = self.get(key_id)
        except UnknownKey:
            return None
        return key.key if (key.series_id, key.episode_id) == (series_id, episode_id) else None

    def delete_episode_keys(
        self, series_id: str, episode_id: str, keep_key_ids: Collection[str] = ()
    ) -> int:
        """Delete an episode's keys except ``keep_key_ids``; return how many rows went.

        Meant for cleaning up after a failed ingest. Raises InvalidId for a bad id.
        """
        check_id("series_id", series_id)
        check_id("episode_id", episode_id)
        keep = set(keep_key_ids)
        with self._db.transaction() as tx:
            found = tx.fetch_all(
                "SELECT key_id FROM content_keys WHERE series_id = ? AND episode_id = ?",
                (series_id, episode_id),
            )
            doomed = [row["key_id"] for row in found if row["key_id"] not in keep]
            tx.executemany("DELETE FROM content_keys WHERE key_id = ?", [(k,) for k in doomed])
        with self._cache_lock:
            for key_id in doomed:
                self._cache.pop(key_id, None)
        log.info("deleted %d content keys for %s/%s", len(doomed), series_id, episode_id)
        return len(doomed)

    def delete_keys(self, key_ids: Collection[str]) -> int:
        """Delete exactly these keys (those a failed ingest created); return how many rows went."""
        doomed = list(key_ids)
        with self._db.transaction() as tx:
            deleted = tx.executemany("DELETE FROM content_keys WHERE key_id = ?", [(k,) for k in doomed])
        with self._cache_lock:
            for key_id in doomed:
                self._cache.pop(key_id, None)
        return deleted

    def key_versions(self, series_id: str, episode_id: str) -> dict[int, float]:
        """Versions of an episode that have keys -> when their newest key was created (POSIX s)."""
        rows = self._db.query(
            "SELECT v.version AS version, MAX(k.created_at) AS created_at FROM content_key_versions v"
            " JOIN content_keys k ON k.key_id = v.key_id"
            " WHERE v.series_id = ? AND v.episode_id = ? GROUP BY v.version",
            (series_id, episode_id),
        )
        return {int(row["version"]): float(row["created_at"]) for row in rows}

    def versioned_episodes(self) -> list[tuple[str, str]]:
        """(series_id, episode_id) of every episode with keys tagged with a version."""
        rows = self._db.query(
            "SELECT DISTINCT series_id, episode_id FROM content_key_versions ORDER BY series_id, episode_id"
        )
        return [(str(row["series_id"]), str(row["episode_id"])) for row in rows]

    def delete_version_keys(self, series_id: str, episode_id: str, version: int) -> int:
        """Delete the keys of one version of an episode (its objects are gone); return how many."""
        with self._db.transaction() as tx:
            doomed = [row["key_id"] for row in tx.fetch_all(
                "SELECT key_id FROM content_key_versions WHERE series_id = ? AND episode_id = ? AND version = ?",
                (series_id, episode_id, version),
            )]
            tx.executemany("DELETE FROM content_keys WHERE key_id = ?", [(k,) for k in doomed])
        with self._cache_lock:
            for key_id in doomed:
                self._cache.pop(key_id, None)
        log.info("deleted %d content keys of %s/%s v%d", len(doomed), series_id, episode_id, version)
        return len(doomed)

    def rewrap_all(self) -> int:
        """Re-wrap every row not under the current master key; return how many changed.

        One transaction: if any row fails to unwrap (KeyUnwrapFailed), nothing changes.
        Once this returns, the old master keys can be dropped from the settings.
        """
        current_id = self._settings.master_key_id
        with self._db.transaction() as tx:
            rows = tx.fetch_all(
                "SELECT key_id, series_id, episode_id, period, wrapped, master_key_id"
                f" FROM content_keys WHERE master_key_id != ?{tx.dialect.for_update}",
                (current_id,),
            )
            updates = [
                (self._wrap(self._unwrap_row(row)), current_id, row["key_id"]) for row in rows
            ]
            tx.executemany(
                "UPDATE content_keys SET wrapped = ?, master_key_id = ? WHERE key_id = ?", updates
            )
        log.info("re-wrapped %d content keys under master key %s", len(updates), current_id)
        return len(updates)

    def _wrap(self, key: ContentKey) -> bytes:
        nonce = os.urandom(_NONCE_SIZE_BYTES)
        aad = _aad(key.key_id, key.series_id, key.episode_id, key.period)
        return nonce + AESGCM(self._settings.master_key).encrypt(nonce, key.key, aad)

    def _unwrap_row(self, row: Row) -> ContentKey:
        key_id, master_key_id = str(row["key_id"]), str(row["master_key_id"])
        series_id, episode_id = str(row["series_id"]), str(row["episode_id"])
        period = int(row["period"])
        if master_key_id == self._settings.master_key_id:
            master_key = self._settings.master_key
        elif master_key_id in self._settings.old_master_keys:
            master_key = self._settings.old_master_keys[master_key_id]
        else:
            raise KeyUnwrapFailed(
                f"content key {key_id} is wrapped under master key {master_key_id}, which is not "
                "configured; add it to old_master_keys and run rewrap_all()"
            )
        wrapped = row["wrapped"]
        if not isinstance(wrapped, bytes) or len(wrapped) != _WRAPPED_SIZE_BYTES:
            raise KeyUnwrapFailed(
                f"content key {key_id} has a malformed wrapped value; the row was altered"
            )
        nonce, sealed = wrapped[:_NONCE_SIZE_BYTES], wrapped[_NONCE_SIZE_BYTES:]
        try:
            aad = _aad(key_id, series_id, episode_id, period)
            clear = AESGCM(master_key).decrypt(nonce, sealed, aad)
        except InvalidTag as exc:
            raise KeyUnwrapFailed(
                f"content key {key_id} did not unwrap under master key {master_key_id}: "
                "the master key is wrong or the row was altered"
            ) from exc
        return ContentKey(
            key_id=key_id, series_id=series_id, episode_id=episode_id, period=period, key=clear
        )

    def _remember(self, key: ContentKey) -> None:
        with self._cache_lock:
            self._cache[key.key_id] = key
            self._cache.move_to_end(key.key_id)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)


def _aad(key_id: str, series_id: str, episode_id: str, period: int) -> bytes:
    # Binds the ciphertext to its row: a wrapped blob moved to another row (or a row whose ids or
    # period were edited) fails to unwrap. Unambiguous because ids cannot contain "|".
    parts = (key_id, series_id, episode_id, str(period))
    return b"|".join([_AAD_PREFIX, *(part.encode() for part in parts)])


"""What the key path keeps in memory so most key requests need no database and no signature check:
the entitlement snapshot (who bought what, which episodes are free previews, unpublished or deleted)
and verified tokens."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from drm.catalog import ORDINARY, EpisodeFacts, key_needs_entitlement
from drm.errors import TokenInvalid
from drm.tokens import PlaybackToken, TokenSigner
from server.services import Services

log = logging.getLogger(__name__)

SNAPSHOT_STALE_S = 10.0          # older than this (the refresh is failing): stop trusting it


class EntitlementSnapshot:
    """Every active (viewer, series) pair, reloaded when the database reports a committed change.

    Memory grows with active entitlements (~150 bytes each): fine to a few hundred thousand; past
    that, a per-viewer cache is the better trade.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (active pairs, facts of the episodes with a rule of their own (free preview, unpublished, deleted),
        # when checked, this process's own change count when loaded)
        self._state: tuple[frozenset[tuple[str, str]], dict[tuple[str, str], EpisodeFacts], float, int] = (
            frozenset(), {}, -math.inf, -1)
        self._marker: tuple[int, int] | None = None
        self._refreshing = threading.Lock()       # one refresh at a time keeps marker and pairs matched

    def refresh(self, services: Services) -> None:
        """Reload if anything was committed since the last load (blocking: call it in a thread)."""
        with self._refreshing:
            marker = services.db.change_marker()     # read first: a write racing the load forces the next one
            if marker != self._marker:
                pairs = services.entitlements.active_pairs()
                previews = services.catalog.special_episode_facts()
                self._marker = marker
                self._state = (pairs, previews, self._clock(), marker[1])
                log.debug("entitlement snapshot reloaded: %d active, %d episodes with rules", len(pairs), len(previews))
            else:
                self._state = (self._state[0], self._state[1], self._clock(), marker[1])

    def decide(self, viewer_id: str, series_id: str, episode_id: str | None, own_changes: int,
               test_viewer_ids: frozenset[str] = frozenset()) -> bool | None:
        """release_key()'s verdict from memory: True (entitled, or a free-preview episode), False
        (neither), or None when the snapshot cannot be trusted: False means "not entitled", None
        means "ask the database". Raises what the catalog's rule raises (key_needs_entitlement:
        EpisodeUnpublished, EpisodeDeleted), as release_key() does.

        `own_changes` is the database's current own_changes: if this process wrote since the load (a
        refund through this instance's API, say), the snapshot is not trusted until reloaded, so a
        change made here is enforced on the very next request.
        """
        pairs, previews, checked_at, loaded_changes = self._state
        if own_changes != loaded_changes or self._clock() - checked_at >= SNAPSHOT_STALE_S:
            return None
        facts = previews.get((series_id, episode_id), ORDINARY)
        if not key_needs_entitlement(facts, series_id, episode_id or "", viewer_id, test_viewer_ids):
            return True
        return (viewer_id, series_id) in pairs


class VerifiedTokens:
    """TokenSigner.verify that remembers tokens it verified until they expire: a player sends the same
    token for every key of a session, and PyJWT's verify (~50-90 µs) is the largest cost left on the
    key path.

    A token string that verified once stays valid until its exp (its signature cannot change, and the
    signing keys are fixed for the process), so a remembered token has only its expiry re-checked.
    Refused tokens are remembered as well, in a separate bounded LRU, so garbage cannot evict good
    tokens. Thread-safe: the event loop and release_key() in a worker thread share it.
    """

    def __init__(self, signer: TokenSigner, *, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._signer = signer
        self._max_entries = max_entries
        self._clock = clock
        self._tokens: OrderedDict[str, PlaybackToken] = OrderedDict()
        # Refusals too: a stuck player or a scraper replays the same bad token, and PyJWT checks a
        # refused token character by character (~100 µs). Kept as (error type, message) only.
        self._refused: OrderedDict[str, tuple[type[TokenInvalid], str]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str | None) -> PlaybackToken:
        """Same contract as TokenSigner.verify: the grant, or TokenInvalid / TokenExpired."""
        if not token:
            return self._signer.verify(token)
        with self._lock:
            found = self._tokens.get(token)
            if found is not None and self._clock() < found.expires_at:
                self._tokens.move_to_end(token)
                return found
            refused = self._refused.get(token)
        if refused is not None:
            error_type, message = refused
            raise error_type(message)        # a fresh exception: a shared one would grow its traceback
        try:
            grant = self._signer.verify(token)
        except TokenInvalid as exc:          # TokenExpired included: an expired token stays expired
            self._remember(self._refused, token, (type(exc), str(exc)))
            raise
        self._remember(self._tokens, token, grant)
        return grant

    def _remember(self, entries: OrderedDict, token: str, value) -> None:
        with self._lock:
            entries[token] = value
            if len(entries) > self._max_entries:
                entries.popitem(last=False)

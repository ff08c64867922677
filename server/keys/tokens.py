"""Verified playback tokens, remembered until they expire, so most key requests need no signature check.
(Who may watch what is remembered by the access room, server/access/.)"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from hashlib import blake2b

from drm.access.tokens import PlaybackToken, TokenSigner
from drm.errors import TokenInvalid


class VerifiedTokens:
    """TokenSigner.verify that remembers tokens it verified until they expire: a player sends the same
    token for every key of a session, and PyJWT's verify (~50-90 µs) is the largest cost left on the
    key path.

    A token string that verified once stays valid until its exp (its signature cannot change, and the
    signing keys are fixed for the process), so a remembered token has only its expiry re-checked.
    Refused tokens are remembered as well, in a separate bounded LRU, so garbage cannot evict good
    tokens. Tokens are remembered by a 128-bit BLAKE2b digest, not as sent: a token is ~300 characters
    (a forged one up to 4096), a digest 16 bytes, so memory per token stays ~0.35 KB whatever arrives.
    Thread-safe, though the key path uses it on the event loop only.
    """

    def __init__(self, signer: TokenSigner, *, max_entries: int = 50_000, max_refused: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._signer = signer
        self._max_entries, self._max_refused = max_entries, max_refused
        self._clock = clock
        self._tokens: OrderedDict[bytes, PlaybackToken] = OrderedDict()
        # Refusals too: a stuck player or a scraper replays the same bad token, and PyJWT checks a
        # refused token character by character (~100 µs). Kept as (error type, message) only.
        self._refused: OrderedDict[bytes, tuple[type[TokenInvalid], str]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str | None) -> PlaybackToken:
        """Same contract as TokenSigner.verify: the grant, or TokenInvalid / TokenExpired."""
        if not token:
            return self._signer.verify(token)
        digest = blake2b(token.encode(), digest_size=16).digest()
        with self._lock:
            found = self._tokens.get(digest)
            if found is not None and self._clock() < found.expires_at:
                self._tokens.move_to_end(digest)
                return found
            refused = self._refused.get(digest)
        if refused is not None:
            error_type, message = refused
            raise error_type(message)        # a fresh exception: a shared one would grow its traceback
        try:
            grant = self._signer.verify(token)
        except TokenInvalid as exc:          # TokenExpired included: an expired token stays expired
            self._remember(self._refused, self._max_refused, digest, (type(exc), sys.intern(str(exc))))
            raise
        # one series id string for every remembered token of a series (the access room keys on it too)
        grant = replace(grant, series_id=sys.intern(grant.series_id))
        self._remember(self._tokens, self._max_entries, digest, grant)
        return grant

    def __len__(self) -> int:
        return len(self._tokens) + len(self._refused)

    def _remember(self, entries: OrderedDict, limit: int, digest: bytes, value) -> None:
        with self._lock:
            entries[digest] = value
            while len(entries) > limit:
                entries.popitem(last=False)

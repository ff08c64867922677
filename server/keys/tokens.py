"""Verified playback tokens, remembered until they expire, so most key requests need no signature check.
(Who may watch what is remembered by the access room, server/access/.)"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from drm.errors import TokenInvalid
from drm.tokens import PlaybackToken, TokenSigner


class VerifiedTokens:
    """TokenSigner.verify that remembers tokens it verified until they expire: a player sends the same
    token for every key of a session, and PyJWT's verify (~50-90 µs) is the largest cost left on the
    key path.

    A token string that verified once stays valid until its exp (its signature cannot change, and the
    signing keys are fixed for the process), so a remembered token has only its expiry re-checked.
    Refused tokens are remembered as well, in a separate bounded LRU, so garbage cannot evict good
    tokens. Thread-safe, though the key path uses it on the event loop only.
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

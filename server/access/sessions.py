"""The concurrent-session limit on the key path: admissions remembered, so a playing session costs one
database write per half of SERIES_SESSION_IDLE_S (150 s by default), not one per key request.

drm/access/sessions.py holds the sessions every key server counts (and says why a session beyond the limit is
refused rather than evicting the oldest). This remembers, per process, the sessions it admitted, each
for half the idle time. Two bounds meet there: the database counts a session as live for the whole
idle time after its last write, so a session this memory lets through is always one the database
still counts, on every key server, and no process can let in more than the limit; and a playing
session, which asks for a key about once a key period (about 60 s), is written again before it could
lapse (half the idle time plus a key period is less than the idle time), so another session cannot
take its place while it plays. With the defaults, a playing session is written every third key or so. Bounded like the rest of the access room's
memory (SERIES_TOKEN_CACHE_ENTRIES: one entry per playing session).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from drm.access.sessions import PlaybackSessions
from server.access.memory import MISSING, AnswerCache
from server.config import AccessSettings

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0


class AdmittedSessions:
    """(viewer, session) pairs admitted within half the idle time; event loop only."""

    def __init__(self, store: PlaybackSessions, settings: AccessSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.limit = settings.max_sessions
        self.idle_s = settings.session_idle_s
        self._clock = clock
        self._admitted = AnswerCache(settings.token_entries, max_age_s=settings.session_idle_s / 2)

    @property
    def is_limited(self) -> bool:
        return self.limit > 0

    def is_admitted(self, viewer_id: str, session_id: str) -> bool:
        """Whether the session was admitted recently enough to need no database (always, with no limit)."""
        return self.limit == 0 or self._admitted.get((viewer_id, session_id), self._clock()) is not MISSING

    def admitted(self, viewer_id: str, session_id: str, at: float) -> None:
        """Remember an admission the database made at `at` (this clock, taken before the write)."""
        self._admitted.put((viewer_id, session_id), True, at)

    def forget(self, viewer_id: str, session_id: str) -> None:
        self._admitted.discard((viewer_id, session_id))

    def clock(self) -> float:
        return self._clock()

    def __len__(self) -> int:
        return len(self._admitted)

    async def prune_forever(self, in_thread: Callable) -> None:
        """Delete lapsed sessions of viewers who never came back, about every PRUNE_EVERY_S."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_S * random.uniform(0.5, 1.5))
            try:
                pruned = await in_thread(self.store.prune, idle_s=self.idle_s)
            except Exception as exc:  # noqa: BLE001 - the next prune catches up
                log.warning("could not prune lapsed playback sessions: %s", exc)
            else:
                if pruned:
                    log.info("pruned %d lapsed playback sessions", pruned)

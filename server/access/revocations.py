"""Account revocations in memory: every current one (drm/access/revocations.py), reloaded every second.

The table holds one row per account revoked within the longest account-token lifetime (30 days), so
every process can hold all of it, and a check is one dict lookup: account requests and the key path
check every token against it without touching the database. Reloaded whole rather than followed as
a feed: revocations are rare and the table small, a whole reload cannot miss a row however commits
interleave, and a revocation reaches every process within RELOAD_INTERVAL_S (plus the reload's own
time). A revocation through this process is held at once (noted()).

Access (gate.py) trusts the memory only within FRESHNESS_S of the last successful reload, as it trusts
its other memory: past that, a token cannot be checked, and is refused (503) rather than let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from drm.access.revocations import AccountRevocations

log = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 1.0
PRUNE_EVERY_S = 3600.0


class RevokedAccounts:
    """subject -> revocation instant (unix s) for every current revocation; event loop only."""

    def __init__(self, store: AccountRevocations, *, clock: Callable[[], float] = time.monotonic,
                 count_query: Callable[[str], None] = lambda what: None) -> None:
        self._store = store
        self._clock = clock
        self._count_query = count_query
        self.not_before: dict[str, int] = {}
        self._noted: dict[str, tuple[int, float]] = {}      # subject -> (instant, clock() when noted)
        self.fresh_at = -float("inf")       # clock() when the last successful reload started
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="revocations")
        self._tasks: list[asyncio.Task] = []
        self._failing = False

    async def start(self) -> None:
        """Load every current revocation, then reload every second. Raises DrmError when the database
        cannot be read at start-up (the service does not start)."""
        await self.reload()
        self._tasks = [asyncio.create_task(self._reload_forever(), name="revocations-reload"),
                       asyncio.create_task(self._prune_forever(), name="revocations-prune")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def reload(self) -> None:
        """Read every current revocation. Raises DrmError when the database fails."""
        started = self._clock()
        current = await asyncio.get_running_loop().run_in_executor(self._executor, self._store.current)
        self._count_query("revocations")
        # a revocation noted after this reload's read began may be missing from it: keep it
        self._noted = {subject: noted for subject, noted in self._noted.items() if noted[1] >= started}
        for subject, (not_before, _) in self._noted.items():
            current[subject] = max(not_before, current.get(subject, not_before))
        self.not_before = current
        self.fresh_at = started

    def noted(self, subject: str, not_before: int) -> None:
        """A revocation this process just wrote: held at once, not at the next reload."""
        self._noted[subject] = (not_before, self._clock())
        self.not_before[subject] = max(not_before, self.not_before.get(subject, not_before))

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL_S)
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - DatabaseUnavailable, a locked SQLite file: keep trying
                if not self._failing:
                    log.warning("account revocations cannot be reloaded (%s); account and playback tokens are "
                                "refused with 503 from 5 s after the last good reload until it works again", exc)
                self._failing = True
            else:
                if self._failing:
                    log.warning("account revocations are readable again")
                self._failing = False

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S * random.uniform(0.5, 1.5))
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._store.prune)
            except Exception as exc:  # noqa: BLE001 - the next prune catches up
                log.warning("could not prune old account revocations: %s", exc)

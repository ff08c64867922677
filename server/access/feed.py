"""Following the change feed (drm/access/entitlement_changes.py) so the access room's memory stays true.

Per process:
  * a poll of the outbox every POLL_INTERVAL_S from a watermark the feed hands back (transaction-id
    based on PostgreSQL, so commit order cannot skip a row), on its own thread so it never queues
    behind other work;
  * on PostgreSQL, one dedicated LISTEN connection on a thread of its own: a notification evicts its
    pair within milliseconds. On every (re)connect it LISTENs first, then asks for a poll at once, so
    whatever was sent while it was away is read from the outbox;
  * the time the last successful poll started: memory is trusted only within FRESHNESS_S of it (past
    that, every answer comes from the database, and with the database down, none comes at all);
  * a prune of old outbox rows every PRUNE_EVERY_S (every instance may run it; deletes are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from drm.access.entitlement_changes import EntitlementChanges, EntitlementFeed, parse_notification
from drm.errors import DrmError
from drm.storage.database import Database
from drm.storage.migrations import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
FRESHNESS_S = 5.0               # memory is trusted this long after the last successful poll started
RETENTION_S = 3600.0            # outbox rows are kept this long; a reader away for half of it starts over
PRUNE_EVERY_S = 600.0
LISTEN_WAIT_S = 0.5             # the listening thread checks for shutdown this often
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 5.0


class FeedFollower:
    """Polls (and on PostgreSQL listens to) the change feed and hands what changed to the access room.

    Callbacks run on the event loop: `on_changes(changes)` for a poll's result, `on_notification(viewer_id,
    series_id, episode_id)` for a NOTIFY (episode_id None for an entitlement, viewer_id "" for an episode),
    and `on_reset()` when everything remembered must go (the feed overflowed its limit, or this process
    was away longer than the outbox keeps rows).
    """

    def __init__(self, db: Database, *, on_changes: Callable[[EntitlementChanges], None],
                 on_notification: Callable[[str, str, str | None], None], on_reset: Callable[[], None],
                 count_query: Callable[[str], None] = lambda what: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._feed = EntitlementFeed(db)
        self._on_changes, self._on_notification, self._on_reset = on_changes, on_notification, on_reset
        self._count_query = count_query
        self._clock = clock
        self.fresh_at = -float("inf")       # clock() when the last successful poll started
        self._watermark: int | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="change-feed")
        self._tasks: list[asyncio.Task] = []
        self._poll_soon = asyncio.Event()
        self._stopping = threading.Event()
        self._listening: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing_since: float | None = None
        self.is_listening = False           # PostgreSQL: the LISTEN connection is up (for /healthz and tests)

    def is_fresh(self, now: float) -> bool:
        return now - self.fresh_at <= FRESHNESS_S

    async def start(self) -> None:
        """Take the starting watermark (so memory is fresh from the first request), then poll, listen, prune.
        Raises DrmError (DatabaseUnavailable) when the database cannot be read at start-up."""
        self._loop = asyncio.get_running_loop()
        started = self._clock()
        self._watermark = await self._in_thread(self._feed.watermark)
        self.fresh_at = started
        self._tasks = [asyncio.create_task(self._poll_forever(), name="change-feed-poll"),
                       asyncio.create_task(self._prune_forever(), name="change-feed-prune")]
        listener = self._db.listener(NOTIFY_CHANNEL)
        if listener is not None:
            self._listening = threading.Thread(target=self._listen_forever, args=(listener,),
                                               name="change-feed-listen", daemon=True)
            self._listening.start()

    async def close(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listening is not None:
            await asyncio.to_thread(self._listening.join, 2 * LISTEN_WAIT_S + 5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def poll_soon(self) -> None:
        """Have the next poll start now rather than at its interval (event loop only)."""
        self._poll_soon.set()

    async def poll(self) -> None:
        """One poll: read what changed since the watermark and apply it. Raises DrmError when the database fails."""
        started = self._clock()
        changes = await self._in_thread(self._feed.changes_since, self._watermark)
        self._count_query("feed")
        if started - self.fresh_at > RETENTION_S / 2:
            # away so long that rows this process never read may have been pruned: forget everything
            log.warning("the change feed was unreadable for %.0f s; forgetting every remembered answer",
                        started - self.fresh_at)
            self._on_reset()
        elif not changes.is_complete:
            log.warning("more than %d changes since the last poll; forgetting every remembered answer",
                        len(changes.pairs) + len(changes.episodes))
            self._on_reset()
        else:
            self._on_changes(changes)
        self._watermark = changes.watermark
        self.fresh_at = started

    async def _poll_forever(self) -> None:
        while True:
            self._poll_soon.clear()
            started = self._clock()
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - DatabaseUnavailable, a locked SQLite file, ...: keep polling
                self._note_failure(f"the change feed cannot be read: {exc}")
            else:
                self._note_recovery()
            wait_s = max(0.0, POLL_INTERVAL_S - (self._clock() - started))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poll_soon.wait(), wait_s)

    async def _prune_forever(self) -> None:
        while True:
            # spread out, so that instances started together do not all prune at the same moment
            await asyncio.sleep(PRUNE_EVERY_S * random.uniform(0.5, 1.5))
            try:
                pruned = await self._in_thread(self._feed.prune, older_than_s=RETENTION_S)
                self._count_query("feed")
                if pruned:
                    log.info("pruned %d change-feed rows older than %.0f s", pruned, RETENTION_S)
            except Exception as exc:  # noqa: BLE001 - the next prune catches up
                log.warning("could not prune the change feed (next try in about %.0f s): %s", PRUNE_EVERY_S, exc)

    def _listen_forever(self, listener) -> None:
        """The listening thread: (re)connect, LISTEN, ask for a poll, hand notifications to the loop."""
        delay_s = RECONNECT_FIRST_S
        with listener:
            while not self._stopping.is_set():
                try:
                    listener.listen()
                    self._call_on_loop(self._listening_again)
                    delay_s = RECONNECT_FIRST_S
                    while not self._stopping.is_set():
                        payloads = listener.wait(LISTEN_WAIT_S)
                        if payloads:
                            self._call_on_loop(self._notified, payloads)
                except DrmError as exc:
                    self._call_on_loop(self._listen_lost, str(exc), delay_s)
                    listener.close()
                    self._stopping.wait(delay_s)
                    delay_s = min(2 * delay_s, RECONNECT_MAX_S)

    def _listening_again(self) -> None:
        if not self.is_listening:
            log.info("listening for entitlement changes (%s)", self._db.describe())
        self.is_listening = True
        self.poll_soon()            # LISTEN first, then read what may have been sent meanwhile

    def _listen_lost(self, reason: str, retry_in_s: float) -> None:
        if self.is_listening:
            log.warning("lost the change-feed LISTEN connection (%s); polling every %.0f s meanwhile, reconnecting "
                        "in %.1f s", reason, POLL_INTERVAL_S, retry_in_s)
        self.is_listening = False

    def _notified(self, payloads: list[str]) -> None:
        for payload in payloads:
            parsed = parse_notification(payload)
            if parsed is None:
                log.warning("ignored a malformed change notification %r", payload[:100])
                continue
            self._on_notification(*parsed)

    def _note_failure(self, message: str) -> None:
        if self._failing_since is None:
            self._failing_since = self._clock()
            log.warning("%s; memory is trusted for %.0f s after the last good poll, then every key request asks "
                        "the database (503 while it is down)", message, FRESHNESS_S)

    def _note_recovery(self) -> None:
        if self._failing_since is not None:
            log.warning("the change feed is readable again after %.1f s", self._clock() - self._failing_since)
            self._failing_since = None

    def _call_on_loop(self, callback: Callable, *args) -> None:
        with contextlib.suppress(RuntimeError):     # the loop closed while this thread was stopping
            self._loop.call_soon_threadsafe(callback, *args)

    async def _in_thread(self, function: Callable, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

"""Access: "may this viewer watch this episode?", answered from memory when memory is fresh, else from
the database, the same rule (server/access/rule.py) either way.

What one process remembers, all bounded (server/access/memory.py), none of it growing with the number of
buyers: per (viewer, series) whether the viewer is entitled (a separate, smaller memory for refusals, so
a scraper's unpaid requests cannot push out buyers' answers), and per episode its facts (free preview,
...). Misses go to the database in the access room's own threads, one lookup in flight per pair
(single-flight): a player asking for several keys at once, or a thousand viewers of a launch, cost one
query per pair, not one per request.

The change feed (server/access/feed.py) keeps memory true: a grant or revoke anywhere evicts its pair
within milliseconds on PostgreSQL (NOTIFY) and within a poll (POLL_INTERVAL_S) otherwise; writes through
this process evict at once. Memory is trusted only while the feed is fresh (FRESHNESS_S since the last
successful poll); past that, every answer comes from the database, and with the database unreachable
the answer is DatabaseUnavailable (503), never a grant from stale memory.

A lookup that was in flight while its pair (or anything) was evicted still answers its own request, but
is not remembered: it may have read the database just before the change committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from drm.access.entitlement_changes import EntitlementChanges
from drm.access.tokens import PlaybackToken
from drm.errors import DatabaseUnavailable, TokenRevoked
from server.access.feed import FRESHNESS_S, FeedFollower
from server.access.memory import MISSING, AnswerCache
from server.access.revocations import RevokedAccounts
from server.access.rule import Verdict, may_watch, refusal
from server.access.sessions import AdmittedSessions
from server.config import AccessSettings
from server.services import Services

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_S = 3.0          # a database that does not answer a point lookup in this long is "unavailable"
RETRY_DOWN_AFTER_S = 1.0        # after a failed lookup, refuse at once for this long instead of queueing on it
UNAVAILABLE_LOG_EVERY_S = 10.0  # one warning per outage and then this often, not one per refused request
T = TypeVar("T")


class AccessUnavailable(Exception):
    """Whether the viewer may watch cannot be decided now: memory is not fresh and the database does not
    answer. Refused (fail closed), never granted from stale memory. Logged once by the access room."""

    code = "database_unavailable"
    http_status = 503
    retry_after_s = 2
    is_logged = True

    def __init__(self) -> None:
        super().__init__("access cannot be checked right now (the database is unavailable); retry in a few seconds")

    def __reduce__(self):
        return type(self), ()


class Access:
    """The access room's state for one process (one event loop). Start it with start(), close with close().

    Everything but the lookups themselves runs on the event loop; the stores' change listeners (called in
    writers' threads) hand their evictions to the loop.
    """

    def __init__(self, services: Services, settings: AccessSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._services = services
        self._clock = clock
        self._test_viewer_ids = services.settings.catalog.test_viewer_ids   # see unpublished episodes
        self._entitled = AnswerCache(settings.entitled_entries, settings.max_age_s)
        self._refused = AnswerCache(settings.refused_entries, settings.max_age_s)
        self._episodes = AnswerCache(settings.episode_entries, settings.max_age_s)
        self._in_flight: dict[tuple[str, str, str], asyncio.Task] = {}
        self._evictions = 0          # moves on every eviction: a lookup that overlapped one is not remembered
        self.database_queries: dict[str, int] = {}      # what -> count: entitlement, episode, key, feed
        # The key path's own threads: segment and playlist reads share the default pool and can wait on
        # the store for seconds; lookups must not queue behind them.
        self.lookups = ThreadPoolExecutor(max_workers=settings.lookup_threads, thread_name_prefix="key-lookup")
        self.feed = FeedFollower(services.db, on_changes=self._apply_changes, on_notification=self._apply_notification,
                                 on_reset=self.forget_everything, count_query=self.count_query, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._unavailable_logged_at = -float("inf")
        self._down_until = -float("inf")     # until then, lookups are refused without trying (see in_lookup_thread)
        self.sessions = AdmittedSessions(services.sessions, settings, clock=clock)
        self.revoked = RevokedAccounts(services.revocations, clock=clock, count_query=self.count_query)
        self._housekeeping: asyncio.Task | None = None

    async def start(self) -> None:
        """Subscribe to this process's writes, take the change feed's watermark and follow it.
        Raises DatabaseUnavailable when the database cannot be read (the service does not start)."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = [
            self._services.entitlements.on_change(lambda viewer_id, series_id: self._call_on_loop(
                self.forget_entitlement, viewer_id, series_id)),
            self._services.catalog.on_episode_change(lambda series_id, episode_id: self._call_on_loop(
                self.forget_episode, series_id, episode_id)),
        ]
        await self.feed.start()
        await self.revoked.start()
        self._housekeeping = asyncio.create_task(self.sessions.prune_forever(
            lambda function, **kwargs: self.in_lookup_thread("session", lambda: function(**kwargs))))

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self.revoked.close()
        await self.feed.close()
        for task in list(self._in_flight.values()):
            task.cancel()
        self.lookups.shutdown(wait=False, cancel_futures=True)

    # -- the questions -------------------------------------------------------------------------------

    def decide_from_memory(self, viewer_id: str, series_id: str, episode_id: str) -> Verdict | None:
        """The verdict when memory is fresh and holds everything the rule needs, else None (then ask
        require_may_watch()). Never touches the database: the key path calls it on the event loop."""
        now = self._clock()
        if not self.feed.is_fresh(now):
            return None
        facts = self._episodes.get((series_id, episode_id), now)
        if facts is MISSING:
            return None
        verdict = may_watch(facts, series_id, episode_id, viewer_id, None, test_viewer_ids=self._test_viewer_ids)
        if verdict is not Verdict.NEEDS_ENTITLEMENT:
            return verdict
        pair = (viewer_id, series_id)
        if self._entitled.get(pair, now) is not MISSING:
            return Verdict.GRANTED
        if self._refused.get(pair, now) is not MISSING:
            return Verdict.NOT_ENTITLED
        return None

    async def verdict(self, viewer_id: str, series_id: str, episode_id: str) -> Verdict:
        """The verdict, from memory where it is fresh and from the database for the rest.

        Raises AccessUnavailable (503) when the database is needed and does not answer within
        LOOKUP_TIMEOUT_S."""
        facts = await self._remembered_or_looked_up(("episode", series_id, episode_id), self._episodes)
        verdict = may_watch(facts, series_id, episode_id, viewer_id, None, test_viewer_ids=self._test_viewer_ids)
        if verdict is Verdict.NEEDS_ENTITLEMENT:
            entitled = await self._entitlement(viewer_id, series_id)
            verdict = may_watch(facts, series_id, episode_id, viewer_id, entitled,
                                test_viewer_ids=self._test_viewer_ids)
        return verdict

    async def require_may_watch(self, viewer_id: str, series_id: str, episode_id: str) -> None:
        """Return quietly when the viewer may watch the episode; raise the refusal (NotEntitled or
        EpisodeUnpublished: 403, EpisodeDeleted: 410) or AccessUnavailable (503) otherwise. The token's
        series is the caller's check (WrongSeries)."""
        verdict = self.decide_from_memory(viewer_id, series_id, episode_id)
        if verdict is None:
            verdict = await self.verdict(viewer_id, series_id, episode_id)
        if verdict is not Verdict.GRANTED:
            raise refusal(verdict, viewer_id, series_id, episode_id)

    def check_not_revoked(self, subject: str, issued_at: int, what: str = "token") -> None:
        """Return quietly unless `subject`'s tokens were revoked at or after `issued_at` (unix s): then raise
        TokenRevoked (401). AccessUnavailable (503) when the revocations in memory are not fresh: a token
        that cannot be checked is refused, never let through. One dict lookup; the key path calls it."""
        if self._clock() - self.revoked.fresh_at > FRESHNESS_S:
            raise AccessUnavailable()
        not_before = self.revoked.not_before.get(subject)
        if not_before is not None and issued_at <= not_before:
            raise TokenRevoked(f"this {what} was revoked (every token of account {subject} issued up to "
                               f"{not_before}, unix s); sign in again")

    async def admit_session(self, viewer: PlaybackToken) -> None:
        """Count the token's session as live (drm/access/sessions.py): at once when admitted recently, else in the
        access room's threads. Raises SessionLimitReached (403) for a new session beyond the viewer's limit,
        AccessUnavailable (503) when the database cannot be reached."""
        sessions = self.sessions
        if sessions.is_admitted(viewer.viewer_id, viewer.session_id):
            return
        started = sessions.clock()
        await self.in_lookup_thread("session", lambda: sessions.store.admit(
            viewer.viewer_id, viewer.session_id, limit=sessions.limit, idle_s=sessions.idle_s))
        sessions.admitted(viewer.viewer_id, viewer.session_id, started)

    async def require_shown(self, series_id: str, episode_id: str) -> None:
        """Return quietly when the episode may be shown to anyone at all (what public pictures, its poster,
        need): raise EpisodeUnpublished (403) or EpisodeDeleted (410) otherwise, or AccessUnavailable (503).
        Asks the episode's facts only, from the same memory as require_may_watch(); no viewer, no entitlement."""
        facts = await self._remembered_or_looked_up(("episode", series_id, episode_id), self._episodes)
        verdict = may_watch(facts, series_id, episode_id, "", None)
        if verdict in (Verdict.UNPUBLISHED, Verdict.DELETED):
            raise refusal(verdict, "", series_id, episode_id)

    async def in_lookup_thread(self, what: str, function: Callable[..., T], *args: Any) -> T:
        """Run a database read of the key path (`what` names it in the query count) in the access room's
        threads, bounded by LOOKUP_TIMEOUT_S. Raises AccessUnavailable (503) when the database is
        unavailable or too slow (the cause is logged here, at most every UNAVAILABLE_LOG_EVERY_S), and for
        RETRY_DOWN_AFTER_S after that without trying: during an outage requests get their 503 at once
        instead of each waiting out the pool."""
        if self._clock() < self._down_until:
            raise AccessUnavailable()        # failed a moment ago: answer now, not after another wait
        loop = asyncio.get_running_loop()
        self.count_query(what)
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.lookups, function, *args), LOOKUP_TIMEOUT_S)
        except asyncio.TimeoutError:
            cause: Exception = DatabaseUnavailable(f"{self._services.db.describe()}: no answer to a {what} lookup "
                                                   f"within {LOOKUP_TIMEOUT_S:g} s")
        except DatabaseUnavailable as exc:
            cause = exc
        now = self._clock()
        self._down_until = now + RETRY_DOWN_AFTER_S
        if now - self._unavailable_logged_at >= UNAVAILABLE_LOG_EVERY_S:
            self._unavailable_logged_at = now
            log.warning("key requests are refused with 503 while the database is unavailable: %s", cause)
        raise AccessUnavailable() from cause

    # -- evictions (event loop) ----------------------------------------------------------------------

    def forget_entitlement(self, viewer_id: str, series_id: str) -> None:
        self._evictions += 1
        pair = (viewer_id, series_id)
        self._entitled.discard(pair)
        self._refused.discard(pair)

    def forget_episode(self, series_id: str, episode_id: str) -> None:
        self._evictions += 1
        self._episodes.discard((series_id, episode_id))

    def forget_everything(self) -> None:
        self._evictions += 1
        for memory in (self._entitled, self._refused, self._episodes):
            memory.clear()

    def feed_age_s(self) -> float:
        """Seconds since the last successful change-feed poll started."""
        return self._clock() - self.feed.fresh_at

    def remembered(self) -> dict[str, int]:
        """How many answers are held, by kind (for metrics and the benchmark)."""
        return {"entitled": len(self._entitled), "refused": len(self._refused), "episodes": len(self._episodes),
                "sessions": len(self.sessions), "revoked_accounts": len(self.revoked.not_before)}

    def count_query(self, what: str) -> None:
        self.database_queries[what] = self.database_queries.get(what, 0) + 1

    # -- internals -----------------------------------------------------------------------------------

    def _apply_changes(self, changes: EntitlementChanges) -> None:
        for viewer_id, series_id in changes.pairs:
            self.forget_entitlement(viewer_id, series_id)
        for series_id, episode_id in changes.episodes:
            self.forget_episode(series_id, episode_id)

    def _apply_notification(self, viewer_id: str, series_id: str, episode_id: str | None) -> None:
        if episode_id is None:
            self.forget_entitlement(viewer_id, series_id)
        else:
            self.forget_episode(series_id, episode_id)

    async def _entitlement(self, viewer_id: str, series_id: str) -> bool:
        now = self._clock()
        pair = (viewer_id, series_id)
        if self.feed.is_fresh(now):
            if self._entitled.get(pair, now) is not MISSING:
                return True
            if self._refused.get(pair, now) is not MISSING:
                return False
        return await self._look_up(("entitlement", viewer_id, series_id))

    async def _remembered_or_looked_up(self, what: tuple[str, str, str], memory: AnswerCache) -> Any:
        now = self._clock()
        if self.feed.is_fresh(now):
            found = memory.get(what[1:], now)
            if found is not MISSING:
                return found
        return await self._look_up(what)

    async def _look_up(self, what: tuple[str, str, str]) -> Any:
        """The database's answer for `what`, one lookup in flight per `what` whoever asks; a caller that
        gives up (its client left) does not cancel it for the others."""
        task = self._in_flight.get(what)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read_and_remember(what))
            self._in_flight[what] = task
            task.add_done_callback(lambda done: self._lookup_done(what, done))
        return await asyncio.shield(task)

    def _lookup_done(self, what: tuple[str, str, str], task: asyncio.Task) -> None:
        if self._in_flight.get(what) is task:
            del self._in_flight[what]
        if not task.cancelled():
            task.exception()        # retrieved: waiters that gave up must not leave it "never retrieved"

    async def _read_and_remember(self, what: tuple[str, str, str]) -> Any:
        kind, first, second = what
        evictions, started = self._evictions, self._clock()
        if kind == "entitlement":
            answer = await self.in_lookup_thread("entitlement", self._services.entitlements.is_entitled, first, second)
            memory = self._entitled if answer else self._refused
        else:
            answer = await self.in_lookup_thread("episode", self._services.catalog.episode_facts, first, second)
            memory = self._episodes
        if self._evictions == evictions and self.feed.is_fresh(started) and self.feed.is_fresh(self._clock()):
            if kind == "entitlement":
                (self._refused if answer else self._entitled).discard(what[1:])
            memory.put(what[1:], answer, started)
        return answer

    def _call_on_loop(self, callback: Callable, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):     # the loop is closed: nothing left to evict from
            self._loop.call_soon_threadsafe(callback, *args)


__all__ = ["Access", "AccessUnavailable", "FRESHNESS_S", "LOOKUP_TIMEOUT_S"]

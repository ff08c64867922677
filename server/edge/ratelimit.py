"""Token-bucket rate limits in bounded memory: key requests per viewer and per client address, and
failed authentications per client address (AuthFailureLimiter).

A player fetches one key per key period (about 60 s) and a few more when it seeks or switches
rendition, so the defaults leave a normal viewer two orders of magnitude of headroom while a
scraper replaying one token, or one address hammering with many tokens, is slowed to the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from server.config.http import AuthFailureSettings, RateLimitSettings

SWEEP_INTERVAL_S = 1.0      # how often idle buckets are looked for


class RateLimited(Exception):
    """Too many key requests from one viewer or one address; retry after `retry_after_s`."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, scope: str, retry_after_s: int) -> None:
        # The message names the scope but not the viewer or address: it goes back to the client.
        super().__init__(f"too many key requests for this {scope}; retry in {retry_after_s} s")
        self.scope, self.retry_after_s = scope, retry_after_s

    def __reduce__(self):
        return type(self), (self.scope, self.retry_after_s)


class TokenBuckets:
    """One token bucket per key (a viewer id, an address), refilled at `rate_per_s` up to `burst`.

    Memory is bounded: buckets live in least-recently-used order, a bucket idle long enough to be
    full again is dropped (absent and full are the same), and past `max_tracked` the least recent
    goes. Not thread-safe: it is used on the event loop only.
    """

    def __init__(self, scope: str, *, rate_per_s: float, burst: int, max_tracked: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.scope = scope
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_tracked = max_tracked
        self._refill_s = burst / rate_per_s       # an idle bucket is full again after this long
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()   # key -> [tokens, last_seen]
        self._next_sweep = -math.inf

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> None:
        """Spend one token for `key`, or raise RateLimited with the whole seconds until one is back."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self._burst, now]
            if len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
            bucket[1] = now
        if bucket[0] < 1.0:
            raise RateLimited(self.scope, max(1, math.ceil((1.0 - bucket[0]) / self._rate)))
        bucket[0] -= 1.0

    def wait_s(self, key: str) -> int:
        """Whole seconds until `key` has a token again (0: it has one now); spends nothing."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        return 0 if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / self._rate))

    def _forget_idle(self, now: float) -> None:
        # At most once a second: a bucket kept a little longer is still full, i.e. the same as absent.
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        # The oldest entries come first, so this stops at the first bucket still in use: O(1) amortized.
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest[1] < self._refill_s:
                return
            buckets.popitem(last=False)


class KeyRequestLimits:
    """The two limits on the key endpoint: by client address (checked before the token is even
    verified, so floods of bad tokens are cheap to refuse) and by viewer (after it is)."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.by_address = TokenBuckets("client address", rate_per_s=settings.ip_per_s, burst=settings.ip_burst,
                                       max_tracked=settings.max_tracked, clock=clock)
        self.by_viewer = TokenBuckets("viewer", rate_per_s=settings.viewer_per_s, burst=settings.viewer_burst,
                                      max_tracked=settings.max_tracked, clock=clock)


class AuthFailuresLimited(Exception):
    """Too many failed authentications from one address; retry after `retry_after_s`."""

    code = "too_many_auth_failures"
    http_status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed authentication attempts from this address; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s

    def __reduce__(self):
        return type(self), (self.retry_after_s,)


class AuthFailureLimiter:
    """Failed authentications per client address (operator, ingest and metrics secrets, account tokens),
    as token buckets in bounded memory: `burst` failures in a row, then one more every 1/`per_s` seconds.

    Only failures spend; while an address has none left, every request of it that presents credentials
    is refused before they are checked, the right ones too: otherwise guessing would go on, and a
    lucky guess would still get through. Event loop only, like TokenBuckets.
    """

    def __init__(self, settings: AuthFailureSettings, trusted_proxies: tuple = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trusted_proxies = trusted_proxies
        self._buckets = TokenBuckets("client address", rate_per_s=settings.per_s, burst=settings.burst,
                                     max_tracked=settings.max_tracked, clock=clock)

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, address: str) -> None:
        """Raise AuthFailuresLimited while `address` has no failure left to spend."""
        wait_s = self._buckets.wait_s(address)
        if wait_s:
            raise AuthFailuresLimited(wait_s)

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        try:
            self._buckets.take(address)
        except RateLimited:
            pass        # already empty: check() refuses its next attempt

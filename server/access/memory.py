"""Bounded memory of answers for the access room: least-recently-used entries go first, and none is
trusted past a maximum age.

Two generations of plain dicts rather than an OrderedDict: a hit in the young generation is one dict
lookup (the key path's hot case), and when the young one holds half the bound it becomes the old one
and the previous old one is dropped, so an entry not used for a whole generation goes. Memory is
bounded by `max_entries` whatever the traffic. Event loop only: no locks.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

MISSING = object()      # get()'s answer for "not remembered (or too old)"; answers may be False or None


class AnswerCache:
    """key → answer, at most `max_entries` kept, each for at most `max_age_s` (times from the caller's clock)."""

    __slots__ = ("_young", "_old", "_half", "_max_age_s")

    def __init__(self, max_entries: int, max_age_s: float) -> None:
        if max_entries < 2:
            raise ValueError(f"max_entries is {max_entries!r}; expected at least 2")
        self._young: dict[Hashable, tuple[Any, float]] = {}
        self._old: dict[Hashable, tuple[Any, float]] = {}
        self._half = max_entries // 2
        self._max_age_s = max_age_s

    def get(self, key: Hashable, now: float) -> Any:
        """The answer remembered for `key` at most max_age_s before `now`, else MISSING."""
        entry = self._young.get(key)
        if entry is None:
            entry = self._old.pop(key, None)
            if entry is None:
                return MISSING
            self._keep(key, entry)
        answer, loaded_at = entry
        if now - loaded_at > self._max_age_s:
            self.discard(key)
            return MISSING
        return answer

    def put(self, key: Hashable, answer: Any, loaded_at: float) -> None:
        """Remember `answer` for `key`, as it was known at `loaded_at`."""
        self._old.pop(key, None)
        self._keep(key, (answer, loaded_at))

    def discard(self, key: Hashable) -> None:
        self._young.pop(key, None)
        self._old.pop(key, None)

    def clear(self) -> None:
        self._young, self._old = {}, {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def _keep(self, key: Hashable, entry: tuple[Any, float]) -> None:
        young = self._young
        young[key] = entry
        if len(young) >= self._half:
            self._old, self._young = young, {}

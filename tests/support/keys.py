"""Content keys for publish tests, without drm/: a KeySchedule like drm's."""

from __future__ import annotations

import os
import threading
import uuid

from packager.encrypt import SegmentKey


class RandomKeys:
    """A KeySchedule like drm's: one fresh key per period, remembered. Thread-safe (publish uploads
    segments from a pool)."""

    def __init__(self) -> None:
        self.keys: dict[int, SegmentKey] = {}
        self._lock = threading.Lock()

    def key_for(self, period: int) -> SegmentKey:
        with self._lock:
            return self.keys.setdefault(period, SegmentKey(key_id=f"k_{uuid.uuid4().hex}", key=os.urandom(16)))

    def by_uri(self) -> dict[str, bytes]:
        return {key_uri(k.key_id): k.key for k in self.keys.values()}


def key_uri(key_id: str) -> str:
    return f"/v1/keys/{key_id}"

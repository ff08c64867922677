"""Shared helpers for drm tests: settings with fixed secrets, a settable clock."""

from __future__ import annotations

from typing import Any

from drm import DrmSettings

MASTER_1 = bytes(range(32))
MASTER_2 = bytes(range(100, 132))
SIGNING_A = b"a" * 32
SIGNING_B = b"b" * 40


def settings_for(**overrides: Any) -> DrmSettings:
    """DrmSettings with fixed test secrets; any field can be overridden."""
    values: dict[str, Any] = {
        "master_key": MASTER_1,
        "master_key_id": "mk1",
        "token_signing_keys": {"a": SIGNING_A},
        "token_signing_kid": "a",
    }
    values.update(overrides)
    return DrmSettings(**values)


class FakeClock:
    """A clock for injection: returns ``now`` (unix seconds) until moved."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

"""Reading SERIES_* variables: typed values, and errors that name the variable and what it expects."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

PREFIX = "SERIES_"
E = TypeVar("E", bound=StrEnum)


class SettingsError(ValueError):
    code = "bad_settings"


class Secret:
    """A secret string whose repr never shows it (settings get logged and printed in tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class Environment:
    """Typed reads of SERIES_* variables; every error names the variable (a secret's value is never echoed)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def str(self, name: str, default: str) -> str:
        return self.environ.get(PREFIX + name, default)

    def required(self, name: str, *, secret: bool = False) -> str:
        value = self.environ.get(PREFIX + name, "")
        if not value:
            raise SettingsError(f"{PREFIX}{name} is not set; it is required when {PREFIX}S3_ENDPOINT is set")
        return value

    def int(self, name: str, default: int) -> int:
        raw = self.environ.get(PREFIX + name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected an integer") from None

    def positive_int(self, name: str, default: int) -> int:
        value = self.int(name, default)
        if value < 1:
            raise SettingsError(f"{PREFIX}{name} has value {value!r}; expected a positive integer")
        return value

    def float(self, name: str, default: float, *, minimum: float | None = None,
              maximum: float | None = None) -> float:
        raw = self.environ.get(PREFIX + name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected a number") from None
        if maximum is not None and not (math.isfinite(value) and (minimum or -math.inf) <= value <= maximum):
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected a number from {minimum or 0:g} to {maximum:g}")
        if minimum is not None and not (math.isfinite(value) and value >= minimum):
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected a number of at least {minimum:g}")
        return value

    def choice(self, name: str, choices: type[E], default: E) -> E:
        """One of a StrEnum's values, any case."""
        raw = self.environ.get(PREFIX + name, "").strip().lower()
        if not raw:
            return default
        try:
            return choices(raw)
        except ValueError:
            expected = " or ".join(choice.value for choice in choices)
            raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected {expected}") from None

    def bool(self, name: str, default: bool) -> bool:
        raw = self.environ.get(PREFIX + name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected true or false")

    def base64_key(self, name: str, fallback: bytes | None, *, size: int) -> bytes:
        raw = self.environ.get(PREFIX + name, "")
        if not raw:
            if fallback is None:
                raise SettingsError(
                    f"{PREFIX}{name} is not set; give {size} random bytes in base64 "
                    f"(e.g. python -c 'import os,base64;print(base64.b64encode(os.urandom({size})).decode())')"
                )
            return fallback
        key = decode_b64(raw, PREFIX + name)
        if len(key) != size:
            raise SettingsError(f"{PREFIX}{name} decodes to {len(key)} bytes; expected {size}")
        return key

    def token_keys(self, name: str, fallback: dict[str, bytes] | None) -> dict[str, bytes]:
        """'kid:base64,kid2:base64' — several kids let a signing key rotate without logging viewers out."""
        raw = self.environ.get(PREFIX + name, "")
        if not raw:
            if fallback is None:
                raise SettingsError(f"{PREFIX}{name} is not set; give 'kid:base64secret[,kid2:base64secret]'")
            return fallback
        return self._kid_map(name, raw)

    def old_master_keys(self, name: str) -> dict[str, bytes]:
        raw = self.environ.get(PREFIX + name, "")
        return self._kid_map(name, raw) if raw else {}

    def _kid_map(self, name: str, raw: str) -> dict[str, bytes]:
        keys = {}
        for item in raw.split(","):
            kid, sep, value = item.strip().partition(":")
            if not sep or not kid:
                raise SettingsError(f"{PREFIX}{name} has an entry without 'kid:'; expected 'kid:base64secret,...'")
            keys[kid] = decode_b64(value, f"{PREFIX}{name}[{kid}]")
        return keys


def decode_b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} is not valid base64") from None

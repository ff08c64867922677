"""Errors raised by drm/: one root, a stable ``code`` on each, messages that name the value."""

from __future__ import annotations

# Spelled here (not in ids.py) because InvalidId's message quotes it and ids.py imports this module.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DrmError(Exception):
    code = "drm_error"


class TokenInvalid(DrmError):
    """Missing, malformed, badly signed, unknown-kid or wrong-audience playback token."""

    code = "token_invalid"


class TokenExpired(TokenInvalid):
    code = "token_expired"


class NotEntitled(DrmError):
    code = "not_entitled"

    def __init__(self, viewer_id: str, series_id: str) -> None:
        super().__init__(f"viewer {viewer_id} has not bought series {series_id}")
        self.viewer_id, self.series_id = viewer_id, series_id

    def __reduce__(self):  # process pools pickle errors; extra __init__ args need this
        return type(self), (self.viewer_id, self.series_id)


class UnknownKey(DrmError):
    code = "unknown_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"no content key {_shown(key_id)}: it was never created, "
            "or was deleted with its episode"
        )
        self.key_id = key_id

    def __reduce__(self):
        return type(self), (self.key_id,)


class WrongSeries(DrmError):
    """A valid playback token presented for another series' key."""

    code = "token_wrong_series"

    def __init__(self, token_series_id: str, wanted_series_id: str) -> None:
        super().__init__(
            f"playback token is for series {token_series_id}, not {wanted_series_id}; "
            f"request a token for series {wanted_series_id}"
        )
        self.token_series_id, self.wanted_series_id = token_series_id, wanted_series_id

    def __reduce__(self):
        return type(self), (self.token_series_id, self.wanted_series_id)


class KeyUnwrapFailed(DrmError):
    """A stored content key did not decrypt: wrong or missing master key, or a tampered row."""

    code = "key_unwrap_failed"


class InvalidId(DrmError):
    code = "invalid_id"

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"{kind} {_shown(value)} is not a valid id; ids must match {ID_PATTERN}")
        self.kind, self.value = kind, value

    def __reduce__(self):
        return type(self), (self.kind, self.value)

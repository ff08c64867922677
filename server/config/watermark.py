"""Settings of forensic watermarking (server/publishing/ at ingest, server/playback/ per viewer, `series trace`);
watermark_settings() reads them for Settings.from_env().

SERIES_WATERMARK_SECRET keys every session's A/B sequence (pipeline/watermark session_bits): whoever holds it
can compute which segments any session was served, so it is a secret like the master key. It can be
rotated: the new one in SERIES_WATERMARK_SECRET, the old one moved to SERIES_WATERMARK_RETIRED_SECRETS.
Each recorded session names the secret its sequence was keyed with (by a public id), keeps it while it
plays, and `series trace` recomputes its sequence with it; so a secret must stay known, current or
retired, for as long as a leak may surface: dropping it makes its sessions untraceable. On the embedded
set-up it is generated once into var/local-secrets.json; elsewhere, without it, watermarked series can
neither be ingested nor played (a clear error, never an unmarked fallback).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from server.config.credentials import check_random_bytes
from server.config.environment import PREFIX, Environment, decode_b64

MIN_SECRET_BYTES = 32
# Watermarked episodes are cut in 2 s segments, one GOP each: a leak carries one bit per segment, so a
# 2-minute clip carries 60 instead of 20, what a 1e-6 false-accusation rate needs with ~20 % unreadable.
SEGMENT_S = 2.0


class WatermarkUnavailable(Exception):
    """A watermarked series' episode cannot be ingested or played: the service has no watermark secret."""

    code = "watermark_not_configured"
    http_status = 503

    def __init__(self, series_id: str) -> None:
        super().__init__(f"series {series_id} is watermarked, but this service has no SERIES_WATERMARK_SECRET; "
                         "the operator must set it (base64 of 32 random bytes, the same on every instance)")
        self.series_id = series_id

    def __reduce__(self):
        return type(self), (self.series_id,)


class SessionSecretRetired(Exception):
    """A session's A/B sequence was keyed with a watermark secret the service no longer has."""

    code = "watermark_secret_retired"
    http_status = 503

    def __init__(self, secret_id: str) -> None:
        super().__init__(f"this playback session's watermark was keyed with secret {secret_id}, which this service "
                         f"no longer has; the operator must keep it in {PREFIX}WATERMARK_RETIRED_SECRETS")
        self.secret_id = secret_id

    def __reduce__(self):
        return type(self), (self.secret_id,)


def secret_id(secret: bytes) -> str:
    """A public name for a watermark secret (16 hex digits of a keyed hash: it reveals nothing of it)."""
    return hmac.new(secret, b"series watermark secret id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkSettings:
    secret: bytes | None = field(default=None, repr=False)   # None: watermarking unavailable (not configured)
    retired: tuple[bytes, ...] = field(default=(), repr=False)   # earlier secrets: their sessions stay traceable
    segment_s: float = SEGMENT_S
    # every secret the service holds, current first, by its public id: named once here, not per playlist
    known_secrets: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        held = ((self.secret,) if self.secret is not None else ()) + self.retired
        object.__setattr__(self, "known_secrets", {secret_id(secret): secret for secret in held})

    @property
    def is_configured(self) -> bool:
        return self.secret is not None

    @property
    def secret_id(self) -> str:
        """The current secret's id (what new sessions are recorded with). Raises ValueError when not configured."""
        if self.secret is None:
            raise ValueError("no watermark secret is configured")
        return next(iter(self.known_secrets))

    def secret_for(self, session_secret_id: str) -> bytes:
        """The secret a recorded session's sequence was keyed with. Raises SessionSecretRetired if it is gone."""
        found = self.known_secrets.get(session_secret_id)
        if found is None:
            raise SessionSecretRetired(session_secret_id or "(recorded before secret ids)")
        return found


def watermark_settings(env: Environment, generated: dict) -> WatermarkSettings:
    """SERIES_WATERMARK_SECRET (base64 of at least 32 random bytes), else the embedded set-up's generated one;
    SERIES_WATERMARK_RETIRED_SECRETS: earlier ones, comma-separated, kept after a rotation."""
    raw = env.str("WATERMARK_SECRET", "")
    if raw:
        secret = check_random_bytes("WATERMARK_SECRET", decode_b64(raw, f"{PREFIX}WATERMARK_SECRET"),
                                    minimum=MIN_SECRET_BYTES)
    elif generated.get("watermark_secret"):
        secret = generated["watermark_secret"]
    else:
        secret = None
    retired = tuple(
        check_random_bytes("WATERMARK_RETIRED_SECRETS", decode_b64(item.strip(), f"{PREFIX}WATERMARK_RETIRED_SECRETS"),
                           minimum=MIN_SECRET_BYTES)
        for item in env.str("WATERMARK_RETIRED_SECRETS", "").split(",") if item.strip())
    return WatermarkSettings(secret=secret, retired=tuple(r for r in retired if r != secret))

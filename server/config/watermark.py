"""Settings of forensic watermarking (server/publishing/ at ingest, server/playback/ per viewer, `series trace`);
watermark_settings() reads them for Settings.from_env().

SERIES_WATERMARK_SECRET keys every session's A/B sequence (pipeline/watermark session_bits): whoever holds it
can compute which segments any session was served, so it is a secret like the master key, and it must stay
the same for as long as a leak may surface: `series trace` recomputes recorded sessions' sequences with
it, and a changed secret makes every earlier session untraceable (their playlists were written with the
old one). On the embedded set-up it is generated once into var/local-secrets.json; elsewhere, without it,
watermarked series can neither be ingested nor played (a clear error, never an unmarked fallback).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkSettings:
    secret: bytes | None = field(default=None, repr=False)   # None: watermarking unavailable (not configured)
    segment_s: float = SEGMENT_S

    @property
    def is_configured(self) -> bool:
        return self.secret is not None


def watermark_settings(env: Environment, generated: dict) -> WatermarkSettings:
    """SERIES_WATERMARK_SECRET (base64 of at least 32 random bytes), else the embedded set-up's generated one."""
    raw = env.str("WATERMARK_SECRET", "")
    if raw:
        secret = check_random_bytes("WATERMARK_SECRET", decode_b64(raw, f"{PREFIX}WATERMARK_SECRET"),
                                    minimum=MIN_SECRET_BYTES)
    elif generated.get("watermark_secret"):
        secret = generated["watermark_secret"]
    else:
        secret = None
    return WatermarkSettings(secret=secret)

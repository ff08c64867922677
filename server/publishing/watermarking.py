"""How an episode of a watermarked series is transcoded: a fresh random seed per version, 2 s segments,
and key periods as long in seconds as an unmarked episode's.

The series' flag is read when the episode is ingested, so turning it on or off changes episodes ingested
afterwards, never what is published. Without the service's watermark secret (SERIES_WATERMARK_SECRET) a
watermarked series' episode is refused before any transcoding: its A/B variants could not be given to
viewers, and an unmarked fallback would silently drop the protection the creator asked for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from pipeline.encode.ladder import LadderSettings
from pipeline.watermark import WatermarkSpec
from server.config import Settings
from server.config.watermark import WatermarkUnavailable

SEED_BYTES = 16
__all__ = ["WatermarkPlan", "WatermarkUnavailable", "watermark_plan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkPlan:
    spec: WatermarkSpec
    ladder: LadderSettings          # the series' ladder with segment_s and gop_s set to the mark's segment
    segments_per_key: int           # as many seconds per key period as settings.segments_per_key gives at 6 s


def watermark_plan(settings: Settings, series_id: str, *, is_watermarked: bool) -> WatermarkPlan | None:
    """The transcode of a watermarked series' episode (None for an unmarked series).

    Raises WatermarkUnavailable when the series is watermarked and the service has no secret.
    """
    if not is_watermarked:
        return None
    if not settings.watermark.is_configured:
        raise WatermarkUnavailable(series_id)
    segment_s = settings.watermark.segment_s
    # players fetch a key per period: 2 s segments must not triple the key requests of 6 s ones
    periods_s = settings.segments_per_key * settings.ladder.segment_s
    return WatermarkPlan(
        spec=WatermarkSpec(seed=secrets.token_bytes(SEED_BYTES), segment_s=segment_s),
        ladder=replace(settings.ladder, segment_s=segment_s, gop_s=min(settings.ladder.gop_s, segment_s)),
        segments_per_key=max(1, round(periods_s / segment_s)),
    )

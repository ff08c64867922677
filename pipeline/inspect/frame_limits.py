"""FrameGuard: every decoded picture held to the upload limits, not only the header's claim.

A container header and the first SPS say one size; an H.264 stream may change its SPS (and so its
picture size) mid-stream, and a header may lie about duration and frame rate. So the decode passes
(pipeline/inspect/measure.py for `series validate`, pipeline/encode/transcode.py for ingest, which decodes once)
hand every picture to a FrameGuard, which stops at the first one outside the size limits, or once
the pictures decoded so far exceed the work budget (total decoded pixels), saying when it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from pipeline.errors import MediaOverLimit

# about DCI 4K (4096x2160) at 30 fps for 20 minutes: admits every upload the product accepts today
# (1080p60 for 20 min is 0.15 T, UHD 3840x2160 at 30 fps for 20 min 0.30 T), refuses a 4096x4096
# 120 fps 20-minute upload (2.4 T) that would hold a worker for hours
DEFAULT_MAX_DECODED_PIXELS = 320_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameLimits:
    max_side_px: int = 4096                    # the longer side of any picture, as stored
    min_short_side_px: int = 128               # the shorter side of any picture
    max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS    # width x height summed over every picture


def describe_pixels(pixels: float) -> str:
    """'2.4 trillion', '320 billion', '45 million': a pixel count people can compare."""
    for name, scale in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if pixels >= scale:
            return f"{pixels / scale:.3g} {name}"
    return f"{pixels:.0f}"


class FrameGuard:
    """Checks each decoded video frame against FrameLimits; raises MediaOverLimit at the first breach.

    Cheap (a few attribute reads per frame) so that it can sit in the transcoder's decode loop.
    """

    def __init__(self, limits: FrameLimits) -> None:
        self.limits = limits
        self.decoded_pixels = 0
        self._first_pts: int | None = None

    def check(self, frame) -> None:
        """Raise MediaOverLimit when `frame` is outside the size limits or the budget is spent."""
        width, height = frame.width, frame.height
        limits = self.limits
        if self._first_pts is None and frame.pts is not None:
            self._first_pts = frame.pts
        if max(width, height) > limits.max_side_px:
            raise MediaOverLimit(
                "resolution_too_high",
                f"At {self._at(frame)} the picture becomes {width}x{height}; the limit is "
                f"{limits.max_side_px} px a side",
                f"export the whole episode at most {limits.max_side_px} px on the long side",
                time_s=self._time_s(frame))
        if min(width, height) < limits.min_short_side_px:
            raise MediaOverLimit(
                "resolution_too_low",
                f"At {self._at(frame)} the picture becomes {width}x{height}; the short side must be at least "
                f"{limits.min_short_side_px} px",
                f"export the whole episode at least {limits.min_short_side_px} px on the short side",
                time_s=self._time_s(frame))
        self.decoded_pixels += width * height
        if self.decoded_pixels > limits.max_decoded_pixels:
            raise MediaOverLimit(
                "over_work_budget",
                f"By {self._at(frame)} the video had already needed {describe_pixels(self.decoded_pixels)} pixels "
                f"decoded; the limit is {describe_pixels(limits.max_decoded_pixels)} (about 4K at 30 fps for "
                "20 minutes)",
                "export the episode at a lower resolution or frame rate",
                time_s=self._time_s(frame))

    def _time_s(self, frame) -> float | None:
        if frame.pts is None or frame.time_base is None or self._first_pts is None:
            return None
        return max(0.0, float((frame.pts - self._first_pts) * Fraction(frame.time_base)))

    def _at(self, frame) -> str:
        time_s = self._time_s(frame)
        return "an unknown time" if time_s is None else f"{time_s:.1f} s"

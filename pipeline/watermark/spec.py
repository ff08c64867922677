"""WatermarkSpec: what a transcode needs to embed the A/B mark."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

DEFAULT_STRENGTH = 1.0       # RMS of the mark in 8-bit luma levels (bench/watermark.py: quality and detection)
FULL_STRENGTH_LINES = 480    # rungs with fewer lines (short side) get a proportionally weaker mark
SEGMENT_S = 2.0              # one GOP per segment: a 2-minute clip carries 60 bits (pipeline/watermark/verdict.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkSpec:
    """The mark for one version of an episode: its secret seed and its strength.

    `seed` keys the per-segment patterns; it is stored only inside the WatermarkReference (private),
    since anyone holding it could estimate and subtract the mark.
    """

    seed: bytes = field(repr=False)
    strength: float = DEFAULT_STRENGTH
    segment_s: float = SEGMENT_S        # the transcode's segment duration when marking

    def __post_init__(self) -> None:
        if len(self.seed) < 16:
            raise ValueError(f"the watermark seed has {len(self.seed)} bytes; use at least 16 random bytes")
        if not 0 < self.strength <= 8:
            raise ValueError(f"watermark strength {self.strength} is outside 0-8 luma levels")
        if self.segment_s <= 0:
            raise ValueError(f"watermark segment_s {self.segment_s} must be positive")

    def strength_at(self, width: int, height: int) -> float:
        """The mark's RMS at a rung of width x height: full from FULL_STRENGTH_LINES up, proportionally less below.

        A small rung has few bits per picture: at 234p (~80 kbit/s) a full-strength mark cost 1.2-1.3 VMAF
        points, the encoder spending on the mark what the picture needed, while 0.4-0.6 of it cost 0.1-0.5
        (bench/watermark.py). Detection does not need to know which rung a leak came from: its test is
        invariant to the scale of the values it reads (pipeline/watermark/verdict.py).
        """
        return self.strength * min(1.0, min(width, height) / FULL_STRENGTH_LINES)

    @classmethod
    def generate(cls, **kwargs) -> WatermarkSpec:
        """A spec with a fresh random 16-byte seed (one per episode version)."""
        return cls(seed=secrets.token_bytes(16), **kwargs)

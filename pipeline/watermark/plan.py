"""SegmentPlan: which segment an output frame belongs to, and how strongly it is marked.

The mark fades in and out over FADE_S at each segment boundary (raised cosine): a pattern that
changed at once, from +p_i to -p_i+1 say, would be a faint full-frame flicker every 2 s, far easier
to see than the pattern itself.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

FADE_S = 0.25


class SegmentPlan:
    """Segment boundaries on the transcode's output frame grid, the frames at `fps`."""

    def __init__(self, starts: Sequence[int], fps: Fraction) -> None:
        if not starts or starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError("segment starts must begin at frame 0 and increase")
        self.starts = tuple(starts)
        self.fps = Fraction(fps)
        self.fade_frames = max(1, round(FADE_S * self.fps))

    def segment_of(self, index: int) -> int:
        """The segment holding output frame `index` (the last one for frames past the last start)."""
        return bisect.bisect_right(self.starts, index) - 1

    def envelope(self, index: int) -> float:
        """The mark's amplitude at output frame `index`, 0..1."""
        segment = self.segment_of(index)
        start = self.starts[segment]
        end = self.starts[segment + 1] if segment + 1 < len(self.starts) else None
        into = index - start
        left = into if end is None else min(into, end - 1 - index)
        if left >= self.fade_frames:
            return 1.0
        return math.sin(0.5 * math.pi * (left + 0.5) / self.fade_frames) ** 2

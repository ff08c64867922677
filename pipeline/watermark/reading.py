"""LeakReading: what pipeline/watermark/read.py read from a leaked copy, the input of decide()."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakReading:
    """One soft value per segment of the episode, and how the leak was aligned to it.

    A value is the mark's amplitude found in that segment, in units of the full-strength mark: about +1 for
    variant A, -1 for B (less from a rung under 480 lines, whose mark is weaker), near 0 when the mark was
    washed out; None where the leak does not cover the segment or it could not be read.
    """

    values: tuple[float | None, ...]          # indexed by episode segment
    offset_s: float                           # episode time of the leak's first frame
    match: float                              # temporal match of the leak to the episode, 0..1 (correlation)
    visible_area: tuple[float, float, float, float]   # (left, top, right, bottom) of the episode picture the
                                                      # leak shows, as fractions of its width and height
    duration_s: float                         # video in the leak

    @property
    def segments_read(self) -> int:
        return sum(value is not None for value in self.values)

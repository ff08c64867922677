"""score_frame(): how good a decoded picture is as an episode's poster, from small luma planes.

A poster must not be black (or white), not caught in a fade, and not blurred. Each measure works on
an 8-bit luma plane a few hundred pixels wide (pipeline/pictures/sampler.py downscales before calling), so a
score costs well under a millisecond whatever the source resolution:

- brightness and contrast: mean and standard deviation of luma; a near-uniform or near-black picture
  (title card backgrounds, the black lead-in many edits start with) is `is_blank`;
- detail: Shannon entropy of the 64-bin luma histogram, in bits (0 for a flat field, 6 at most);
- sharpness: variance of the 4-neighbour Laplacian, the usual focus measure (Pech-Pacheco et al. 2000);
  motion blur and soft focus lower it, texture and edges raise it;
- fade: how well a picture a fraction of a second later is explained by a global gain and offset of
  this one (later ≈ gain · now + offset). In a fade or a brightness ramp the whole frame changes and
  the fit is near perfect; in ordinary motion the change is local and the fit leaves most of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 64
BLANK_MEAN_BELOW = 24.0        # 8-bit luma: darker than this on average is black (video black is 16)
BLANK_MEAN_ABOVE = 245.0       # ... brighter is a white flash
BLANK_CONTRAST_BELOW = 6.0     # a standard deviation this small is a flat field whatever its level
FADE_MIN_CHANGE = 3.0          # mean absolute luma change (8-bit) that counts as the picture changing at all
FADE_EXPLAINED_ABOVE = 0.85    # share of the change a global gain + offset explains in a fade


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameScore:
    mean: float                # mean luma, 0..255
    contrast: float            # standard deviation of luma
    entropy_bits: float        # of the 64-bin luma histogram
    sharpness: float           # variance of the Laplacian
    fade: float                # 0..1: share of the change to a later picture a global gain/offset explains

    @property
    def is_blank(self) -> bool:
        return (self.mean < BLANK_MEAN_BELOW or self.mean > BLANK_MEAN_ABOVE
                or self.contrast < BLANK_CONTRAST_BELOW)

    @property
    def is_fade(self) -> bool:
        return self.fade > FADE_EXPLAINED_ABOVE

    @property
    def value(self) -> float:
        """Higher is a better poster: detail times (log) sharpness. Blank and fading pictures score 0."""
        if self.is_blank or self.is_fade:
            return 0.0
        return self.entropy_bits * math.log2(1.0 + self.sharpness)


def score_frame(luma: np.ndarray, later_luma: np.ndarray | None = None) -> FrameScore:
    """Score an 8-bit luma plane (2-D uint8); `later_luma`, the same size, is a picture ~0.2 s later.

    Without `later_luma` the fade measure is 0 (unknown, assumed not fading).
    """
    plane = luma.astype(np.float32)
    mean = float(plane.mean())
    contrast = float(plane.std())
    histogram = np.bincount(luma.ravel() >> 2, minlength=HISTOGRAM_BINS).astype(np.float64)
    probabilities = histogram[histogram > 0] / histogram.sum()
    entropy_bits = float(-(probabilities * np.log2(probabilities)).sum())
    laplacian = (plane[1:-1, :-2] + plane[1:-1, 2:] + plane[:-2, 1:-1] + plane[2:, 1:-1]
                 - 4.0 * plane[1:-1, 1:-1])
    sharpness = float(laplacian.var()) if laplacian.size else 0.0
    fade = 0.0 if later_luma is None else _fade(plane, later_luma.astype(np.float32))
    return FrameScore(mean=mean, contrast=contrast, entropy_bits=entropy_bits, sharpness=sharpness, fade=fade)


def _fade(now: np.ndarray, later: np.ndarray) -> float:
    change = later - now
    total = float(np.abs(change).mean())
    if total < FADE_MIN_CHANGE:
        return 0.0
    # least squares later ≈ gain * now + offset; what the fit leaves is the local (motion) change
    variance = float(now.var())
    gain = float(((now - now.mean()) * (later - later.mean())).mean() / variance) if variance > 1e-6 else 0.0
    offset = float(later.mean()) - gain * float(now.mean())
    residual = float(np.abs(later - (gain * now + offset)).mean())
    return max(0.0, 1.0 - residual / total)

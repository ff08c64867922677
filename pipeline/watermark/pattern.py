"""The mark's picture: one smooth pseudo-random luma pattern per segment, the same at every resolution.

After Kalker, Depovere, Haitsma and Maes, "A video watermarking system for broadcast monitoring"
(JAWS, Proc. SPIE 3657, 1999): a low-amplitude, low-spatial-frequency luma pattern added to every
frame survives MPEG re-encoding, rescaling and added noise because all of them keep low frequencies,
and is detected by correlation after averaging many frames, which cancels the picture's own
variation. Two departures: JAWS tiles one pattern to be shift-invariant, where we register the leak to
the stored unmarked picture (pipeline/watermark/read.py) and so can use a pattern over the whole frame;
and the pattern changes per segment (keyed by the episode's seed), so A and B of segment i carry
+p_i and -p_i (Cox, Kilian, Leighton and Shamoon, "Secure spread spectrum watermarking for
multimedia", IEEE TIP 6(12), 1997: a secret, random, signal-wide carrier).

The pattern is a sum of Gaussian bumps on a KNOTS_X x KNOTS_Y lattice with random normal weights,
defined on normalized picture coordinates (0..1 across width and height), so every rung, and a leak
rescaled to any size, carries the same pattern. Its features are about 1/16 of the picture wide: far
below the spatial frequencies the eye is most sensitive to, and far above what a 480p re-encode drops.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np

KNOTS_X, KNOTS_Y = 16, 9
BUMP_WIDTH = 0.7                # Gaussian sigma, in knot spacings: neighbouring bumps blend with no ripple
_CANONICAL = 256                # samples per axis on which the pattern is normalized (any size gives the same scale)


def _weights(seed: bytes, segment: int) -> np.ndarray:
    key = hmac.new(seed, b"pattern\x00%d" % segment, hashlib.sha256).digest()
    generator = np.random.Generator(np.random.PCG64(int.from_bytes(key, "big")))
    return generator.standard_normal((KNOTS_Y, KNOTS_X))


def _basis(positions: np.ndarray, knots: int) -> np.ndarray:
    """Bump values at normalized `positions` (len N) for each of `knots` bumps: shape (N, knots)."""
    centres = (np.arange(knots) + 0.5) / knots
    sigma = BUMP_WIDTH / knots
    return np.exp(-0.5 * ((positions[:, None] - centres[None, :]) / sigma) ** 2)


def _pixel_centres(size: int) -> np.ndarray:
    return (np.arange(size) + 0.5) / size


def _scale(weights: np.ndarray) -> tuple[float, float]:
    """(mean, rms) of the pattern on the canonical grid: applied at every size, so all sizes agree."""
    canonical = _pixel_centres(_CANONICAL)
    values = _basis(canonical, KNOTS_Y) @ weights @ _basis(canonical, KNOTS_X).T
    mean = float(values.mean())
    return mean, float(np.sqrt(((values - mean) ** 2).mean()))


def segment_pattern(seed: bytes, segment: int, width: int, height: int) -> np.ndarray:
    """Segment `segment`'s pattern sampled at the pixel centres of a width x height picture.

    float32, shape (height, width), zero mean and unit RMS (as measured on the canonical grid).
    """
    weights = _weights(seed, segment)
    mean, rms = _scale(weights)
    values = _basis(_pixel_centres(height), KNOTS_Y) @ weights @ _basis(_pixel_centres(width), KNOTS_X).T
    return ((values - mean) / rms).astype(np.float32)


def cell_pattern(seed: bytes, segment: int, columns: int, rows: int, oversample: int = 4) -> np.ndarray:
    """The pattern averaged over each cell of a columns x rows grid: what a cell mean of a marked picture holds."""
    fine = segment_pattern(seed, segment, columns * oversample, rows * oversample)
    return fine.reshape(rows, oversample, columns, oversample).mean(axis=(1, 3))

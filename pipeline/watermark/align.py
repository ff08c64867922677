"""Aligning a leak to the episode: in time by frame signatures, in space by the unmarked picture.

Time: the leak's per-frame signatures, resampled to the episode's frame rate by timestamp (so a
25 or 24 fps copy of a 30 fps episode lines up), are slid along the episode's by FFT cross-correlation;
the offset with the highest normalized correlation wins.
Space: the leak shows some rectangle of the episode picture (all of it when only rescaled, a little
less when cropped), at any size. That rectangle is searched coarse to fine, scoring each candidate by
how well the leak's cell means, measured over the cells it implies, correlate with the reference grid.
Cell means are exact box averages read from integral images, so sub-pixel positions cost nothing extra.
"""

from __future__ import annotations

import numpy as np

MAX_CROP = 0.06                 # per side, as a fraction of the picture: the search's reach
_STEPS = (0.01, 0.0025, 0.000625)


def temporal_offset(episode: np.ndarray, leak: np.ndarray) -> tuple[int, float]:
    """(first episode frame the leak shows, normalized correlation 0..1) for signatures (frames, cells).

    `leak` must be resampled to the episode's frame rate and no longer than `episode`.
    """
    frames, length = len(episode), len(leak)
    query = leak - leak.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(frames + length)))
    numerator = np.zeros(frames - length + 1)
    for cell in range(episode.shape[1]):
        spectrum = np.fft.rfft(episode[:, cell], size) * np.conj(np.fft.rfft(query[:, cell], size))
        numerator += np.fft.irfft(spectrum, size)[: frames - length + 1]
    cumulative = np.vstack([np.zeros((1, episode.shape[1])), np.cumsum(episode, axis=0)])
    cumulative_sq = np.vstack([np.zeros((1, episode.shape[1])), np.cumsum(episode.astype(np.float64) ** 2, axis=0)])
    window_sum = cumulative[length:] - cumulative[:-length]
    window_sq = cumulative_sq[length:] - cumulative_sq[:-length]
    energy = (window_sq - window_sum ** 2 / length).sum(axis=1)
    query_energy = float((query ** 2).sum())
    scores = numerator / np.sqrt(np.maximum(energy, 1e-9) * max(query_energy, 1e-9))
    best = int(np.argmax(scores))
    return best, float(scores[best])


def integral_images(pictures: np.ndarray) -> np.ndarray:
    """(count, H + 1, W + 1) summed-area tables of (count, H, W) pictures, float64."""
    count, height, width = pictures.shape
    table = np.zeros((count, height + 1, width + 1))
    table[:, 1:, 1:] = pictures.cumsum(axis=1).cumsum(axis=2)
    return table


def _interpolate(table: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `table` along `axis` at fractional `positions` (exact for a summed-area table)."""
    lower = np.clip(np.floor(positions).astype(int), 0, table.shape[axis] - 2)
    weight = positions - lower
    shape = [1] * table.ndim
    shape[axis] = len(positions)
    weight = weight.reshape(shape)
    return np.take(table, lower, axis=axis) * (1 - weight) + np.take(table, lower + 1, axis=axis) * weight


def cell_means(tables: np.ndarray, area: tuple[float, float, float, float], columns: int,
               rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Leak mean luma over each reference grid cell, if the leak shows `area` (left, top, right, bottom).

    Returns (means (count, rows, columns), valid (rows, columns)): cells wholly inside the leak's picture.
    """
    left, top, right, bottom = area
    height, width = tables.shape[1] - 1, tables.shape[2] - 1
    xs = (np.linspace(0, 1, columns + 1) - left) / (right - left) * width
    ys = (np.linspace(0, 1, rows + 1) - top) / (bottom - top) * height
    valid_x = (xs[:-1] >= -1e-9) & (xs[1:] <= width + 1e-9)
    valid_y = (ys[:-1] >= -1e-9) & (ys[1:] <= height + 1e-9)
    xs, ys = np.clip(xs, 0, width), np.clip(ys, 0, height)
    corners = _interpolate(_interpolate(tables, ys, axis=1), xs, axis=2)
    sums = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]
    areas = np.outer(np.diff(ys), np.diff(xs))
    means = sums / np.maximum(areas, 1e-9)
    return means, np.outer(valid_y, valid_x)


def _fit(tables: np.ndarray, grids: np.ndarray, area: tuple[float, float, float, float]) -> float:
    """Mean over pictures of the correlation between the leak's and the reference's valid cells."""
    means, valid = cell_means(tables, area, grids.shape[2], grids.shape[1])
    if valid.sum() < valid.size // 2:
        return -1.0
    leak, reference = means[:, valid], grids[:, valid]
    leak = leak - leak.mean(axis=1, keepdims=True)
    reference = reference - reference.mean(axis=1, keepdims=True)
    denominator = np.sqrt((leak ** 2).sum(axis=1) * (reference ** 2).sum(axis=1))
    return float(((leak * reference).sum(axis=1) / np.maximum(denominator, 1e-9)).mean())


def register(tables: np.ndarray, grids: np.ndarray) -> tuple[tuple[float, float, float, float], float]:
    """The episode rectangle the leak shows, and its fit (0..1), from leak summed-area tables and the
    reference grids of the same segments. Coordinate search, coarse to fine: the left/right pair with
    top/bottom fixed, then top/bottom, twice per step size."""
    area = (0.0, 0.0, 1.0, 1.0)
    best = _fit(tables, grids, area)
    for step in _STEPS:
        for _ in range(2):
            for low, high in ((0, 2), (1, 3)):
                if step == _STEPS[0]:
                    lows = np.arange(0, MAX_CROP + step / 2, step)
                    highs = 1 - lows
                else:
                    around = np.arange(-2, 3) * step
                    lows = np.clip(area[low] + around, 0, MAX_CROP)
                    highs = np.clip(area[high] + around, 1 - MAX_CROP, 1)
                centre = area
                for value_low in np.unique(lows):
                    for value_high in np.unique(highs):
                        candidate = list(centre)
                        candidate[low], candidate[high] = float(value_low), float(value_high)
                        score = _fit(tables, grids, tuple(candidate))
                        if score > best:
                            best, area = score, tuple(candidate)
    return area, best

"""read_leak(): the A/B soft value of every episode segment a leaked copy covers.

Two decodes of the leak (PyAV), so memory stays bounded whatever its length: the first takes a coarse
signature of every frame (leak_signatures(), reusable against every episode of the same aspect ratio)
and finds where in the episode the leak starts (pipeline/watermark/align.py);
the second averages the leak's frames per episode segment at a small working size. The leak's
rectangle of the episode picture is then found by registration against the stored unmarked grid, and
each segment's mean is fitted, over the reference grid's cells, as
    leak = c + g * unmarked + a * pattern_i
by least squares: the gain and offset absorb a re-encode's level and contrast changes, and
a / (strength x mean fade) is the soft value: about +1 where the leak carries variant A, -1 for B.
Averaging ~50 frames over cells of ~400 source pixels is what lifts a mark of 1 luma level out of the
re-encode's noise (JAWS: detection by averaging before correlating).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.watermark.align import cell_means, integral_images, register, temporal_offset
from pipeline.watermark.errors import LeakDoesNotMatch, LeakNotVideo, LeakTooShort
from pipeline.watermark.pattern import cell_pattern
from pipeline.watermark.reading import LeakReading
from pipeline.watermark.reference import WatermarkReference, luma_cells, signature

WORK_LONG = 192             # the leak's working picture, long side in pixels (about 3 per grid cell)
MIN_LEAK_S = 10.0           # shorter leaks cannot be placed in the episode reliably
MIN_MATCH = 0.5             # temporal correlation below this: the leak is not this episode
MIN_COVERAGE = 0.9          # a segment is read only if the leak shows nearly all of it: an excerpt's first
                            # frames can be a re-encoder's seek damage
MIN_FADE = 0.3              # ... and the mark was not faded out over most of what it shows
REGISTRATION_SEGMENTS = 12  # segments spread over the leak that the spatial registration compares
MAX_SOFT = 3.0              # a soft value's magnitude is capped: one garbled segment cannot outweigh many


@dataclass(frozen=True, slots=True, eq=False)
class LeakSignatures:
    """The first decode of a leak: when each of its pictures shows, and its coarse signature on one grid
    shape. Episodes whose references share that shape (the same aspect ratio) are placed against it with
    no further decode (server/forensics/trace.py compares a leak with every watermarked episode)."""

    name: str
    grid: tuple[int, int]           # (columns, rows) the signatures were taken on
    times: np.ndarray               # seconds since the leak's first picture
    signatures: np.ndarray          # (pictures, SIGNATURE**2)

    @property
    def duration_s(self) -> float:
        step = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        return float(self.times[-1]) + step


def leak_signatures(path: str | os.PathLike, grid: tuple[int, int]) -> LeakSignatures:
    """Decode the leak at `path` once for its pictures' times and signatures on a `grid` (columns, rows). Blocking.

    Raises LeakNotVideo (not decodable video), LeakTooShort (under MIN_LEAK_S of video).
    """
    name = Path(path).name
    scaler = VideoReformatter()
    times, signatures = [], []
    for time_s, frame in _frames(path):
        times.append(time_s)
        signatures.append(signature(luma_cells(frame, grid[0], grid[1], scaler)))
    if not times:
        raise LeakNotVideo(name, "no picture in it decodes")
    found = LeakSignatures(name=name, grid=grid, times=np.array(times), signatures=np.stack(signatures))
    if found.duration_s < MIN_LEAK_S:
        raise LeakTooShort(name, found.duration_s, MIN_LEAK_S)
    return found


def reference_grid(reference: WatermarkReference) -> tuple[int, int]:
    """(columns, rows) of the reference's grid: what leak_signatures() must use for it."""
    return reference.grid.shape[2], reference.grid.shape[1]


def read_leak(path: str | os.PathLike, reference: WatermarkReference,
              signatures: LeakSignatures | None = None) -> LeakReading:
    """Read the mark from the leaked video at `path` against the episode's `reference`. Blocking.

    `signatures`: the leak's first decode on this reference's grid shape, when the caller has it (else it is
    decoded here). Raises LeakNotVideo (not decodable video), LeakTooShort (under MIN_LEAK_S of video),
    LeakDoesNotMatch (no stretch of the episode correlates with it).
    """
    name = Path(path).name
    columns, rows = reference_grid(reference)
    if signatures is None or signatures.grid != (columns, rows):
        signatures = leak_signatures(path, (columns, rows))
    duration_s = signatures.duration_s
    fps = float(reference.fps)
    ticks = np.arange(min(int(duration_s * fps), reference.frame_count)) / fps
    last = len(signatures.times) - 1
    shown = np.clip(np.searchsorted(signatures.times, ticks + 1e-6, side="right") - 1, 0, last)
    offset, match = temporal_offset(reference.signatures, signatures.signatures[shown])
    if match < MIN_MATCH:
        raise LeakDoesNotMatch(name, match, MIN_MATCH)
    segments, means, fades = _segment_means(path, reference, offset)
    values: list[float | None] = [None] * reference.segment_count
    area = (0.0, 0.0, 1.0, 1.0)
    if segments:
        tables = integral_images(np.stack(means))
        chosen = np.unique(np.linspace(0, len(segments) - 1, min(REGISTRATION_SEGMENTS, len(segments))).astype(int))
        area, _ = register(tables[chosen], reference.grid[[segments[k] for k in chosen]])
        leak_cells, valid = cell_means(tables, area, columns, rows)
        for k, segment in enumerate(segments):
            values[segment] = _soft_value(leak_cells[k][valid], reference.grid[segment][valid],
                                          cell_pattern(reference.seed, segment, columns, rows)[valid],
                                          reference.strength * fades[k])
    return LeakReading(values=tuple(values), offset_s=offset / fps, match=match, visible_area=area,
                       duration_s=duration_s)


def _soft_value(leak: np.ndarray, unmarked: np.ndarray, pattern: np.ndarray, amplitude: float) -> float | None:
    design = np.column_stack([np.ones_like(unmarked), unmarked, pattern])
    coefficients, _, rank, _ = np.linalg.lstsq(design.astype(np.float64), leak.astype(np.float64), rcond=None)
    if rank < 3 or not math.isfinite(coefficients[2]):
        return None
    return float(np.clip(coefficients[2] / amplitude, -MAX_SOFT, MAX_SOFT))


def _segment_means(path, reference: WatermarkReference, offset: int) -> tuple[list[int], list[np.ndarray], list[float]]:
    """(segments read, the leak's mean picture in each, the mark's mean fade in each), second decode."""
    plan = reference.plan()
    fps = reference.fps
    scaler = VideoReformatter()
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    fade: dict[int, float] = {}
    span: dict[int, list[int]] = {}
    size: tuple[int, int] | None = None
    for time_s, frame in _frames(path):
        index = offset + round(time_s * fps)
        if index >= reference.frame_count:
            break
        if size is None:
            size = _work_size(frame.width, frame.height)
        segment = plan.segment_of(index)
        picture = luma_cells(frame, size[0], size[1], scaler)
        if segment in sums:
            sums[segment] += picture
            counts[segment] += 1
            fade[segment] += plan.envelope(index)
            span[segment][1] = index
        else:
            sums[segment], counts[segment], fade[segment] = picture, 1, plan.envelope(index)
            span[segment] = [index, index]
    segments, means, fades = [], [], []
    for segment in sorted(sums):
        length = reference.segment_bounds[segment + 1] - reference.segment_bounds[segment]
        first, last = span[segment]
        mean_fade = fade[segment] / counts[segment]
        if last - first + 1 >= MIN_COVERAGE * length and mean_fade >= MIN_FADE:
            segments.append(segment)
            means.append(sums[segment] / counts[segment])
            fades.append(mean_fade)
    return segments, means, fades


def _work_size(width: int, height: int) -> tuple[int, int]:
    scale = WORK_LONG / max(width, height)
    return max(16, 2 * round(width * scale / 2)), max(16, 2 * round(height * scale / 2))


def _frames(path) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds since the first picture, frame) for every decodable picture; damaged packets are skipped."""
    name = Path(path).name
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:
        raise LeakNotVideo(name, getattr(exc, "strerror", None) or str(exc)) from exc
    with container:
        if not container.streams.video:
            raise LeakNotVideo(name, "it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first: float | None = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                time_s = float(frame.pts * frame.time_base)
                if first is None:
                    first = time_s
                yield time_s - first, frame

"""WatermarkReference: what detection needs from the unmarked picture, computed during the transcode.

Per segment, the unmarked picture's mean luma on a small grid (GRID_LONG cells along the long side),
and per output frame a coarse signature (SIGNATURE x SIGNATURE mean luma). Detection aligns a leak in
time by the signatures, in space by the grid means, and reads the mark as what the leak's segment
means hold beyond the unmarked picture (pipeline/watermark/read.py). No re-decode of the episode is
ever needed. It is PRIVATE: it holds the seed. A 20-minute 30 fps episode takes about 2 MB.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.watermark.errors import ReferenceInvalid
from pipeline.watermark.plan import SegmentPlan
from pipeline.watermark.spec import WatermarkSpec

GRID_LONG = 64          # grid cells along the picture's long side (the short side in proportion, a multiple of 4)
SIGNATURE = 4           # signature cells per side
FORMAT_VERSION = 1
_GRID_STEPS = 16        # the grid is stored as uint16 luma * 16: 1/16 level, far below the mark's 1 level


def grid_shape(width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of the reference grid for a picture of this shape."""
    short = max(SIGNATURE, round(GRID_LONG * min(width, height) / max(width, height) / SIGNATURE) * SIGNATURE)
    return (GRID_LONG, short) if width >= height else (short, GRID_LONG)


def luma_cells(frame: av.VideoFrame, columns: int, rows: int, scaler: VideoReformatter) -> np.ndarray:
    """Mean luma (limited-range 8-bit levels) of each cell of a columns x rows grid, float32 (rows, columns)."""
    small = scaler.reformat(frame, columns, rows, "yuv420p", interpolation="AREA", threads=1)
    return small.to_ndarray()[:rows].astype(np.float32)


def signature(cells: np.ndarray) -> np.ndarray:
    """SIGNATURE x SIGNATURE block means of a grid whose sides are multiples of SIGNATURE, flattened."""
    rows, columns = cells.shape
    return cells.reshape(SIGNATURE, rows // SIGNATURE, SIGNATURE, columns // SIGNATURE).mean(axis=(1, 3)).ravel()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class WatermarkReference:
    seed: bytes = field(repr=False)
    strength: float                     # the full-strength RMS (rungs under 480 lines carry less)
    fps: Fraction
    segment_bounds: tuple[int, ...]     # first frame of each segment, then the frame count
    grid: np.ndarray = field(repr=False)         # float32 (segments, rows, columns): unmarked mean luma
    signatures: np.ndarray = field(repr=False)   # float32 (frames, SIGNATURE**2)

    @property
    def segment_count(self) -> int:
        return len(self.segment_bounds) - 1

    @property
    def frame_count(self) -> int:
        return self.segment_bounds[-1]

    @property
    def segment_starts_s(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(start) / self.fps for start in self.segment_bounds[:-1])

    @property
    def segment_durations_s(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(b - a) / self.fps for a, b in zip(self.segment_bounds, self.segment_bounds[1:]))

    @property
    def duration_s(self) -> Fraction:
        return Fraction(self.frame_count) / self.fps

    def plan(self) -> SegmentPlan:
        return SegmentPlan(self.segment_bounds[:-1], self.fps)

    def to_bytes(self) -> bytes:
        """Compact storage form (npz); from_bytes() reads it back."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, version=np.int64(FORMAT_VERSION), seed=np.frombuffer(self.seed, dtype=np.uint8),
            strength=np.float64(self.strength), fps=np.array([self.fps.numerator, self.fps.denominator]),
            segment_bounds=np.array(self.segment_bounds, dtype=np.int64),
            grid=np.rint(np.clip(self.grid, 0, 255) * _GRID_STEPS).astype(np.uint16),
            signatures=np.rint(np.clip(self.signatures, 0, 255)).astype(np.uint8))   # alignment needs no more
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WatermarkReference:
        """Raises ReferenceInvalid when `data` is not what to_bytes() wrote."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                if int(stored["version"]) != FORMAT_VERSION:
                    raise ReferenceInvalid(f"watermark reference format {int(stored['version'])} is not "
                                           f"{FORMAT_VERSION}; re-transcode the episode with this version")
                numerator, denominator = (int(v) for v in stored["fps"])
                reference = cls(seed=stored["seed"].tobytes(), strength=float(stored["strength"]),
                                fps=Fraction(numerator, denominator),
                                segment_bounds=tuple(int(v) for v in stored["segment_bounds"]),
                                grid=stored["grid"].astype(np.float32) / _GRID_STEPS,
                                signatures=stored["signatures"].astype(np.float32))
        except ReferenceInvalid:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, ZeroDivisionError, zipfile.BadZipFile) as exc:
            raise ReferenceInvalid(f"the stored watermark reference is unreadable ({exc}); it is corrupt or "
                                   "not a watermark reference") from exc
        if (reference.grid.shape[0] != reference.segment_count
                or reference.signatures.shape[0] != reference.frame_count):
            raise ReferenceInvalid("the stored watermark reference is inconsistent (segments or frames do not "
                                   "match); it is corrupt")
        return reference


class ReferenceBuilder:
    """Accumulates a WatermarkReference from the unmarked frames of one rung, on that rung's thread."""

    def __init__(self, spec: WatermarkSpec, plan: SegmentPlan, width: int, height: int) -> None:
        self.spec, self.plan = spec, plan
        self.columns, self.rows = grid_shape(width, height)
        self.scaler = VideoReformatter()
        self.sums: list[np.ndarray] = []          # per segment, float64 (rows, columns)
        self.counts: list[int] = []
        self.signatures: list[np.ndarray] = []
        self.frames = 0

    def observe(self, frame: av.VideoFrame, index: int) -> None:
        """Add output frame `index` (frames come in order, each once)."""
        if index != self.frames:
            raise ValueError(f"reference frames out of order: got {index}, expected {self.frames}")
        cells = luma_cells(frame, self.columns, self.rows, self.scaler)
        segment = self.plan.segment_of(index)
        while len(self.sums) <= segment:
            self.sums.append(np.zeros((self.rows, self.columns)))
            self.counts.append(0)
        self.sums[segment] += cells
        self.counts[segment] += 1
        self.signatures.append(signature(cells))
        self.frames += 1

    def finish(self, segment_bounds: list[int]) -> WatermarkReference:
        """The reference for an episode cut at `segment_bounds` (segment starts and the frame count)."""
        if self.frames != segment_bounds[-1] or len(self.sums) != len(segment_bounds) - 1:
            raise ValueError(f"the reference saw {self.frames} frames in {len(self.sums)} segments; the transcode "
                             f"cut {segment_bounds[-1]} in {len(segment_bounds) - 1}")
        grid = np.stack([total / count for total, count in zip(self.sums, self.counts)]).astype(np.float32)
        return WatermarkReference(seed=self.spec.seed, strength=self.spec.strength, fps=self.plan.fps,
                                  segment_bounds=tuple(segment_bounds), grid=grid,
                                  signatures=np.stack(self.signatures).astype(np.float32))

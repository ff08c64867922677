"""Quality check after encoding: luma PSNR of a few sampled frames per rendition.

Each rendition thread keeps the luma plane of the source frame *as scaled for that rung* at a handful of
output frame numbers; after its segments are written, those frames are decoded back from the segments
and compared. Only the sampled segments are decoded, and only up to the sampled frame, so the check costs
a small, fixed fraction of the encode and its memory does not grow with the episode.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

SAMPLED_SEGMENTS = 6      # frames compared per rendition, spread over the episode
SAMPLE_OFFSET_FRAMES = 15  # how far into its segment a sample sits: past the IDR, yet cheap to decode to


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySample:
    frame_index: int          # output frame number on the shared CFR grid
    segment_index: int
    offset_in_segment: int    # frames after the segment's first (IDR) frame


@dataclass(frozen=True, slots=True, kw_only=True)
class RenditionQuality:
    rendition: str            # Rendition.name
    psnr_db: float            # mean luma PSNR over the samples (inf when identical)
    min_psnr_db: float
    sample_count: int
    is_below_threshold: bool
    threshold_db: float

    def as_dict(self) -> dict:
        def finite(value: float) -> float | None:   # JSON has no infinity
            return round(value, 2) if math.isfinite(value) else None
        return {"rendition": self.rendition, "psnr_db": finite(self.psnr_db), "min_psnr_db": finite(self.min_psnr_db),
                "sample_count": self.sample_count, "is_below_threshold": self.is_below_threshold,
                "threshold_db": self.threshold_db}


def plan_samples(segment_starts: list[int]) -> list[QualitySample]:
    """Sample frames for segments spread over the episode: one predicted frame in each chosen segment.

    `segment_starts` are the first frame numbers of the expected segments plus one bound after the
    last. A predicted frame says more about the encode than the IDR would, and one early in the
    segment keeps the decode needed to reach it short.
    """
    count = max(1, len(segment_starts) - 1)
    if count <= SAMPLED_SEGMENTS:
        chosen = list(range(count))
    else:
        chosen = sorted({round(i * (count - 1) / (SAMPLED_SEGMENTS - 1)) for i in range(SAMPLED_SEGMENTS)})
    samples = []
    for k in chosen:
        offset = min((segment_starts[k + 1] - segment_starts[k]) // 2, SAMPLE_OFFSET_FRAMES)
        samples.append(QualitySample(frame_index=segment_starts[k] + offset, segment_index=k, offset_in_segment=offset))
    return samples


def luma(frame) -> np.ndarray:
    """The Y plane of a yuv420p frame as a (height, width) uint8 array (a copy: frames are reused)."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width].copy()


def psnr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit planes, in dB (inf when they are identical)."""
    mse = float(np.mean((reference.astype(np.float32) - decoded.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def decoded_luma(segment_path: Path, offset_in_segment: int, init_path: Path | None = None) -> np.ndarray | None:
    """Decode one segment up to the frame `offset_in_segment` frames after its start (display order).

    An fMP4 media segment only decodes behind its init segment (`init_path`), as players read it.
    """
    source = io.BytesIO(init_path.read_bytes() + segment_path.read_bytes()) if init_path else str(segment_path)
    with av.open(source) as container:
        for position, frame in enumerate(container.decode(video=0)):
            if position == offset_in_segment:
                return luma(frame)
    return None


def measure_quality(name: str, references: dict[int, np.ndarray], samples: list[QualitySample],
                    segment_paths: list[Path], threshold_db: float,
                    init_path: Path | None = None) -> RenditionQuality | None:
    """Compare each sampled reference with the same frame decoded from the rendition's segments
    (fMP4 segments behind `init_path`)."""
    scores = []
    for sample in samples:
        reference = references.get(sample.frame_index)
        if reference is None or sample.segment_index >= len(segment_paths):
            continue
        decoded = decoded_luma(segment_paths[sample.segment_index], sample.offset_in_segment, init_path)
        if decoded is not None and decoded.shape == reference.shape:
            scores.append(psnr_db(reference, decoded))
    if not scores:
        return None
    mean = float(np.mean(scores)) if all(math.isfinite(s) for s in scores) else math.inf
    return RenditionQuality(rendition=name, psnr_db=mean, min_psnr_db=min(scores), sample_count=len(scores),
                            is_below_threshold=min(scores) < threshold_db, threshold_db=threshold_db)

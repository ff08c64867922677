"""RungMark and Marking: the A and B pictures of one rung's scaled frame, +mark and -mark in luma.

Runs on the rung's encoding thread (pipeline/encode/rendition_output.py), right after the frame is scaled,
so the mark is added at the rung's own resolution and both encoders get the same picture but for the
mark's sign. Chroma is left alone: the eye is less sensitive to luma changes this slow, and detection
reads luma only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import av
import numpy as np

from pipeline.watermark.pattern import segment_pattern
from pipeline.watermark.plan import SegmentPlan
from pipeline.watermark.spec import WatermarkSpec

if TYPE_CHECKING:
    from pipeline.watermark.reference import ReferenceBuilder


class VariantEncoder(Protocol):
    """The B variant's encoder (pipeline/encode/rendition_output.py RenditionOutput), on its own thread."""

    def submit(self, work, *args) -> None: ...
    def encode_scaled(self, out: av.VideoFrame, index: int, is_idr: bool, audio_packets: list) -> None: ...


class RungMark:
    """Marks one rung's frames; holds one segment's pattern at a time (a few MB at 1080p)."""

    def __init__(self, spec: WatermarkSpec, plan: SegmentPlan, width: int, height: int) -> None:
        self.spec, self.plan = spec, plan
        self.width, self.height = width, height
        self.strength = spec.strength_at(width, height)
        self.segment = -1
        self.pattern: np.ndarray | None = None       # float32, luma levels at full amplitude
        self.full: np.ndarray | None = None          # int16, the rounded pattern for unfaded frames

    def pictures(self, frame: av.VideoFrame, index: int) -> tuple[av.VideoFrame, av.VideoFrame]:
        """(A, B) yuv420p frames for output frame `index`: luma + and - the segment's pattern."""
        segment = self.plan.segment_of(index)
        if segment != self.segment:
            self.segment = segment
            self.pattern = self.strength * segment_pattern(self.spec.seed, segment, self.width, self.height)
            self.full = np.rint(self.pattern).astype(np.int16)
        amplitude = self.plan.envelope(index)
        delta = self.full if amplitude == 1.0 else np.rint(self.pattern * amplitude).astype(np.int16)
        planes = frame.to_ndarray(format="yuv420p")
        luma = planes[:self.height].astype(np.int16)
        marked_a, marked_b = planes, planes.copy()
        np.clip(luma + delta, 0, 255, out=marked_a[:self.height], casting="unsafe")
        np.clip(luma - delta, 0, 255, out=marked_b[:self.height], casting="unsafe")
        return (av.VideoFrame.from_ndarray(marked_a, format="yuv420p"),
                av.VideoFrame.from_ndarray(marked_b, format="yuv420p"))


class Marking:
    """One marked rung, driven from its A encoder's thread: the mark, the B variant's encoder, and on one
    rung the reference builder, which sees the unmarked picture."""

    def __init__(self, mark: RungMark, variant_b: VariantEncoder, reference: ReferenceBuilder | None = None) -> None:
        self.mark, self.variant_b, self.reference = mark, variant_b, reference

    def split(self, frame: av.VideoFrame, index: int, is_idr: bool, b_audio_packets: list) -> av.VideoFrame:
        """Queue the B picture of output frame `index` on the B encoder; return the A picture."""
        if self.reference is not None:
            self.reference.observe(frame, index)
        picture_a, picture_b = self.mark.pictures(frame, index)
        self.variant_b.submit(self.variant_b.encode_scaled, picture_b, index, is_idr, b_audio_packets)
        return picture_a

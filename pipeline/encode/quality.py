"""Quality check of each encoded rendition: luma PSNR and SSIM of a few sampled frames.

Each rendition thread keeps the luma plane of the source frame *as scaled for that rung* at a handful of
output frame numbers; those frames are decoded back from the segments and compared. Only the sampled
segments are decoded, and only up to the sampled frame, so the check costs a small, fixed fraction of the
encode and its memory does not grow with the episode (a reference is dropped once checked).

QualityCheck checks a sampled segment as soon as the muxer has closed it, on a separate thread, while the
encoders keep running: left to the end, the 1080p rung's check (two samples of a 10 s input: ~0.4 s)
kept one core busy while the other sat idle, the last thing a transcode did. Only the last segment
(closed by the flush) is left for the end, and fMP4 segments, which exist only once the file is cut.

numpy is imported where it is used, not with this module: importing it takes ~0.15 s, half of a
transcode's start-up before the first frame is decoded, while the first sample is only taken seconds
later. warm_up() imports it on the quality thread while the main thread opens the encoders and decodes.
"""

from __future__ import annotations

import io
import logging
import math
import statistics
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import av

from pipeline.errors import TranscodeError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SAMPLED_SEGMENTS = 6      # frames compared per rendition, spread over the episode
SAMPLE_OFFSET_FRAMES = 15  # how far into its segment a sample sits: past the IDR, yet cheap to decode to
_PROBE_WITHOUT_DECODING = {"skip_frame": "all", "threads": "1"}
MAX_REORDER_FRAMES = 16    # H.264's max_num_reorder_frames bound: the n-th picture shown is among the first n + 16 decoded


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySample:
    frame_index: int          # output frame number on the shared CFR grid
    segment_index: int
    offset_in_segment: int    # frames after the segment's first (IDR) frame


class SampleScore(NamedTuple):
    psnr_db: float            # luma, inf when identical
    ssim: float               # luma, 0..1


@dataclass(frozen=True, slots=True, kw_only=True)
class RenditionQuality:
    rendition: str            # Rendition.name
    psnr_db: float            # mean luma PSNR over the samples (inf when identical)
    min_psnr_db: float
    sample_count: int
    is_below_threshold: bool
    threshold_db: float
    ssim: float = math.nan    # mean luma SSIM over the same samples
    min_ssim: float = math.nan

    def as_dict(self) -> dict:
        def finite(value: float, digits: int = 2) -> float | None:   # JSON has no infinity
            return round(value, digits) if math.isfinite(value) else None
        return {"rendition": self.rendition, "psnr_db": finite(self.psnr_db), "min_psnr_db": finite(self.min_psnr_db),
                "ssim": finite(self.ssim, 4), "min_ssim": finite(self.min_ssim, 4),
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


def warm_up() -> None:
    """Import numpy ahead of the first sample (see the module docstring); for the quality thread."""
    import numpy  # noqa: F401


def luma(frame) -> np.ndarray:
    """The Y plane of a yuv420p frame as a (height, width) uint8 array (a copy: frames are reused)."""
    import numpy as np

    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width].copy()


def psnr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit planes, in dB (inf when they are identical)."""
    import numpy as np

    mse = float(np.mean((reference.astype(np.float32) - decoded.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Structural similarity of two 8-bit planes, 0..1 (1 when identical).

    As FFmpeg's ssim filter and x264 compute it, so figures compare with theirs: 8x8 windows every 4
    pixels, built from 4x4 block sums, with the constants of Wang et al. (2004). Sums are exact integers
    and the formula float64: its variance terms are differences of numbers near 2^28, which float32
    would round to noise.
    """
    import numpy as np

    height, width = (side - side % 4 for side in reference.shape)
    a = reference[:height, :width].astype(np.uint16)
    b = decoded[:height, :width].astype(np.uint16)

    def windows(plane: np.ndarray) -> np.ndarray:
        # sums of 4x4 blocks by adding strided views (several times faster than reshape().sum()), then
        # of 2x2 neighbouring blocks; products of two 8-bit samples fit uint16, their sums need uint32
        row = plane.reshape(height, width // 4, 4)
        row = row[..., 0].astype(np.uint32) + row[..., 1] + row[..., 2] + row[..., 3]
        column = row.reshape(height // 4, 4, width // 4)
        blocks = column[:, 0] + column[:, 1] + column[:, 2] + column[:, 3]
        return (blocks[:-1, :-1] + blocks[1:, :-1] + blocks[:-1, 1:] + blocks[1:, 1:]).astype(np.float64)

    s1, s2, s12 = windows(a), windows(b), windows(a * b)
    ss = windows(a * a) + windows(b * b)
    c1, c2 = (0.01 * 255) ** 2 * 64, (0.03 * 255) ** 2 * 64 * 63
    variances, covariance = ss * 64 - s1 * s1 - s2 * s2, s12 * 64 - s1 * s2
    values = (2 * s1 * s2 + c1) * (2 * covariance + c2) / ((s1 * s1 + s2 * s2 + c1) * (variances + c2))
    return float(values.mean())


def ssim_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """SSIM on a dB scale, -10 log10(1 - SSIM), as FFmpeg prints it (inf when identical): 0.99 is 20 dB."""
    value = ssim(reference, decoded)
    return math.inf if value >= 1 else -10 * math.log10(1 - value)


def decoded_luma(segment_path: Path, offset_in_segment: int, init_path: Path | None = None) -> np.ndarray | None:
    """Decode the frame `offset_in_segment` frames after the segment's first (display order); None if too short.

    Only what that picture needs is decoded: the packets before it in decode order, less the
    non-reference pictures, which nothing predicts from, so the picture is the one a full decode
    gives, for ~35 % less CPU on a 1080p segment (half the pictures of a B-pyramid GOP are skipped).
    An fMP4 media segment only decodes behind its init segment (`init_path`), as players read it.
    """
    source = io.BytesIO(init_path.read_bytes() + segment_path.read_bytes()) if init_path else str(segment_path)
    # Opening probes the streams by decoding the IDR, which is then decoded again below: the SPS the
    # parser reads is all the probe needs, so its decoder skips every picture (~15 % of a check).
    with av.open(source, options=_PROBE_WITHOUT_DECODING) as container:
        stream = container.streams.video[0]
        # one thread: the pictures are decoded one after another anyway (one slice each), and slice
        # threads only cost CPU the encoders need; skip_frame also applies per packet only this way
        stream.thread_count = 1
        decoder = stream.codec_context
        packets = []
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                packets.append(packet)
                if len(packets) > offset_in_segment + MAX_REORDER_FRAMES:
                    break   # every picture shown up to the sample has been read
        shown = sorted(packet.pts for packet in packets)
        if len(shown) <= offset_in_segment:
            return None
        wanted = shown[offset_in_segment]
        for packet in packets:
            decoder.skip_frame = "DEFAULT" if packet.pts == wanted else "NONREF"
            for frame in decoder.decode(packet):
                if frame.pts == wanted:
                    return luma(frame)
            if packet.pts == wanted:
                break
        for frame in decoder.decode(None):   # the pictures the decoder holds back for reordering
            if frame.pts == wanted:
                return luma(frame)
    return None


def check_sample(sample: QualitySample, reference: np.ndarray, segment_path: Path,
                 init_path: Path | None = None) -> SampleScore | None:
    """Luma PSNR and SSIM of `sample` decoded from its segment against `reference`; None if it cannot be
    compared. Raises TranscodeError naming the segment if it does not decode."""
    try:
        decoded = decoded_luma(segment_path, sample.offset_in_segment, init_path)
    except av.FFmpegError as exc:
        raise TranscodeError(f"quality check: {segment_path.parent.name}/{segment_path.name} does not decode "
                             f"back: {exc}") from exc
    if decoded is None or decoded.shape != reference.shape:
        return None
    return SampleScore(psnr_db(reference, decoded), ssim(reference, decoded))


def summarize(name: str, scores: list[SampleScore], threshold_db: float) -> RenditionQuality | None:
    """The rendition's quality from its samples' scores, in sample order; None without any."""
    if not scores:
        return None
    psnrs = [score.psnr_db for score in scores]
    mean = statistics.fmean(psnrs) if all(math.isfinite(s) for s in psnrs) else math.inf
    return RenditionQuality(rendition=name, psnr_db=mean, min_psnr_db=min(psnrs), sample_count=len(scores),
                            ssim=statistics.fmean(score.ssim for score in scores),
                            min_ssim=min(score.ssim for score in scores),
                            is_below_threshold=min(psnrs) < threshold_db, threshold_db=threshold_db)


class QualityCheck:
    """One rendition's sampled check, run while it encodes rather than after it: same samples, same values.

    The rendition thread calls keep() on each frame it scales (cheap unless the frame is sampled) and
    segments_closed() whenever its muxer may have closed segments; each sampled segment that is complete
    is then decoded on `executor` (a small thread shared by the renditions: PyAV releases the GIL while
    decoding), so the encoders never wait for it. finish() checks what is left (the last segment, or every
    segment of an fMP4 rendition, whose segments exist only once its fragmented file is cut) on the
    calling thread, waits for the rest, and summarizes.
    """

    def __init__(self, name: str, samples: list[QualitySample], threshold_db: float, executor: Executor) -> None:
        self.name = name
        self.threshold_db = threshold_db
        self.executor = executor
        self._by_frame = {sample.frame_index: sample for sample in samples}
        self._by_segment = {sample.segment_index: sample for sample in samples}
        self._references: dict[int, np.ndarray] = {}    # segment index -> reference waiting for its segment
        self._scores: dict[int, Future | SampleScore | None] = {}   # segment index -> score, or the check computing it

    def keep(self, frame_index: int, frame) -> None:
        """Keep the reference luma if `frame_index` is sampled (`frame`: the scaled yuv420p frame)."""
        sample = self._by_frame.get(frame_index)
        if sample is not None:
            self._references[sample.segment_index] = luma(frame)

    @property
    def is_waiting(self) -> bool:
        """Whether a kept reference still waits for its segment to be closed."""
        return bool(self._references)

    def segments_closed(self, segment_paths: list[Path], init_path: Path | None = None) -> None:
        """Check every waiting sample whose segment is among `segment_paths` (complete files only)."""
        self._check_waiting(segment_paths, init_path, self.executor.submit)

    def finish(self, segment_paths: list[Path], init_path: Path | None = None) -> RenditionQuality | None:
        """Check the samples still waiting here, on this thread, wait for the others; the rendition's quality.

        Raises TranscodeError naming the segment when a sampled segment does not decode."""
        log.debug("%s: %d of %d sampled segments checked while encoding", self.name, len(self._scores),
                  len(self._scores) + len(self._references))
        self._check_waiting(segment_paths, init_path, _run_here)   # in parallel with the other rungs
        self._references.clear()
        scores = [score.result() if isinstance(score, Future) else score
                  for _, score in sorted(self._scores.items())]
        return summarize(self.name, [s for s in scores if s is not None], self.threshold_db)

    def _check_waiting(self, segment_paths: list[Path], init_path: Path | None, run) -> None:
        for segment_index in sorted(index for index in self._references if index < len(segment_paths)):
            sample = self._by_segment[segment_index]
            reference = self._references.pop(segment_index)     # dropped once its check has run
            self._scores[segment_index] = run(check_sample, sample, reference, segment_paths[segment_index],
                                              init_path)


def _run_here(function, *args):
    return function(*args)

"""transcode(): decode the upload once and encode every rendition of the ladder into MPEG-TS (or fMP4) segments.

All renditions share one output frame grid, so IDR frames (forced every GOP) and segment cuts fall on
the same timestamps in every rendition, and EXTINF comes from real frame times, not rounded ones.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av

from pipeline.encode import fmp4, quality
from pipeline.encode.audio import AudioTrack
from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderSettings, Rendition
from pipeline.encode.quality import SAMPLED_SEGMENTS, QualityCheck, plan_samples

# EncodedRendition and EncodedSegment are part of what transcode() returns: importable from here too
from pipeline.encode.rendition_output import EncodedRendition, EncodedSegment, EncoderThreads, RenditionOutput
from pipeline.errors import TranscodeError
from pipeline.inspect.frame_limits import FrameGuard, FrameLimits
from pipeline.inspect.rotation import rotation_filter

__all__ = ["MAX_SEGMENTS", "NATURAL_RATES", "DecodeDamage", "EncodedRendition", "EncodedSegment", "FrameObserver",
           "TranscodeProgress", "TranscodeResult", "decoder_thread_count", "encoder_threads", "output_frame_rate",
           "transcode"]

MAX_SEGMENTS = 2400          # 4 hours of 6 s segments: the cut list must be given up front
NATURAL_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60"))

Progress = Callable[[float], None]   # fraction done, 0..1


class FrameObserver(Protocol):
    """Sees every frame the transcode emits on its output grid (after rotation), on the decoding thread.

    It must be quick (it delays the encoders' feed) and must not keep frames it does not need; it must
    not raise (pipeline/pictures/sampler.py PictureSampler keeps its own failure for later).
    """

    def observe(self, frame: av.VideoFrame, index: int, fps: Fraction) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscodeProgress:
    """How far a transcode is, for progress bars and job reports."""

    fraction: float              # 0..1 of the expected duration
    media_s: float               # media time sent to the encoders so far
    duration_s: float | None     # expected duration from the container header, None when it has none
    elapsed_s: float             # wall time since the transcode started

    @property
    def speed_x(self) -> float:
        """Media seconds encoded per wall second (2.0 = twice realtime)."""
        return self.media_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the speed so far, None until there is a speed to extrapolate."""
        if self.duration_s is None or self.media_s <= 0:
            return None
        return max(0.0, (self.duration_s - self.media_s) / self.speed_x)


@dataclass(frozen=True, slots=True)
class DecodeDamage:
    """Video packets or pictures the decoder could not decode cleanly (skipped or concealed)."""

    count: int = 0
    at_tail: int = 0                   # after the last clean picture: what a cut-off upload looks like
    first_s: float | None = None       # time of the first, from the first picture


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscodeResult:
    renditions: tuple[EncodedRendition, ...]
    duration_s: Fraction         # measured from decoded frames, not the container header
    frame_count: int
    has_source_audio: bool
    damage: DecodeDamage = DecodeDamage()

    @property
    def quality_warnings(self) -> tuple[str, ...]:
        """One sentence per rendition whose sampled PSNR fell below LadderSettings.min_psnr_db."""
        return tuple(
            f"{q.rendition}: luma PSNR {q.min_psnr_db:.1f} dB on a sampled frame is below {q.threshold_db:g} dB"
            for q in (r.quality for r in self.renditions) if q is not None and q.is_below_threshold
        )


def transcode(
    source: str | os.PathLike,
    renditions: list[Rendition],
    out_dir: str | os.PathLike,
    settings: LadderSettings = LadderSettings(),
    progress: Progress | None = None,
    on_progress: Callable[[TranscodeProgress], None] | None = None,
    segment_format: SegmentFormat = SegmentFormat.TS,
    frame_observer: FrameObserver | None = None,
    frame_limits: FrameLimits | None = None,
) -> TranscodeResult:
    """Encode `source` into each rendition as TS (or fMP4) segments under out_dir/<rendition.name>/.

    `progress` gets the fraction done; `on_progress` the same moment with speed and ETA. Each
    rendition's quality is checked on sampled frames (see pipeline/encode/quality.py). `frame_observer` sees
    each output frame (posters, storyboards: pipeline/pictures/sampler.py). With `frame_limits`, every decoded
    picture is held to them (this decode is ingest's validation decode).
    Raises TranscodeError if decoding or encoding fails, MediaOverLimit at the first picture outside
    `frame_limits`; the caller discards out_dir.
    """
    out_dir = Path(out_dir)
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            transcoder = _Transcoder(container, renditions, out_dir, settings, progress, on_progress, segment_format)
            transcoder.frame_observer = frame_observer
            transcoder.frame_guard = FrameGuard(frame_limits) if frame_limits is not None else None
            return transcoder.run()
    except av.FFmpegError as exc:
        raise TranscodeError(f"{Path(source).name}: transcoding failed: {exc.strerror or exc}") from exc


class _Transcoder:
    def __init__(self, container, renditions, out_dir: Path, settings: LadderSettings, progress,
                 on_progress, segment_format: SegmentFormat = SegmentFormat.TS) -> None:
        if not container.streams.video:
            raise TranscodeError("the source has no video stream")
        self.input = container
        self.video_in = container.streams.video[0]
        cores = os.cpu_count() or 1
        decoder_threads = decoder_thread_count(len(renditions), cores)
        if decoder_threads > 1:
            self.video_in.thread_type = "FRAME"
            self.video_in.thread_count = decoder_threads
        else:
            self.video_in.thread_count = 1
        self.audio_in = container.streams.audio[0] if container.streams.audio else None
        self.settings = settings
        self.progress = progress
        self.on_progress = on_progress
        self.started = time.perf_counter()
        self.fps = output_frame_rate(self.video_in.average_rate or self.video_in.guessed_rate, settings.max_frame_rate)
        self.gop_frames = Fraction(settings.gop_s) * self.fps
        self.segment_every_gops = max(1, round(settings.segment_s / settings.gop_s))
        self.header_duration_s = container.duration / av.time_base if container.duration else None
        cuts = ",".join(str(self.segment_start_frame(k)) for k in range(1, MAX_SEGMENTS))
        expected_segments = (math.ceil(self.header_duration_s / (self.segment_every_gops * settings.gop_s))
                             if self.header_duration_s else SAMPLED_SEGMENTS)
        samples = plan_samples([self.segment_start_frame(k) for k in range(expected_segments + 1)])
        fmp4_options = (fmp4.muxer_options(gop_s=settings.gop_s, segment_every_gops=self.segment_every_gops)
                        if segment_format == SegmentFormat.FMP4 else None)
        # one small thread decodes the sampled segments back while the encoders run (pipeline/encode/quality.py)
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quality")
        self.checker.submit(quality.warm_up)
        self.outputs = [RenditionOutput(r, out_dir / r.name, self.fps, settings, cuts,
                                         QualityCheck(r.name, samples, settings.min_psnr_db, self.checker),
                                         fmp4_options, threads)
                        for r, threads in zip(renditions, encoder_threads(renditions, cores))]
        # Smallest rung first: the largest encoder is the slowest, so its queue is the one that is full;
        # fed last, it makes the main thread wait only after every other rung already has the frame.
        self.feed_order = sorted(self.outputs, key=lambda output: output.rendition.width * output.rendition.height)
        self.t0: float | None = None        # time of the first decoded video frame, seconds
        self.next_index = 0                 # next output frame number on the CFR grid
        self.last_frame = None
        self.next_gop = 0                   # next GOP number whose first frame must be an IDR
        self.segment_starts: list[int] = []
        self.audio = AudioTrack(self.outputs, has_source_stream=self.audio_in is not None)
        self.rotate = None
        self.damage = _DamageTally()
        self.frame_observer: FrameObserver | None = None
        self.frame_guard: FrameGuard | None = None

    def segment_start_frame(self, k: int) -> int:
        """First frame of segment k: the IDR of GOP k * segment_every_gops on the shared grid."""
        return math.ceil(k * self.segment_every_gops * self.gop_frames)

    def run(self) -> TranscodeResult:
        streams = [self.video_in] + ([self.audio_in] if self.audio_in else [])
        try:
            for packet in self.input.demux(streams):
                is_video = packet.stream.type == "video"
                if is_video and packet.is_corrupt:
                    self.damage.error(packet.pts, packet.time_base)
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    # A broken packet is skipped, as the ffmpeg CLI does, and counted: the caller judges
                    # what did decode (a cut-off upload ends in one; damage mid-stream is rejected).
                    if is_video:
                        self.damage.error(packet.pts, packet.time_base)
                    continue
                for frame in frames:
                    if is_video:
                        self.damage.frame(frame)
                        if self.frame_guard is not None:
                            self.frame_guard.check(frame)      # before the frame reaches any encoder
                        self._on_video(frame)
                    else:
                        self._on_audio(frame)
            if self.t0 is None:
                raise TranscodeError("no video frame could be decoded")
            if self.last_frame is not None:
                self._emit(self.last_frame)   # the last source frame covers its own duration
            duration = Fraction(self.next_index) / self.fps
            self.audio.finish(duration)
            # Every rendition gets its flush before any is waited for, emptiest queue first: waited one
            # by one, the 720p encoder would sit on its last frames until the 1080p one had finished.
            for output in sorted(self.outputs, key=RenditionOutput.queued_work):
                output.submit(output.mux_audio, output.take_audio())
                output.start_finish()
            for output in self.outputs:
                output.wait_finished()
        except BaseException:
            for output in self.outputs:
                output.abort()
            raise
        finally:
            self.checker.shutdown(cancel_futures=True)   # idle by now unless failing: no check outlives us
        segment_bounds = self.segment_starts + [self.next_index]
        encoded = tuple(output.collect(segment_bounds) for output in self.outputs)
        self._report(1.0, float(Fraction(self.next_index) / self.fps))
        return TranscodeResult(
            renditions=encoded,
            duration_s=Fraction(self.next_index) / self.fps,
            frame_count=self.next_index,
            has_source_audio=self.audio_in is not None,
            damage=self.damage.found(self.t0),
        )

    def _on_video(self, frame) -> None:
        if frame.pts is None:
            return
        t = float(frame.pts * frame.time_base)
        if self.t0 is None:
            self.t0 = t
            self.audio.t0 = t
            self.rotate = rotation_filter(frame)
        if self.rotate is not None:
            self.rotate.push(frame)
            frame = self.rotate.pull()
        target = round((t - self.t0) * self.fps)
        # constant frame rate out: repeat the previous frame over gaps, drop frames that land twice
        while self.last_frame is not None and self.next_index < target:
            self._emit(self.last_frame)
        self.last_frame = frame
        if self.header_duration_s and self.next_index % 30 == 0:
            self._report(min(0.99, (t - self.t0) / self.header_duration_s), t - self.t0)

    def _report(self, fraction: float, media_s: float) -> None:
        if self.progress:
            self.progress(fraction)
        if self.on_progress:
            self.on_progress(TranscodeProgress(fraction=fraction, media_s=media_s, duration_s=self.header_duration_s,
                                               elapsed_s=time.perf_counter() - self.started))

    def _emit(self, frame) -> None:
        index = self.next_index
        is_idr = index >= self.next_gop * self.gop_frames
        if is_idr:
            if self.next_gop % self.segment_every_gops == 0:
                self.segment_starts.append(index)
            self.next_gop += 1
        for output in self.feed_order:
            output.submit(output.encode_video, frame, index, is_idr, output.take_audio())
        if self.frame_observer is not None:
            self.frame_observer.observe(frame, index, self.fps)
        self.next_index += 1
        self.audio.fill_silence_until(Fraction(self.next_index) / self.fps)

    def _on_audio(self, frame) -> None:
        if self.t0 is None:
            return   # audio before the first picture is cut so both tracks start together
        self.audio.push(frame)


class _DamageTally:
    """Counts damaged video as pipeline/inspect/measure.py does for `series validate`, so ingest can apply
    the same rule to the transcoder's single decode."""

    def __init__(self) -> None:
        self.count = 0
        self.at_tail = 0
        self.first_s: float | None = None

    def error(self, pts, time_base) -> None:
        self.count += 1
        self.at_tail += 1
        if self.first_s is None and pts is not None and time_base is not None:
            self.first_s = float(pts * time_base)

    def frame(self, frame) -> None:
        if frame.is_corrupt:
            self.error(frame.pts, frame.time_base)
        if frame.pts is not None:
            self.at_tail = 0      # damage before a decoded picture is mid-stream, not the cut-off tail

    def found(self, t0: float | None) -> DecodeDamage:
        first = None if self.first_s is None else max(0.0, self.first_s - (t0 or 0.0))
        return DecodeDamage(count=self.count, at_tail=self.at_tail, first_s=first)


def decoder_thread_count(rendition_count: int, cpu_count: int) -> int:
    """Decoder threads to use when `rendition_count` encoders already run on `cpu_count` cores.

    Each rendition's encoder keeps about a core busy, so the decoder gets only the cores left over.
    Frame threads it cannot run in parallel cost CPU the encoders need (context copies, N frames of
    latency, a DPB per thread): on 2 cores and 5 rungs, the auto count (3) took ~5 % more CPU and
    ~25 MB more memory for the whole transcode than decoding on the main thread.
    """
    return max(1, cpu_count - rendition_count)


# How far below the decoding thread the encoders of all but the largest rendition run (see below).
SMALLER_RUNG_NICENESS = 4


def encoder_threads(renditions: list[Rendition], cpu_count: int) -> list[EncoderThreads]:
    """x264 threads and priority for each rendition's encoder, when all encode at once on `cpu_count` cores.

    Every rendition has its own thread, so frame threads inside an encoder pay only when there are
    more cores than renditions: then each has one and the rest go by pixels, `cpu_count` in all (the
    decoder's frame threads, decoder_thread_count(), come on top). On 2 cores and 5 rungs, x264's own
    count (3 each) cost ~3 % more CPU and ~140 MB more memory (bench/).
    With one thread, the largest rung's encoder is the longest serial chain (1080p: ~10 s of CPU in
    a 13.5 s transcode on 2 cores). At an equal share of the cores it fell behind, its full queue
    held up the decoder and a core idled, so the largest rung (or rungs, if equal) runs at the
    decoder's priority and the others a little below; harmless when there are cores to spare.
    """
    pixels = [r.width * r.height for r in renditions]
    largest = max(pixels, default=0)
    counts = [1] * len(renditions)
    spare = cpu_count - len(renditions)
    if spare > 0:
        shares = [spare * p / sum(pixels) for p in pixels]
        counts = [1 + math.floor(share) for share in shares]
        # largest remainder: the cores that rounding down left over go to the biggest fractions
        by_fraction = sorted(range(len(shares)), key=lambda k: shares[k] % 1, reverse=True)
        for k in by_fraction[:cpu_count - sum(counts)]:
            counts[k] += 1
    return [EncoderThreads(count=count, niceness=0 if p == largest else SMALLER_RUNG_NICENESS)
            for count, p in zip(counts, pixels)]


def output_frame_rate(source_rate: Fraction | None, max_rate: float) -> Fraction:
    """The source's natural rate (Apple 1.18), halved until it is at most `max_rate`."""
    rate = Fraction(source_rate) if source_rate else Fraction(30)
    while rate > max_rate:
        rate /= 2
    nearest = min(NATURAL_RATES, key=lambda natural: abs(natural - rate))
    return nearest if abs(nearest - rate) / rate < 0.01 else rate.limit_denominator(1001)

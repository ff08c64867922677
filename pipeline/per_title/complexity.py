"""analyze_complexity(): what bit rate and quality each candidate rung of one episode gets at a few constant
qualities, from probe encodes of short sampled scenes.

A separate, cheap pass before the transcode (which still decodes the episode once): a few short windows
spread over the episode are decoded (each from the source keyframe nearest its planned start, so little
is decoded for nothing), scaled to every candidate rung and encoded with libx264 at the ladder's own
preset and GOP rules at each probe CRF, then decoded back (only the measured pictures and those they
predict from) and compared with the source on two frames per window. Each rung's probes run on their
own thread, as the transcode's renditions do.

Two numbers per rung and CRF come out, beside the predicted bit rate:
- quality at the rung's own size, against the source scaled to it as the transcode scales it (what the
  rung's rate control is judged on, and what pipeline/encode/quality.py checks after the encode);
- quality at display size (the largest candidate's), the rung upscaled bicubically as a player would
  show it full screen, against the source at that size: the only fair way to compare rungs of
  different sizes, and so what decides whether a larger rung adds enough over a smaller one.

The bit rate is predicted for the episode's own GOP: each window starts with an IDR, which would
otherwise weigh four times more than in a 2 s GOP, so IDR and other pictures are averaged apart.
Memory stays bounded: a reference plane is kept only for the frames measured, until their decoded
picture comes back (a few frames of encoder latency later).
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from pipeline.encode.ladder import LadderSettings, QualityMetric, Rendition
from pipeline.encode.quality import luma, psnr_db, ssim_db
from pipeline.encode.transcode import output_frame_rate
from pipeline.encode.worker import Worker
from pipeline.errors import TranscodeError
from pipeline.inspect.rotation import rotation_filter

__all__ = ["ComplexityAnalysis", "ProbePoint", "RungProbe", "SampleWindow", "analyze_complexity", "plan_windows"]

MEASURED_PER_WINDOW = 2        # frames compared per window (measured_offsets(); never the IDR)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbePoint:
    crf: float
    bitrate_bps: int              # predicted average video bit rate over the episode at this CRF
    idr_bits: int                 # mean size of an IDR picture: what the VBV buffer must hold at once
    quality_db: float             # at the rung's own size (PSNR or SSIM in dB, per the metric)
    display_quality_db: float     # upscaled to display size, against the source at that size


@dataclass(frozen=True, slots=True, kw_only=True)
class RungProbe:
    rendition: Rendition
    points: tuple[ProbePoint, ...]    # by CRF, lowest (best) first


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleWindow:
    start_s: float                # where the window starts in the source, seconds from its first picture
    frames: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplexityAnalysis:
    """What the probes found; pipeline/per_title/decision.py decides the ladder from it."""

    rungs: tuple[RungProbe, ...]      # the candidates, in plan_ladder() order (largest first)
    metric: QualityMetric
    frame_rate: Fraction              # the output rate the bit rates are predicted at
    windows: tuple[SampleWindow, ...]
    measured_frames: int              # frames compared per rung and CRF
    cpu_s: float                      # CPU time of the whole pass, all threads
    wall_s: float


def plan_windows(duration_s: float | None, fps: Fraction, settings: LadderSettings) -> tuple[list[float], int]:
    """(window start times in seconds, frames per window): about `sample_fraction` of the episode.

    At least `min_windows` (a short episode is still sampled at its start, middle and end) and at most
    `max_windows` (a long one costs a bounded, ever smaller share of its transcode).
    """
    per_title = settings.per_title
    frames = max(2 * MEASURED_PER_WINDOW + 1, round(per_title.window_s * fps))
    span = float(frames / fps)
    if not duration_s:
        return [0.0], frames
    count = math.ceil(duration_s * per_title.sample_fraction / span)
    count = max(per_title.min_windows, min(per_title.max_windows, count))
    usable = max(0.0, duration_s - span)
    return [usable * (k + 0.5) / count for k in range(count)], frames


def measured_offsets(window_frames: int) -> tuple[int, int]:
    """Which frames of a window (0: its IDR) are compared with the source: about a third and two thirds
    in, one at an odd and one at an even offset.

    x264's B-pyramid (3 B-frames at the ladder's presets) puts P and reference-B pictures at even
    offsets from the IDR and plain B pictures, 0.4-0.7 dB worse on grain, at the odd ones: two even
    offsets overstated a grainy 1080p rung by 0.3 dB at every CRF (47.16 predicted, 46.89 measured
    over the whole episode at CRF 18); one of each is within 0.1 dB of it.
    """
    first, second = window_frames // 3, (2 * window_frames) // 3
    if (second - first) % 2 == 0:
        second = second + 1 if second + 1 < window_frames else second - 1
    return first, second


def analyze_complexity(source: str | os.PathLike, renditions: list[Rendition],
                       settings: LadderSettings = LadderSettings()) -> ComplexityAnalysis:
    """Probe-encode sampled windows of `source` for every rendition at each of settings.per_title.probe_crfs.

    `renditions` are the candidates (plan_ladder()), largest first. Raises TranscodeError when the
    source cannot be decoded or a probe fails; the caller may then fall back to the fixed ladder.
    """
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise TranscodeError("the source has no video stream")
            stream = container.streams.video[0]
            stream.thread_count = 1
            fps = output_frame_rate(stream.average_rate or stream.guessed_rate, settings.max_frame_rate)
            duration_s = container.duration / av.time_base if container.duration else None
            starts, window_frames = plan_windows(duration_s, fps, settings)
            display = (renditions[0].width, renditions[0].height)
            probes = [_RungProber(r, fps, display, settings) for r in renditions]
            try:
                windows = _feed_windows(container, stream, starts, window_frames, fps, display, probes)
                rungs = tuple(probe.finish() for probe in probes)
            finally:
                for probe in probes:
                    probe.worker.cancel()
    except av.FFmpegError as exc:
        raise TranscodeError(f"{Path(source).name}: complexity analysis failed: {exc.strerror or exc}") from exc
    measured = min((len(w) for p in probes for w in p.scores_by_crf.values()), default=0)
    return ComplexityAnalysis(rungs=rungs, metric=settings.per_title.metric, frame_rate=fps,
                              windows=tuple(windows), measured_frames=measured,
                              cpu_s=time.process_time() - started_cpu, wall_s=time.perf_counter() - started_wall)


def _feed_windows(container, stream, starts: list[float], window_frames: int, fps: Fraction,
                  display: tuple[int, int], probes: list[_RungProber]) -> list[SampleWindow]:
    """Decode each window and hand its frames to every rung's thread; returns the windows as sampled."""
    time_base = stream.time_base or Fraction(1, 90000)
    first_pts = stream.start_time or 0
    source_rate = stream.average_rate or stream.guessed_rate or fps
    step = max(1, round(Fraction(source_rate) / fps))     # a 120 fps source is probed at the 60 fps it is encoded at
    display_scaler = VideoReformatter()
    measured = measured_offsets(window_frames)
    # A window may start up to half the spacing early or late, at the source keyframe before or after
    # its planned start, so that usually nothing is decoded only to be skipped; from a longer GOP, frames
    # up to the earliest start are skipped.
    slack_s = (starts[1] - starts[0]) / 2 if len(starts) > 1 else 0.0
    windows: list[SampleWindow] = []
    previous_end_pts = None
    rotate = None
    index = 0
    for start_s in starts:
        earliest_pts = first_pts + int(max(0.0, start_s - slack_s) / time_base)
        if previous_end_pts is not None:
            earliest_pts = max(earliest_pts, previous_end_pts + 1)
        frames = _decoded(container, stream, _seek_window(container, stream, first_pts + int(start_s / time_base),
                                                          earliest_pts, first_pts + int((start_s + slack_s) / time_base)))
        try:
            taken = seen = 0
            for frame in frames:
                if frame.pts is None or frame.pts < earliest_pts:
                    continue
                seen += 1
                if (seen - 1) % step:
                    continue
                if rotate is None and index == 0:
                    rotate = rotation_filter(frame)
                if taken == 0:
                    windows.append(SampleWindow(start_s=max(0.0, float((frame.pts - first_pts) * time_base)),
                                                frames=window_frames))
                pts = frame.pts
                if rotate is not None:
                    rotate.push(frame)
                    frame = rotate.pull()
                reference = None
                if taken in measured:
                    reference = luma(display_scaler.reformat(frame, *display, "yuv420p", interpolation="BILINEAR",
                                                             threads=1))
                for probe in probes:
                    probe.worker.submit(probe.encode, frame, index, taken == 0, reference)
                index += 1
                taken += 1
                if taken == window_frames:
                    previous_end_pts = pts
                    break
        finally:
            frames.close()    # before the next seek or the container's close: its cleanup touches both
    if not windows:
        raise TranscodeError("no video frame could be decoded for the complexity analysis")
    return windows


def _seek_window(container, stream, target_pts: int, earliest_pts: int, latest_pts: int):
    """Seek to the source keyframe a window starting near `target_pts` decodes from; its first packet.

    The keyframe at or before the target, unless it lies before `earliest_pts` (its frames up to there
    would be decoded for nothing: a talking head's 8 s GOP cost a third of the analysis so) and the
    next keyframe is no later than `latest_pts`: then that one. None at the end of the stream.
    """
    container.seek(target_pts, stream=stream, backward=True)
    first = _first_packet(container, stream)
    if first is None or first.pts is None or first.pts >= earliest_pts:
        return first
    try:
        container.seek(target_pts, stream=stream, backward=False)
        after = _first_packet(container, stream)
    except av.FFmpegError:     # no keyframe after the target: decode from the one before
        after = None
    if after is not None and after.is_keyframe and after.pts is not None and earliest_pts <= after.pts <= latest_pts:
        return after
    container.seek(target_pts, stream=stream, backward=True)
    return _first_packet(container, stream)


def _first_packet(container, stream):
    packets = container.demux(stream)
    try:
        return next((packet for packet in packets if packet.size), None)
    finally:
        packets.close()


def _decoded(container, stream, first_packet):
    """Frames from `first_packet` on (where the last seek landed); broken packets are skipped as the
    transcode skips them."""
    if first_packet is None:
        return
    packets = container.demux(stream)
    try:
        for packet in itertools.chain((first_packet,), packets):
            try:
                yield from packet.decode()
            except av.InvalidDataError:
                continue
    finally:
        packets.close()


class _RungProber:
    """One candidate rung: its scaler, and an x264 encoder plus an H.264 decoder per probe CRF."""

    def __init__(self, rendition: Rendition, fps: Fraction, display: tuple[int, int], settings: LadderSettings) -> None:
        self.rendition = rendition
        self.fps = fps
        self.display = display
        self.metric = settings.per_title.metric
        self.gop_frames = math.ceil(Fraction(settings.gop_s) * fps)
        self.scaler = VideoReformatter()
        self.upscaler = VideoReformatter()
        self.encoders = {crf: _probe_encoder(rendition, crf, fps, self.gop_frames, settings.preset)
                         for crf in settings.per_title.probe_crfs}
        self.decoders = {crf: av.CodecContext.create("h264", "r") for crf in self.encoders}
        for decoder in self.decoders.values():
            decoder.thread_count = 1
        self.references: dict[int, list] = {}   # frame index -> [own-size luma, display-size luma, CRFs left to score]
        self.unscored: dict[float, set[int]] = {crf: set() for crf in self.encoders}   # measured, not yet decoded back
        self.sizes_by_crf: dict[float, list[tuple[int, int, bool]]] = {crf: [] for crf in self.encoders}
        self.scores_by_crf: dict[float, list[tuple[float, float]]] = {crf: [] for crf in self.encoders}
        self.window_starts: set[int] = set()
        self.worker = Worker(f"probe-{rendition.name}")

    def encode(self, frame, index: int, is_window_start: bool, display_reference) -> None:
        scaled = self.scaler.reformat(frame, self.rendition.width, self.rendition.height, "yuv420p",
                                      interpolation="BILINEAR", threads=1)
        if display_reference is not None:
            self.references[index] = [luma(scaled), display_reference, len(self.encoders)]
            for waiting in self.unscored.values():
                waiting.add(index)
        if is_window_start:
            self.window_starts.add(index)
        scaled.pts = index
        scaled.time_base = 1 / self.fps
        scaled.pict_type = PictureType.I if is_window_start else PictureType.NONE
        for crf, encoder in self.encoders.items():
            self._decode(crf, encoder.encode(scaled))

    def _decode(self, crf: float, packets) -> None:
        decoder = self.decoders[crf]
        for packet in packets:
            self.sizes_by_crf[crf].append((packet.pts, packet.size, packet.is_keyframe))
            decoder.skip_frame = self._skip(packet, self.unscored[crf])
            self._compare(crf, decoder.decode(packet))

    def _skip(self, packet, waiting: set[int]) -> str:
        """What of `packet` the decoder may skip: only measured pictures and those they predict from are
        decoded back (a window's tail, past its last measured picture, not at all): half the decoding."""
        if packet.is_keyframe or packet.pts in waiting:
            return "DEFAULT"
        next_start = min((start for start in self.window_starts if start > packet.pts), default=math.inf)
        return "NONREF" if any(index < next_start for index in waiting) else "ALL"

    def _compare(self, crf: float, frames) -> None:
        for decoded in frames:
            reference = self.references.get(decoded.pts)
            if reference is None:
                continue
            own, display, _ = reference
            own_score = self._score(own, luma(decoded))
            if (decoded.width, decoded.height) == self.display:
                shown_score = own_score   # shown at its own size: the same planes, scaled the same way
            else:
                upscaled = self.upscaler.reformat(decoded, *self.display, "yuv420p", interpolation="BICUBIC",
                                                  threads=1)
                shown_score = self._score(display, luma(upscaled))
            self.scores_by_crf[crf].append((own_score, shown_score))
            self.unscored[crf].discard(decoded.pts)
            reference[2] -= 1
            if reference[2] == 0:
                del self.references[decoded.pts]    # every CRF has compared it

    def _score(self, reference, decoded) -> float:
        value = ssim_db(reference, decoded) if self.metric == QualityMetric.SSIM else psnr_db(reference, decoded)
        return min(value, 99.0)    # identical planes: a finite ceiling keeps the curve fits finite

    def finish(self) -> RungProbe:
        """Flush the encoders on this rung's thread and summarize; raises the thread's failure."""
        self.worker.submit(self._flush)
        self.worker.submit(None)
        self.worker.join()
        points = []
        for crf in sorted(self.encoders):
            scores = self.scores_by_crf[crf]
            if not scores:
                raise TranscodeError(f"{self.rendition.name}: no probe picture decoded back at CRF {crf:g}")
            points.append(ProbePoint(crf=crf, bitrate_bps=self._bitrate(crf), idr_bits=self._idr_bits(crf),
                                     quality_db=statistics.fmean(own for own, _ in scores),
                                     display_quality_db=statistics.fmean(shown for _, shown in scores)))
        return RungProbe(rendition=self.rendition, points=tuple(points))

    def _flush(self) -> None:
        for crf, encoder in self.encoders.items():
            self._decode(crf, encoder.encode(None))
            self._compare(crf, self.decoders[crf].decode(None))
        self.references.clear()

    def _idr_bits(self, crf: float) -> int:
        sizes = [size for pts, size, _ in self.sizes_by_crf[crf] if pts in self.window_starts]
        return round(8 * statistics.fmean(sizes)) if sizes else 0

    def _bitrate(self, crf: float) -> int:
        """Average bit rate for the episode's GOP: IDR and other pictures averaged apart (see the module doc)."""
        sizes = self.sizes_by_crf[crf]
        idr = [size for pts, size, _ in sizes if pts in self.window_starts]
        others = [size for pts, size, _ in sizes if pts not in self.window_starts]
        idr_mean = statistics.fmean(idr) if idr else 0.0
        other_mean = statistics.fmean(others) if others else idr_mean
        per_frame = (idr_mean + (self.gop_frames - 1) * other_mean) / self.gop_frames
        return round(per_frame * 8 * self.fps)


def _probe_encoder(rendition: Rendition, crf: float, fps: Fraction, gop_frames: int, preset: str):
    """libx264 as the transcode sets it up (pipeline/encode/rendition_output.py), but at a constant `crf` and no VBV."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = rendition.width, rendition.height, "yuv420p"
    encoder.time_base = 1 / fps
    encoder.framerate = fps
    encoder.thread_count = 1      # the rungs already probe in parallel, one thread each
    encoder.options = {
        "preset": preset,
        "profile": "high",
        "forced-idr": "1",
        "crf": f"{crf:g}",
        "x264-params": f"keyint={gop_frames + 1}:min-keyint={gop_frames + 1}:scenecut=0:open-gop=0",
    }
    return encoder

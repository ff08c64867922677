"""decode_video(): one bounded decode pass that measures what a file really holds.

Duration from decoded frames (not the header), frame-rate mode, and decode failures with the time of
the first. Bounded so that a hostile file cannot make it run or grow without limit; given FrameLimits,
every picture's size and the work done are held to them, and the pass stops at the first breach.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from pipeline.errors import MediaOverLimit
from pipeline.inspect.frame_limits import FrameGuard, FrameLimits
from pipeline.inspect.probe import OPEN_TIMEOUT_S

DECODE_FRAME_RATE_CEILING = 240       # the decode pass reads at most max_duration_s x this many frames
PACKETS_PER_FRAME_CAP = 2             # ... and twice as many video packets (interlaced H.264: one per field)
DECODE_ERROR_STOP = 1000              # give up counting: the file is garbage, the report already says so
OVER_LIMIT_STOP_S = 1.0               # stop once the decoded span is this far past the duration limit


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeStats:
    """What one bounded decode pass over the first video stream found."""

    frames: int
    duration_s: float | None       # last pts + frame duration - first pts; None when no frame decoded
    min_frame_rate: float | None   # from the longest gap between consecutive frames
    max_frame_rate: float | None   # from the shortest gap
    is_variable_frame_rate: bool | None
    error_count: int
    first_error_s: float | None    # presentation time of the first failure, from the stream start
    tail_error_count: int          # failures at or after the last decoded frame
    stopped_early: bool            # the pass stopped at the frame cap or once the file was clearly too long
    over_limit: MediaOverLimit | None = None   # the first picture outside FrameLimits; the pass stopped there

    @property
    def average_frame_rate(self) -> float | None:
        if self.frames < 2 or not self.duration_s:
            return None
        return self.frames / self.duration_s


def decode_video(path: str | os.PathLike, max_duration_s: float, limits: FrameLimits | None = None) -> DecodeStats:
    """Decode the first video stream once, counting frames and failures; no frame is kept.

    With `limits`, every picture is checked (pipeline/inspect/frame_limits.py) and the pass stops at the first
    one outside them: DecodeStats.over_limit says which and when.

    Packets are demuxed and decoded one by one so a corrupt packet is counted, not fatal. The pass reads
    at most max_duration_s x DECODE_FRAME_RATE_CEILING frames and stops once the decoded span is more
    than a second over max_duration_s. Never raises av errors: a failure is a counted decode error.
    """
    tally = _Tally(FrameGuard(limits) if limits is not None else None)
    stopped_early = False
    try:
        with av.open(str(path), metadata_errors="ignore", timeout=OPEN_TIMEOUT_S) as container:
            if not container.streams.video:  # probe saw one; MPEG-TS stream discovery can differ per open
                raise av.InvalidDataError(errno.EINVAL, "no video stream on reopening")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = stream.time_base or Fraction(1, 90000)
            packets = container.demux(stream)
            try:
                stopped_early = _decode_packets(packets, stream, tally, time_base, max_duration_s)
            except MediaOverLimit as exc:
                tally.over_limit, stopped_early = exc, True
            finally:
                packets.close()  # before the container closes: the generator's cleanup touches it
    except av.FFmpegError:
        tally.error(None, Fraction(1, 90000))
    return tally.stats(stopped_early)


def _decode_packets(packets, stream, tally: _Tally, time_base: Fraction, max_duration_s: float) -> bool:
    """Feed the decoder packet by packet; True when a cap or the duration limit stopped the pass early."""
    frame_cap = math.ceil(max_duration_s * DECODE_FRAME_RATE_CEILING)
    packet_cap = frame_cap * PACKETS_PER_FRAME_CAP
    stop_after_s = max_duration_s + OVER_LIMIT_STOP_S
    packet_count = 0
    while tally.frames < frame_cap and packet_count < packet_cap and tally.errors < DECODE_ERROR_STOP:
        try:
            packet = next(packets)
        except StopIteration:
            return False
        except IndexError:
            # PyAV's demux cannot flush a stream MPEG-TS discovered mid-file; flush ours by hand.
            _flush(stream, tally, time_base)
            return False
        except av.FFmpegError:
            _flush(stream, tally, time_base)  # the demuxer gave up; keep the pictures already sent
            tally.error(None, time_base)      # after them: a failure at the end, not mid-stream
            return False
        packet_count += 1
        try:
            if packet.is_corrupt:
                tally.error(packet.pts, time_base)
            for frame in packet.decode():
                tally.frame(frame, time_base)
        except av.FFmpegError:
            tally.error(packet.pts, time_base)
        if tally.span_s(time_base) > stop_after_s:
            return True
    return True  # a cap was reached


def _flush(stream, tally: _Tally, time_base: Fraction) -> None:
    try:
        for frame in stream.codec_context.decode(None):
            tally.frame(frame, time_base)
    except av.FFmpegError:
        pass  # already flushed: the decoder has nothing more to give


class _Tally:
    """Running counts for decode_video: pts extremes and gaps, never the frames themselves."""

    def __init__(self, guard: FrameGuard | None = None) -> None:
        self.guard = guard
        self.over_limit: MediaOverLimit | None = None
        self.frames = 0
        self.errors = 0
        self.tail_errors = 0
        self.first_error_pts: int | None = None
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.last_duration = 0
        self.previous_pts: int | None = None
        self.min_gap: int | None = None
        self.max_gap: int | None = None
        self.corrupt_frames = 0
        self.time_base = Fraction(1, 90000)

    def frame(self, frame, time_base: Fraction) -> None:
        self.time_base = time_base
        if self.guard is not None:
            self.guard.check(frame)     # raises MediaOverLimit: the pass stops at this picture
        if frame.is_corrupt:
            self.error(frame.pts, time_base)
        pts = frame.pts
        if pts is None:
            return
        self.frames += 1
        if self.previous_pts is not None and pts > self.previous_pts:
            gap = pts - self.previous_pts
            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
            self.max_gap = gap if self.max_gap is None else max(self.max_gap, gap)
        self.previous_pts = pts
        self.first_pts = pts if self.first_pts is None else min(self.first_pts, pts)
        if self.last_pts is None or pts >= self.last_pts:
            self.last_pts = pts
            self.last_duration = frame.duration or 0
        self.tail_errors = 0  # failures before a good frame are mid-stream, not the cut-off tail

    def error(self, pts: int | None, time_base: Fraction) -> None:
        self.time_base = time_base
        self.errors += 1
        self.tail_errors += 1
        if self.first_error_pts is None:
            self.first_error_pts = pts if pts is not None else (self.last_pts if self.last_pts is not None else 0)

    def span_s(self, time_base: Fraction) -> float:
        if self.first_pts is None:
            return 0.0
        return float((self.last_pts - self.first_pts) * time_base)

    def stats(self, stopped_early: bool) -> DecodeStats:
        tb = self.time_base
        duration_s = None
        if self.frames:
            last_duration = self.last_duration or self.min_gap or 0
            duration_s = float((self.last_pts + last_duration - self.first_pts) * tb)
        is_variable = None
        if self.min_gap is not None:
            # One tick of slack: 59.94 fps in a 1/1000 time base alternates 16 and 17 ms gaps.
            is_variable = self.max_gap - self.min_gap > 1 + self.max_gap // 100
        origin = self.first_pts or 0
        first_error_s = None
        if self.first_error_pts is not None:
            first_error_s = max(0.0, float((self.first_error_pts - origin) * tb))
        return DecodeStats(
            frames=self.frames,
            duration_s=duration_s,
            min_frame_rate=float(1 / (self.max_gap * tb)) if self.max_gap else None,
            max_frame_rate=float(1 / (self.min_gap * tb)) if self.min_gap else None,
            is_variable_frame_rate=is_variable,
            error_count=self.errors,
            first_error_s=first_error_s,
            tail_error_count=self.tail_errors,
            stopped_early=stopped_early,
            over_limit=self.over_limit,
        )

"""thumbnail(): the picture at any time of a published episode, decoded from the one segment that covers it.

The caller (the server) finds which segment of a rendition covers time t (packager/publishing/seek.py
segment_at() reads the media playlist), fetches and decrypts it, and passes the plaintext bytes here
with the segment's start time from the playlist. Segments start with an IDR and GOPs are closed, so
this demuxes the segment's packets (cheap), starts decoding at the last keyframe at or before t and
decodes forward at most one GOP to the frame nearest t: within half a frame interval of t, or within
one in the last half frame of a segment (the nearer frame starts the next segment). The picture is
scaled to the asked width (never upscaled, portrait-aware) and encoded as JPEG (or WebP).

Segments carry the episode's timestamps plus the muxer's offset (1.4 s in TS), so times are matched
relative to the segment's first picture, which plays at `segment_start_s`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

import av

from pipeline.errors import PictureError, PictureTimeOutOfRange, PictureWidthOutOfRange
from pipeline.pictures.sampler import render_poster
from pipeline.pictures.still_image import encode_jpeg, encode_webp, scaled_size, to_rgb

MIN_WIDTH_PX = 64
MAX_WIDTH_PX = 1280


@dataclass(frozen=True, slots=True, kw_only=True)
class Thumbnail:
    time_s: Fraction             # the time of the picture shown (the frame nearest the time asked)
    width: int
    height: int
    format: str                  # "jpeg" or "webp"
    data: bytes = field(repr=False)

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


def thumbnail(segment: bytes, *, at_s: float, segment_start_s: Fraction | float, width: int,
              image_format: str = "jpeg", init: bytes | None = None) -> Thumbnail:
    """The picture at episode time `at_s` from a decrypted segment that starts at `segment_start_s`.

    `init` is the fMP4 init segment (None for MPEG-TS). Raises PictureWidthOutOfRange for a width
    outside MIN_WIDTH_PX..MAX_WIDTH_PX, PictureTimeOutOfRange when the segment does not cover
    `at_s`, PictureError when it does not decode.
    """
    if not MIN_WIDTH_PX <= width <= MAX_WIDTH_PX:
        raise PictureWidthOutOfRange(width, MIN_WIDTH_PX, MAX_WIDTH_PX)
    if image_format not in ("jpeg", "webp"):
        raise ValueError(f"image_format {image_format!r}; expected 'jpeg' or 'webp'")
    frame_time_s, frame = frame_at(segment, at_s=at_s, segment_start_s=segment_start_s, init=init)
    size = scaled_size(frame.width, frame.height, width)
    rgb = to_rgb(frame, size)
    data = encode_jpeg(rgb) if image_format == "jpeg" else encode_webp(rgb)
    return Thumbnail(time_s=frame_time_s, width=size.width, height=size.height, format=image_format, data=data)


def poster_from_segment(segment: bytes, *, at_s: float, segment_start_s: Fraction | float,
                        init: bytes | None = None):
    """A Poster (pipeline/pictures/sampler.py) at `at_s`, for a creator changing the poster of a published episode."""
    frame_time_s, frame = frame_at(segment, at_s=at_s, segment_start_s=segment_start_s, init=init)
    return render_poster(frame, time_s=frame_time_s, is_chosen=True)


def frame_at(segment: bytes, *, at_s: float, segment_start_s: Fraction | float,
             init: bytes | None = None) -> tuple[Fraction, av.VideoFrame]:
    """(episode time of the frame, the decoded frame) nearest `at_s` in the segment. Raises as thumbnail()."""
    data = (init or b"") + segment
    start = Fraction(segment_start_s)
    try:
        with av.open(io.BytesIO(data), format="mp4" if init else "mpegts") as container:
            if not container.streams.video:
                raise PictureError("the segment has no video stream")
            stream = container.streams.video[0]
            stream.thread_count = 1
            packets = [packet for packet in container.demux(stream) if packet.size and packet.pts is not None]
            if not packets:
                raise PictureError("the segment holds no video packet")
            time_base = stream.time_base
            first_pts = min(packet.pts for packet in packets)
            frame_duration = (packets[0].duration or 0) * time_base or 1 / Fraction(stream.average_rate or 25)
            end_s = start + (max(packet.pts for packet in packets) - first_pts) * time_base + frame_duration
            if not start - frame_duration / 2 <= Fraction(at_s) < end_s:
                raise PictureTimeOutOfRange(at_s, float(end_s))
            target = first_pts + (Fraction(at_s) - start) / time_base
            # decode order: the last keyframe at or before the target starts a GOP that holds it
            begin = max((i for i, packet in enumerate(packets) if packet.is_keyframe and packet.pts <= target),
                        default=0)
            best = None
            for index in range(begin, len(packets) + 1):
                # the next keyframe starts the next (closed) GOP: flush what the target's GOP still holds
                is_next_gop = index == len(packets) or (index > begin and packets[index].is_keyframe)
                for frame in stream.codec_context.decode(None if is_next_gop else packets[index]):
                    if best is None or abs(frame.pts - target) < abs(best.pts - target):
                        best = frame
                if is_next_gop:
                    break
    except av.FFmpegError as exc:
        raise PictureError(f"the segment failed to decode: {exc}") from exc
    if best is None:
        raise PictureError("no picture of the segment decoded")
    return start + (best.pts - first_pts) * time_base, best

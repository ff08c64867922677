"""probe(): what an uploaded file claims to be, read from its container header and first frame."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av

from pipeline.errors import EmptyMedia, TruncatedMedia, UnreadableMedia

ROTATION_PACKET_LIMIT = 300  # packets probe reads looking for the first frame (and its display matrix)
MAX_TOP_LEVEL_BOXES = 10_000   # is_cut_off_mp4 reads at most this many box headers
OPEN_TIMEOUT_S = 30.0  # a stalled read (network mount, FIFO) gives up instead of hanging a worker


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoInfo:
    codec: str
    width: int                   # as stored
    height: int
    rotation: int                # degrees counter-clockwise from the display matrix, 0/90/180/270
    frame_rate: Fraction | None  # the stream's average rate, None if unknown
    pix_fmt: str | None
    bit_depth: int | None = None  # bits per luma sample from the pixel format descriptor: yuv420p10le -> 10
    frame_count: int = 0          # as the header declares it; 0 when the container does not say
    header_duration_s: float | None = None  # the video stream's own duration; None when the container omits it

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def is_portrait(self) -> bool:
        return self.display_height > self.display_width


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int


class StreamInfo(NamedTuple):
    index: int
    type: str   # "video", "audio", "subtitle", "data", ...
    codec: str  # FFmpeg's codec name, "none" when FFmpeg has no decoder for it


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInfo:
    path: Path
    size_bytes: int
    container: str
    header_duration_s: float | None
    video: VideoInfo | None
    audio: AudioInfo | None
    streams: tuple[StreamInfo, ...] = ()
    header_bit_rate_bps: int | None = None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read container, streams and rotation of `path`.

    Raises UnreadableMedia when FFmpeg cannot open the file as media.
    """
    path = Path(path)
    size_bytes = path.stat().st_size
    if size_bytes == 0:
        raise EmptyMedia(f"{path.name} is empty (0 bytes); upload the episode file again")
    try:
        with av.open(str(path), metadata_errors="ignore", timeout=OPEN_TIMEOUT_S) as container:
            header_duration_s = container.duration / av.time_base if container.duration else None
            video = _video_info(container)
            audio = _audio_info(container)
            return MediaInfo(
                path=path,
                size_bytes=size_bytes,
                container=container.format.name,
                header_duration_s=header_duration_s,
                video=video,
                audio=audio,
                streams=tuple(
                    StreamInfo(stream.index, stream.type, _codec_name(stream)) for stream in container.streams
                ),
                header_bit_rate_bps=container.bit_rate or None,
            )
    except av.FFmpegError as exc:
        if is_cut_off_mp4(path):
            raise TruncatedMedia(f"{path.name} is an MP4 whose end is missing (no moov box): the upload was cut "
                                 "off; upload it again") from exc
        raise UnreadableMedia(
            f"{path.name} is not a media file FFmpeg can read ({exc.strerror}); upload a video such as MP4 or MOV"
        ) from exc


def is_cut_off_mp4(path: Path) -> bool:
    """Whether `path` starts as an ISO BMFF file (an ftyp box) but lacks its index: no moov box among the
    top-level boxes, or a box running past the end of the file. A phone writes moov last, so an upload
    cut off mid-transfer looks like this; anything else FFmpeg cannot open is not media to us."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset, has_moov, first = 0, False, True
        for _ in range(MAX_TOP_LEVEL_BOXES):
            if offset + 8 > size:
                break
            handle.seek(offset)
            header = handle.read(16)
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if first and box_type != b"ftyp":
                return False
            first = False
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - offset      # to the end of the file
            if box_size < 8 or offset + box_size > size:
                return True                   # a box cut short
            has_moov = has_moov or box_type == b"moov"
            offset += box_size
        return not first and not has_moov


def _video_info(container) -> VideoInfo | None:
    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    context = stream.codec_context
    if context is None:  # FFmpeg knows the stream but has no decoder for it (or the header is mangled)
        return VideoInfo(codec="none", width=0, height=0, rotation=0, frame_rate=None, pix_fmt=None)
    rotation = _first_frame_rotation(container, stream)
    return VideoInfo(
        codec=context.name,
        width=context.width,
        height=context.height,
        rotation=rotation,
        frame_rate=stream.average_rate or stream.guessed_rate,
        pix_fmt=context.pix_fmt,
        bit_depth=bit_depth(context.pix_fmt),
        frame_count=max(stream.frames or 0, 0),
        header_duration_s=float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None,
    )


def _first_frame_rotation(container, stream) -> int:
    # Bounded: a hostile file whose packets never yield a frame must not make probe read it all.
    try:
        for count, packet in enumerate(container.demux(stream)):
            if count >= ROTATION_PACKET_LIMIT:
                break
            for frame in packet.decode():
                return round(frame.rotation) % 360
    except av.FFmpegError:
        pass  # an undecodable first frame is for validation to judge, not probe
    return 0


def _audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    context = container.streams.audio[0].codec_context
    if context is None:
        return AudioInfo(codec="none", channels=0, sample_rate=0)
    return AudioInfo(codec=context.name, channels=context.channels, sample_rate=context.sample_rate)


def bit_depth(pix_fmt: str | None) -> int | None:
    """Bits per sample of the first (luma) component: yuv420p -> 8, yuv420p10le -> 10, None if unknown."""
    if not pix_fmt:
        return None
    try:
        components = av.VideoFormat(pix_fmt).components
    except (ValueError, av.FFmpegError):
        return None
    return components[0].bits if components else None


def _codec_name(stream) -> str:
    try:
        return stream.codec_context.name if stream.codec_context is not None else "none"
    except (AttributeError, av.FFmpegError):
        return "none"

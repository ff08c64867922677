"""probe(): what an uploaded file claims to be, read from its container header and first frame."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import PipelineError


class UnreadableMedia(PipelineError):
    """The file could not be opened as media at all (not a container FFmpeg recognises, or empty)."""

    code = "not_media"


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoInfo:
    codec: str
    width: int                   # as stored
    height: int
    rotation: int                # degrees counter-clockwise from the display matrix, 0/90/180/270
    frame_rate: Fraction | None  # the stream's average rate, None if unknown
    pix_fmt: str | None

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


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInfo:
    path: Path
    size_bytes: int
    container: str
    header_duration_s: float | None
    video: VideoInfo | None
    audio: AudioInfo | None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read container, streams and rotation of `path`.

    Raises UnreadableMedia when FFmpeg cannot open the file as media.
    """
    path = Path(path)
    size_bytes = path.stat().st_size
    if size_bytes == 0:
        raise UnreadableMedia(f"{path.name} is empty (0 bytes); upload the episode file again")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
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
            )
    except av.FFmpegError as exc:
        raise UnreadableMedia(
            f"{path.name} is not a media file FFmpeg can read ({exc.strerror}); upload a video such as MP4 or MOV"
        ) from exc


def _video_info(container) -> VideoInfo | None:
    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    context = stream.codec_context
    rotation = 0
    stream.thread_type = "AUTO"
    try:
        for frame in container.decode(stream):
            rotation = int(frame.rotation) % 360
            break
    except av.FFmpegError:
        pass  # an undecodable first frame is for validation to judge, not probe
    return VideoInfo(
        codec=context.name,
        width=context.width,
        height=context.height,
        rotation=rotation,
        frame_rate=stream.average_rate or stream.guessed_rate,
        pix_fmt=context.pix_fmt,
    )


def _audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    context = container.streams.audio[0].codec_context
    return AudioInfo(codec=context.name, channels=context.channels, sample_rate=context.sample_rate)

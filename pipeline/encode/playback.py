"""decode_segment(): play a decrypted MPEG-TS or fMP4 segment the way a player would, for the packager's self-check.

The packager may not import PyAV (layering), so the server passes this function into publish().
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av

from pipeline.errors import SegmentUndecodable


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedSegment:
    video_frames: int
    audio_frames: int
    starts_with_key_frame: bool


def decode_segment(data: bytes) -> DecodedSegment:
    """Decode every packet of `data` (plaintext MPEG-TS, or an fMP4 init segment followed by a media
    segment). Raises SegmentUndecodable.

    A truncated tail (an I-frame byte range ends mid-packet or mid-sample) is tolerated, as players
    tolerate it; a segment without a single decodable video frame is not.
    """
    video_frames = audio_frames = 0
    starts_with_key_frame = False
    try:
        with av.open(io.BytesIO(data), format=_container_format(data)) as container:
            if not container.streams.video:
                raise SegmentUndecodable("the segment has no video stream")
            for packet in container.demux(*container.streams.video, *container.streams.audio):
                if packet.is_corrupt:
                    continue     # the mp4 demuxer's short read of a sample cut off by the range's end
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        if video_frames == 0:
                            starts_with_key_frame = bool(frame.key_frame)
                        video_frames += 1
                    else:
                        audio_frames += 1
    except av.FFmpegError as exc:
        raise SegmentUndecodable(f"the segment failed to decode: {exc}") from exc
    if video_frames == 0:
        raise SegmentUndecodable("the segment holds no decodable video frame")
    return DecodedSegment(video_frames=video_frames, audio_frames=audio_frames,
                          starts_with_key_frame=starts_with_key_frame)


def _container_format(data: bytes) -> str:
    # an fMP4 segment is played behind its init segment, which starts with an ftyp box
    return "mp4" if data[4:8] == b"ftyp" else "mpegts"

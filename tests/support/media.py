"""Small generated media for tests: made with PyAV + numpy, never downloaded."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.synthetic import generate_clip


def clip(directory: Path, name: str, **kwargs) -> Path:
    """A clip in `directory` (cached by name within the directory)."""
    path = directory / name
    if not path.exists():
        generate_clip(path, **kwargs)
    return path


def count_frames(url_or_path: str, **open_options) -> tuple[int, float]:
    """Decode every video frame the way a player would; return (frames, seconds of video)."""
    frames = 0
    first = last = None
    with av.open(url_or_path, options=open_options) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames += 1
            t = float(frame.pts * frame.time_base)
            first = t if first is None else first
            last = t
    return frames, (last - first) if frames > 1 else 0.0


def looks_like_plain_ts(data: bytes) -> bool:
    """True when the MPEG-TS sync byte 0x47 sits at every 188-byte stride, i.e. the data is not encrypted."""
    strides = range(0, min(len(data), 188 * 20), 188)
    return len(data) >= 188 and all(data[i] == 0x47 for i in strides)


def size_change_clip(directory: Path, name: str, *, first: tuple[int, int] = (320, 240), first_s: float = 35,
                     then: tuple[int, int] = (8192, 8192), then_frames: int = 1, fps: int = 25) -> Path:
    """An MP4 whose H.264 stream changes picture size mid-stream through an in-band SPS: `first_s` seconds
    at `first`, then `then_frames` pictures at `then`. The container header and the first SPS say
    `first`; only a decoder meets `then`. Made as two Annex-B bitstreams, concatenated, remuxed (cached)."""
    path = directory / name
    if path.exists():
        return path
    raw = _annex_b(*first, round(first_s * fps), fps) + _annex_b(*then, then_frames, fps)
    with av.open(io.BytesIO(raw), format="h264") as source, av.open(str(path), "w") as target:
        stream_in = source.streams.video[0]
        stream_out = target.add_stream_from_template(stream_in)
        index = 0
        for packet in source.demux(stream_in):
            if packet.size == 0:
                continue
            packet.stream = stream_out
            packet.time_base = Fraction(1, fps)
            packet.pts = packet.dts = index
            packet.duration = 1
            index += 1
            target.mux(packet)
    return path


def _annex_b(width: int, height: int, frames: int, fps: int) -> bytes:
    """`frames` pictures of a moving gradient at width x height as a raw H.264 (Annex B) bitstream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        planes = np.zeros((height * 3 // 2, width), dtype=np.uint8)
        planes[height:] = 128                                     # neutral chroma
        ramp = (np.arange(width, dtype=np.uint16) % 256).astype(np.uint8)
        for index in range(frames):
            planes[:height] = np.roll(ramp, index * 4)[None, :]
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def truncated_mp4(directory: Path, name: str, source: Path, *, keep_fraction: float = 0.5) -> Path:
    """The first `keep_fraction` of `source` (an MP4 written moov-last, as phones write them): an upload
    cut off mid-transfer."""
    path = directory / name
    if not path.exists():
        data = source.read_bytes()
        assert data[4:8] == b"ftyp" and data.rfind(b"moov") > len(data) * keep_fraction, "moov must be at the end"
        path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def noisy_clip(directory: Path, name: str, *, min_bytes: int, duration_s: float = 32, width: int = 640,
               height: int = 360, fps: int = 25) -> Path:
    """A real, large H.264/AAC MP4 of at least `min_bytes`: a moving gradient under heavy noise at a high
    bitrate, so a short clip (cheap to transcode) is as big as a long phone upload's first minutes (cached)."""
    path = directory / name
    if path.exists():
        return path
    frames = round(duration_s * fps)
    bit_rate = int(min_bytes * 8 / duration_s * 1.25)      # ABR lands near its target on noise; room above it
    rng = np.random.default_rng(24)
    partial = path.with_name(name + ".partial")
    with av.open(str(partial), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = bit_rate
        video.options = {"preset": "ultrafast"}
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        ramp = (np.arange(width, dtype=np.int16) % 256)[None, :]
        samples_per_frame = 48000 // fps
        for index in range(frames):
            luma = np.roll(ramp, index * 3, axis=1) + rng.integers(-60, 60, size=(height, width), dtype=np.int16)
            planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
            planes[:height] = np.clip(luma, 0, 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                out.mux(packet)
            t = (np.arange(samples_per_frame) + index * samples_per_frame) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            sound = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts = 48000, index * samples_per_frame
            for packet in audio.encode(sound):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    if partial.stat().st_size < min_bytes:
        raise AssertionError(f"{name}: {partial.stat().st_size} bytes, below the {min_bytes} asked for")
    partial.replace(path)
    return path

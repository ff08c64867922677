"""Generated sample episodes: moving picture plus a tone, made with PyAV and numpy.

The demo and the tests use these instead of downloaded media, so a fresh clone needs nothing else.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def generate_clip(
    path: str | Path,
    *,
    duration_s: float,
    width: int,
    height: int,
    fps: Fraction | int = 30,
    has_audio: bool = True,
    tone_hz: float = 440.0,
    video_codec: str = "libx264",
    container_format: str | None = None,
    container_options: dict[str, str] | None = None,
    black_until_s: float = 0.0,
    subtitles: Sequence[tuple[float, float, str]] = (),
    subtitle_codec: str = "mov_text",
    subtitle_language: str = "eng",
    picture: str = "stress",
) -> Path:
    """Write a clip of `duration_s` seconds: a scrolling gradient with a moving box and a sine tone.

    The picture changes every frame so encoders cannot cheat and decoders have something to check.
    Pictures before `black_until_s` are black (an edit's lead-in). `subtitles` adds a text subtitle
    stream of `subtitle_codec` (mov_text in MP4, subrip or webvtt in Matroska) with these
    (start_s, end_s, text) cues.

    `picture`: "stress" (the default, for tests) scrolls a sawtooth gradient whose hard edges move every
    frame, more detail than any rung's bitrate can hold; "scene" looks more like filmed footage (soft
    colour fields drifting slowly, the moving box), which a sane ladder encodes well at every rung — the
    demo uses it so its first report is about the service, not a synthetic worst case.
    """
    if picture not in ("stress", "scene"):
        raise ValueError(f"picture must be 'stress' or 'scene', got {picture!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = Fraction(fps)
    frame_count = round(duration_s * fps)
    tmp = path.with_name(path.name + ".partial")
    with av.open(str(tmp), "w", format=container_format or _format_for(path),
                 options=container_options or {}) as container:
        video = container.add_stream(video_codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        if video_codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "28"}
        audio = None
        if has_audio:
            audio = container.add_stream("aac", rate=48000, layout="stereo")
        audio_samples_written = 0
        subtitle_stream = None
        if subtitles:
            subtitle_stream = container.add_mux_stream(subtitle_codec)
            subtitle_stream.time_base = Fraction(1, 1000)
            subtitle_stream.metadata["language"] = subtitle_language
        pending_cues = sorted(subtitles)
        ys, xs = np.mgrid[0:height, 0:width]
        base = ((xs + ys) % 256).astype(np.uint8)
        box = max(8, min(width, height) // 6)
        for index in range(frame_count):
            if picture == "scene":
                rgb = _scene(xs, ys, width, height, index / float(fps))
            else:
                shift = (index * 4) % 256
                luma = (base + shift).astype(np.uint8)
                rgb = np.stack([luma, np.roll(luma, index, axis=1), 255 - luma], axis=-1)
            bx = int((width - box) * (0.5 + 0.5 * math.sin(index / 15)))
            by = int((height - box) * (0.5 + 0.5 * math.cos(index / 23)))
            rgb[by : by + box, bx : bx + box] = (255, 255, 0)
            if index < black_until_s * fps:
                rgb[:] = 0
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = 1 / fps
            container.mux(video.encode(frame))
            while pending_cues and pending_cues[0][0] * fps <= index:
                container.mux(_subtitle_packet(subtitle_stream, subtitle_codec, *pending_cues.pop(0)))
            if audio is not None:
                until = round((index + 1) / fps * 48000)
                audio_samples_written = _write_tone(container, audio, audio_samples_written, until, tone_hz)
        container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))
    tmp.replace(path)
    return path


def _scene(xs: np.ndarray, ys: np.ndarray, width: int, height: int, t: float) -> np.ndarray:
    """Soft colour fields drifting over seconds: low spatial frequencies, slow motion, like a lit set."""
    u, v = xs / width, ys / height
    red = 128 + 80 * np.sin(2 * np.pi * (u * 0.8 + t / 11)) * np.cos(2 * np.pi * (v * 0.6 - t / 17))
    green = 120 + 70 * np.sin(2 * np.pi * (v * 0.9 + t / 13) + 1.0)
    blue = 110 + 60 * np.cos(2 * np.pi * (u * 0.5 - v * 0.4 + t / 19))
    return np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)


def _subtitle_packet(stream, codec: str, start_s: float, end_s: float, text: str) -> av.Packet:
    payload = text.encode()
    if codec == "mov_text":          # 3GPP timed text sample: a 16-bit length, then the UTF-8 text
        payload = struct.pack(">H", len(payload)) + payload
    packet = av.Packet(payload)
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = round(start_s * 1000)
    packet.duration = round((end_s - start_s) * 1000)
    return packet


def _write_tone(container, audio, start: int, until: int, tone_hz: float) -> int:
    count = until - start
    if count <= 0:
        return start
    t = (np.arange(start, until) / 48000.0).astype(np.float32)
    wave = (0.2 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = 48000
    frame.pts = start
    frame.time_base = Fraction(1, 48000)
    container.mux(audio.encode(frame))
    return until


def _format_for(path: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts", ".webm": "webm"}.get(
        path.suffix.lower(), "mp4"
    )

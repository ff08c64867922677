"""Small generated media for tests: made with PyAV + numpy, never downloaded."""

from __future__ import annotations

from pathlib import Path

import av

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

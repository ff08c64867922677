"""Simulated leaks for the watermark tests and bench/watermark.py: a session's A/B segments joined
as a player would have saved them, then attacked by the ffmpeg CLI (re-encode, rescale, crop, frame
rate, noise, an excerpt)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.encode.rendition_output import EncodedRendition

FFMPEG = shutil.which("ffmpeg")


def played_copy(rendition: EncodedRendition, bits: Sequence[int], path: Path) -> Path:
    """The MPEG-TS segments a session with `bits` was served (0 = A, 1 = B), joined into one file."""
    with path.open("wb") as out:
        for segment_a, segment_b, bit in zip(rendition.segments, rendition.b_segments, bits, strict=False):
            out.write((segment_a if bit == 0 else segment_b).path.read_bytes())
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class Attack:
    """What a leaker's ffmpeg run does to the copy. Defaults: re-encode to 480 lines at CRF 28."""

    height: int = 480                 # output lines (width in proportion, even)
    crf: int = 28
    crop: float = 0.0                 # fraction cut from each side
    fps: int | None = None            # a new frame rate (frames dropped or repeated)
    noise: int = 0                    # ffmpeg noise filter strength (temporal + uniform)
    start_s: float | None = None      # an excerpt ...
    duration_s: float | None = None   # ... of this long
    width: int = -2                   # -2: in proportion to height

    def describe(self) -> str:
        parts = [f"{self.height}p CRF {self.crf}"]
        if self.width != -2:
            parts.append(f"{self.width} wide")
        if self.crop:
            parts.append(f"crop {self.crop:.0%}/side")
        if self.fps:
            parts.append(f"{self.fps} fps")
        if self.noise:
            parts.append(f"noise {self.noise}")
        if self.duration_s:
            parts.append(f"{self.duration_s:g} s from {self.start_s or 0:g} s")
        return ", ".join(parts)


def attack(source: Path, path: Path, attack: Attack = Attack()) -> Path:
    """Re-encode `source` into `path` as `attack` says, with the ffmpeg CLI (libx264, no audio)."""
    if FFMPEG is None:
        raise RuntimeError("the ffmpeg CLI is needed to simulate leaks")
    filters = []
    if attack.crop:
        keep = 1 - 2 * attack.crop
        filters.append(f"crop=trunc(iw*{keep}/2)*2:trunc(ih*{keep}/2)*2")
    filters.append(f"scale={attack.width}:{attack.height}")
    if attack.noise:
        filters.append(f"noise=alls={attack.noise}:allf=t+u")
    if attack.fps:
        filters.append(f"fps={attack.fps}")
    command = [FFMPEG, "-nostdin", "-loglevel", "error", "-y"]
    if attack.start_s is not None:
        command += ["-ss", f"{attack.start_s:g}"]
    command += ["-i", str(source)]
    if attack.duration_s is not None:
        command += ["-t", f"{attack.duration_s:g}"]
    command += ["-vf", ",".join(filters), "-c:v", "libx264", "-preset", "veryfast", "-crf", str(attack.crf),
                "-pix_fmt", "yuv420p", "-an", str(path)]
    subprocess.run(command, check=True)
    return path
